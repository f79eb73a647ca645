-- Failed CMA ranges and the pfn that blocked each, on the timeline lane of that pfn or holder.
--
-- @param trace_id INTEGER NULL The trace.
-- @param by_pfn BOOLEAN NULL true: lanes are pfns; false: holder tasks.
-- @param max_rows INTEGER NULL Rows at most.
--
-- @column range_seq Event of the failed range.
-- @column t Its time (ns).
-- @column pfn The blocking pfn.
-- @column holder Its holder task ("comm pid").
-- @column holder_kind pin, hold, ...
-- @column lane The timeline lane.
SELECT DISTINCT range_seq, range_ts_ns AS t, pfn, coalesce(holder_comm, '?') || ' ' || coalesce(holder_pid::VARCHAR, '?') AS holder, holder_kind,
       CASE WHEN $by_pfn THEN printf('0x%x', pfn) ELSE coalesce(holder_comm, '?') || ' ' || coalesce(holder_pid::VARCHAR, '?') END AS lane
FROM cma_blockers WHERE trace_id = $trace_id ORDER BY range_seq, pfn LIMIT $max_rows
