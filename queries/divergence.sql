-- Where the refcount model disagreed with the kernel's printed count=, and the lost or untraced windows that explain it.
--
-- What: one row per `divergences` row (a page_ref event whose count= differs from the model's prediction; the
-- model then resyncs to the kernel), one row per `lost_events` marker (events lost before that point on
-- that CPU) and one row per `gaps` row (an untraced window replay inferred from evidence: a silence, a page
-- whose count= shows it alive after its free, a second free, a count jump), in trace order. Divergences
-- with explanation 'unknown' are the ones worth reading: a refcount change the trace did not show (an
-- untraced path) or a model bug; the page's findings since are uncertain.
--
-- Why: every finding rests on the model's refcounts; this is how much to trust them, and where not to.
--
-- @title Model divergences
-- @meaning page_ref events whose printed count= differs from the replayed model.
-- @finding 7
-- @verdict divergences warning model divergences
-- @context what=lost
-- @severity warning
-- @columns html what,ts_ns,cpu,comm,pid,pfn,event,expected,printed,delta,explanation,lost,line_no,evidence
-- @columns md what,ts_ns,pfn,event,expected,printed,explanation,lost
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param what VARCHAR NULL 'divergence', 'lost' or 'gap' to list only one kind of row; NULL = all.
-- @param explanation VARCHAR NULL Only divergences with this explanation ('lost', 'gap', 'concurrent', 'unknown').
--
-- @column trace_id `traces.trace_id`.
-- @column what 'divergence', 'lost' (a marker of the tracer) or 'gap' (an untraced window replay inferred).
-- @column seq `events.seq` (lost, gap: the first event after the window, or the event that shows it).
-- @column ts_ns When.
-- @column cpu CPU of the event (lost: the CPU whose buffer lost events; gap: the CPU the evidence names; NULL = unknown / all).
-- @column pid Task of the event.
-- @column comm Its name (untrusted).
-- @column pfn Page (divergences; gaps inferred from one page's evidence).
-- @column event page_ref event (divergences).
-- @column expected Model prediction of count=.
-- @column printed count= printed by the kernel.
-- @column delta printed - expected.
-- @column in_lost_window The pfn crossed a lost-event window since its last event.
-- @column explanation Divergences: 'lost', 'gap', 'concurrent', 'unknown'. Lost rows: the marker kind ('lost', 'dropped', 'perf-lost', 'buffer-started'). Gap rows: `gaps.kind` ('silence', 'overwritten', 'alive-on-free', 'double-free', 'count-jump').
-- @column lost Events lost at that marker (NULL when the marker does not say).
-- @column line_no Input line of the event or marker.
-- @column evidence Gap rows: what shows the window (`gaps.evidence`).
-- @column certain A divergence no lost or untraced window explains (lost and gap rows: true, they are the windows).
WITH d AS (
  SELECT d.trace_id, 'divergence' AS what, d.seq, d.ts_ns, e.cpu, e.pid, e.comm, d.pfn, d.event, d.expected,
         d.printed, d.printed - d.expected AS delta, d.in_lost_window, d.explanation, NULL::BIGINT AS lost,
         e.line_no, NULL::VARCHAR AS evidence
  FROM divergences d
  LEFT JOIN events e ON e.trace_id = d.trace_id AND e.seq = d.seq
  WHERE ($trace_id IS NULL OR d.trace_id = $trace_id)
    AND ($what IS NULL OR $what = 'divergence')
    AND ($explanation IS NULL OR d.explanation = $explanation)
),
l AS (
  SELECT l.trace_id, 'lost' AS what, l.seq, e.ts_ns, l.cpu, NULL::INTEGER AS pid, NULL::VARCHAR AS comm,
         NULL::BIGINT AS pfn, NULL::VARCHAR AS event, NULL::INTEGER AS expected, NULL::INTEGER AS printed,
         NULL::INTEGER AS delta, NULL::BOOLEAN AS in_lost_window, l.kind AS explanation, l.lost, l.line_no,
         NULL::VARCHAR AS evidence
  FROM lost_events l
  LEFT JOIN events e ON e.trace_id = l.trace_id AND e.seq = l.seq
  WHERE ($trace_id IS NULL OR l.trace_id = $trace_id)
    AND ($what IS NULL OR $what = 'lost')
    AND $explanation IS NULL
),
g AS (
  SELECT g.trace_id, 'gap' AS what, g.seq, coalesce(g.ts_ns, e.ts_ns) AS ts_ns, g.cpu, e.pid, e.comm, g.pfn,
         NULL::VARCHAR AS event, NULL::INTEGER AS expected, NULL::INTEGER AS printed, NULL::INTEGER AS delta,
         NULL::BOOLEAN AS in_lost_window, g.kind AS explanation, NULL::BIGINT AS lost, e.line_no, g.evidence
  FROM gaps g
  LEFT JOIN events e ON e.trace_id = g.trace_id AND e.seq = g.seq
  WHERE ($trace_id IS NULL OR g.trace_id = $trace_id)
    AND ($what IS NULL OR $what = 'gap')
    AND $explanation IS NULL
)
SELECT *, what <> 'divergence' OR NOT (coalesce(in_lost_window, false) OR explanation IN ('lost', 'gap')) AS certain
FROM (SELECT * FROM d UNION ALL SELECT * FROM l UNION ALL SELECT * FROM g)
ORDER BY trace_id, seq, what DESC;
