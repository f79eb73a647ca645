-- FOLL_PIN pins still held when the trace ends, by holder and pinning stack, certain and uncertain apart.
--
-- What: the `pins` rows with no closing unpin (end_seq IS NULL), grouped by (holder task, stack of the pin,
-- certainty). Certain rows are pins whose whole interval was traced without loss; uncertain rows cross a
-- lost-event window (their unpin may be among the lost events) and are listed only with $include_uncertain.
-- `holder_exited` marks groups whose process exited while still pinning: those pins can only be released by a
-- kernel object (io_uring ring teardown, a driver), so a pin that outlives its process and the trace is the
-- strongest sign of a pin leak. A pin still held only because the capture stopped early is a window edge: check
-- max_duration_ns and holder_exited before calling it a leak.
--
-- Why: a pinned page can neither be migrated nor reclaimed; leaked FOLL_LONGTERM pins on CMA or ZONE_MOVABLE
-- pages make those ranges unallocatable for ever.
--
-- @title Pins never released
-- @meaning FOLL_PIN intervals still open when the trace ends.
-- @finding 3
-- @verdict pin_leaks error pins never released
-- @gate 2
-- @severity error when holder_exited=true else warning
-- @columns html holder_comm,holder_pid,callsite,pins,refs,pages,longterm_pins,cma_or_movable_pins,first_pin_ns,max_duration_ns,holder_exited,example_pfns,certain
-- @columns md holder_comm,holder_pid,callsite,pins,pages,longterm_pins,example_pfns
-- @refcounts 4
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param include_uncertain BOOLEAN false Also list pins that cross a lost-event window.
-- @param comm VARCHAR NULL Only pins taken by tasks with exactly this comm.
-- @param pid INTEGER NULL Only pins taken by this task id.
-- @param max_examples INTEGER 5 How many pfns to list in example_pfns per row.
--
-- @column trace_id `traces.trace_id`.
-- @column holder_pid Task that pinned.
-- @column holder_tgid Its thread group (NULL when the trace has no TGID column).
-- @column holder_comm Its name (untrusted text from the traced machine).
-- @column callsite `stacks.callsite` of the pinning stack (NULL when no stack was recorded).
-- @column stack_id Stack of the pinning event or GUP probe.
-- @column pins Open pin intervals in the group (`pins` rows).
-- @column refs Pins they hold (sum of pins.refs).
-- @column pages Distinct pinned pfns.
-- @column longterm_pins Pins known to be FOLL_LONGTERM.
-- @column cma_or_movable_pins Pins on CMA pageblocks or ZONE_MOVABLE pages.
-- @column large_folio_pins Pins of large folios.
-- @column first_pin_ns When the oldest pin of the group was taken.
-- @column last_pin_ns When the newest pin of the group was taken.
-- @column max_duration_ns Longest time held (to the end of the trace).
-- @column holder_exited The holder's process exited after pinning (sched_process_exit seen).
-- @column certain false when the group's pins cross a lost-event window.
-- @column example_pfns Up to $max_examples pinned pfns (numbers), lowest first.
-- @column stack The pinning stack's frames, innermost first, one per line.
WITH p AS (
  SELECT * FROM _pin_leaks
  WHERE ($trace_id IS NULL OR trace_id = $trace_id)
    AND (NOT uncertain OR $include_uncertain)
    AND ($comm IS NULL OR holder_comm = $comm)
    AND ($pid IS NULL OR holder_pid = $pid)
),
g AS (
  SELECT trace_id, holder_pid, any_value(holder_tgid) AS holder_tgid, holder_comm, stack_id, uncertain,
         count(*) AS pins, sum(refs)::BIGINT AS refs, count(DISTINCT pfn) AS pages,
         count(*) FILTER (WHERE longterm) AS longterm_pins,
         count(*) FILTER (WHERE in_cma OR movable_zone) AS cma_or_movable_pins,
         count(*) FILTER (WHERE large_folio) AS large_folio_pins,
         min(start_ts_ns) AS first_pin_ns, max(start_ts_ns) AS last_pin_ns, max(duration_ns) AS max_duration_ns,
         bool_or(holder_exited) AS holder_exited, list(DISTINCT pfn ORDER BY pfn) AS pfns
  FROM p GROUP BY trace_id, holder_pid, holder_comm, stack_id, uncertain
)
SELECT g.trace_id, g.holder_pid, g.holder_tgid, g.holder_comm, s.callsite, g.stack_id, g.pins, g.refs, g.pages,
       g.longterm_pins, g.cma_or_movable_pins, g.large_folio_pins, g.first_pin_ns, g.last_pin_ns, g.max_duration_ns,
       g.holder_exited, NOT g.uncertain AS certain, g.pfns[1:$max_examples] AS example_pfns, s.frames AS stack
FROM g
LEFT JOIN stacks s ON s.trace_id = g.trace_id AND s.stack_id = g.stack_id
ORDER BY g.trace_id, g.uncertain, g.holder_exited DESC, g.refs DESC, g.holder_pid, g.stack_id;
