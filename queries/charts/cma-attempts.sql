-- cma_alloc calls of one trace, in call order (the shaded spans of the pin timeline).
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column s Start of the call (ns).
-- @column e Its end (ns; the end of the trace when it never returned).
-- @column succeeded Whether it succeeded (NULL = unknown).
-- @column request_count Pages asked for.
-- @column busy_retries Ranges retried because a page was busy.
-- @column cma_name CMA area.
SELECT start_ts_ns AS s, coalesce(end_ts_ns, (SELECT last_ts_ns FROM traces WHERE trace_id = $trace_id)) AS e, succeeded,
       request_count, busy_retries, cma_name
FROM cma_attempts WHERE trace_id = $trace_id AND kind = 'alloc' ORDER BY start_seq LIMIT 500
