-- Some events of one trace, by seq ($first and $last bound the seqs, so that the scan skips the rest).
--
-- @param trace_id INTEGER NULL The trace.
-- @param first BIGINT NULL Smallest seq asked for.
-- @param last BIGINT NULL Largest seq asked for.
-- @param seqs BIGINT[] NULL The seqs.
--
-- @column seq The columns of `events` of the same names.
SELECT seq, line_no, ts_ns, cpu, pid, comm, event, payload, stack_id FROM events
WHERE trace_id = $trace_id AND seq BETWEEN $first AND $last AND list_contains($seqs::BIGINT[], seq)
