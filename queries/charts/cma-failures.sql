-- Failed CMA ranges and the pfn that blocked each, on the lane of its holder task in the CMA chart.
--
-- @param trace_id INTEGER NULL The trace.
-- @param max_rows INTEGER NULL Rows at most.
--
-- @column range_seq Event of the failed range.
-- @column t Its time (ns).
-- @column pfn The blocking pfn.
-- @column holder_kind pin, hold, ...
-- @column lane The holder task, "comm/pid".
SELECT DISTINCT range_seq, range_ts_ns AS t, pfn, holder_kind,
       coalesce(holder_comm, '?') || '/' || coalesce(holder_pid::VARCHAR, '?') AS lane
FROM cma_blockers WHERE trace_id = $trace_id ORDER BY range_seq, pfn LIMIT $max_rows
