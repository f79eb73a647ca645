-- Get / pin and put / unpin events of the pin or hold that a CMA blocker row names (pfn, start, holder task).
--
-- @param trace_id INTEGER NULL The trace.
-- @param kind VARCHAR NULL 'pin' (table pins) or 'hold' (table holds).
-- @param pfn BIGINT NULL The blocking pfn.
-- @param start_ts_ns BIGINT NULL Start of the interval (ns).
-- @param holder_pid INTEGER NULL The holder task (NULL matches NULL).
--
-- @column start_seq The get or pin.
-- @column end_seq The put or unpin (NULL when never released).
SELECT * FROM (
  SELECT start_seq, end_seq FROM holds WHERE $kind = 'hold' AND trace_id = $trace_id AND pfn = $pfn AND start_ts_ns = $start_ts_ns
    AND holder_pid IS NOT DISTINCT FROM $holder_pid
  UNION ALL
  SELECT start_seq, end_seq FROM pins WHERE $kind = 'pin' AND trace_id = $trace_id AND pfn = $pfn AND start_ts_ns = $start_ts_ns
    AND holder_pid IS NOT DISTINCT FROM $holder_pid)
ORDER BY start_seq LIMIT 4
