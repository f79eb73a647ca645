-- First and last event time of one trace: the time axis of the charts.
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column first_ts_ns Time of its first event (ns).
-- @column last_ts_ns Time of its last event (ns).
SELECT first_ts_ns, last_ts_ns FROM traces WHERE trace_id = $trace_id
