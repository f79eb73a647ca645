-- How many anomalies the replay recorded on one trace.
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column n Rows of `anomalies`.
SELECT count(*) AS n FROM anomalies WHERE trace_id = $trace_id
