-- Start and end events of one cma_alloc / cma_release call.
--
-- @param trace_id INTEGER NULL The trace.
-- @param attempt_id BIGINT NULL cma_attempts.attempt_id.
--
-- @column start_seq The call.
-- @column end_seq Its return (NULL when it never returned).
SELECT start_seq, end_seq FROM cma_attempts WHERE trace_id = $trace_id AND attempt_id = $attempt_id
