-- Private helpers shared by the query library: TEMP macros and views (prefix `_`), created by the runner on
-- each connection before the first query runs. They take no parameters; the public queries filter them.
-- Nothing here writes to the database (TEMP objects live in the connection), so they work on READ-ONLY databases.

-- 0x-prefixed lower-case hex of an integer (NULL stays NULL).
CREATE OR REPLACE TEMP MACRO _hex(x) AS CASE WHEN x IS NULL THEN NULL ELSE printf('0x%x', x) END;

-- Number of page-table mappings a printed mapcount means, per traces.mapcount_semantics:
-- 'page_mapcount' (pre-6.10: 0 = unmapped), 'raw' (_mapcount: -1 = unmapped). Negative results (page-type
-- sentinels such as PAGE_SLAB_MAPCOUNT_VALUE) and NULL count as 0 mappings.
CREATE OR REPLACE TEMP MACRO _mapped(semantics, mc) AS
  greatest(coalesce(CASE WHEN semantics = 'raw' THEN mc + 1 ELSE mc END, 0), 0);

-- Stack frames as one line, innermost first: `a <- b <- c`.
CREATE OR REPLACE TEMP MACRO _frames_line(frames) AS replace(frames, chr(10), ' <- ');

-- Last event of each trace (the end of the capture window).
CREATE OR REPLACE TEMP VIEW _trace_end AS
  SELECT trace_id, max(seq) AS last_seq, max(ts_ns) AS last_ts_ns FROM events GROUP BY trace_id;

-- Migratetype names per trace (decoded with the trace's mt_layout).
CREATE OR REPLACE TEMP VIEW _mt_names AS
  SELECT t.trace_id, m.mt, m.name FROM traces t JOIN migratetypes m ON m.layout = t.mt_layout;

-- Task exits seen (sched_process_exit): the exiting pid is the payload's pid= (the current task otherwise).
CREATE OR REPLACE TEMP VIEW _exits AS
  SELECT trace_id, coalesce(TRY_CAST(json_extract_string(args, '$.pid') AS INTEGER), pid) AS pid, seq, ts_ns
  FROM events WHERE event = 'sched_process_exit';

-- References still outstanding at the end of the trace on pages that look leaked, one row per (page lifetime,
-- unreturned get or pin). The page: allocated inside the window (its allocation seen: references before the
-- capture are never guessed), tracked by page_ref events (kmem-only lifetimes are window edges, never leaks),
-- still alive at the end, with a refcount above what its owners explain: its mappings (mapcount), the page cache
-- or swap cache (a file-backed mapping, i.e. mapping set and not swapbacked, or the swapcache flag: +1) and fs
-- private data (the private flag: +1), judged from the lifetime's last page_ref event. The reference: a hold or
-- pin taken in that lifetime and never returned. `holder_exit_ts_ns` is the first exit of the holder's process
-- after the get (NULL: it did not exit in the trace), `end_ts_ns` the end of the trace; `uncertain` says the page
-- or the reference crosses a lost-event window.
CREATE OR REPLACE TEMP VIEW _leak_refs AS
WITH open_refs AS (
  SELECT trace_id, pfn, 'hold' AS ref_kind, hold_id AS ref_id, refs, start_seq, start_ts_ns, holder_pid, holder_tgid,
         holder_comm, stack_id, uncertain
  FROM holds WHERE end_seq IS NULL
  UNION ALL
  SELECT trace_id, folio_pfn, 'pin', pin_id, refs, start_seq, start_ts_ns, holder_pid, holder_tgid, holder_comm,
         stack_id, uncertain
  FROM pins WHERE end_seq IS NULL
),
cand AS (
  SELECT p.*, _mapped(t.mapcount_semantics, p.mapcount_end) AS mapped_end
  FROM pages p JOIN traces t USING (trace_id)
  WHERE p.free_seq IS NULL
    AND p.end_edge
    AND p.alloc_seq IS NOT NULL
    AND NOT p.start_edge
    AND p.ref_events > 0
    AND (p.holds_end > 0 OR p.pins_end > 0)
    AND p.refcount_end > _mapped(t.mapcount_semantics, p.mapcount_end)
),
last_ref AS (
  SELECT c.trace_id, c.pfn, c.alloc_seq, arg_max(e.page_flags, e.seq) AS flags, arg_max(e.mapping, e.seq) AS mapping
  FROM cand c
  JOIN events e ON e.trace_id = c.trace_id AND e.pfn = c.pfn AND e.seq BETWEEN c.alloc_seq AND c.last_seq
                AND e.system = 'page_ref'
  GROUP BY c.trace_id, c.pfn, c.alloc_seq
),
owned AS (
  SELECT c.*, l.flags AS last_flags,
         c.mapped_end
           + CASE WHEN (coalesce(l.mapping, 0) <> 0 AND NOT regexp_matches(coalesce(l.flags, ''), '(^|\|)swapbacked(\||$)'))
                    OR regexp_matches(coalesce(l.flags, ''), '(^|\|)swapcache(\||$)') THEN 1 ELSE 0 END
           + CASE WHEN regexp_matches(coalesce(l.flags, ''), '(^|\|)private(\||$)') THEN 1 ELSE 0 END AS owned_refs
  FROM cand c LEFT JOIN last_ref l USING (trace_id, pfn, alloc_seq)
)
SELECT p.trace_id, p.pfn, p."order", p.alloc_seq, p.alloc_ts_ns, p.alloc_pid, p.alloc_tgid, p.alloc_comm,
       p.alloc_stack_id, p.refcount_end, p.mapped_end, p.owned_refs, p.last_flags,
       r.ref_kind, r.ref_id, r.refs, r.start_seq AS get_seq, r.start_ts_ns AS get_ts_ns, r.holder_pid, r.holder_tgid,
       r.holder_comm, r.stack_id AS get_stack_id,
       (SELECT min(x.ts_ns) FROM _exits x
        WHERE x.trace_id = r.trace_id AND x.seq > r.start_seq
          AND x.pid = coalesce(r.holder_tgid, r.holder_pid)) AS holder_exit_ts_ns,
       te.last_ts_ns AS end_ts_ns,
       (p.uncertain OR r.uncertain) AS uncertain
FROM owned p
JOIN _trace_end te ON te.trace_id = p.trace_id
JOIN open_refs r
  ON r.trace_id = p.trace_id
 AND r.pfn >= p.pfn AND r.pfn < p.pfn + (1::BIGINT << coalesce(p."order", 0))
 AND r.start_seq >= p.alloc_seq
WHERE p.refcount_end > p.owned_refs;

-- Pins still held when the trace ends, with whether the holder's process exited after pinning.
CREATE OR REPLACE TEMP VIEW _pin_leaks AS
SELECT p.*,
       EXISTS (SELECT 1 FROM _exits x
               WHERE x.trace_id = p.trace_id AND x.seq > p.start_seq
                 AND x.pid = coalesce(p.holder_tgid, p.holder_pid)) AS holder_exited
FROM pins p WHERE p.end_seq IS NULL;

-- cma_alloc calls that failed, or needed busy retries / failed ranges before succeeding.
CREATE OR REPLACE TEMP VIEW _cma_failed AS
SELECT * FROM cma_attempts
WHERE kind = 'alloc' AND (succeeded = false OR busy_retries > 0 OR failed_ranges > 0);

-- Blockers of those calls, one row per (attempt, pfn, holder) over all its failed ranges.
CREATE OR REPLACE TEMP VIEW _cma_blockers AS
SELECT b.trace_id, b.attempt_id, b.pfn, b.holder_kind, b.holder_id,
       count(DISTINCT (b.range_start, b.range_end)) AS ranges_blocked, min(b.range_start) AS range_start, max(b.range_end) AS range_end,
       min(b.range_ts_ns) AS first_blocked_ts_ns, bool_or(b.is_fin_pfn) AS is_fin_pfn, max(b.refs) AS refs,
       any_value(b.holder_pid) AS holder_pid, any_value(b.holder_tgid) AS holder_tgid,
       any_value(b.holder_comm) AS holder_comm, any_value(b.stack_id) AS stack_id, min(b.since_ts_ns) AS since_ts_ns,
       bool_or(b.longterm) AS longterm, max(b.refcount) AS refcount, bool_or(b.uncertain) AS uncertain,
       -- the least sure attribution over the ranges (holds.ts: exact < inferred < ambiguous)
       ['exact', 'inferred', 'ambiguous'][max(CASE b.attribution WHEN 'ambiguous' THEN 3 WHEN 'inferred' THEN 2 WHEN 'exact' THEN 1 END)] AS attribution,
       max(b.candidates) AS candidates
FROM cma_blockers b
JOIN _cma_failed a USING (trace_id, attempt_id)
GROUP BY b.trace_id, b.attempt_id, b.pfn, b.holder_kind, b.holder_id;

-- FOLL_LONGTERM pins whose pages could not be migrated out of CMA / ZONE_MOVABLE (the pin then fails).
CREATE OR REPLACE TEMP VIEW _longterm_migrate_failed AS
SELECT trace_id, seq, ts_ns, pid, tgid, comm, stack_id, nr_succeeded, nr_failed, mode
FROM events
WHERE event = 'mm_migrate_pages' AND name = 'longterm_pin' AND nr_failed > 0;

-- FOLL_LONGTERM pins replay found sitting on CMA pages past the migration grace (anomaly longterm_pin_in_cma):
-- pin_user_pages(FOLL_LONGTERM) must migrate such pages out first, so the pin blocks cma_alloc on that range
-- for as long as it is held. One row per pin, with the anomaly's certainty.
CREATE OR REPLACE TEMP VIEW _longterm_in_cma AS
SELECT p.*, a.anomaly_id, a.certain, a.severity
FROM anomalies a
JOIN pins p ON p.trace_id = a.trace_id AND p.pin_id = a.pin_id
WHERE a.kind = 'longterm_pin_in_cma';

-- dev_pagemaps with their problems (empty list = balanced). A trace that lost events makes the counts uncertain.
CREATE OR REPLACE TEMP VIEW _pgmap_status AS
SELECT g.*,
       list_filter([
         CASE WHEN g.outstanding_at_unmap > 0 THEN 'refs_at_unmap' END,
         CASE WHEN g.unmap_ts_ns IS NOT NULL AND g.unmap_ret_ts_ns IS NULL THEN 'unmap_never_returned' END,
         CASE WHEN g.puts_without_get > 0 THEN 'puts_without_get' END,
         CASE WHEN g.freed_without_put > 0 THEN 'freed_without_put' END,
         CASE WHEN g.outstanding_end < 0 THEN 'negative_balance' END
       ], x -> x IS NOT NULL) AS problems,
       (t.lost_events > 0) AS uncertain
FROM pgmaps g JOIN traces t USING (trace_id);

-- Anomalies that mean a page was used after (or freed while still) referenced.
CREATE OR REPLACE TEMP VIEW _uaf AS
SELECT * FROM anomalies
WHERE kind IN ('freed_while_mapped', 'freed_while_pinned', 'ref_after_free', 'refcount_underflow',
               'device_page_zero_without_put');
