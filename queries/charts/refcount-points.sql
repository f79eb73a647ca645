-- count= and mapcount= of one page over time from its page_ref events, bucketed in time when there are more than
-- $per_page (the last value of each bucket).
--
-- @param trace_id INTEGER NULL The trace.
-- @param pfn BIGINT NULL The page.
-- @param per_page INTEGER NULL Points at most.
--
-- @column k Bucket (or the event's seq when not bucketed).
-- @column ts Time of its last event (ns).
-- @column count Refcount printed last in the bucket.
-- @column mapcount Mapcount printed last in the bucket.
-- @column event The event, or "N events".
WITH e AS (SELECT seq, ts_ns, count, mapcount, event FROM events
           WHERE trace_id = $trace_id AND pfn = $pfn AND event LIKE 'page_ref%' AND count IS NOT NULL),
     w AS (SELECT min(ts_ns) AS t0, greatest(max(ts_ns) - min(ts_ns), 1) AS span, count(*) AS n FROM e)
SELECT CASE WHEN w.n <= $per_page THEN e.seq ELSE least(floor((e.ts_ns - w.t0) * $per_page::DOUBLE / w.span), $per_page - 1)::BIGINT END AS k,
       max(e.ts_ns) AS ts, arg_max(e.count, e.seq) AS count, arg_max(e.mapcount, e.seq) AS mapcount,
       CASE WHEN count(*) = 1 THEN any_value(e.event) ELSE count(*)::VARCHAR || ' events' END AS event
FROM e, w GROUP BY k ORDER BY k
