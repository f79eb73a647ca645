-- Pin and long-hold durations in quarter-decade bins, per class (pin, FOLL_LONGTERM pin, long hold).
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column class 'FOLL_LONGTERM pin', 'pin' or 'long hold'.
-- @column bin floor(log10(duration in ns) * 4).
-- @column n Intervals in the bin.
WITH d AS (
  SELECT duration_ns, CASE WHEN longterm THEN 'FOLL_LONGTERM pin' ELSE 'pin' END AS class FROM pins WHERE trace_id = $trace_id
  UNION ALL SELECT duration_ns, 'long hold' FROM holds WHERE trace_id = $trace_id)
SELECT class, floor(log10(greatest(duration_ns, 1)) * 4)::INTEGER AS bin, count(*)::BIGINT AS n
FROM d GROUP BY ALL ORDER BY bin, class
