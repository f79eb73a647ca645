-- Who blocked each failed or retried CMA allocation (the pfns that stopped it, the pins / plain references on them), and FOLL_LONGTERM pins kept on CMA.
--
-- What: for every cma_alloc that failed, or needed busy retries / failed ranges before succeeding, one row per
-- (pfn, holder) found blocking any of its failed ranges (`cma_blockers`, merged over the attempt's ranges): the
-- holder task, its stack/callsite, since when it held the page, whether it was a pin (FOLL_PIN) or a plain
-- reference (FOLL_GET, vmsplice, get_page), and how many references. holder_kind 'unknown' is test_pages_isolated's
-- fin_pfn (where isolation stopped) when no holder was seen. Also one row per failed FOLL_LONGTERM migration
-- (`mm_migrate_pages reason=longterm_pin nr_failed>0`): pin_user_pages(FOLL_LONGTERM) could not move pages out
-- of CMA / ZONE_MOVABLE, so the pin failed; and one row per FOLL_LONGTERM pin that replay found held on a CMA
-- page past the migration grace (anomaly longterm_pin_in_cma: the kernel pinned in place instead of migrating
-- first). Such a pin blocks every cma_alloc over its pfn while held, whether or not the trace shows one; the
-- transient CMA pins of a normal FOLL_LONGTERM call (pinned, found unpinnable, unpinned and migrated within
-- microseconds) are not listed.
--
-- Why: alloc_contig_range() cannot migrate a page whose refcount exceeds its mappings; one forgotten reference
-- makes a whole contiguous range unallocatable (camera, video, huge-page allocations fail with -EBUSY/-ENOMEM).
--
-- Who: a blocker is a reference held across the failed range by someone other than the attempt's own migration:
-- the requester's references taken during its own cma_alloc (isolation, putback into an LRU batch) are never listed,
-- nor the LRU batch reference of a fresh fault. Puts are matched to gets by what the kernel does (docs/model.md §13.5).
--
-- @title CMA allocations blocked
-- @meaning Pages inside a failed CMA range that carried a pin or a plain reference when the range failed.
-- @finding 1
-- @verdict cma_blockers error CMA allocation blockers
-- @gate 3
-- @severity error when succeeded=false or what=longterm_migrate_failed else warning
-- @columns html what,cma_name,request_count,succeeded,busy_retries,pfn,is_fin_pfn,ref_type,refs,holder_comm,holder_pid,attribution,since_ts_ns,released_ts_ns,callsite,nr_failed,certain
-- @columns md pfn,ref_type,refs,holder_comm,holder_pid,since_ts_ns,callsite
-- @refcounts 1
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param include_uncertain BOOLEAN false Also list holders that cross a lost-event window.
-- @param comm VARCHAR NULL Only blockers held by tasks with exactly this comm.
-- @param pid INTEGER NULL Only blockers held by this task id.
--
-- @column trace_id `traces.trace_id`.
-- @column what 'cma_blocker', 'longterm_migrate_failed' or 'longterm_pin_in_cma'.
-- @column attempt_id `cma_attempts.attempt_id` (NULL for the longterm_* rows).
-- @column cma_name CMA area.
-- @column attempt_pid Task calling cma_alloc (longterm_migrate_failed: the task pinning; longterm_pin_in_cma: NULL).
-- @column attempt_comm Its name.
-- @column attempt_ts_ns When cma_alloc started (longterm_migrate_failed: the mm_migrate_pages event).
-- @column request_count Pages requested.
-- @column busy_retries cma_alloc_busy_retry events of the call.
-- @column succeeded Whether the call finally returned pages (NULL unknown).
-- @column range_start First pfn of the failed ranges this holder blocked.
-- @column range_end Exclusive end of those ranges.
-- @column ranges_blocked Failed ranges of the call in which this pfn/holder was found.
-- @column first_blocked_ts_ns When the first of those ranges failed.
-- @column pfn Blocking pfn.
-- @column is_fin_pfn test_pages_isolated stopped at this pfn (fin_pfn).
-- @column holder_kind 'pin' (FOLL_PIN), 'hold' (plain reference, not a pin) or 'unknown'.
-- @column ref_type In words: 'longterm pin', 'pin', 'plain ref (FOLL_GET)', 'plain ref' or 'unknown'.
-- @column refs References the holder had on the pfn.
-- @column holder_pid Holder task.
-- @column holder_tgid Holder thread group.
-- @column holder_comm Holder name (untrusted).
-- @column since_ts_ns When the holder took the reference (longterm_pin_in_cma: the pin).
-- @column released_ts_ns When the holder dropped it (NULL = not in the trace).
-- @column longterm FOLL_LONGTERM pin (NULL unknown / not a pin).
-- @column gup_flags FOLL_* flags of the GUP probe behind the reference, hex text.
-- @column refcount Model refcount of the pfn when the range failed (NULL for the longterm_* rows).
-- @column nr_succeeded longterm_migrate_failed: pages migrated.
-- @column nr_failed longterm_migrate_failed: pages that could not be migrated.
-- @column callsite `stacks.callsite` of the holder's get/pin (longterm_migrate_failed: of the event).
-- @column stack_id That stack.
-- @column attribution How the holder of a plain reference is known: 'exact', 'inferred' (by a kernel rule) or 'ambiguous' (a put could have returned another task's reference instead; not certain); 'exact' for a pin, NULL otherwise.
-- @column candidates When ambiguous: the other possible holders, 'pid:comm' comma-separated.
-- @column certain false when the holder (or the pin) crosses a lost-event window or its attribution is ambiguous.
-- @column stack The stack's frames, innermost first, one per line.
WITH b AS (
  SELECT 'cma_blocker' AS what, b.trace_id, b.attempt_id, a.cma_name, a.pid AS attempt_pid, a.comm AS attempt_comm,
         a.start_ts_ns AS attempt_ts_ns, a.request_count, a.busy_retries, a.succeeded, b.range_start, b.range_end,
         b.ranges_blocked, b.first_blocked_ts_ns, b.pfn, b.is_fin_pfn, b.holder_kind,
         CASE WHEN b.holder_kind = 'pin' AND coalesce(b.longterm, pn.longterm) THEN 'longterm pin'
              WHEN b.holder_kind = 'pin' THEN 'pin'
              WHEN b.holder_kind = 'hold' AND (h.via = 'gup' OR (coalesce(h.gup_flags, 0) & 4) <> 0) THEN 'plain ref (FOLL_GET)'
              WHEN b.holder_kind = 'hold' THEN 'plain ref'
              ELSE 'unknown' END AS ref_type,
         b.refs, b.holder_pid, b.holder_tgid, b.holder_comm, b.since_ts_ns,
         CASE b.holder_kind WHEN 'pin' THEN pn.end_ts_ns WHEN 'hold' THEN h.end_ts_ns END AS released_ts_ns,
         CASE WHEN b.holder_kind = 'pin' THEN coalesce(b.longterm, pn.longterm) END AS longterm,
         CASE b.holder_kind WHEN 'pin' THEN pn.gup_flags WHEN 'hold' THEN h.gup_flags END AS gup_flags,
         b.refcount, NULL::BIGINT AS nr_succeeded, NULL::BIGINT AS nr_failed, b.stack_id,
         b.attribution, b.candidates, NOT b.uncertain AS certain,
         a.start_seq AS sort_seq
  FROM _cma_blockers b
  JOIN cma_attempts a USING (trace_id, attempt_id)
  LEFT JOIN pins pn ON b.holder_kind = 'pin' AND pn.trace_id = b.trace_id AND pn.pin_id = b.holder_id
  LEFT JOIN holds h ON b.holder_kind = 'hold' AND h.trace_id = b.trace_id AND h.hold_id = b.holder_id
  WHERE ($trace_id IS NULL OR b.trace_id = $trace_id)
    AND (NOT b.uncertain OR $include_uncertain)
    AND ($comm IS NULL OR b.holder_comm = $comm)
    AND ($pid IS NULL OR b.holder_pid = $pid)
),
m AS (
  SELECT 'longterm_migrate_failed' AS what, trace_id, NULL::BIGINT AS attempt_id, NULL::VARCHAR AS cma_name,
         pid AS attempt_pid, comm AS attempt_comm, ts_ns AS attempt_ts_ns, NULL::BIGINT AS request_count,
         NULL::INTEGER AS busy_retries, NULL::BOOLEAN AS succeeded, NULL::BIGINT AS range_start,
         NULL::BIGINT AS range_end, NULL::BIGINT AS ranges_blocked, NULL::BIGINT AS first_blocked_ts_ns,
         NULL::BIGINT AS pfn, NULL::BOOLEAN AS is_fin_pfn, NULL::VARCHAR AS holder_kind, NULL::VARCHAR AS ref_type,
         NULL::INTEGER AS refs, NULL::INTEGER AS holder_pid, NULL::INTEGER AS holder_tgid,
         NULL::VARCHAR AS holder_comm, NULL::BIGINT AS since_ts_ns, NULL::BIGINT AS released_ts_ns,
         true AS longterm, NULL::UBIGINT AS gup_flags, NULL::INTEGER AS refcount, nr_succeeded, nr_failed, stack_id,
         true AS certain, seq AS sort_seq
  FROM _longterm_migrate_failed
  WHERE ($trace_id IS NULL OR trace_id = $trace_id)
    AND ($comm IS NULL OR comm = $comm)
    AND ($pid IS NULL OR pid = $pid)
),
l AS (
  SELECT 'longterm_pin_in_cma' AS what, trace_id, NULL::BIGINT AS attempt_id, NULL::VARCHAR AS cma_name,
         NULL::INTEGER AS attempt_pid, NULL::VARCHAR AS attempt_comm, NULL::BIGINT AS attempt_ts_ns,
         NULL::BIGINT AS request_count, NULL::INTEGER AS busy_retries, NULL::BOOLEAN AS succeeded,
         NULL::BIGINT AS range_start, NULL::BIGINT AS range_end, NULL::BIGINT AS ranges_blocked,
         NULL::BIGINT AS first_blocked_ts_ns, pfn, NULL::BOOLEAN AS is_fin_pfn, 'pin' AS holder_kind,
         CASE WHEN longterm THEN 'longterm pin' ELSE 'pin' END AS ref_type, refs, holder_pid, holder_tgid,
         holder_comm, start_ts_ns AS since_ts_ns, end_ts_ns AS released_ts_ns, longterm, gup_flags,
         NULL::INTEGER AS refcount, NULL::BIGINT AS nr_succeeded, NULL::BIGINT AS nr_failed, stack_id, certain,
         start_seq AS sort_seq
  FROM _longterm_in_cma
  WHERE ($trace_id IS NULL OR trace_id = $trace_id)
    AND (certain OR $include_uncertain)
    AND ($comm IS NULL OR holder_comm = $comm)
    AND ($pid IS NULL OR holder_pid = $pid)
),
u AS (SELECT * FROM b UNION ALL BY NAME SELECT * FROM m UNION ALL BY NAME SELECT * FROM l)
SELECT u.trace_id, u.what, u.attempt_id, u.cma_name, u.attempt_pid, u.attempt_comm, u.attempt_ts_ns, u.request_count,
       u.busy_retries, u.succeeded, u.range_start, u.range_end, u.ranges_blocked, u.first_blocked_ts_ns, u.pfn,
       u.is_fin_pfn, u.holder_kind, u.ref_type, u.refs, u.holder_pid, u.holder_tgid, u.holder_comm, u.since_ts_ns,
       u.released_ts_ns, u.longterm, _hex(u.gup_flags) AS gup_flags, u.refcount, u.nr_succeeded, u.nr_failed,
       s.callsite, u.stack_id, u.attribution, u.candidates, u.certain, s.frames AS stack
FROM u
LEFT JOIN stacks s ON s.trace_id = u.trace_id AND s.stack_id = u.stack_id
ORDER BY u.trace_id, u.sort_seq, u.pfn, u.holder_kind, u.since_ts_ns;
