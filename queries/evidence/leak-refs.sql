-- Gets and pins never put back on pages of a leaks row.
--
-- @param trace_id INTEGER NULL The trace.
-- @param pfns BIGINT[] NULL The row's pfns.
--
-- @column start_seq The get or pin.
SELECT start_seq FROM (SELECT pfn, start_seq FROM holds WHERE trace_id = $trace_id AND end_seq IS NULL
                       UNION ALL SELECT folio_pfn, start_seq FROM pins WHERE trace_id = $trace_id AND end_seq IS NULL)
WHERE list_contains($pfns::BIGINT[], pfn) ORDER BY start_seq LIMIT 6
