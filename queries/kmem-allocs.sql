-- Page allocations and frees grouped by gfp flags, order, migratetype, call site or task ($by): counts, sizes, alive at the end, allocated again while alive, median lifetime.
--
-- What: over `pages`, each mm_page_alloc counted under its $by value: 'gfp' (gfp_flags as printed), 'order',
-- 'migratetype' (named with the trace's migratetype layout), 'callsite' (`stacks.callsite` of the allocation's
-- stack; without a stack the `call_site=` of the event when it prints one, else '(no stack)') or 'comm' (the
-- allocating task). A free counts under the value of the allocation it ends (for 'comm': the freeing task); a free
-- whose allocation precedes the capture has no gfp / migratetype / call site: it counts under '(allocated before
-- the capture)', a window edge. What `perf kmem --page stat --caller` and `--alloc` group by, with names for the
-- migratetypes that perf 6.1 mislabels (it prints MOVABLE as "RECLAIM" and RECLAIMABLE as "MOVABLE", the pre-4.4
-- numbering) and call sites resolved from the callchain.
--
-- Why: which kind of allocation dominates, which is kept, and which is freed quickly.
--
-- @title Page allocations by kind
-- @meaning Page allocator traffic grouped by one property of the allocation.
-- @columns html key,allocs,pages,kb,frees,alloc_freed,alive_at_end,live_pfn_allocs,free_only,median_lifetime_ns,tasks
-- @columns md key,allocs,kb,frees,alive_at_end,live_pfn_allocs,median_lifetime_ns
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param by VARCHAR 'callsite' Group by 'gfp', 'order', 'migratetype', 'callsite' or 'comm'.
--
-- @column trace_id `traces.trace_id`.
-- @column key The $by value ('(allocated before the capture)' for frees of pages allocated before it).
-- @column allocs mm_page_alloc events.
-- @column pages Pages they allocated (2^order each).
-- @column kb Their size, KB.
-- @column frees Frees counted under this value (mm_page_free, or mm_page_free_batched alone).
-- @column alloc_freed Allocations freed inside the window.
-- @column alive_at_end Allocations still alive at the end of the capture (window edge).
-- @column live_pfn_allocs Allocations whose pfn was allocated again before a free was seen (a free not traced).
-- @column free_only Frees of pages allocated before the capture (window edges).
-- @column median_lifetime_ns Median allocation-to-free time of alloc_freed.
-- @column tasks Allocating tasks (distinct comm).
WITH cs AS (
  -- call_site= of allocation events that print one (none of the kmem page events do today; kept for those that will).
  -- Gathered in a list and unnested: DuckDB then estimates one row and builds the join's hash table on this side,
  -- not on every row of pages (a table that grows with the trace, #20).
  SELECT unnest(l, recursive := true) FROM (
    SELECT list({'trace_id': trace_id, 'seq': seq, 'call_site': nullif(regexp_extract(payload, 'call_site=(\S+)', 1), '')}) AS l
    FROM events WHERE $by = 'callsite' AND event = 'mm_page_alloc' AND contains(payload, 'call_site=')
      AND ($trace_id IS NULL OR trace_id = $trace_id))
),
p AS (
  SELECT p.*, coalesce(p.alloc_event = 'mm_page_alloc', false) AS allocated,
         coalesce(p.free_event IN ('mm_page_free', 'mm_page_free_batched'), false) AS freed,
         CASE $by WHEN 'gfp' THEN p.gfp WHEN 'order' THEN p."order"::VARCHAR WHEN 'migratetype' THEN coalesce(m.name, p.migratetype::VARCHAR)
                  WHEN 'callsite' THEN coalesce(s.callsite, cs.call_site, CASE WHEN p.alloc_seq IS NOT NULL THEN '(no stack)' END)
                  WHEN 'comm' THEN p.alloc_comm
                  ELSE error('kmem-allocs: by must be gfp, order, migratetype, callsite or comm, not ' || $by) END AS akey
  FROM pages p
  LEFT JOIN stacks s ON $by = 'callsite' AND s.trace_id = p.trace_id AND s.stack_id = p.alloc_stack_id
  LEFT JOIN cs ON cs.trace_id = p.trace_id AND cs.seq = p.alloc_seq
  LEFT JOIN _mt_names m ON m.trace_id = p.trace_id AND m.mt = p.migratetype
  WHERE ($trace_id IS NULL OR p.trace_id = $trace_id) AND NOT p.zone_device
),
k AS (
  SELECT *, coalesce(akey, '(allocated before the capture)') AS key,
         CASE WHEN $by = 'comm' THEN free_comm ELSE coalesce(akey, '(allocated before the capture)') END AS fkey
  FROM p WHERE allocated OR freed
),
-- One pass over k: each row counted as an allocation under key and as a free under fkey (unnest), so that no
-- copy of k is materialised for a second aggregate and joined back (its size grew with the trace, #20).
u AS (
  SELECT * FROM (SELECT *, unnest([true, false]) AS as_alloc FROM k)
  WHERE CASE WHEN as_alloc THEN allocated ELSE freed END
),
g AS (
  SELECT trace_id, CASE WHEN as_alloc THEN key ELSE fkey END AS key,
         count(*) FILTER (WHERE as_alloc) AS allocs,
         sum(1::BIGINT << coalesce("order", 0)) FILTER (WHERE as_alloc) AS pages,
         sum(4::BIGINT << coalesce("order", 0)) FILTER (WHERE as_alloc) AS kb,
         count(*) FILTER (WHERE as_alloc AND freed) AS alloc_freed, count(*) FILTER (WHERE as_alloc AND end_edge) AS alive_at_end,
         count(*) FILTER (WHERE as_alloc AND free_seq IS NULL AND NOT end_edge) AS live_pfn_allocs,
         median(free_ts_ns - alloc_ts_ns) FILTER (WHERE as_alloc AND freed)::BIGINT AS median_lifetime_ns,
         count(DISTINCT alloc_comm) FILTER (WHERE as_alloc) AS tasks,
         count(*) FILTER (WHERE NOT as_alloc) AS frees, count(*) FILTER (WHERE NOT as_alloc AND NOT allocated) AS free_only
  FROM u GROUP BY ALL
)
SELECT trace_id, key, coalesce(allocs, 0) AS allocs, coalesce(pages, 0)::BIGINT AS pages, coalesce(kb, 0)::BIGINT AS kb,
       coalesce(frees, 0) AS frees, coalesce(alloc_freed, 0) AS alloc_freed, coalesce(alive_at_end, 0) AS alive_at_end,
       coalesce(live_pfn_allocs, 0) AS live_pfn_allocs, coalesce(free_only, 0) AS free_only, median_lifetime_ns,
       coalesce(tasks, 0) AS tasks
FROM g
ORDER BY trace_id, CASE WHEN $by = 'order' THEN TRY_CAST(key AS INTEGER) END NULLS LAST, allocs DESC, frees DESC, key;
