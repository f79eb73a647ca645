-- The facts of one trace that the report shows (source, kernel, clock, counts, time span, lost events).
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column trace_id The columns of `traces` of the same names, and lost_markers_uncounted: loss markers that print no
-- count (trace-cmd's `[EVENTS DROPPED]`, per-CPU `buffer started`), so that lost_events is a lower bound.
SELECT trace_id, source, format, size_bytes, ingested_at, kernel_version, cpus, clock, lines, events, stacks,
       unparsed_lines, lost_events, lost_markers,
       (SELECT count(*) FROM lost_events l WHERE l.trace_id = t.trace_id AND l.lost IS NULL) AS lost_markers_uncounted,
       first_ts_ns, last_ts_ns, mapcount_semantics, mt_layout
FROM traces t WHERE trace_id = $trace_id
