-- Failed-range events of one CMA attempt that one pfn blocked.
--
-- @param trace_id INTEGER NULL The trace.
-- @param attempt_id BIGINT NULL cma_attempts.attempt_id.
-- @param pfn BIGINT NULL The blocking pfn.
--
-- @column range_seq The event of the failed range.
SELECT DISTINCT range_seq FROM cma_blockers WHERE trace_id = $trace_id AND attempt_id = $attempt_id AND pfn = $pfn ORDER BY range_seq LIMIT 5
