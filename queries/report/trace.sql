-- The facts of one trace that the report shows (source, kernel, clock, counts, time span, lost events).
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column trace_id The columns of `traces` of the same names.
SELECT trace_id, source, format, size_bytes, ingested_at, kernel_version, cpus, clock, lines, events, stacks,
       unparsed_lines, lost_events, lost_markers, first_ts_ns, last_ts_ns, mapcount_semantics, mt_layout
FROM traces WHERE trace_id = $trace_id
