-- How the trace's kernel prints mapcount= (raw _mapcount or page_mapcount), for the refcount chart's legend.
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column m traces.mapcount_semantics.
SELECT mapcount_semantics AS m FROM traces WHERE trace_id = $trace_id
