-- Running reference balance of one dev_pagemap: lifecycle events one by one, gets and puts bucketed in time when
-- there are more than $per.
--
-- @param trace_id INTEGER NULL The trace.
-- @param pgmap VARCHAR NULL The dev_pagemap (decimal text of the UBIGINT; NULL = the inferred one).
-- @param per INTEGER NULL Buckets at most.
--
-- @column k Bucket (negative), or the event's seq.
-- @column ts Time of its last event (ns).
-- @column balance Balance after it.
-- @column what get, put, a lifecycle event, or "N gets/puts".
WITH e AS (SELECT seq, ts_ns, balance, what FROM pgmap_refs WHERE trace_id = $trace_id AND pgmap IS NOT DISTINCT FROM $pgmap::UBIGINT),
     w AS (SELECT min(ts_ns) AS t0, greatest(max(ts_ns) - min(ts_ns), 1) AS span, count(*) AS n FROM e)
SELECT CASE WHEN w.n <= $per OR e.what NOT IN ('get', 'put') THEN e.seq
            ELSE -1 - least(floor((e.ts_ns - w.t0) * $per::DOUBLE / w.span), $per - 1)::BIGINT END AS k,
       max(e.ts_ns) AS ts, arg_max(e.balance, e.seq) AS balance,
       CASE WHEN count(*) = 1 THEN any_value(e.what) ELSE count(*)::VARCHAR || ' gets/puts' END AS what
FROM e, w GROUP BY k ORDER BY ts, max(e.seq)
