-- Pins and plain-reference holds kept longer than the min_duration_ns threshold (1 s by default), worst first (held for ever on CMA / ZONE_MOVABLE).
--
-- What: every `pins` row and every `holds` row whose duration (to the unpin/put, or to the end of the trace when
-- still held) is over $min_duration_ns, FOLL_LONGTERM or not, with the migratetype name of the page when taken.
-- Ranking (column priority): 1 = plain FOLL_GET/get_page hold still held at the end on a CMA page (the
-- FOLL_GET-held-forever pattern: nothing tells the kernel to wait for it, and migration cannot move it: it blocks
-- cma_alloc); 2 = FOLL_LONGTERM pin held on a CMA page (`longterm_in_cma`: replay's longterm_pin_in_cma anomaly;
-- a bug, longterm pins must migrate out of CMA / ZONE_MOVABLE first); 3 = any other pin or hold on a CMA /
-- ZONE_MOVABLE page (it blocks migration for that long; this includes the transient pins of a FOLL_LONGTERM call
-- that then migrates the page away, which last microseconds); 4 = anything still held at the end; 5 = the rest.
-- Within a priority: references no mapping explains first, then GUP references (pins and FOLL_GET holds, then
-- other plain gets), longest first.
-- `explained`: a plain (non-GUP) reference on a page that a page_ref event showed mapped (mapcount) or owned
-- by a mapping (`mapping=`: page cache, anon_vma) while it was held: the references of the page cache, of
-- fault-around and of the LRU, dropped when the mapping or the process goes. Information, not warnings.
-- `problem`: not explained and on a CMA / ZONE_MOVABLE page (priority 1..3): it blocks migration for that long.
-- Only these are counted in the verdict (summary.sql long_pins); the rest is information.
--
-- Why: a short GUP reference is normal (direct I/O); one held for seconds keeps the page unmovable for that
-- long. FOLL_GET references are the worst, because unlike FOLL_PIN they are invisible to page_maybe_dma_pinned().
--
-- @title Long-held pins and references
-- @meaning Pins and plain references held longer than the threshold (FOLL_LONGTERM pins first).
-- @finding 6
-- @verdict long_pins warning pins / refs held > 1 s
-- @severity warning
-- @columns html priority,kind,pfn,refs,holder_comm,holder_pid,start_ts_ns,duration_ns,held_to_end,longterm,foll_get,mt_name,in_cma,longterm_in_cma,release_comm,callsite,explained,certain
-- @columns md priority,kind,pfn,holder_comm,holder_pid,duration_ns,longterm,mt_name,callsite
-- @refcounts 6
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param min_duration_ns BIGINT 1000000000 Minimum time held, ns (the CLI also accepts 500ms, 1.5s, 10us).
-- @param longterm BOOLEAN NULL true = only FOLL_LONGTERM pins, false = only the others (and holds); NULL = all.
-- @param kind VARCHAR NULL 'pin' or 'hold' to list only one kind; NULL = both.
-- @param comm VARCHAR NULL Only references taken by tasks with exactly this comm.
-- @param pid INTEGER NULL Only references taken by this task id.
-- @param include_uncertain BOOLEAN true Also list intervals that cross a lost-event window (with `certain` false).
--
-- @column trace_id `traces.trace_id`.
-- @column priority Ranking bucket, 1 (worst) .. 5, see above.
-- @column kind 'pin' (FOLL_PIN, `pins`) or 'hold' (plain reference: FOLL_GET, vmsplice, get_page; `holds`).
-- @column id `pins.pin_id` or `holds.hold_id`.
-- @column pfn Referenced pfn.
-- @column folio_pfn Head pfn of the folio carrying the reference (pins; the pfn itself for holds).
-- @column refs References (pins) taken by the interval.
-- @column holder_pid Task that took it.
-- @column holder_tgid Its thread group.
-- @column holder_comm Its name (untrusted).
-- @column start_ts_ns When it was taken.
-- @column end_ts_ns When it was dropped (NULL = still held at the end of the trace).
-- @column duration_ns How long it was held (to the end of the trace when still held).
-- @column held_to_end Still held when the trace ends.
-- @column longterm FOLL_LONGTERM (pins; NULL = unknown, false for holds).
-- @column foll_get A FOLL_GET GUP reference (holds via GUP, or FOLL_GET in the probe flags).
-- @column gup_flags FOLL_* flags a GUP probe reported, as hex text (NULL = no probe).
-- @column mt Migratetype number when taken.
-- @column mt_name Its MIGRATE_* name in the trace's layout.
-- @column in_cma The page was in a CMA pageblock when taken.
-- @column movable_zone The page was in ZONE_MOVABLE (pins; known only from user-given ranges).
-- @column longterm_in_cma A FOLL_LONGTERM pin replay found held on a CMA page past the migration grace (anomaly longterm_pin_in_cma).
-- @column migrate_seq Pins: seq of the `mm_migrate_pages reason=longterm_pin` its pinning call retried after (the
--   page was migrated out of CMA / ZONE_MOVABLE first, as FOLL_LONGTERM must); NULL when none was seen, and for holds.
-- @column large_folio Pin of a large folio (NULL for holds).
-- @column release_pid Task that dropped it (may differ from the holder: io_uring teardown runs in a kworker).
-- @column release_comm Its name.
-- @column callsite `stacks.callsite` of the taking stack.
-- @column stack_id Stack of the get/pin.
-- @column certain The interval crosses no lost-event window (false: its times or holder may be off).
-- @column attribution How the holder is known: 'exact' for pins; for holds `holds.attribution` ('exact', 'inferred' by a kernel rule, 'ambiguous': a put could have returned another task's reference instead, see candidates).
-- @column candidates Holds: the other possible holders when ambiguous ('pid:comm' comma-separated).
-- @column explained Why a plain reference is not a warning: 'mapped page' (a page_ref event during the hold showed the page mapped or owned by a mapping: page cache, anon_vma); NULL for pins, GUP references and the rest.
-- @column problem Not explained and on a CMA / ZONE_MOVABLE page (priority 1..3): counted in the verdict.
WITH r AS (
  SELECT trace_id, 'pin' AS kind, pin_id AS id, pfn, folio_pfn, refs, holder_pid, holder_tgid, holder_comm,
         start_ts_ns, end_ts_ns, duration_ns, end_seq IS NULL AS held_to_end, longterm,
         (coalesce(gup_flags, 0) & 4) <> 0 AS foll_get, gup_flags, mt, in_cma, movable_zone, large_folio,
         release_pid, release_comm, stack_id, uncertain, start_seq, migrate_seq, 'exact' AS attribution,
         NULL::VARCHAR AS candidates,
         EXISTS (SELECT 1 FROM _longterm_in_cma l WHERE l.trace_id = pins.trace_id AND l.pin_id = pins.pin_id)
           AS longterm_in_cma
  FROM pins
  UNION ALL
  SELECT trace_id, 'hold', hold_id, pfn, pfn, refs, holder_pid, holder_tgid, holder_comm,
         start_ts_ns, end_ts_ns, duration_ns, end_seq IS NULL, false,
         via = 'gup' OR (coalesce(gup_flags, 0) & 4) <> 0, gup_flags, mt, in_cma, false, NULL,
         release_pid, release_comm, stack_id, uncertain, start_seq, NULL, coalesce(attribution, 'exact'), candidates, false
  FROM holds
),
f AS (
  SELECT *,
         CASE WHEN kind = 'hold' AND held_to_end AND in_cma THEN 1
              WHEN longterm_in_cma THEN 2
              WHEN in_cma OR movable_zone THEN 3
              WHEN held_to_end THEN 4
              ELSE 5 END AS priority
  FROM r
  WHERE ($trace_id IS NULL OR trace_id = $trace_id)
    AND duration_ns > $min_duration_ns
    AND ($longterm IS NULL OR coalesce(longterm, false) = $longterm)
    AND ($kind IS NULL OR kind = $kind)
    AND ($comm IS NULL OR holder_comm = $comm)
    AND ($pid IS NULL OR holder_pid = $pid)
    AND (NOT uncertain OR $include_uncertain)
),
-- Plain references on pages a page_ref event showed mapped or owned by a mapping while held.
mp AS (
  SELECT DISTINCT f.trace_id, f.id
  FROM f
  JOIN traces t ON t.trace_id = f.trace_id
  JOIN _trace_end te ON te.trace_id = f.trace_id
  JOIN events e ON e.trace_id = f.trace_id AND e.pfn = f.pfn
   AND e.seq >= f.start_seq AND e.ts_ns <= coalesce(f.end_ts_ns, te.last_ts_ns)
  WHERE f.kind = 'hold' AND NOT f.foll_get AND e.event LIKE 'page_ref%'
    AND (coalesce(e.mapping, 0) <> 0 OR _mapped(t.mapcount_semantics, e.mapcount) > 0)
)
SELECT f.trace_id, f.priority, f.kind, f.id, f.pfn, f.folio_pfn, f.refs, f.holder_pid, f.holder_tgid, f.holder_comm,
       f.start_ts_ns, f.end_ts_ns, f.duration_ns, f.held_to_end, f.longterm, f.foll_get, _hex(f.gup_flags) AS gup_flags,
       f.mt, m.name AS mt_name, f.in_cma, f.movable_zone, f.longterm_in_cma, f.migrate_seq, f.large_folio, f.release_pid, f.release_comm, s.callsite,
       f.stack_id, NOT f.uncertain AS certain, f.attribution, f.candidates,
       CASE WHEN mp.id IS NOT NULL THEN 'mapped page' END AS explained,
       mp.id IS NULL AND f.priority <= 3 AS problem
FROM f
LEFT JOIN mp ON mp.trace_id = f.trace_id AND mp.id = f.id AND f.kind = 'hold'
LEFT JOIN _mt_names m ON m.trace_id = f.trace_id AND m.mt = f.mt
LEFT JOIN stacks s ON s.trace_id = f.trace_id AND s.stack_id = f.stack_id
ORDER BY f.priority, mp.id IS NOT NULL, (f.kind = 'pin' OR f.foll_get) DESC, f.duration_ns DESC, f.trace_id, f.start_seq, f.kind, f.id;
