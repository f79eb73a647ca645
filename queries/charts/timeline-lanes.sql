-- Lanes of the pin timeline (a pfn, or a holder task "comm pid"), the longest held first.
--
-- @param trace_id INTEGER NULL The trace.
-- @param by_pfn BOOLEAN NULL true: one lane per pfn; false: one per holder task.
-- @param max_lanes INTEGER NULL Lanes at most.
--
-- @column lane The pfn in hex, or "comm pid".
-- @column total Sum of the interval lengths on the lane (ns).
-- @column first Start of its first interval (ns).
WITH iv AS (
  SELECT pfn, CASE WHEN longterm THEN 'FOLL_LONGTERM pin' ELSE 'pin' END AS class, holder_pid, holder_comm,
         start_ts_ns AS s, coalesce(end_ts_ns, start_ts_ns + duration_ns) AS e, end_ts_ns IS NULL AS open, refs
  FROM pins WHERE trace_id = $trace_id
  UNION ALL
  SELECT pfn, 'long hold', holder_pid, holder_comm, start_ts_ns, coalesce(end_ts_ns, start_ts_ns + duration_ns),
         end_ts_ns IS NULL, refs
  FROM holds WHERE trace_id = $trace_id)
SELECT CASE WHEN $by_pfn THEN printf('0x%x', pfn) ELSE coalesce(holder_comm, '?') || ' ' || coalesce(holder_pid::VARCHAR, '?') END AS lane, sum(e - s) AS total, min(s) AS first
FROM iv GROUP BY 1 ORDER BY total DESC, lane LIMIT $max_lanes
