-- Whether a trace of this id was ingested (n = 1) or not (n = 0).
--
-- @param trace_id INTEGER NULL The trace id asked for.
--
-- @column n Traces with this id.
SELECT count(*)::INTEGER AS n FROM traces WHERE trace_id = $trace_id
