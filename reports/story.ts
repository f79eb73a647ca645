import type { Row } from '../db/duckdb.js';
import { hex, seconds, toNum } from './format.js';
import { shortStack, splitFrames, syscallOf } from './stackfmt.js';

/**
 * One-sentence explanations of the cma-blockers rows ("cma_alloc of N pages from 'reserved' failed after K busy
 * retries: pfn 0x7dc00 held by pid 352 (cma_block) since 69.073 s via vmsplice (FOLL_GET), stack: ..."), built as
 * segments so each output format escapes them its own way: plain strings are refscope's own words and numbers,
 * `code` segments are text from the traced machine (comm, CMA area name, stack frames).
 */

export type Segment = string | { code: string } | { frames: string[] };

export interface Sentence {
  segments: Segment[];
  /** Follow-up lines: other pfns / holders of the same call. */
  details: Segment[][];
  severity: 'error' | 'warning';
}

interface Holder {
  key: string;
  rows: Row[];
  fin: boolean;
}

function flagWord(refType: unknown): string {
  switch (refType) {
    case 'longterm pin':
      return 'FOLL_PIN|FOLL_LONGTERM';
    case 'pin':
      return 'FOLL_PIN';
    case 'plain ref (FOLL_GET)':
      return 'FOLL_GET';
    case 'plain ref':
      return 'plain reference';
    default:
      return String(refType ?? 'unknown');
  }
}

function pfnList(rows: Row[]): string {
  return rows
    .map((r) => {
      const refs = toNum(r.refs);
      return hex(r.pfn) + (refs !== null && refs > 1 ? ` (${refs} refs)` : '');
    })
    .join(', ');
}

function holderSegments(first: Row): Segment[] {
  const frames = splitFrames(first.stack);
  const segs: Segment[] = [];
  if (first.holder_kind === 'unknown') return ['no holder seen in the trace (isolation stopped there)'];
  segs.push(`held by pid ${first.holder_pid ?? '?'} (`, { code: String(first.holder_comm ?? '?') }, ')');
  if (toNum(first.since_ts_ns) !== null) segs.push(` since ${seconds(first.since_ts_ns, 3)} s`);
  const sys = frames.length ? syscallOf(frames) : null;
  const via = sys ?? (first.callsite ? String(first.callsite) : null);
  if (via) {
    segs.push(' via ');
    segs.push(sys && /^[a-z0-9]+$/i.test(sys) ? sys : { code: via });
  }
  segs.push(` (${flagWord(first.ref_type)})`);
  if (first.released_ts_ns !== null && first.released_ts_ns !== undefined) segs.push(`, released at ${seconds(first.released_ts_ns, 3)} s`);
  else segs.push(', never released in the trace');
  if (frames.length) segs.push(', stack: ', { frames: shortStack(frames) });
  return segs;
}

/** One row per (holder, pfn): several references of one holder on one pfn (one hold per get) add their refs up. */
function mergeByPfn(rows: Row[]): Row[] {
  const out = new Map<string, Row>();
  for (const r of rows) {
    const key = [r.holder_kind, r.ref_type, r.holder_pid, r.holder_comm, r.stack_id, r.pfn].map(String).join('\u0000');
    const m = out.get(key);
    if (!m) {
      out.set(key, { ...r });
      continue;
    }
    m.refs = (toNum(m.refs) ?? 1) + (toNum(r.refs) ?? 1);
    m.is_fin_pfn = m.is_fin_pfn === true || r.is_fin_pfn === true;
    if ((toNum(r.since_ts_ns) ?? Infinity) < (toNum(m.since_ts_ns) ?? Infinity)) m.since_ts_ns = r.since_ts_ns;
    const rel = (x: Row) => (x.released_ts_ns === null || x.released_ts_ns === undefined ? Infinity : (toNum(x.released_ts_ns) ?? Infinity));
    if (rel(r) > rel(m)) m.released_ts_ns = r.released_ts_ns;
  }
  return [...out.values()];
}

/** Sentences for the rows of the cma-blockers query, one per cma_alloc call (and per failed longterm migration). */
export function cmaSentences(rows: Row[]): Sentence[] {
  const out: Sentence[] = [];
  const byAttempt = new Map<string, Row[]>();
  const longterm = new Map<string, Row[]>();
  for (const r of rows) {
    if (r.what === 'longterm_migrate_failed') {
      const frames = splitFrames(r.stack);
      out.push({
        severity: 'error',
        segments: [
          `pin_user_pages(FOLL_LONGTERM) by pid ${r.attempt_pid ?? '?'} (`,
          { code: String(r.attempt_comm ?? '?') },
          `) could not migrate ${r.nr_failed ?? '?'} pages out of CMA / ZONE_MOVABLE at ${seconds(r.attempt_ts_ns, 3)} s`,
          ...(frames.length ? [', stack: ', { frames: shortStack(frames) }] : []),
        ],
        details: [],
      });
      continue;
    }
    if (r.what === 'longterm_pin_in_cma') {
      // Grouped with the other pins of the same holder and stack below.
      const k = `lt/${r.trace_id}/${r.holder_pid}/${r.stack_id}`;
      longterm.set(k, [...(longterm.get(k) ?? []), r]);
      continue;
    }
    const k = `${r.trace_id}/${r.attempt_id}`;
    const list = byAttempt.get(k) ?? [];
    list.push(r);
    byAttempt.set(k, list);
  }
  for (const raw of byAttempt.values()) {
    const list = mergeByPfn(raw);
    const a = list[0]!;
    const holders = new Map<string, Holder>();
    for (const r of list) {
      const key = [r.holder_kind, r.ref_type, r.holder_pid, r.holder_comm, r.stack_id].map(String).join('\u0000');
      const h = holders.get(key) ?? { key, rows: [], fin: false };
      h.rows.push(r);
      h.fin ||= r.is_fin_pfn === true;
      holders.set(key, h);
    }
    const ordered = [...holders.values()].sort((x, y) => Number(y.fin) - Number(x.fin) || y.rows.length - x.rows.length);
    const outcome =
      a.succeeded === false ? 'failed' : a.succeeded === true ? 'succeeded only' : 'did not finish in the trace';
    const retries = toNum(a.busy_retries) ?? 0;
    const head: Segment[] = [`cma_alloc of ${a.request_count ?? '?'} pages from `, { code: String(a.cma_name ?? '?') }, ` ${outcome} after ${retries} busy ${retries === 1 ? 'retry' : 'retries'}: `];
    const first = ordered[0]!;
    const firstRows = [...first.rows].sort((x, y) => Number(y.is_fin_pfn === true) - Number(x.is_fin_pfn === true) || (toNum(x.pfn) ?? 0) - (toNum(y.pfn) ?? 0));
    const lead = firstRows[0]!;
    const leadRefs = toNum(lead.refs);
    head.push(`pfn ${hex(lead.pfn)}${leadRefs !== null && leadRefs > 1 ? ` (${leadRefs} refs)` : ''} `, ...holderSegments(lead));
    const details: Segment[][] = [];
    if (firstRows.length > 1) details.push([`also pfns ${pfnList(firstRows.slice(1))}: same holder and stack`]);
    for (const h of ordered.slice(1)) {
      const rs = [...h.rows].sort((x, y) => (toNum(x.pfn) ?? 0) - (toNum(y.pfn) ?? 0));
      details.push([`pfn${rs.length > 1 ? 's' : ''} ${pfnList(rs)} `, ...holderSegments(rs[0]!)]);
    }
    out.push({ segments: head, details, severity: a.succeeded === false ? 'error' : 'warning' });
  }
  for (const list of longterm.values()) {
    const rs = [...list].sort((x, y) => (toNum(x.pfn) ?? 0) - (toNum(y.pfn) ?? 0));
    out.push({
      severity: 'error',
      segments: [
        `FOLL_LONGTERM pin${rs.length > 1 ? 's' : ''} on CMA pfn${rs.length > 1 ? 's' : ''} ${pfnList(rs.slice(0, 8))}`,
        rs.length > 8 ? ` and ${rs.length - 8} more` : '',
        ' (not migrated out first) ',
        ...holderSegments(rs[0]!),
      ],
      details: [],
    });
  }
  return out;
}

/** "12 345" style thousands for counts in sentences. */
function n(v: unknown): string {
  return (toNum(v) ?? 0).toLocaleString('en-US');
}

function kb(v: unknown): string {
  const k = toNum(v) ?? 0;
  return k >= 10240 ? `${(k / 1024).toFixed(1)} MiB` : `${k} KB`;
}

/**
 * The page allocator's story in sentences, from kmem-summary's row: the traffic, what stayed allocated (window
 * edges, not leaks), what perf kmem would count differently, and allocations on live pfns as evidence of loss.
 */
export function allocatorSentences(s: Row): { segments: Segment[]; severity: 'error' | 'warning' | 'info' }[] {
  const out: { segments: Segment[]; severity: 'error' | 'warning' | 'info' }[] = [];
  const median = toNum(s.median_lifetime_ns);
  out.push({
    severity: 'info',
    segments: [
      `${n(s.alloc_requests)} page allocations (${kb(s.alloc_kb)}) and ${n(s.free_requests)} frees (${kb(s.free_kb)}); ` +
        `${n(s.alloc_freed)} allocations were freed inside the capture` +
        (median !== null ? ` (median lifetime ${seconds(median, 6)} s)` : '') +
        `, ${n(s.alive_at_end)} were still alive when it ended and ${n(s.free_only)} frees were of pages allocated before it started: window edges, not leaks.`,
    ],
  });
  const batched = toNum(s.free_batched_only) ?? 0;
  if (batched > 0)
    out.push({
      severity: 'info',
      segments: [
        `${n(batched)} frees were printed only as mm_page_free_batched (their mm_page_free is missing): refscope counts them, ` +
          `perf kmem --page stat does not (it reports ${n(s.perf_free_requests)} free requests).`,
      ],
    });
  const live = toNum(s.live_pfn_allocs) ?? 0;
  if (live > 0)
    out.push({
      severity: 'warning',
      segments: [
        `${n(live)} allocations landed on pfns that were still alive (no free since their previous allocation): frees were not traced ` +
          `(${(toNum(s.lost_events) ?? 0) > 0 ? `${n(s.lost_events)} events lost by the tracer` : 'no loss reported: a capture of some tasks only, or an untraced free path'}). ` +
          'Free counts are low by at least as much; see Allocations on live pfns.',
      ],
    });
  return out;
}

/** What a trace with page-allocator events and no page_ref events can and cannot tell (the verdict's note). */
export function kmemOnlyVerdict(s: Row): string {
  const live = toNum(s.live_pfn_allocs) ?? 0;
  return (
    `Page-allocator events only (no page_ref events): this trace tells allocations, frees, lifetimes and the pages alive at the end ` +
    `(${n(s.alloc_requests)} allocations, ${n(s.alive_at_end)} alive at the end), not who holds references: ` +
    'pins, leaked references, use-after-free and refcount errors cannot be seen, and "no problem found" means none could be.' +
    (live > 0 ? ` ${n(live)} allocations on live pfns show that frees were not traced.` : '')
  );
}

/** What a session's references are, in the kernel's words. */
function sessionWhat(s: Row): string {
  const nTaken = toNum(s.refs_taken) ?? 0;
  const many = nTaken !== 1;
  if (s.kind === 'pin') return `${n(nTaken)} ${s.longterm === true ? 'FOLL_LONGTERM pin' : 'FOLL_PIN pin'}${many ? 's' : ''}`;
  const gup = (toNum(s.foll_get) ?? 0) === nTaken;
  return `${n(nTaken)} ${gup ? 'FOLL_GET ' : 'plain '}reference${many ? 's' : ''}`;
}

/** Sessions worth a paragraph: pins and references no mapping explains (the rest is summed up in one line). */
export function storySessions(rows: Row[]): Row[] {
  return rows.filter((s) => (toNum(s.explained) ?? 0) < (toNum(s.refs_taken) ?? 0));
}

/**
 * One paragraph per session of the sessions query: "1024 FOLL_LONGTERM pins by iouring_pin/234 from 5.928 s via
 * io_uring_register (io_pin_pages), released 1.05 s later by kworker/u4:0 (pid 9) via io_ring_exit_work", with the
 * taking and releasing call paths as details. Warning when some sit on CMA / ZONE_MOVABLE pages (they block
 * migration), information otherwise (a pin released is what pins are for).
 */
export function sessionSentences(rows: Row[]): { segments: Segment[]; details: Segment[][]; severity: 'warning' | 'info' }[] {
  return storySessions(rows).map((s) => {
    const pages = toNum(s.pages) ?? 0;
    const taken = toNum(s.refs_taken) ?? 0;
    const segs: Segment[] = [`${sessionWhat(s)} `];
    segs.push(s.kind === 'pin' && pages < taken ? `on ${n(pages)} large folio${pages === 1 ? '' : 's'} (from pfn ${hex(s.first_pfn)}) ` : pages > 1 ? `on ${n(pages)} pages ` : `on pfn ${hex(s.first_pfn)} `);
    segs.push('by ', { code: `${String(s.holder_comm ?? '?')}/${String(s.holder_tgid ?? '?')}` }, ` from ${seconds(s.start_ts_ns, 3)} s`);
    if (s.holder_via) segs.push(' via ', { code: String(s.holder_via) });
    if (s.callsite) segs.push(' (', { code: String(s.callsite) }, ')');
    const held = seconds(s.held_ns, 2);
    const toEnd = toNum(s.held_to_end) ?? 0;
    if (s.release_pid !== null && s.release_pid !== undefined) {
      segs.push(`, released ${held} s later by `, { code: String(s.release_comm ?? '?') }, ` (pid ${s.release_pid})`);
      if (s.release_via) segs.push(' via ', { code: String(s.release_via) });
      const others = (toNum(s.releasers) ?? 1) - 1;
      if (others > 0) segs.push(` and ${others} other task${others === 1 ? '' : 's'}`);
    }
    if (toEnd > 0) segs.push(toEnd === taken ? ', still held when the capture ended' : `, ${n(toEnd)} still held when the capture ended`);
    const cma = toNum(s.in_cma) ?? 0;
    if (cma > 0) segs.push(`; ${n(cma)} on CMA / ZONE_MOVABLE pages, where they block migration`);
    segs.push('.');
    const details: Segment[][] = [];
    if (s.holder_path) details.push(['taken: ', { frames: String(s.holder_path).split(' <- ').slice(0, 6) }]);
    if (s.release_path) details.push(['released: ', { frames: String(s.release_path).split(' <- ').slice(0, 6) }]);
    return { segments: segs, details, severity: cma > 0 ? 'warning' : 'info' };
  });
}

/** The long references the verdict does not count, in one line: released pins and references of mapped pages. */
export function longRefsInfo(summary: Row | undefined, sessions: Row[]): string | null {
  const all = toNum(summary?.long_refs) ?? 0;
  const warned = toNum(summary?.long_pins) ?? 0;
  if (all - warned <= 0) return null;
  const explained = sessions.reduce((a, s) => a + (toNum(s.explained) ?? 0), 0);
  return (
    `${n(all - warned)} pins / references held over 1 s are information, not warnings` +
    (explained > 0 ? `: ${n(explained)} of them plain references of mapped or page-cache pages (dropped with the mapping or the process)` : '') +
    ` (${n(sessions.length)} session${sessions.length === 1 ? '' : 's'} in all; see Pin and reference sessions).`
  );
}
