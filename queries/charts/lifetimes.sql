-- Pin and long-hold durations in quarter-decade bins from 1 us to 1000 s (shorter ones in the first, longer in the last), per class (pin, FOLL_LONGTERM pin, long hold).
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column class 'FOLL_LONGTERM pin', 'pin' or 'long hold'.
-- @column bin floor(log10(duration in ns) * 4), clamped to 12 (1 us) .. 47 (10^11.75 ns .. 1000 s).
-- @column n Intervals in the bin.
WITH d AS (
  SELECT duration_ns, CASE WHEN longterm THEN 'FOLL_LONGTERM pin' ELSE 'pin' END AS class FROM pins WHERE trace_id = $trace_id
  UNION ALL SELECT duration_ns, 'long hold' FROM holds WHERE trace_id = $trace_id)
SELECT class, least(greatest(floor(log10(greatest(duration_ns, 1)) * 4)::INTEGER, 12), 47) AS bin, count(*)::BIGINT AS n
FROM d GROUP BY ALL ORDER BY bin, class
