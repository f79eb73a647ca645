-- Pins and long references grouped into sessions: one holder, one call path, overlapping in time (e.g. the 1024 pins of one io_uring buffer registration), with who released them.
--
-- What: the `pins` and `holds` rows held longer than $min_duration_ns, grouped by kind, FOLL_LONGTERM, holder thread
-- group and call site, then split where a row starts more than $gap_ns after every earlier row of the group was
-- released (a new registration of the same buffer is a new session). The call site is `stacks.callsite`, the rule
-- every query shares (docs/formats.md §1.9: mm / GUP internals and tracing machinery passed over), so the THP
-- pins of a registration (taken in follow_trans_huge_pmd) and its small-page pins (in follow_page_pte) both name
-- io_pin_pages; $callsite_skip_extra passes over more frames from there for this query only. The releaser is the
-- task that dropped most of the session's references
-- and its call path: the stack of its unpin / put probe on the same pfn just before the put (kprobe events carry
-- stacks, page_ref events do not). `holder_via` / `release_via` say how the kernel got there: the work function
-- of a kworker (the frame under process_one_work, e.g. io_ring_exit_work), else the system call.
--
-- Why: a registration pins hundreds of pages at once; listed per pfn it is hundreds of rows, as a session it is one
-- sentence: "1024 FOLL_LONGTERM pins by iouring_pin/234 from 5.928 s, released 1.05 s later by kworker/u4:0 via
-- io_ring_exit_work".
--
-- @title Pin and reference sessions
-- @meaning One holder's pins or references of one call path, taken and held together, with their releaser.
-- @columns html kind,longterm,refs_taken,pages,holder_comm,holder_tgid,holder_via,callsite,start_ts_ns,held_ns,held_to_end,release_comm,release_pid,release_via,release_callsite,in_cma,explained,certain
-- @columns md kind,longterm,refs_taken,holder_comm,holder_tgid,callsite,start_ts_ns,held_ns,release_comm,release_via,explained
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param min_duration_ns BIGINT 1000000000 Only references held longer than this, ns (as long-pins.sql).
-- @param kind VARCHAR NULL 'pin' or 'hold' to list only one kind; NULL = both.
-- @param gap_ns BIGINT 0 A row starting more than this after the last release of its group starts a new session, ns.
-- @param callsite_skip_extra VARCHAR NULL More function names to pass over after `stacks.callsite` (a regular expression, matched whole, offsets and `.cold` / `.isra` suffixes removed), e.g. 'io_pin_pages' to name io_sqe_buffer_register instead; `ingest --callsite-skip` does it for every query.
--
-- @column trace_id `traces.trace_id`.
-- @column session Session number within the trace, in order of start.
-- @column kind 'pin' (FOLL_PIN) or 'hold' (plain reference).
-- @column longterm FOLL_LONGTERM pins (false for holds).
-- @column refs_taken Pin / hold rows in the session (one per page a pin call took; a large folio's subpage pins count one each).
-- @column refs References taken (sum of `refs`).
-- @column pages Distinct pages (pfns).
-- @column first_pfn Lowest pfn.
-- @column holder_tgid Thread group that took them.
-- @column holder_pid Task that took most of them.
-- @column holder_comm Its name (untrusted).
-- @column callsite `stacks.callsite` of the taking stack (the first frame outside mm / GUP internals and tracing), or the frame after it $callsite_skip_extra leaves.
-- @column holder_via The holder's system call (or kworker work function) that took them.
-- @column holder_path The taking stack from its call site outwards, without the syscall entry, innermost first, `a <- b` (untrusted).
-- @column start_ts_ns First reference taken.
-- @column first_release_ts_ns First reference dropped (NULL: none dropped in the trace).
-- @column end_ts_ns Last reference dropped (NULL when some are still held at the end).
-- @column held_ns Median time held (to the end of the trace for those still held).
-- @column held_to_end References still held when the trace ends.
-- @column release_pid Task that dropped most of them (NULL: none dropped).
-- @column release_comm Its name (untrusted).
-- @column releasers Distinct tasks that dropped some.
-- @column release_callsite Call site of the release stack (as `callsite`).
-- @column release_via The releaser's system call or kworker work function (e.g. io_ring_exit_work).
-- @column release_path The release stack from its call site outwards (as `holder_path`, untrusted).
-- @column in_cma References on CMA / ZONE_MOVABLE pages.
-- @column explained Plain references on pages a mapping explains (long-pins.sql `explained`): information, not a warning.
-- @column foll_get Holds taken by GUP with FOLL_GET (not pins: invisible to page_maybe_dma_pinned()).
-- @column certain No reference of the session crosses a lost-event window (false: some do, their times may be off).
-- @column stack_id A taking stack of the session.
-- @column release_stack_id A release stack of the session (NULL when no probe stack was seen).
-- Frame functions of every stack (offsets removed), `tail` from the call site outwards; `names` without the
-- compiler's clone suffixes (`.cold`, `.isra.0`), as the call-site rule matches them.
WITH st AS (
  SELECT s.trace_id, s.stack_id,
         list_transform(f.fns, x -> regexp_replace(x, '\.(cold|isra|constprop|part|lto_priv|llvm)(\.\w+)*$', '')) AS names,
         list_slice(f.fns, coalesce(list_position(f.fns, s.callsite), len(f.fns) + 1), len(f.fns)) AS tail
  FROM stacks s,
       LATERAL (SELECT list_transform(string_split(s.frames, chr(10)), x -> regexp_replace(split_part(x, ' ', 1), '\+0x[0-9a-f]+(/0x[0-9a-f]+)?$', '')) AS fns) f
),
kept AS (
  SELECT trace_id, stack_id, names,
         CASE WHEN $callsite_skip_extra IS NULL THEN tail
              ELSE list_filter(tail, x -> NOT regexp_matches(regexp_replace(x, '\.(cold|isra|constprop|part|lto_priv|llvm)(\.\w+)*$', ''),
                                                             '^(?:' || $callsite_skip_extra || ')$')) END AS kept
  FROM st
),
path AS (
  SELECT trace_id, stack_id, kept[1] AS callsite,
         array_to_string(list_filter(list_transform(kept, x -> regexp_replace(x, '\.(cold|isra|constprop|part|lto_priv|llvm)(\.\w+)*$', '')),
                                     x -> NOT regexp_matches(x, '^(do_syscall_64|do_syscall_x64|x64_sys_call|entry_SYSCALL_64\w*|ret_from_fork\w*|kthread|worker_thread)$')), ' <- ') AS path,
         coalesce(
           CASE WHEN list_position(names, 'process_one_work') > 1 THEN names[list_position(names, 'process_one_work') - 1] END,
           regexp_extract(list_filter(names, x -> regexp_matches(x, '^(__do_sys_|__se_sys_|__x64_sys_|__ia32_sys_)\w+$'))[-1],
                          '^(?:__do_sys_|__se_sys_|__x64_sys_|__ia32_sys_)(\w+)$', 1)) AS via
  FROM kept
),
r AS (
  SELECT trace_id, 'pin' AS kind, pin_id AS id, pfn, refs, holder_pid, coalesce(holder_tgid, holder_pid) AS holder_tgid, holder_comm,
         start_seq, start_ts_ns, end_seq, end_ts_ns, duration_ns, coalesce(longterm, false) AS longterm,
         in_cma OR coalesce(movable_zone, false) AS in_cma, release_pid, release_comm, stack_id, uncertain, false AS plain
  FROM pins
  UNION ALL
  SELECT trace_id, 'hold', hold_id, pfn, refs, holder_pid, coalesce(holder_tgid, holder_pid), holder_comm,
         start_seq, start_ts_ns, end_seq, end_ts_ns, duration_ns, false, in_cma, release_pid, release_comm, stack_id, uncertain,
         NOT (via = 'gup' OR (coalesce(gup_flags, 0) & 4) <> 0)
  FROM holds
),
f AS (
  SELECT r.*, p.callsite, p.path, p.via
  FROM r LEFT JOIN path p ON p.trace_id = r.trace_id AND p.stack_id = r.stack_id
  WHERE ($trace_id IS NULL OR r.trace_id = $trace_id) AND r.duration_ns > $min_duration_ns
    AND ($kind IS NULL OR r.kind = $kind)
),
-- The stack of the releaser's unpin / put probe on the same pfn, at most 8 events before the put.
rel AS (
  SELECT f.trace_id, f.kind, f.id, arg_max(e.stack_id, e.seq) AS release_stack_id
  FROM f JOIN events e ON e.trace_id = f.trace_id AND e.pfn = f.pfn AND e.pid = f.release_pid
                      AND e.seq BETWEEN f.end_seq - 8 AND f.end_seq AND e.stack_id IS NOT NULL
  GROUP BY ALL
),
-- Plain references on pages a page_ref event showed mapped or owned by a mapping while held (as long-pins.sql).
mp AS (
  SELECT DISTINCT f.trace_id, f.kind, f.id
  FROM f JOIN traces t ON t.trace_id = f.trace_id JOIN _trace_end te ON te.trace_id = f.trace_id
  JOIN events e ON e.trace_id = f.trace_id AND e.pfn = f.pfn AND e.seq >= f.start_seq
                AND e.ts_ns <= coalesce(f.end_ts_ns, te.last_ts_ns)
  WHERE f.plain AND e.event LIKE 'page_ref%'
    AND (coalesce(e.mapping, 0) <> 0 OR _mapped(t.mapcount_semantics, e.mapcount) > 0)
),
g AS (
  SELECT f.*, rel.release_stack_id, rp.callsite AS release_callsite, rp.path AS release_path, rp.via AS release_via,
         mp.id IS NOT NULL AS is_explained,
         -- A row starts a new session when it begins after every earlier row of its group was released.
         coalesce(f.start_ts_ns > max(coalesce(f.end_ts_ns, 9223372036854775807)) OVER (
           PARTITION BY f.trace_id, f.kind, f.longterm, f.holder_tgid, f.callsite ORDER BY f.start_ts_ns, f.start_seq
           ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) + $gap_ns, true) AS starts
  FROM f
  LEFT JOIN rel ON rel.trace_id = f.trace_id AND rel.kind = f.kind AND rel.id = f.id
  LEFT JOIN path rp ON rp.trace_id = f.trace_id AND rp.stack_id = rel.release_stack_id
  LEFT JOIN mp ON mp.trace_id = f.trace_id AND mp.kind = f.kind AND mp.id = f.id
),
n AS (
  SELECT *, sum(starts::INTEGER) OVER (
           PARTITION BY trace_id, kind, longterm, holder_tgid, callsite ORDER BY start_ts_ns, start_seq) AS part
  FROM g
),
s AS (
  SELECT trace_id, kind, longterm, holder_tgid, callsite, part,
         count(*) AS refs_taken, sum(refs) AS refs, count(DISTINCT pfn) AS pages, min(pfn) AS first_pfn,
         mode(holder_pid) AS holder_pid, mode(holder_comm) AS holder_comm, mode(via) AS holder_via, mode(path) AS holder_path,
         min(start_ts_ns) AS start_ts_ns, min(end_ts_ns) AS first_release_ts_ns,
         CASE WHEN count(*) FILTER (WHERE end_seq IS NULL) = 0 THEN max(end_ts_ns) END AS end_ts_ns,
         median(duration_ns)::BIGINT AS held_ns, count(*) FILTER (WHERE end_seq IS NULL) AS held_to_end,
         mode(release_pid) AS release_pid, count(DISTINCT release_pid) AS releasers,
         count(*) FILTER (WHERE in_cma) AS in_cma, count(*) FILTER (WHERE is_explained) AS explained,
         count(*) FILTER (WHERE kind = 'hold' AND NOT plain) AS foll_get,
         count(*) FILTER (WHERE uncertain) = 0 AS certain, min(stack_id) AS stack_id, min(start_seq) AS first_seq
  FROM n GROUP BY trace_id, kind, longterm, holder_tgid, callsite, part
)
SELECT s.trace_id, row_number() OVER (PARTITION BY s.trace_id ORDER BY s.start_ts_ns, s.first_seq)::INTEGER AS session,
       s.kind, s.longterm, s.refs_taken, s.refs, s.pages, s.first_pfn, s.holder_tgid, s.holder_pid, s.holder_comm,
       s.callsite, s.holder_via, s.holder_path, s.start_ts_ns, s.first_release_ts_ns, s.end_ts_ns, s.held_ns, s.held_to_end,
       s.release_pid, r.release_comm, s.releasers, r.release_callsite, r.release_via, r.release_path,
       s.in_cma, s.explained, s.foll_get, s.certain, s.stack_id, r.release_stack_id
FROM s
LEFT JOIN LATERAL (
  SELECT mode(n.release_comm) AS release_comm, mode(n.release_callsite) AS release_callsite, mode(n.release_via) AS release_via,
         mode(n.release_path) AS release_path, min(n.release_stack_id) AS release_stack_id
  FROM n WHERE n.trace_id = s.trace_id AND n.kind = s.kind AND n.longterm = s.longterm AND n.holder_tgid = s.holder_tgid
           AND n.callsite IS NOT DISTINCT FROM s.callsite AND n.part = s.part AND n.release_pid = s.release_pid
) r ON true
ORDER BY s.trace_id, session;
