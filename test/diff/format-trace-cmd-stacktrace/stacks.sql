-- Stacks as deduplicated, with the call site refscope picks.
SELECT stack_id, kind, depth, frames, callsite, uses FROM stacks ORDER BY stack_id
