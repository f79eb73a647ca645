-- Whether a trace has page_ref events (without them the page allocator's events are the whole story).
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column y True when at least one page_ref event was ingested.
SELECT EXISTS (SELECT 1 FROM events WHERE trace_id = $trace_id AND system = 'page_ref') AS y
