-- Allocation events of pages of a leaks row that are never freed.
--
-- @param trace_id INTEGER NULL The trace.
-- @param pfns BIGINT[] NULL The row's pfns.
--
-- @column alloc_seq The allocation.
SELECT alloc_seq FROM pages WHERE trace_id = $trace_id AND free_seq IS NULL AND alloc_seq IS NOT NULL
  AND list_contains($pfns::BIGINT[], pfn) ORDER BY alloc_seq LIMIT 3
