-- FOLL_PIN pins still held when the trace ends after their holder exited: pins only the kernel can release now.
--
-- What: the pins outstanding at the end of the trace (`pins` rows without an unpin, outstanding.sql's 'pin' rows)
-- whose holder's process exited after pinning (sched_process_exit of its tgid, or of its pid when the trace has no
-- TGID column) — the one rule for references outstanding at capture end (docs/model.md §15). Such a pin can only
-- be released by a kernel object (io_uring ring teardown, a driver's release): when it is still held at the end,
-- nothing will release it. Grouped by (holder, stack of the pin, certainty). Certain: no lost-event window touches
-- the pins (their unpin cannot be among lost events), every task the holder forked after pinning (recursively)
-- exited too (a child inherits the ring fd or mapping and keeps the pages pinned: sched_process_fork) and the last
-- of those exits is at least $exit_grace_ns before the end (sched_process_exit fires before exit_files(): an
-- io_uring ring's teardown unpins right after it, in a kworker); the other exited-holder pins are listed with $include_uncertain. Pins whose holder is still alive at
-- the end are a window edge, information and not a finding (outstanding.sql, the summary's outstanding_pins);
-- listed here only with $include_live_holders, never certain. Needs sched:sched_process_exit in the capture
-- (`refscope probes` enables it).
--
-- Why: a pinned page can neither be migrated nor reclaimed; leaked FOLL_LONGTERM pins on CMA or ZONE_MOVABLE
-- pages make those ranges unallocatable for ever.
--
-- @title Pins never released
-- @meaning FOLL_PIN pins still held at the end of the trace after their holder's process exited.
-- @finding 3
-- @verdict pin_leaks error pins never released
-- @gate 2
-- @severity error when certain=true else warning
-- @columns html holder_comm,holder_pid,holder_state,callsite,pins,refs,pages,longterm_pins,cma_or_movable_pins,first_pin_ns,holder_exit_ns,max_duration_ns,example_pfns,certain
-- @columns md holder_comm,holder_pid,holder_state,callsite,pins,pages,longterm_pins,example_pfns,certain
-- @refcounts 4
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param include_uncertain BOOLEAN false Also list exited-holder pins that a lost-event window touches or whose holder exited within $exit_grace_ns of the end.
-- @param include_live_holders BOOLEAN false Also list pins whose holder is still alive at the end (outstanding, not a leak; certain = false).
-- @param exit_grace_ns BIGINT 100000000 A holder that exited less than this before the end makes its pins uncertain (ns; 100ms, 1s accepted).
-- @param comm VARCHAR NULL Only pins taken by tasks with exactly this comm.
-- @param pid INTEGER NULL Only pins taken by this task id.
-- @param max_examples INTEGER 5 How many pfns to list in example_pfns per row.
--
-- @column trace_id `traces.trace_id`.
-- @column holder_pid Task that pinned.
-- @column holder_tgid Its thread group (NULL when the trace has no TGID column).
-- @column holder_comm Its name (untrusted text from the traced machine).
-- @column holder_state 'exited' (its process exited after pinning) or 'alive' (only with $include_live_holders).
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
-- @column holder_exit_ns When the holder's process exited (NULL: alive at the end).
-- @column max_duration_ns Longest time held (to the end of the trace).
-- @column holder_exited The holder's process exited after pinning (sched_process_exit seen).
-- @column lost Some pin of the group is touched by a lost-event window.
-- @column certain A certain leak: the holder, and every task it forked after pinning, exited at least $exit_grace_ns before the end and no lost-event window touches the pins (false for live holders, and while a child forked after the pin is alive).
-- @column example_pfns Up to $max_examples pinned pfns (numbers), lowest first.
-- @column stack The pinning stack's frames, innermost first, one per line.
WITH p AS (
  SELECT o.*, pn.longterm, pn.in_cma, pn.movable_zone, pn.large_folio, pn.duration_ns,
         _leak_certain(o.leak, o.lost, o.release_exit_ts_ns, o.end_ts_ns, $exit_grace_ns) AS certain
  FROM _outstanding o
  JOIN pins pn ON pn.trace_id = o.trace_id AND pn.pin_id = o.ref_id
  WHERE o.kind = 'pin'
    AND ($trace_id IS NULL OR o.trace_id = $trace_id)
    AND ($comm IS NULL OR o.holder_comm = $comm)
    AND ($pid IS NULL OR o.holder_pid = $pid)
),
l AS (SELECT * FROM p WHERE (leak AND (certain OR $include_uncertain)) OR (NOT leak AND $include_live_holders)),
g AS (
  SELECT trace_id, holder_pid, any_value(holder_tgid) AS holder_tgid, holder_comm, stack_id, holder_exited, certain,
         count(*) AS pins, sum(refs)::BIGINT AS refs, count(DISTINCT pfn) AS pages,
         count(*) FILTER (WHERE longterm) AS longterm_pins,
         count(*) FILTER (WHERE in_cma OR movable_zone) AS cma_or_movable_pins,
         count(*) FILTER (WHERE large_folio) AS large_folio_pins,
         min(since_ts_ns) AS first_pin_ns, max(since_ts_ns) AS last_pin_ns, min(holder_exit_ts_ns) AS holder_exit_ns,
         max(duration_ns) AS max_duration_ns, bool_or(lost) AS lost, list(DISTINCT pfn ORDER BY pfn) AS pfns
  FROM l GROUP BY trace_id, holder_pid, holder_comm, stack_id, holder_exited, certain
)
SELECT g.trace_id, g.holder_pid, g.holder_tgid, g.holder_comm, CASE WHEN g.holder_exited THEN 'exited' ELSE 'alive' END AS holder_state,
       s.callsite, g.stack_id, g.pins, g.refs, g.pages, g.longterm_pins, g.cma_or_movable_pins, g.large_folio_pins,
       g.first_pin_ns, g.last_pin_ns, g.holder_exit_ns, g.max_duration_ns, g.holder_exited, g.lost, g.certain,
       g.pfns[1:$max_examples] AS example_pfns, s.frames AS stack
FROM g
LEFT JOIN stacks s ON s.trace_id = g.trace_id AND s.stack_id = g.stack_id
ORDER BY g.trace_id, g.certain DESC, g.holder_exited DESC, g.refs DESC, g.holder_pid, g.stack_id;
