-- Source and time span of one trace (the Perfetto export's window).
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column source traces.source.
-- @column first_ts_ns Time of its first event (ns).
-- @column last_ts_ns Time of its last event (ns).
SELECT source, first_ts_ns, last_ts_ns FROM traces WHERE trace_id = $trace_id
