-- References still held when the capture ends: pins, plain references (holds) and dev_pagemap references, by holder, alive or exited.
--
-- What: every reference outstanding at the end of the trace, by one rule for the three kinds (docs/model.md §15):
-- 'pin' (a FOLL_PIN interval without its unpin), 'hold' (a plain get without its put) and 'pgmap' (a device page
-- whose zone_device_page_init reference was never dropped by free_zone_device_page). Grouped by kind, holder,
-- the stack of the get and whether the holder exited. A capture is a window: references held when it stops are
-- information (the pages are in use), never a bug by themselves. A pin or pgmap reference whose holder exited
-- (sched_process_exit of its process after the get, the reference still out at the end) is a leak: only the
-- kernel can drop it now (leak = true; pin-leaks.sql and pgmap-imbalance.sql list them as findings). It is
-- certain when no lost-event window touches it and the holder, with every task it forked after the get (a child
-- inherits the fd or mapping: sched_process_fork), exited at least $exit_grace_ns before the end (sched_process_exit fires before exit_files(): ring and pipe teardown may still drop references right after
-- it). A plain reference of an exited holder is no leak here: leaks.sql judges the pages it may have leaked.
-- summary.sql counts the references per kind (outstanding_*), the report says them in its verdict area.
--
-- Why: "who still holds what" when the capture stopped: the pages CMA or memunmap_pages will wait for, and the
-- starting point of every leak hunt.
--
-- @title Outstanding at the end of the capture
-- @meaning References (pins, plain references, pgmap references) still held when the trace ends, by holder; a leak only when the holder exited.
-- @columns html kind,holder_comm,holder_pid,holder_state,callsite,outstanding,refs,pages,since_ns,holder_exit_ns,lost,leak,certain,example_pfns
-- @columns md kind,holder_comm,holder_pid,holder_state,outstanding,pages,leak,certain
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param kind VARCHAR NULL Only this kind: 'pin', 'hold' or 'pgmap'.
-- @param holder_state VARCHAR NULL Only holders 'alive' or 'exited' at the end.
-- @param exit_grace_ns BIGINT 100000000 A holder that exited less than this before the end makes its leak uncertain (ns; 100ms, 1s accepted).
-- @param max_examples INTEGER 5 How many pfns to list in example_pfns per row.
--
-- @column trace_id `traces.trace_id`.
-- @column kind 'pin', 'hold' or 'pgmap'.
-- @column holder_pid Task that took the references.
-- @column holder_tgid Its thread group (NULL when the trace has no TGID column).
-- @column holder_comm Its name (untrusted text from the traced machine).
-- @column holder_state 'exited' (sched_process_exit of its process after the get) or 'alive' (no exit seen: alive at the end, or sched_process_exit not traced).
-- @column holder_exit_ns When it exited (NULL: alive).
-- @column callsite `stacks.callsite` of the get's stack (NULL when no stack was recorded).
-- @column stack_id Stack of the get.
-- @column pgmap struct dev_pagemap pointer as hex text ('pgmap' rows).
-- @column outstanding Outstanding references in the group (rows of `pins` / `holds`, device pages).
-- @column refs References they count (sum of refs; a pgmap reference is 1).
-- @column pages Distinct pfns.
-- @column since_ns When the oldest of them was taken.
-- @column last_since_ns When the newest was taken.
-- @column lost They are touched by a lost-event window (their release may be among the lost events); rows are grouped by it.
-- @column leak A pin or pgmap reference whose holder exited: a leak.
-- @column certain The leak is certain: no lost-event window touches it and the holder, with every task it forked after the get, exited at least $exit_grace_ns before the end (false for every non-leak, and while such a child is alive).
-- @column example_pfns Up to $max_examples pfns (numbers), lowest first.
-- @column stack The get's stack frames, innermost first, one per line.
WITH o AS (
  SELECT *, _leak_certain(leak, lost, release_exit_ts_ns, end_ts_ns, $exit_grace_ns) AS certain
  FROM _outstanding
  WHERE ($trace_id IS NULL OR trace_id = $trace_id)
    AND ($kind IS NULL OR kind = $kind)
    AND ($holder_state IS NULL OR (CASE WHEN holder_exited THEN 'exited' ELSE 'alive' END) = $holder_state)
),
g AS (
  SELECT trace_id, kind, holder_pid, any_value(holder_tgid) AS holder_tgid, holder_comm, holder_exited, stack_id, pgmap,
         leak, certain, min(holder_exit_ts_ns) AS holder_exit_ns, count(*) AS outstanding, sum(refs)::BIGINT AS refs,
         count(DISTINCT pfn) AS pages, min(since_ts_ns) AS since_ns, max(since_ts_ns) AS last_since_ns, lost,
         list(DISTINCT pfn ORDER BY pfn) AS pfns
  FROM o GROUP BY trace_id, kind, holder_pid, holder_comm, holder_exited, stack_id, pgmap, lost, leak, certain
)
SELECT g.trace_id, g.kind, g.holder_pid, g.holder_tgid, g.holder_comm,
       CASE WHEN g.holder_exited THEN 'exited' ELSE 'alive' END AS holder_state, g.holder_exit_ns, s.callsite, g.stack_id,
       _hex(g.pgmap) AS pgmap, g.outstanding, g.refs, g.pages, g.since_ns, g.last_since_ns, g.lost, g.leak, g.certain,
       g.pfns[1:$max_examples] AS example_pfns, s.frames AS stack
FROM g
LEFT JOIN stacks s ON s.trace_id = g.trace_id AND s.stack_id = g.stack_id
ORDER BY g.trace_id, g.certain DESC, g.leak DESC, g.kind, g.outstanding DESC, g.refs DESC, g.holder_pid, g.stack_id NULLS LAST,
         g.pfns[1], g.lost;
