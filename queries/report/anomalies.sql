-- Everything the replay recorded as impossible or suspicious, each with the event that shows it.
--
-- The `anomalies` table of one trace, most severe first, with the stack of each: the report's last finding
-- section (the queries list some kinds in detail; this lists every kind).
--
-- @title Replay anomalies (all kinds)
-- @finding
-- @columns html kind,severity,certain,pfn,ts_ns,comm,pid,pgmap,callsite,detail
-- @columns md kind,severity,pfn,ts_ns,comm,detail
-- @refcounts 3
--
-- @param trace_id INTEGER NULL The trace.
-- @param max_rows INTEGER NULL Rows at most.
--
-- @column anomaly_id The columns of `anomalies` of the same names.
-- @column pgmap The dev_pagemap in hex.
-- @column callsite Call site of its stack.
-- @column stack Frames of its stack.
SELECT a.anomaly_id, a.kind, a.severity, a.certain, a.pfn, a.seq, a.ts_ns, a.pid, a.comm, a.pin_id,
       CASE WHEN a.pgmap IS NOT NULL THEN printf('0x%x', a.pgmap) END AS pgmap, a.detail, s.callsite, a.stack_id,
       s.frames AS stack
FROM anomalies a LEFT JOIN stacks s ON s.trace_id = a.trace_id AND s.stack_id = a.stack_id
WHERE a.trace_id = $trace_id
ORDER BY CASE a.severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, NOT a.certain, a.seq
LIMIT $max_rows
