-- Where the refcount model disagreed with the kernel's printed count=, and the lost-event windows that explain most of it.
--
-- What: one row per `divergences` row (a page_ref event whose count= differs from the model's prediction; the
-- model then resyncs to the kernel) and one row per `lost_events` marker (events lost before that point on
-- that CPU), in trace order. Divergences outside any lost window with explanation 'unknown' are the ones worth
-- reading: a refcount change the trace did not show (an untraced path) or a model bug.
--
-- Why: every finding rests on the model's refcounts; this is how much to trust them, and where not to.
--
-- @title Model divergences
-- @meaning page_ref events whose printed count= differs from the replayed model.
-- @finding 7
-- @verdict divergences warning model divergences
-- @context what=lost
-- @severity warning
-- @columns html what,ts_ns,cpu,comm,pid,pfn,event,expected,printed,delta,explanation,lost,line_no
-- @columns md what,ts_ns,pfn,event,expected,printed,explanation,lost
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param what VARCHAR NULL 'divergence' or 'lost' to list only one kind of row; NULL = both.
-- @param explanation VARCHAR NULL Only divergences with this explanation ('lost-window', 'concurrent', 'unknown').
--
-- @column trace_id `traces.trace_id`.
-- @column what 'divergence' or 'lost'.
-- @column seq `events.seq` (lost: the first event after the marker).
-- @column ts_ns When.
-- @column cpu CPU of the event (lost: the CPU whose buffer lost events; NULL = unknown / all).
-- @column pid Task of the event.
-- @column comm Its name (untrusted).
-- @column pfn Page (divergences).
-- @column event page_ref event (divergences).
-- @column expected Model prediction of count=.
-- @column printed count= printed by the kernel.
-- @column delta printed - expected.
-- @column in_lost_window The pfn crossed a lost-event window since its last event.
-- @column explanation Divergences: 'lost-window', 'concurrent', 'unknown'. Lost rows: the marker kind ('lost', 'dropped', 'perf-lost', 'buffer-started').
-- @column lost Events lost at that marker (NULL when the marker does not say).
-- @column line_no Input line of the event or marker.
WITH d AS (
  SELECT d.trace_id, 'divergence' AS what, d.seq, d.ts_ns, e.cpu, e.pid, e.comm, d.pfn, d.event, d.expected,
         d.printed, d.printed - d.expected AS delta, d.in_lost_window, d.explanation, NULL::BIGINT AS lost,
         e.line_no
  FROM divergences d
  LEFT JOIN events e ON e.trace_id = d.trace_id AND e.seq = d.seq
  WHERE ($trace_id IS NULL OR d.trace_id = $trace_id)
    AND ($what IS NULL OR $what = 'divergence')
    AND ($explanation IS NULL OR d.explanation = $explanation)
),
l AS (
  SELECT l.trace_id, 'lost' AS what, l.seq, e.ts_ns, l.cpu, NULL::INTEGER AS pid, NULL::VARCHAR AS comm,
         NULL::BIGINT AS pfn, NULL::VARCHAR AS event, NULL::INTEGER AS expected, NULL::INTEGER AS printed,
         NULL::INTEGER AS delta, NULL::BOOLEAN AS in_lost_window, l.kind AS explanation, l.lost, l.line_no
  FROM lost_events l
  LEFT JOIN events e ON e.trace_id = l.trace_id AND e.seq = l.seq
  WHERE ($trace_id IS NULL OR l.trace_id = $trace_id)
    AND ($what IS NULL OR $what = 'lost')
    AND $explanation IS NULL
)
SELECT * FROM (SELECT * FROM d UNION ALL SELECT * FROM l)
ORDER BY trace_id, seq, what DESC;
