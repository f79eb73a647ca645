-- Allocations of a pfn that was still alive: evidence that a free was not traced (lost events, a capture of some tasks only, an untraced free path).
--
-- What: an mm_page_alloc of a pfn whose previous allocation had no free in the trace. The page allocator never
-- hands out a page in use, so its free happened and was not seen: the tracer lost events (`lost_events`
-- markers between the two allocations: lost_between), the capture follows some tasks only (`perf record`
-- without -a, a pid filter: another task freed it), or the free path prints no kmem event. replay ends the
-- earlier lifetime there without a free (`pages`: free_seq NULL, end_edge false). One row per earlier lifetime.
--
-- Why: figures of a trace with many of these undercount frees; a perf kmem summary counts them as alloc-only.
--
-- @title Allocations on live pfns
-- @meaning A pfn allocated again while its previous allocation was never freed in the trace: a free was not traced.
-- @columns html pfn,order,alloc_ns,alloc_comm,gfp,callsite,next_alloc_ns,next_comm,next_gfp,lost_between
-- @columns md pfn,alloc_ns,alloc_comm,next_alloc_ns,next_comm,lost_between
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
--
-- @column trace_id `traces.trace_id`.
-- @column pfn Page frame number.
-- @column order Order of the earlier allocation.
-- @column alloc_seq Earlier allocation (events.seq).
-- @column alloc_ns Its time.
-- @column alloc_comm Its task.
-- @column gfp Its gfp flags.
-- @column callsite Its call site (NULL without a stack).
-- @column next_alloc_seq The allocation of the same pfn that followed with no free between (events.seq).
-- @column next_alloc_ns Its time.
-- @column next_comm Its task.
-- @column next_gfp Its gfp flags.
-- @column lost_between A lost-event marker lies between the two allocations.
WITH w AS (
  -- Only row ids, keys and the listed flag go through the window (it holds every allocation of the trace, #20);
  -- the columns of the rows listed and of their next allocation are read back by rowid.
  SELECT rid, lead(rid) OVER (PARTITION BY trace_id, pfn ORDER BY alloc_seq) AS next_rid, listed
  FROM (SELECT rowid AS rid, trace_id, pfn, alloc_seq, alloc_event = 'mm_page_alloc' AND free_seq IS NULL AND NOT end_edge AS listed
        FROM pages WHERE ($trace_id IS NULL OR trace_id = $trace_id) AND alloc_seq IS NOT NULL)
),
-- Gathered in a list and unnested: DuckDB estimates one row and builds the joins' hash tables on this side.
c AS (SELECT unnest(l, recursive := true) FROM (SELECT list({'rid': rid, 'next_rid': next_rid}) AS l FROM w WHERE listed)),
o AS (
  SELECT p.*, n.alloc_seq AS next_alloc_seq, n.alloc_ts_ns AS next_alloc_ns, n.alloc_comm AS next_comm, n.gfp AS next_gfp
  FROM c JOIN pages p ON p.rowid = c.rid LEFT JOIN pages n ON n.rowid = c.next_rid
)
SELECT o.trace_id, o.pfn, o."order", o.alloc_seq, o.alloc_ts_ns AS alloc_ns, o.alloc_comm, o.gfp, s.callsite,
       o.next_alloc_seq, o.next_alloc_ns, o.next_comm, o.next_gfp,
       EXISTS (SELECT 1 FROM lost_events l WHERE l.trace_id = o.trace_id AND l.seq > o.alloc_seq AND l.seq <= o.next_alloc_seq) AS lost_between
FROM o LEFT JOIN stacks s ON s.trace_id = o.trace_id AND s.stack_id = o.alloc_stack_id
ORDER BY o.trace_id, o.alloc_seq;
