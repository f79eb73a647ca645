-- Every cma_alloc / cma_release call of one trace, in call order: a slice each in the Perfetto export.
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column attempt_id The columns of `cma_attempts` of the same names.
SELECT attempt_id, kind, cma_name, pid, comm, start_ts_ns, end_ts_ns, request_count, pfn, busy_retries, ranges_tried,
       failed_ranges, migrated, migrate_failed, errorno, succeeded, blockers
FROM cma_attempts WHERE trace_id = $trace_id ORDER BY start_seq
