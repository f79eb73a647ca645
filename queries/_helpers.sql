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

-- Forks seen (sched_process_fork, fired in the parent): parent is the forking task's thread group (its pid when
-- the trace has no TGID column), child the payload's child_pid=, child_exit_* its first exit after the fork (NULL:
-- alive at the end).
CREATE OR REPLACE TEMP VIEW _forks AS
  SELECT f.trace_id, f.parent, f.child, f.seq, f.ts_ns, min(x.seq) AS child_exit_seq,
         arg_min(x.ts_ns, x.seq) AS child_exit_ts_ns
  FROM (SELECT trace_id, coalesce(tgid, pid) AS parent, TRY_CAST(json_extract_string(args, '$.child_pid') AS INTEGER) AS child,
               seq, ts_ns
        FROM events WHERE event = 'sched_process_fork') f
  LEFT JOIN _exits x ON x.trace_id = f.trace_id AND x.pid = f.child AND x.seq > f.seq
  WHERE f.child IS NOT NULL
  GROUP BY f.trace_id, f.parent, f.child, f.seq, f.ts_ns;

-- Every task forked from `root` by its fork at root_seq, and recursively what those forked before they exited:
-- one row per (root fork, descendant), with the descendant's exit (NULL: alive at the end). A reference taken at
-- since_seq by holder `key` (tgid, else pid) that exited at exit_seq waits for the rows root = key, root_seq in
-- (since_seq, exit_seq] (docs/model.md §15): a child inherits the files and mappings that own pins and pgmap
-- references, so they are released for certain only when all of those exited too (_release_exit).
CREATE OR REPLACE TEMP VIEW _fork_tree AS
WITH RECURSIVE d(trace_id, root, root_seq, child, seq, child_exit_seq, child_exit_ts_ns) AS (
  SELECT trace_id, parent, seq, child, seq, child_exit_seq, child_exit_ts_ns FROM _forks
  UNION ALL
  SELECT d.trace_id, d.root, d.root_seq, f.child, f.seq, f.child_exit_seq, f.child_exit_ts_ns
  FROM d JOIN _forks f ON f.trace_id = d.trace_id AND f.parent = d.child AND f.seq > d.seq
                      AND f.seq <= coalesce(d.child_exit_seq, f.seq)
)
SELECT trace_id, root, root_seq, child, seq, child_exit_seq, child_exit_ts_ns FROM d;

-- The exit a reference waits for: the holder's exit (exit_ts, NULL: it did not exit), else the last exit among it
-- and the tasks it forked after the get (child_exit_ts: their last exit; child_alive: one of them did not exit
-- before the end, NULL: none forked); NULL when it did not exit or a child may still hold the reference.
CREATE OR REPLACE TEMP MACRO _release_exit(exit_ts, child_alive, child_exit_ts) AS
  CASE WHEN exit_ts IS NULL OR coalesce(child_alive, false) THEN NULL
       ELSE greatest(exit_ts, coalesce(child_exit_ts, exit_ts)) END;

-- References still outstanding at the end of the trace on pages that look leaked, one row per (page lifetime,
-- unreturned get or pin). The page: allocated inside the window (its allocation seen: references before the
-- capture are never guessed), tracked by page_ref events (kmem-only lifetimes are window edges, never leaks),
-- still alive at the end, with a refcount above what its owners explain: its mappings (mapcount), the page cache
-- or swap cache (a file-backed mapping, i.e. mapping set and not swapbacked, or the swapcache flag: +1) and fs
-- private data (the private flag: +1), judged from the lifetime's last page_ref event. The reference: a hold or
-- pin taken in that lifetime and never returned. `holder_exit_ts_ns` is the first exit of the holder's process
-- after the get (NULL: it did not exit in the trace), `release_exit_ts_ns` the last exit among it and the tasks
-- it forked after the get (NULL: one of them is alive at the end: _release_exit), `end_ts_ns` the end of the trace; `uncertain` says the page
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
open_x AS (
  SELECT o.*,
         (SELECT min(x.seq) FROM _exits x
          WHERE x.trace_id = o.trace_id AND x.seq > o.start_seq AND x.pid = coalesce(o.holder_tgid, o.holder_pid)) AS holder_exit_seq
  FROM open_refs o
),
open_fk AS (
  SELECT o.trace_id, o.ref_kind, o.ref_id, bool_or(t.child_exit_seq IS NULL) AS child_alive,
         max(t.child_exit_ts_ns) AS child_exit_ts
  FROM open_x o JOIN _fork_tree t ON t.trace_id = o.trace_id AND t.root = coalesce(o.holder_tgid, o.holder_pid)
                                 AND t.root_seq > o.start_seq AND t.root_seq <= o.holder_exit_seq
  GROUP BY o.trace_id, o.ref_kind, o.ref_id
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
       ex.ts_ns AS holder_exit_ts_ns,
       _release_exit(ex.ts_ns, fk.child_alive, fk.child_exit_ts) AS release_exit_ts_ns,
       te.last_ts_ns AS end_ts_ns,
       (p.uncertain OR r.uncertain) AS uncertain
FROM owned p
JOIN _trace_end te ON te.trace_id = p.trace_id
JOIN open_x r
  ON r.trace_id = p.trace_id
 AND r.pfn >= p.pfn AND r.pfn < p.pfn + (1::BIGINT << coalesce(p."order", 0))
 AND r.start_seq >= p.alloc_seq
LEFT JOIN _exits ex ON ex.trace_id = r.trace_id AND ex.seq = r.holder_exit_seq
LEFT JOIN open_fk fk ON fk.trace_id = r.trace_id AND fk.ref_kind = r.ref_kind AND fk.ref_id = r.ref_id
WHERE p.refcount_end > p.owned_refs;

-- References outstanding at the end of the trace (docs/model.md §15), one rule for the three kinds: 'pin' (open
-- `pins` rows), 'hold' (open `holds` rows: plain references) and 'pgmap' (a device page whose last pgmap event
-- is its get: zone_device_page_init without free_zone_device_page; get_dev_pagemap gets name no page and are
-- left out). holder_* is who took it, since_* when; holder_exit_* the first exit (sched_process_exit) of the
-- holder's process after it (its tgid, or its pid when the trace has no TGID column; NULL: alive at the end);
-- release_exit_ts_ns the last exit among it and the tasks it forked after the get (_release_exit; NULL: one of
-- them is alive at the end, and may still hold the reference).
-- `lost`: a lost-event window touches it (pins, holds: the interval's `uncertain`; pgmap: a lost-event marker
-- after the get). `leak`: a pin or pgmap reference whose holder exited: only the kernel can still drop it (the
-- certain form when no lost window touches it and the exit is older than the exit grace, which the queries
-- apply: see outstanding.sql). A hold's exited holder is no leak by itself (its page may belong to the page
-- cache, a pipe, a mapping): leaks.sql judges those pages.
CREATE OR REPLACE TEMP VIEW _outstanding AS
WITH r AS (
  SELECT trace_id, 'pin' AS kind, pin_id AS ref_id, pfn, refs, start_seq AS since_seq, start_ts_ns AS since_ts_ns,
         holder_pid, holder_tgid, holder_comm, stack_id, NULL::UBIGINT AS pgmap, uncertain AS lost
  FROM pins WHERE end_seq IS NULL
  UNION ALL
  SELECT trace_id, 'hold', hold_id, pfn, refs, start_seq, start_ts_ns, holder_pid, holder_tgid, holder_comm, stack_id,
         NULL::UBIGINT, uncertain
  FROM holds WHERE end_seq IS NULL
  UNION ALL
  SELECT g.trace_id, 'pgmap', NULL, g.pfn, 1, g.seq, g.ts_ns, g.pid, e.tgid, g.comm, g.stack_id, g.pgmap,
         EXISTS (SELECT 1 FROM lost_events l WHERE l.trace_id = g.trace_id AND l.seq > g.seq)
  FROM (SELECT *, row_number() OVER (PARTITION BY trace_id, pgmap, pfn ORDER BY seq DESC) AS rn
        FROM pgmap_refs WHERE pfn IS NOT NULL AND what IN ('get', 'put')) g
  LEFT JOIN events e ON e.trace_id = g.trace_id AND e.seq = g.seq
  WHERE g.rn = 1 AND g.what = 'get'
),
x AS (
  SELECT r.*, row_number() OVER () AS _rid,
         (SELECT min(x.seq) FROM _exits x
          WHERE x.trace_id = r.trace_id AND x.seq > r.since_seq AND x.pid = coalesce(r.holder_tgid, r.holder_pid)) AS holder_exit_seq
  FROM r
),
fk AS (
  SELECT x._rid, bool_or(t.child_exit_seq IS NULL) AS child_alive, max(t.child_exit_ts_ns) AS child_exit_ts
  FROM x JOIN _fork_tree t ON t.trace_id = x.trace_id AND t.root = coalesce(x.holder_tgid, x.holder_pid)
                          AND t.root_seq > x.since_seq AND t.root_seq <= x.holder_exit_seq
  GROUP BY x._rid
)
SELECT x.* EXCLUDE (_rid), ex.ts_ns AS holder_exit_ts_ns, te.last_ts_ns AS end_ts_ns, x.holder_exit_seq IS NOT NULL AS holder_exited,
       x.kind <> 'hold' AND x.holder_exit_seq IS NOT NULL AS leak,
       _release_exit(ex.ts_ns, fk.child_alive, fk.child_exit_ts) AS release_exit_ts_ns
FROM x
JOIN _trace_end te ON te.trace_id = x.trace_id
LEFT JOIN _exits ex ON ex.trace_id = x.trace_id AND ex.seq = x.holder_exit_seq
LEFT JOIN fk ON fk._rid = x._rid;

-- A leak of _outstanding is certain when no lost window touches it and the holder, with every task it forked after
-- the get, exited at least grace_ns before the end (callers pass release_exit_ts_ns: sched_process_exit fires before
-- exit_files(), ring and pipe teardown may still drop references; a live child may still hold them).
CREATE OR REPLACE TEMP MACRO _leak_certain(leak, lost, exit_ts, end_ts, grace_ns) AS
  coalesce(leak AND NOT lost AND end_ts - exit_ts >= grace_ns, false);

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

-- dev_pagemaps with their problems (empty list = balanced). A trace that lost events makes the balance problems
-- uncertain. refs_leaked: device pages still holding a reference of the pgmap whose holder exited (_outstanding,
-- problem 'refs_of_exited_holder'), refs_leaked_certain those that are certain with exit grace grace_ns.
-- `certain`: a balance problem in a trace without lost events, or a certain leaked ref.
CREATE OR REPLACE TEMP MACRO _pgmap_status(grace_ns) AS TABLE
WITH lk AS (
  SELECT trace_id, pgmap, count(*) AS refs_leaked,
         count(*) FILTER (WHERE _leak_certain(leak, lost, release_exit_ts_ns, end_ts_ns, grace_ns)) AS refs_leaked_certain
  FROM _outstanding WHERE kind = 'pgmap' AND leak GROUP BY trace_id, pgmap
),
g AS (
  SELECT g.*, coalesce(lk.refs_leaked, 0) AS refs_leaked, coalesce(lk.refs_leaked_certain, 0) AS refs_leaked_certain,
         list_filter([
           CASE WHEN g.outstanding_at_unmap > 0 THEN 'refs_at_unmap' END,
           CASE WHEN g.unmap_ts_ns IS NOT NULL AND g.unmap_ret_ts_ns IS NULL THEN 'unmap_never_returned' END,
           CASE WHEN g.puts_without_get > 0 THEN 'puts_without_get' END,
           CASE WHEN g.freed_without_put > 0 THEN 'freed_without_put' END,
           CASE WHEN g.outstanding_end < 0 THEN 'negative_balance' END
         ], x -> x IS NOT NULL) AS balance_problems,
         (t.lost_events > 0) AS lost
  FROM pgmaps g JOIN traces t USING (trace_id)
  LEFT JOIN lk ON lk.trace_id = g.trace_id AND lk.pgmap IS NOT DISTINCT FROM g.pgmap
)
SELECT g.* EXCLUDE (balance_problems),
       list_concat(balance_problems, CASE WHEN refs_leaked > 0 THEN ['refs_of_exited_holder'] ELSE [] END) AS problems,
       (len(balance_problems) > 0 AND NOT lost) OR refs_leaked_certain > 0 AS certain
FROM g;

-- Anomalies that mean a page was used after (or freed while still) referenced.
CREATE OR REPLACE TEMP VIEW _uaf AS
SELECT * FROM anomalies
WHERE kind IN ('freed_while_mapped', 'freed_while_pinned', 'ref_after_free', 'refcount_underflow',
               'device_page_zero_without_put');
