-- Every ingested trace, oldest first, with what a user picks it by: the list a command that needs one trace shows
-- when the database holds several.
--
-- @column trace_id `traces.trace_id`.
-- @column source Input file name.
-- @column events Events ingested.
-- @column replayed Whether replay results exist for the trace (`replay_runs`).
SELECT t.trace_id, t.source, t.events, r.trace_id IS NOT NULL AS replayed
FROM traces t LEFT JOIN replay_runs r USING (trace_id)
ORDER BY t.trace_id
