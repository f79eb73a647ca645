-- How many distinct pfns carry a pin or a long hold: the timeline has one lane per pfn when they are few.
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column n Distinct pfns.
WITH iv AS (
  SELECT pfn, CASE WHEN longterm THEN 'FOLL_LONGTERM pin' ELSE 'pin' END AS class, holder_pid, holder_comm,
         start_ts_ns AS s, coalesce(end_ts_ns, start_ts_ns + duration_ns) AS e, end_ts_ns IS NULL AS open, refs
  FROM pins WHERE trace_id = $trace_id
  UNION ALL
  SELECT pfn, 'long hold', holder_pid, holder_comm, start_ts_ns, coalesce(end_ts_ns, start_ts_ns + duration_ns),
         end_ts_ns IS NULL, refs
  FROM holds WHERE trace_id = $trace_id)
SELECT count(DISTINCT pfn) AS n FROM iv
