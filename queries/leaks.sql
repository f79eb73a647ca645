-- Pages still alive at the end of the trace that look leaked: references taken in the window and never returned, by stack.
--
-- What: like `perf kmem --page --live` or bcc memleak's "outstanding allocations by stack", but refcount-aware.
-- A capture is a time window, so "never returned" is only evidence when nobody is left to return the
-- reference. A page is reported when (1) its allocation was seen in the window and it was never freed, (2)
-- page_ref events track it (pages.ref_events > 0), (3) a hold or pin taken during its lifetime is still open at
-- the end (pages.holds_end / pins_end > 0, the open rows of `holds` / `pins`), (4) its final refcount is above
-- what its owners explain: its mappings (mapcount), the page cache or swap cache (file-backed mapping or
-- swapcache flag on its last page_ref event: +1) and fs private data (private flag: +1), and (5) the process that
-- took that reference exited afterwards (sched_process_exit of its tgid, or of its pid when the trace has no
-- TGID column): its mappings, files, pipes and rings are gone, so whatever still holds the page is lost.
-- A reference whose holder is still alive at the end is a window edge, not a leak: a pipe still holding
-- vmsplice pages, a registered io_uring buffer, I/O in flight (the vmsplice-cma scenario ends that way). Those
-- are listed only with $include_live_holders, as are references taken by kernel threads (which never exit).
-- Not reported either: pages alive when the capture started (start_edge: their references cannot be
-- attributed), pages allocated and simply not freed yet (cached, page tables, slab: window edges), every page
-- of a kmem-only trace (no page_ref events: an allocation without a free is only a window edge).
-- A reference is certain (certain = true; `check` counts only those) when neither the page nor the reference
-- crosses a lost-event window and the holder exited at least $exit_grace_ns before the trace ends:
-- sched_process_exit fires in do_exit() before exit_files(), so references owned by the process's files (pipe
-- buffers, io_uring buffers, whose teardown runs later in a kworker) are still being returned right after it.
-- A page is a certain leak when one of its references is; rows are grouped by certainty too, so the certain
-- rows' pages add up to summary's `leaks`. The others are listed only with $include_uncertain (certain = false).
-- Each leaked page is counted twice: once under the stack that allocated it (grouping = 'alloc') and once under
-- the stack of each unreturned get or pin (grouping = 'get'), so both "who allocated" and "who forgot the put"
-- rank. Needs sched:sched_process_exit in the capture; without it only $include_live_holders lists anything.
--
-- Why: a reference that is never dropped keeps the page (and for ZONE_DEVICE pages its dev_pagemap) alive for
-- ever: memory leaks, CMA ranges that can never be allocated again, memunmap_pages() waiting forever.
--
-- @title Leaked pages by call site
-- @meaning Pages allocated in the window, alive at the end with references their mappings do not explain.
-- @finding 2
-- @verdict leaks error leaked pages
-- @gate 1
-- @severity error when certain=true else warning
-- @columns html grouping,callsite,pages,bytes,refs_outstanding,holders,first_seen_ns,last_seen_ns,example_pfns,certain
-- @columns md grouping,callsite,pages,refs_outstanding,holders,example_pfns
-- @refcounts 5
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param include_uncertain BOOLEAN false Also report uncertain leaks: crossing a lost-event window, or a holder that exited within $exit_grace_ns of the end.
-- @param include_live_holders BOOLEAN false Also report references whose holder was still alive at the end (possible window edges).
-- @param exit_grace_ns BIGINT 100000000 A holder that exited less than this before the trace ends makes the leak uncertain (ns; 100ms, 1s accepted).
-- @param max_examples INTEGER 5 How many pfns to list in example_pfns per row.
--
-- @column trace_id `traces.trace_id`.
-- @column grouping 'alloc': grouped by the allocating stack; 'get': grouped by the stack of the unreturned get/pin.
-- @column callsite `stacks.callsite` of that stack (NULL when the trace has no stacks).
-- @column stack_id The stack (`stacks.stack_id`; NULL = no stack recorded).
-- @column pages Leaked pages (page lifetimes) in the group.
-- @column bytes Their size: sum of 4096 << order (order 0 when the allocation did not print one).
-- @column refs_outstanding References taken in the window and still held at the end on those pages (refs of the open holds and pins; for 'get' rows only those taken from this stack).
-- @column holders Distinct tasks that took the outstanding references, as `comm/pid`.
-- @column first_seen_ns Earliest allocation ('alloc') or get ('get') of the group.
-- @column last_seen_ns Latest allocation ('alloc') or get ('get') of the group.
-- @column example_pfns Up to $max_examples pfns (numbers), lowest first.
-- @column certain The group's leaks are certain: for 'alloc' rows each page has a certain reference, for 'get' rows each reference is certain (no lost-event window, holder and the tasks it forked after the get exited at least $exit_grace_ns before the end); false rows only with $include_uncertain (or $include_live_holders).
-- @column stack The stack's frames, innermost first, one per line.
WITH judged AS (
  SELECT * EXCLUDE (uncertain),
         NOT uncertain AND coalesce(end_ts_ns - release_exit_ts_ns >= $exit_grace_ns, false) AS certain
  FROM _leak_refs
  WHERE ($trace_id IS NULL OR trace_id = $trace_id)
    AND (holder_exit_ts_ns IS NOT NULL OR $include_live_holders)
),
refs AS (SELECT * FROM judged WHERE certain OR $include_uncertain OR ($include_live_holders AND holder_exit_ts_ns IS NULL)),
leaked AS (
  SELECT trace_id, pfn, alloc_seq, any_value("order") AS "order", any_value(alloc_ts_ns) AS alloc_ts_ns,
         any_value(alloc_stack_id) AS alloc_stack_id, sum(refs)::BIGINT AS refs, bool_or(certain) AS certain,
         list(DISTINCT holder_comm || '/' || holder_pid) AS holders
  FROM refs GROUP BY trace_id, pfn, alloc_seq
),
by_alloc AS (
  SELECT trace_id, 'alloc' AS grouping, alloc_stack_id AS stack_id, count(*) AS pages,
         sum(4096::BIGINT << coalesce("order", 0))::BIGINT AS bytes, sum(refs)::BIGINT AS refs_outstanding,
         list_sort(list_distinct(flatten(list(holders)))) AS holders,
         min(alloc_ts_ns) AS first_seen_ns, max(alloc_ts_ns) AS last_seen_ns,
         list(DISTINCT pfn ORDER BY pfn) AS pfns, certain
  FROM leaked GROUP BY trace_id, alloc_stack_id, certain
),
by_get AS (
  SELECT r.trace_id, 'get' AS grouping, r.get_stack_id AS stack_id, count(DISTINCT (r.pfn, r.alloc_seq)) AS pages,
         sum(r.page_bytes)::BIGINT AS bytes, sum(r.refs)::BIGINT AS refs_outstanding,
         list_sort(list_distinct(list(r.holder_comm || '/' || r.holder_pid))) AS holders,
         min(r.get_ts_ns) AS first_seen_ns, max(r.get_ts_ns) AS last_seen_ns,
         list(DISTINCT r.pfn ORDER BY r.pfn) AS pfns, r.certain
  FROM (
    SELECT *, CASE WHEN row_number() OVER (PARTITION BY trace_id, get_stack_id, certain, pfn, alloc_seq ORDER BY get_seq) = 1
                   THEN 4096::BIGINT << coalesce("order", 0) ELSE 0 END AS page_bytes
    FROM refs
  ) r
  GROUP BY r.trace_id, r.get_stack_id, r.certain
),
grouped AS (SELECT * FROM by_alloc UNION ALL SELECT * FROM by_get)
SELECT g.trace_id, g.grouping, s.callsite, g.stack_id, g.pages, g.bytes, g.refs_outstanding, g.holders,
       g.first_seen_ns, g.last_seen_ns, g.pfns[1:$max_examples] AS example_pfns, g.certain, s.frames AS stack
FROM grouped g
LEFT JOIN stacks s ON s.trace_id = g.trace_id AND s.stack_id = g.stack_id
ORDER BY g.trace_id, g.grouping, g.certain DESC, g.pages DESC, g.refs_outstanding DESC, s.callsite NULLS LAST, g.stack_id;
