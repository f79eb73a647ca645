-- Lifetimes of the pages that matter (CMA blockers and anomalies first, then pages with pins or holds), at most
-- $max_pages pfns, for the Perfetto export.
--
-- @param trace_id INTEGER NULL The trace.
-- @param max_pages INTEGER NULL Pfns at most.
--
-- @column pfn The columns of `pages` of the same names.
WITH interesting AS (
  SELECT pfn, 0 AS prio FROM cma_blockers WHERE trace_id = $trace_id
  UNION ALL SELECT pfn, 0 FROM anomalies WHERE trace_id = $trace_id AND pfn IS NOT NULL
  UNION ALL SELECT folio_pfn, 1 FROM pins WHERE trace_id = $trace_id
  UNION ALL SELECT pfn, 1 FROM holds WHERE trace_id = $trace_id),
chosen AS (SELECT pfn, min(prio) AS prio FROM interesting GROUP BY pfn ORDER BY prio, pfn LIMIT $max_pages)
SELECT p.pfn, p."order", p.alloc_ts_ns, p.free_ts_ns, p.alloc_comm, p.alloc_pid, p.free_comm, p.free_pid,
       p.alloc_event, p.free_event, p.start_edge, p.end_edge, p.refcount_end, p.refcount_max, p.pins_end,
       p.holds_end, p.in_cma, p.zone_device, p.uncertain
FROM pages p JOIN chosen c USING (pfn) WHERE p.trace_id = $trace_id ORDER BY p.pfn, p.first_seq
