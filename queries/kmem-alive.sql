-- Page-allocator pages at the edges of the capture window, by call site: allocated and still alive at the end, or freed without their allocation in the trace.
--
-- What: rows of `pages` started by mm_page_alloc and not freed when the capture ends (edge 'alive at the end'),
-- and frees of pages allocated before the capture started (edge 'allocated before the capture': no call site is
-- known, the freeing task is). Both are window edges: a capture is a window of a running system, so pages in use
-- when it stops are information, never a leak by themselves (leaks.sql judges leaks from references). Grouped by
-- call site (`stacks.callsite` of the allocation; '(no stack)' without one) and task.
--
-- Why: what the workload still held when tracing stopped, and from which code path.
--
-- @title Pages at the window edges
-- @meaning Pages alive at the end of the capture, or freed without their allocation in it, by call site: window edges, not leaks.
-- @columns html edge,callsite,comm,pages,kb,allocs,first_ns,last_ns,example_pfns
-- @columns md edge,callsite,comm,pages,kb,first_ns
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param max_examples INTEGER 5 How many pfns to list in example_pfns per row.
--
-- @column trace_id `traces.trace_id`.
-- @column edge 'alive at the end' or 'allocated before the capture'.
-- @column callsite Call site of the allocation ('(no stack)' without a stack; NULL for 'allocated before the capture').
-- @column comm Allocating task ('alive at the end'), freeing task ('allocated before the capture').
-- @column allocs Allocations (or frees) in the group.
-- @column pages Pages they cover (2^order each).
-- @column kb Their size, KB.
-- @column first_ns Earliest allocation (or free) of the group.
-- @column last_ns Latest one.
-- @column example_pfns Up to $max_examples pfns, lowest first.
WITH p AS (
  SELECT p.trace_id, 'alive at the end' AS edge, coalesce(s.callsite, '(no stack)') AS callsite, p.alloc_comm AS comm,
         p."order", p.alloc_ts_ns AS ts, p.pfn
  FROM pages p LEFT JOIN stacks s ON s.trace_id = p.trace_id AND s.stack_id = p.alloc_stack_id
  WHERE p.end_edge AND p.alloc_event = 'mm_page_alloc' AND ($trace_id IS NULL OR p.trace_id = $trace_id)
  UNION ALL
  SELECT p.trace_id, 'allocated before the capture', NULL, p.free_comm, p."order", p.free_ts_ns, p.pfn
  FROM pages p
  WHERE p.start_edge AND p.free_event IN ('mm_page_free', 'mm_page_free_batched') AND ($trace_id IS NULL OR p.trace_id = $trace_id)
)
SELECT trace_id, edge, callsite, comm, count(*) AS allocs, sum(1::BIGINT << coalesce("order", 0))::BIGINT AS pages,
       sum(4::BIGINT << coalesce("order", 0))::BIGINT AS kb, min(ts) AS first_ns, max(ts) AS last_ns,
       list(DISTINCT pfn ORDER BY pfn)[1:$max_examples] AS example_pfns
FROM p GROUP BY trace_id, edge, callsite, comm
ORDER BY trace_id, edge, pages DESC, callsite, comm;
