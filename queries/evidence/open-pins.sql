-- Pin events still open at the end of the trace, of one holder and pinning stack, on some pfns (a pin-leaks row).
--
-- @param trace_id INTEGER NULL The trace.
-- @param holder_pid INTEGER NULL The holder task (NULL matches NULL).
-- @param stack_id INTEGER NULL The pinning stack (NULL matches NULL).
-- @param pfns BIGINT[] NULL The row's pfns.
--
-- @column start_seq The pin.
SELECT start_seq FROM pins WHERE trace_id = $trace_id AND end_seq IS NULL AND holder_pid IS NOT DISTINCT FROM $holder_pid
  AND stack_id IS NOT DISTINCT FROM $stack_id AND list_contains($pfns::BIGINT[], pfn) ORDER BY start_seq LIMIT 6
