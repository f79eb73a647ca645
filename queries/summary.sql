-- One row per trace: how many findings of each kind, how well the refcount model agreed with the kernel, events lost (what `refscope check` reads).
--
-- What: counts of the findings the other queries list, with their default parameters: the certain ones (rows
-- with certain = true in each query; `refscope check` counts these) and the uncertain ones apart (`*_uncertain`:
-- the rows each query lists only with include_uncertain). leaks = leaked page lifetimes (leaks.sql); pin_leaks =
-- pins still held at the end after their holder's process exited (pin-leaks.sql); cma_blockers = distinct (cma_alloc call, pfn, holder) blocking a
-- failed or retried CMA allocation, plus failed FOLL_LONGTERM migrations and FOLL_LONGTERM pins held on CMA
-- pages (cma-blockers.sql); pgmap_imbalance =
-- dev_pagemaps with a problem (pgmap-imbalance.sql); use_after_free = anomalies listed by use-after-free.sql.
-- outstanding_* = references still held when the capture ends, per kind (outstanding.sql): information, not
-- findings (a capture window ends while pages are in use); the certain leaks among them are in pin_leaks and
-- pgmap_imbalance.
-- Finding counts are NULL when the trace has not been replayed (`refscope replay`).
--
-- Why: the one-line health of a trace, and the input of CI gates.
--
-- @title Summary
-- @meaning Per-trace totals of the query library.
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param min_duration_ns BIGINT 1000000000 Threshold of long_pins (as long-pins.sql), ns.
-- @param exit_grace_ns BIGINT 100000000 Exit grace of leaks, pin_leaks and pgmap_imbalance (as leaks.sql, pin-leaks.sql, pgmap-imbalance.sql), ns.
--
-- @column trace_id `traces.trace_id`.
-- @column source Input file name.
-- @column format Input format.
-- @column events Events ingested.
-- @column replayed Whether replay results exist for the trace.
-- @column leaks Certain leaked pages.
-- @column leaks_uncertain Leaked pages found only when lost-event windows are included.
-- @column pin_leaks Pins still held at the end whose holder's process (and every task it forked after pinning) exited at least $exit_grace_ns before the end, outside lost-event windows (pin-leaks.sql's certain rows).
-- @column pin_leaks_uncertain Other pins of exited holders still held at the end (a lost-event window, or an exit within $exit_grace_ns of the end).
-- @column cma_failed_allocs cma_alloc calls that failed or needed busy retries.
-- @column cma_blockers Certain blockers of those calls, failed longterm_pin migrations and FOLL_LONGTERM pins held on CMA pages.
-- @column cma_blockers_uncertain Uncertain ones.
-- @column pgmap_imbalance dev_pagemaps with a certain reference problem (pgmap-imbalance.sql's certain rows).
-- @column pgmap_imbalance_uncertain dev_pagemaps whose problems are all uncertain.
-- @column use_after_free Certain freed_while_mapped / freed_while_pinned / ref_after_free / refcount_underflow / device_page_zero_without_put anomalies.
-- @column use_after_free_uncertain The same, uncertain.
-- @column long_pins Pins and holds held longer than $min_duration_ns on a CMA / ZONE_MOVABLE page that no mapping explains (long-pins.sql's `problem` rows): the verdict's warning count.
-- @column long_refs All pins and holds held longer than $min_duration_ns (long-pins.sql's rows): most are information (released pins, references of mapped and page-cache pages).
-- @column anomalies All anomalies replay recorded (any kind, certain or not).
-- @column divergences page_ref events whose count= differed from the model.
-- @column checked page_ref events whose count= could be checked (`replay_runs.checked`).
-- @column agreed Of those, how many the model predicted exactly.
-- @column agreement agreed / checked (NULL when nothing was checked).
-- @column agreement_outside_lost agreed / checked outside lost-event windows.
-- @column lost_events Events the trace says were lost (`traces.lost_events`).
-- @column lost_markers Lost/dropped-event markers.
-- @column outstanding_pins Pins still held at the end of the trace (outstanding.sql, kind 'pin').
-- @column outstanding_holds Plain references (holds) still held at the end (kind 'hold').
-- @column outstanding_pgmap_refs Device pages still holding their pgmap reference at the end (kind 'pgmap').
-- @column outstanding_exited Of all those, references whose holder's process exited.
-- @column outstanding_holders The holders of the most outstanding references (up to 3), as `comm/pid (N)`, `, exited` when the process exited, most first.
WITH t AS (
  SELECT t.*, r.trace_id IS NOT NULL AS replayed, r.checked, r.agreed, r.checked_outside_lost, r.agreed_outside_lost
  FROM traces t LEFT JOIN replay_runs r USING (trace_id)
  WHERE $trace_id IS NULL OR t.trace_id = $trace_id
),
lk AS (
  SELECT trace_id,
         count(DISTINCT (pfn, alloc_seq)) FILTER (WHERE NOT uncertain) AS certain,
         count(DISTINCT (pfn, alloc_seq)) AS any
  FROM (SELECT * REPLACE (uncertain OR coalesce(end_ts_ns - release_exit_ts_ns < $exit_grace_ns, true) AS uncertain)
        FROM _leak_refs WHERE holder_exit_ts_ns IS NOT NULL)
  GROUP BY trace_id
),
oc AS (SELECT *, _leak_certain(leak, lost, release_exit_ts_ns, end_ts_ns, $exit_grace_ns) AS certain FROM _outstanding),
pl AS (
  SELECT trace_id, count(*) FILTER (WHERE certain) AS certain, count(*) FILTER (WHERE NOT certain) AS unc
  FROM oc WHERE kind = 'pin' AND leak GROUP BY trace_id
),
os AS (
  SELECT trace_id, count(*) FILTER (WHERE kind = 'pin') AS pins, count(*) FILTER (WHERE kind = 'hold') AS holds,
         count(*) FILTER (WHERE kind = 'pgmap') AS pgmap_refs, count(*) FILTER (WHERE holder_exited) AS exited
  FROM oc GROUP BY trace_id
),
oh AS (
  SELECT trace_id, string_agg(holder_comm || '/' || holder_pid || ' (' || n || CASE WHEN exited THEN ', exited' ELSE '' END || ')', ', '
                              ORDER BY n DESC, holder_pid) AS holders
  FROM (
    SELECT trace_id, holder_pid, any_value(holder_comm) AS holder_comm, count(*) AS n, bool_or(holder_exited) AS exited,
           row_number() OVER (PARTITION BY trace_id ORDER BY count(*) DESC, holder_pid) AS rk
    FROM oc GROUP BY trace_id, holder_pid
  ) WHERE rk <= 3 GROUP BY trace_id
),
cf AS (SELECT trace_id, count(*) AS n FROM _cma_failed GROUP BY trace_id),
cb AS (
  SELECT trace_id, count(*) FILTER (WHERE certain) AS certain, count(*) FILTER (WHERE NOT certain) AS unc
  FROM (SELECT trace_id, NOT uncertain AS certain FROM _cma_blockers
        UNION ALL SELECT trace_id, certain FROM _longterm_in_cma)
  GROUP BY trace_id
),
lm AS (SELECT trace_id, count(*) AS n FROM _longterm_migrate_failed GROUP BY trace_id),
pg AS (
  SELECT trace_id, count(*) FILTER (WHERE len(problems) > 0 AND certain) AS certain,
         count(*) FILTER (WHERE len(problems) > 0 AND NOT certain) AS unc
  FROM _pgmap_status($exit_grace_ns) GROUP BY trace_id
),
uaf AS (
  SELECT trace_id, count(*) FILTER (WHERE certain) AS certain, count(*) FILTER (WHERE NOT certain) AS unc
  FROM _uaf GROUP BY trace_id
),
lp AS (
  SELECT x.trace_id, count(*) AS n,
         count(*) FILTER (WHERE x.on_cma AND NOT (x.plain AND EXISTS (
           SELECT 1 FROM events e JOIN traces et ON et.trace_id = e.trace_id JOIN _trace_end te ON te.trace_id = e.trace_id
           WHERE e.trace_id = x.trace_id AND e.pfn = x.pfn AND e.seq >= x.start_seq
             AND e.ts_ns <= coalesce(x.end_ts_ns, te.last_ts_ns) AND e.event LIKE 'page_ref%'
             AND (coalesce(e.mapping, 0) <> 0 OR _mapped(et.mapcount_semantics, e.mapcount) > 0)))) AS problems
  FROM (
    SELECT trace_id, pfn, start_seq, end_ts_ns, in_cma OR coalesce(movable_zone, false) AS on_cma, false AS plain
    FROM pins WHERE duration_ns > $min_duration_ns
    UNION ALL
    SELECT trace_id, pfn, start_seq, end_ts_ns, in_cma, NOT (via = 'gup' OR (coalesce(gup_flags, 0) & 4) <> 0)
    FROM holds WHERE duration_ns > $min_duration_ns
  ) x GROUP BY x.trace_id
),
an AS (SELECT trace_id, count(*) AS n FROM anomalies GROUP BY trace_id),
dv AS (SELECT trace_id, count(*) AS n FROM divergences GROUP BY trace_id)
SELECT t.trace_id, t.source, t.format, t.events, t.replayed,
       CASE WHEN t.replayed THEN coalesce(lk.certain, 0) END AS leaks,
       CASE WHEN t.replayed THEN coalesce(lk.any, 0) - coalesce(lk.certain, 0) END AS leaks_uncertain,
       CASE WHEN t.replayed THEN coalesce(pl.certain, 0) END AS pin_leaks,
       CASE WHEN t.replayed THEN coalesce(pl.unc, 0) END AS pin_leaks_uncertain,
       CASE WHEN t.replayed THEN coalesce(cf.n, 0) END AS cma_failed_allocs,
       CASE WHEN t.replayed THEN coalesce(cb.certain, 0) + coalesce(lm.n, 0) END AS cma_blockers,
       CASE WHEN t.replayed THEN coalesce(cb.unc, 0) END AS cma_blockers_uncertain,
       CASE WHEN t.replayed THEN coalesce(pg.certain, 0) END AS pgmap_imbalance,
       CASE WHEN t.replayed THEN coalesce(pg.unc, 0) END AS pgmap_imbalance_uncertain,
       CASE WHEN t.replayed THEN coalesce(uaf.certain, 0) END AS use_after_free,
       CASE WHEN t.replayed THEN coalesce(uaf.unc, 0) END AS use_after_free_uncertain,
       CASE WHEN t.replayed THEN coalesce(lp.problems, 0) END AS long_pins,
       CASE WHEN t.replayed THEN coalesce(lp.n, 0) END AS long_refs,
       CASE WHEN t.replayed THEN coalesce(an.n, 0) END AS anomalies,
       CASE WHEN t.replayed THEN coalesce(dv.n, 0) END AS divergences,
       t.checked, t.agreed,
       CASE WHEN t.checked > 0 THEN round(t.agreed / t.checked, 6) END AS agreement,
       CASE WHEN t.checked_outside_lost > 0 THEN round(t.agreed_outside_lost / t.checked_outside_lost, 6) END
         AS agreement_outside_lost,
       t.lost_events, t.lost_markers,
       CASE WHEN t.replayed THEN coalesce(os.pins, 0) END AS outstanding_pins,
       CASE WHEN t.replayed THEN coalesce(os.holds, 0) END AS outstanding_holds,
       CASE WHEN t.replayed THEN coalesce(os.pgmap_refs, 0) END AS outstanding_pgmap_refs,
       CASE WHEN t.replayed THEN coalesce(os.exited, 0) END AS outstanding_exited,
       oh.holders AS outstanding_holders
FROM t
LEFT JOIN lk USING (trace_id) LEFT JOIN pl USING (trace_id) LEFT JOIN cf USING (trace_id)
LEFT JOIN cb USING (trace_id) LEFT JOIN lm USING (trace_id) LEFT JOIN pg USING (trace_id)
LEFT JOIN uaf USING (trace_id) LEFT JOIN lp USING (trace_id) LEFT JOIN an USING (trace_id)
LEFT JOIN dv USING (trace_id) LEFT JOIN os USING (trace_id) LEFT JOIN oh USING (trace_id)
ORDER BY t.trace_id;
