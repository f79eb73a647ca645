-- Inferred pgmaps of one trace.
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column n `pgmaps` rows with source 'inferred'.
SELECT count(*)::INTEGER AS n FROM pgmaps WHERE trace_id = $trace_id AND source = 'inferred'
