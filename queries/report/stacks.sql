-- Some stacks of one trace, by id.
--
-- @param trace_id INTEGER NULL The trace.
-- @param ids INTEGER[] NULL The stack ids.
--
-- @column stack_id stacks.stack_id.
-- @column kind kernel or user.
-- @column frames Its frames.
-- @column callsite Its first frame outside the mm core.
SELECT stack_id, kind, frames, callsite FROM stacks WHERE trace_id = $trace_id AND list_contains($ids::INTEGER[], stack_id)
