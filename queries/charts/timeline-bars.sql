-- Bars of the CMA chart: pins and long holds on CMA / ZONE_MOVABLE pages, overlapping intervals of one holder and
-- class merged, the longest first.
--
-- @param trace_id INTEGER NULL The trace.
-- @param lanes VARCHAR[] NULL The lanes drawn (timeline-lanes.sql).
-- @param max_bars INTEGER NULL Bars at most.
--
-- @column lane The holder task, "comm/pid".
-- @column class 'FOLL_LONGTERM pin', 'pin' or 'long hold'.
-- @column s Start of the merged interval (ns).
-- @column e Its end (ns; the end of the trace for a reference never released).
-- @column n Intervals merged.
-- @column refs References they held.
-- @column open Whether one was still held at the end.
-- @column pfns Lowest and highest pfn of the merged intervals, as hex text.
WITH iv AS (
  SELECT pfn, CASE WHEN longterm THEN 'FOLL_LONGTERM pin' ELSE 'pin' END AS class, holder_pid, holder_comm,
         start_ts_ns AS s, coalesce(end_ts_ns, start_ts_ns + duration_ns) AS e, end_ts_ns IS NULL AS open, refs
  FROM pins WHERE trace_id = $trace_id AND (in_cma OR coalesce(movable_zone, false))
  UNION ALL
  SELECT pfn, 'long hold', holder_pid, holder_comm, start_ts_ns, coalesce(end_ts_ns, start_ts_ns + duration_ns),
         end_ts_ns IS NULL, refs
  FROM holds WHERE trace_id = $trace_id AND in_cma),
     lab AS (SELECT coalesce(holder_comm, '?') || '/' || coalesce(holder_pid::VARCHAR, '?') AS lane, * FROM iv),
     kept AS (SELECT * FROM lab WHERE list_contains($lanes::VARCHAR[], lane)),
     o AS (SELECT *, max(e) OVER (PARTITION BY lane, class ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_end FROM kept),
     g AS (SELECT *, sum(CASE WHEN prev_end IS NULL OR s > prev_end THEN 1 ELSE 0 END)
                       OVER (PARTITION BY lane, class ORDER BY s, e ROWS UNBOUNDED PRECEDING) AS island FROM o)
SELECT lane, class, min(s) AS s, max(e) AS e, count(*) AS n, sum(refs) AS refs, bool_or(open) AS open,
       printf('0x%x', min(pfn)) || CASE WHEN max(pfn) > min(pfn) THEN '..' || printf('0x%x', max(pfn)) ELSE '' END AS pfns
FROM g GROUP BY lane, class, island ORDER BY max(e) - min(s) DESC LIMIT $max_bars
