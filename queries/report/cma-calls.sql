-- cma_alloc and cma_release calls of one trace, apart (replay_runs.cma_attempts counts both).
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column cma_allocs cma_alloc calls.
-- @column cma_alloc_failed Those that failed.
-- @column cma_releases cma_release calls.
SELECT count(*) FILTER (WHERE kind = 'alloc') AS cma_allocs,
       count(*) FILTER (WHERE kind = 'alloc' AND succeeded = false) AS cma_alloc_failed,
       count(*) FILTER (WHERE kind <> 'alloc') AS cma_releases
FROM cma_attempts WHERE trace_id = $trace_id
