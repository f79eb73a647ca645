-- The replay of one trace (model agreement, counts), if it was replayed.
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column trace_id Every column of `replay_runs`.
SELECT * FROM replay_runs WHERE trace_id = $trace_id
