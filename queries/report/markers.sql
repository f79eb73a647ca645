-- The first trace markers (tracing_mark_write, print): the workload's own account of its steps.
--
-- @param trace_id INTEGER NULL The trace.
-- @param max_rows INTEGER NULL Markers at most.
--
-- @column seq The marker event.
SELECT seq FROM events WHERE trace_id = $trace_id AND event IN ('tracing_mark_write', 'print') ORDER BY seq LIMIT $max_rows
