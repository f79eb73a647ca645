-- Lanes of the CMA chart: holder tasks ("comm/pid") of the pins and long holds on CMA / ZONE_MOVABLE pages and of
-- the references that blocked a CMA range, the longest held first.
--
-- @param trace_id INTEGER NULL The trace.
-- @param max_lanes INTEGER NULL Lanes at most.
--
-- @column lane "comm/pid" of the holder.
-- @column total Sum of the interval lengths on the lane (ns).
-- @column first Start of its first interval (ns).
WITH iv AS (
  SELECT holder_pid, holder_comm, start_ts_ns AS s, coalesce(end_ts_ns, start_ts_ns + duration_ns) AS e
  FROM pins WHERE trace_id = $trace_id AND (in_cma OR coalesce(movable_zone, false))
  UNION ALL
  SELECT holder_pid, holder_comm, start_ts_ns, coalesce(end_ts_ns, start_ts_ns + duration_ns)
  FROM holds WHERE trace_id = $trace_id AND in_cma
  UNION ALL
  SELECT holder_pid, holder_comm, range_ts_ns, range_ts_ns FROM cma_blockers WHERE trace_id = $trace_id)
SELECT coalesce(holder_comm, '?') || '/' || coalesce(holder_pid::VARCHAR, '?') AS lane, sum(e - s) AS total, min(s) AS first
FROM iv GROUP BY 1 ORDER BY total DESC, lane LIMIT $max_lanes
