-- Bars of the pin timeline: overlapping intervals of one lane and class merged, the longest first.
--
-- @param trace_id INTEGER NULL The trace.
-- @param by_pfn BOOLEAN NULL true: lanes are pfns; false: holder tasks.
-- @param lanes VARCHAR[] NULL The lanes drawn (timeline-lanes.sql).
-- @param max_bars INTEGER NULL Bars at most.
--
-- @column lane The lane.
-- @column class 'FOLL_LONGTERM pin', 'pin' or 'long hold'.
-- @column s Start of the merged interval (ns).
-- @column e Its end (ns; the end of the trace for a reference never released).
-- @column n Intervals merged.
-- @column refs References they held.
-- @column open Whether one was still held at the end.
-- @column holders Holder tasks ("comm pid", comma-separated).
WITH iv AS (
  SELECT pfn, CASE WHEN longterm THEN 'FOLL_LONGTERM pin' ELSE 'pin' END AS class, holder_pid, holder_comm,
         start_ts_ns AS s, coalesce(end_ts_ns, start_ts_ns + duration_ns) AS e, end_ts_ns IS NULL AS open, refs
  FROM pins WHERE trace_id = $trace_id
  UNION ALL
  SELECT pfn, 'long hold', holder_pid, holder_comm, start_ts_ns, coalesce(end_ts_ns, start_ts_ns + duration_ns),
         end_ts_ns IS NULL, refs
  FROM holds WHERE trace_id = $trace_id),
     lab AS (SELECT CASE WHEN $by_pfn THEN printf('0x%x', pfn) ELSE coalesce(holder_comm, '?') || ' ' || coalesce(holder_pid::VARCHAR, '?') END AS lane, coalesce(holder_comm, '?') || ' ' || coalesce(holder_pid::VARCHAR, '?') AS holder, * FROM iv),
     kept AS (SELECT * FROM lab WHERE list_contains($lanes::VARCHAR[], lane)),
     o AS (SELECT *, max(e) OVER (PARTITION BY lane, class ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end FROM kept),
     g AS (SELECT *, sum(CASE WHEN prev_end IS NULL OR s > prev_end THEN 1 ELSE 0 END)
                       OVER (PARTITION BY lane, class ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island FROM o)
SELECT lane, class, min(s) AS s, max(e) AS e, count(*) AS n, sum(refs) AS refs, bool_or(open) AS open,
       string_agg(DISTINCT holder, ', ') AS holders
FROM g GROUP BY lane, class, island ORDER BY max(e) - min(s) DESC LIMIT $max_bars
