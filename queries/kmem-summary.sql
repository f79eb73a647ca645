-- Page allocator totals per trace, as `perf kmem --page stat` prints them and where it is wrong: requests, alloc+freed, alloc-only, free-only, frees seen only as mm_page_free_batched, allocations on live pfns.
--
-- What: over `pages` (page lifetimes from mm_page_alloc to mm_page_free / mm_page_free_batched): allocation
-- requests (mm_page_alloc), free requests, allocations freed inside the window (alloc+freed), allocations not
-- freed in it (alloc-only: alive at the end, or their pfn allocated again before any free was seen), frees of
-- pages allocated before the capture (free-only: a window edge, not a leak). Sizes in KB are 4 << order, as perf
-- prints them. perf kmem (6.1) counts only mm_page_free as a free: a free that the kernel printed only as
-- mm_page_free_batched (its mm_page_free lost, or kernels whose free_unref_page_list prints only the batched one)
-- is a free to refscope and missing from perf's figures (free_batched_only). An allocation of a pfn that is still
-- alive (no free of it since its last allocation) means a free was not traced: lost events, a capture that
-- follows some tasks only (perf record without -a), or a free path without a tracepoint (live_pfn_allocs;
-- kmem-live-pfn lists them).
--
-- No row for a trace without mm_page_alloc / mm_page_free events.
--
-- Why: the allocator's story on kernels without page_ref events, checked against perf kmem (docs/kmem.md).
--
-- @title Page allocator summary
-- @meaning Per-trace page allocator totals (perf kmem --page stat's SUMMARY, corrected).
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
--
-- @column trace_id `traces.trace_id`.
-- @column alloc_requests mm_page_alloc events (perf: Total allocation requests).
-- @column alloc_kb Their size, KB.
-- @column free_requests Frees of page-allocator pages (mm_page_free, or mm_page_free_batched alone).
-- @column free_kb Their size, KB.
-- @column perf_free_requests Frees printed as mm_page_free (perf: Total free requests: it ignores mm_page_free_batched).
-- @column free_batched_only Frees seen only as mm_page_free_batched (free_requests - perf_free_requests).
-- @column alloc_freed Allocations freed inside the window (perf: alloc+freed, plus those freed by mm_page_free_batched alone).
-- @column alloc_freed_kb Their size, KB.
-- @column alloc_only Allocations not freed inside the window (perf: alloc-only): alive_at_end + live_pfn_allocs.
-- @column alloc_only_kb Their size, KB.
-- @column alive_at_end Allocations still alive when the capture ends (window edge: kmem-alive).
-- @column live_pfn_allocs Allocations whose pfn was allocated again before any free of it was seen: a free was not traced (kmem-live-pfn).
-- @column free_only Frees of pages allocated before the capture (perf: free-only; window edges, not leaks).
-- @column free_only_kb Their size, KB.
-- @column freed_batched_with_alloc Of alloc_freed, those freed by mm_page_free_batched alone (perf counts them alloc-only).
-- @column median_lifetime_ns Median time from allocation to free of alloc_freed.
-- @column lost_events Events the tracer says it lost (`traces.lost_events`).
WITH p AS (
  SELECT p.trace_id, coalesce(p.alloc_event = 'mm_page_alloc', false) AS allocated,
         coalesce(p.free_event IN ('mm_page_free', 'mm_page_free_batched'), false) AS freed,
         p.free_event = 'mm_page_free_batched' AS batched, p.end_edge, p.start_edge, p.free_seq IS NULL AS open,
         4::BIGINT << coalesce(p."order", 0) AS kb, p.free_ts_ns - p.alloc_ts_ns AS life
  FROM pages p
  WHERE ($trace_id IS NULL OR p.trace_id = $trace_id) AND NOT p.zone_device
),
s AS (
  SELECT trace_id,
         count(*) FILTER (WHERE allocated) AS alloc_requests, coalesce(sum(kb) FILTER (WHERE allocated), 0) AS alloc_kb,
         count(*) FILTER (WHERE freed) AS free_requests, coalesce(sum(kb) FILTER (WHERE freed), 0) AS free_kb,
         count(*) FILTER (WHERE freed AND NOT batched) AS perf_free_requests,
         count(*) FILTER (WHERE batched) AS free_batched_only,
         count(*) FILTER (WHERE allocated AND freed) AS alloc_freed, coalesce(sum(kb) FILTER (WHERE allocated AND freed), 0) AS alloc_freed_kb,
         count(*) FILTER (WHERE allocated AND open) AS alloc_only, coalesce(sum(kb) FILTER (WHERE allocated AND open), 0) AS alloc_only_kb,
         count(*) FILTER (WHERE allocated AND end_edge) AS alive_at_end,
         count(*) FILTER (WHERE allocated AND open AND NOT end_edge) AS live_pfn_allocs,
         count(*) FILTER (WHERE start_edge AND freed) AS free_only, coalesce(sum(kb) FILTER (WHERE start_edge AND freed), 0) AS free_only_kb,
         count(*) FILTER (WHERE allocated AND batched) AS freed_batched_with_alloc,
         median(life) FILTER (WHERE allocated AND freed)::BIGINT AS median_lifetime_ns
  FROM p GROUP BY trace_id
  HAVING count(*) FILTER (WHERE allocated OR freed) > 0
)
SELECT t.trace_id, coalesce(alloc_requests, 0) AS alloc_requests, coalesce(alloc_kb, 0)::BIGINT AS alloc_kb,
       coalesce(free_requests, 0) AS free_requests, coalesce(free_kb, 0)::BIGINT AS free_kb,
       coalesce(perf_free_requests, 0) AS perf_free_requests, coalesce(free_batched_only, 0) AS free_batched_only,
       coalesce(alloc_freed, 0) AS alloc_freed, coalesce(alloc_freed_kb, 0)::BIGINT AS alloc_freed_kb,
       coalesce(alloc_only, 0) AS alloc_only, coalesce(alloc_only_kb, 0)::BIGINT AS alloc_only_kb,
       coalesce(alive_at_end, 0) AS alive_at_end, coalesce(live_pfn_allocs, 0) AS live_pfn_allocs,
       coalesce(free_only, 0) AS free_only, coalesce(free_only_kb, 0)::BIGINT AS free_only_kb,
       coalesce(freed_batched_with_alloc, 0) AS freed_batched_with_alloc, median_lifetime_ns, t.lost_events
FROM traces t JOIN s USING (trace_id)
WHERE ($trace_id IS NULL OR t.trace_id = $trace_id)
ORDER BY t.trace_id;
