-- Untraced windows of one trace, by kind: the tracer's own loss markers (`lost_events`) and the windows replay
-- inferred from evidence (`gaps`, docs/model.md §16).
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column source 'marker' (the tracer said events were lost) or 'inferred' (replay found evidence of missed events).
-- @column kind `lost_events.kind` or `gaps.kind`.
-- @column windows Rows of that kind.
-- @column pages Distinct pages the evidence names (inferred page evidence; 0 otherwise).
SELECT 'marker' AS source, kind, count(*) AS windows, 0 AS pages FROM lost_events WHERE trace_id = $trace_id GROUP BY kind
UNION ALL
SELECT 'inferred' AS source, kind, count(*) AS windows, count(DISTINCT pfn) AS pages FROM gaps WHERE trace_id = $trace_id GROUP BY kind
ORDER BY source, kind
