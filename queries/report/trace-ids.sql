-- Every ingested trace, oldest first.
--
-- @column trace_id traces.trace_id.
SELECT trace_id FROM traces ORDER BY trace_id
