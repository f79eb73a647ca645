-- Failed CMA ranges of one trace with the pfns that blocked each: an instant each in the Perfetto export.
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column attempt_id The cma_alloc call.
-- @column range_seq The event of the failed range.
-- @column ts Its time (ns).
-- @column range_start First pfn of the range.
-- @column range_end Its end pfn.
-- @column pfns The blocking pfns, ascending.
-- @column cma_name CMA area.
SELECT b.attempt_id, b.range_seq, any_value(b.range_ts_ns) AS ts, any_value(b.range_start) AS range_start,
       any_value(b.range_end) AS range_end, list(DISTINCT b.pfn ORDER BY b.pfn) AS pfns, any_value(a.cma_name) AS cma_name
FROM cma_blockers b JOIN cma_attempts a USING (trace_id, attempt_id)
WHERE b.trace_id = $trace_id GROUP BY b.attempt_id, b.range_seq ORDER BY b.range_seq LIMIT 5000
