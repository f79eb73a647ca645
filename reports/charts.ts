import { listValue } from '../db/duckdb-api.js';
import { Resvg } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { Db, Row } from '../db/duckdb.js';
import { runQuery } from '../queries/runner.js';
import { rowOf, rowsOf } from '../queries/statements.js';
import { hex, toNum } from './format.js';

/**
 * The report's charts as Vega-Lite specs with their data inlined, built from the replay tables by the statements of
 * queries/charts/. Large traces are aggregated in SQL before anything reaches a spec (log-binned durations, merged intervals, time buckets, top-N
 * lanes and series), and every spec is capped at MAX_POINTS data rows in total, so a million-event trace still
 * gives specs of a few hundred kilobytes. A chart with no data is returned with `spec: null` and a note.
 */

export const MAX_POINTS = 4000;
/** Rows per series before bucketing. */
export const MAX_SERIES_POINTS = 2000;
const MAX_LANES = 40;
const MAX_SITES = 8;
const MAX_PAGES = 6;
const TIME_BUCKETS = 200;
const WIDTH = 700;

export interface Chart {
  id: string;
  title: string;
  /** One sentence: what the chart shows. */
  caption: string;
  spec: TopLevelSpec | null;
  /** Why the chart is missing, when spec is null. */
  note?: string;
  /** Data rows inside the spec. */
  points: number;
}

/**
 * Colours say severity the way the HTML report does (red = certain error, amber = warning) and nothing else does:
 * a FOLL_LONGTERM pin is normal (io_uring, RDMA, VFIO), so pins are blues; a long plain-reference hold is a
 * warning, amber; a failed cma_alloc is an error, red. Categorical series (call sites, pgmaps) avoid red and amber.
 */
const RED = '#d62728';
const AMBER = '#e69f00';
const CLASS_DOMAIN = ['FOLL_LONGTERM pin', 'pin', 'long hold'];
const CLASS_RANGE = ['#0b4f8a', '#56b4e9', AMBER];
const NEUTRAL = ['#4e79a7', '#76b7b2', '#b07aa1', '#59a14f', '#9c755f', '#edc948', '#86bcb6', '#d4a6c8', '#8c8c8c'];
const OTHER_SITES = 'other call sites';
/** Time axis with few enough ticks that labels like 13.05 never touch. */
const TIME_AXIS = { format: '~f', tickCount: 8, labelOverlap: 'greedy', labelSeparation: 6 };

const CONFIG = {
  font: 'DejaVu Sans, Liberation Sans, Arial, sans-serif',
  title: { fontSize: 14, anchor: 'start', subtitleColor: '#555' },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 360, symbolOpacity: 1 },
  view: { stroke: '#ddd' },
} as const;

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

function base(title: string, subtitle: string): Record<string, unknown> {
  return { $schema: SCHEMA, title: { text: title, subtitle }, config: CONFIG, background: 'white' };
}

/** Number of data rows inside a spec (inline values and named datasets). */
export function dataPoints(spec: unknown): number {
  let n = 0;
  const walk = (v: unknown, key: string) => {
    if (Array.isArray(v)) {
      if (key === 'values') n += v.length;
      else for (const x of v) walk(x, '');
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (key === 'datasets' && Array.isArray(x)) n += x.length;
        else walk(x, k);
      }
    }
  };
  walk(spec, '');
  return n;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function num(v: unknown): number {
  return toNum(v) ?? 0;
}

/** Keeps at most `max` rows, evenly spaced (the last one kept), as a final guard after SQL aggregation. */
export function capRows<T>(rows: T[], max: number): T[] {
  if (rows.length <= max) return rows;
  const out: T[] = [];
  const step = rows.length / max;
  for (let i = 0; i < max; i++) out.push(rows[Math.min(rows.length - 1, Math.floor((i + 1) * step) - 1)]!);
  return out;
}

interface Window {
  t0: number;
  t1: number;
}

async function traceWindow(db: Db, traceId: number): Promise<Window> {
  const r = await rowOf(db, 'charts/trace-window.sql', { trace_id: traceId });
  const t0 = num(r?.first_ts_ns);
  return { t0, t1: Math.max(num(r?.last_ts_ns), t0 + 1) };
}

// ---------------------------------------------------------------- (1) lifetime histograms, decade bins

export interface LifetimeBin {
  class: string;
  /** floor(log10(duration in ns) * BINS_PER_DECADE), clamped to FIRST_BIN .. LAST_BIN. */
  bin: number;
  n: number;
}

/** Log-scaled bins, four per decade, from 1 us (10^3 ns) to 1000 s (10^12 ns): shorter durations count in the first, longer in the last. */
export const BINS_PER_DECADE = 4;
export const FIRST_BIN = 3 * BINS_PER_DECADE;
export const LAST_BIN = 12 * BINS_PER_DECADE - 1;

/** Every bin for every class (empty ones with n = 0), so the axis always spans 1 us .. 1000 s. */
function binValues(bins: LifetimeBin[], classes: string[]): { class: string; lo_s: number; hi_s: number; n: number }[] {
  const out: { class: string; lo_s: number; hi_s: number; n: number }[] = [];
  for (const c of classes)
    for (let k = FIRST_BIN; k <= LAST_BIN; k++) {
      const n = bins.filter((b) => b.class === c && b.bin === k).reduce((a, b) => a + b.n, 0);
      out.push({ class: c, lo_s: 10 ** (k / BINS_PER_DECADE) / 1e9, hi_s: 10 ** ((k + 1) / BINS_PER_DECADE) / 1e9, n });
    }
  return out;
}

/**
 * A lifetime histogram: one panel per class (so a few long holds are not lost under thousands of pins), x on a log
 * scale from 1 us to 1000 s with a tick per decade, y on a symlog scale (a bin of 2 stays visible next to one of 3000).
 */
function histogram(
  title: string,
  subtitle: string,
  values: { class: string; lo_s: number; hi_s: number; n: number }[],
  classes: string[],
  range: string[],
  what: { x: string; y: string; class: string },
): TopLevelSpec {
  return {
    ...base(title, subtitle),
    data: { values },
    facet: { row: { field: 'class', type: 'nominal', title: null, sort: classes, header: { labelAngle: 0, labelAlign: 'left', labelFontSize: 12 } } },
    spacing: 6,
    spec: {
      width: WIDTH - 90,
      height: 80,
      mark: { type: 'bar', stroke: 'white', strokeWidth: 0.5 },
      encoding: {
        x: {
          field: 'lo_s',
          type: 'quantitative',
          bin: { binned: true },
          scale: { type: 'log', domain: [10 ** (FIRST_BIN / BINS_PER_DECADE) / 1e9, 10 ** ((LAST_BIN + 1) / BINS_PER_DECADE) / 1e9] },
          axis: {
            grid: true,
            values: Array.from({ length: (LAST_BIN + 1 - FIRST_BIN) / BINS_PER_DECADE + 1 }, (_v, i) => 10 ** (FIRST_BIN / BINS_PER_DECADE + i) / 1e9),
            labelExpr:
              "datum.value >= 0.9999 ? format(datum.value, '~r') + ' s' : datum.value >= 0.0009999 ? format(datum.value * 1e3, '~r') + ' ms' : format(datum.value * 1e6, '~r') + ' µs'",
          },
          title: what.x,
        },
        x2: { field: 'hi_s' },
        y: { field: 'n', type: 'quantitative', scale: { type: 'symlog' }, title: what.y, axis: { values: [0, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7], labelExpr: "datum.value >= 1e6 ? (datum.value / 1e6) + 'M' : datum.value >= 1e3 ? (datum.value / 1e3) + 'k' : '' + datum.value" } },
        color: { field: 'class', type: 'nominal', scale: { domain: classes, range }, legend: null },
        tooltip: [
          { field: 'class', type: 'nominal', title: what.class },
          { field: 'lo_s', type: 'quantitative', title: 'from (s)', format: '.3~g' },
          { field: 'hi_s', type: 'quantitative', title: 'to (s)', format: '.3~g' },
          { field: 'n', type: 'quantitative', title: 'count' },
        ],
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as unknown as TopLevelSpec;
}

export async function lifetimeData(db: Db, traceId: number): Promise<LifetimeBin[]> {
  const rows = await rowsOf(db, 'charts/lifetimes.sql', { trace_id: traceId });
  return rows.map((r) => ({ class: String(r.class), bin: num(r.bin), n: num(r.n) }));
}

export function lifetimeChart(bins: LifetimeBin[]): Chart {
  const id = 'pin-lifetimes';
  const title = 'Pin and hold lifetimes';
  const caption =
    'How long pins (FOLL_PIN: light blue, FOLL_PIN|FOLL_LONGTERM: dark blue) and plain references held past the threshold (long holds, amber: a warning) were held: four log-scaled bins per decade from 1 µs to 1000 s (shorter in the first, longer in the last), one panel per kind, counts on a symlog scale.';
  if (!bins.length) return { id, title, caption, spec: null, note: 'No pins or long holds in this trace.', points: 0 };
  const total = (c: string) => bins.filter((b) => b.class === c).reduce((s, b) => s + b.n, 0);
  const classes = CLASS_DOMAIN.filter((c) => total(c) > 0);
  const values = binValues(bins, classes);
  const sub = `${total('pin') + total('FOLL_LONGTERM pin')} pins (${total('FOLL_LONGTERM pin')} FOLL_LONGTERM), ${total('long hold')} long holds; ${BINS_PER_DECADE} bins per decade`;
  const range = CLASS_RANGE.filter((_r, i) => total(CLASS_DOMAIN[i]!) > 0);
  const spec = histogram(title, sub, values, classes, range, { x: 'held for (log scale)', y: 'intervals', class: 'kind' });
  return { id, title, caption, spec, points: values.length };
}

// ---------------------------------------------------------------- (1b) page-allocator lifetimes

export async function kmemLifetimeData(db: Db, traceId: number): Promise<LifetimeBin[]> {
  const rows = await rowsOf(db, 'charts/kmem-lifetimes.sql', { trace_id: traceId });
  return rows.map((r) => ({ class: String(r.class), bin: num(r.bin), n: num(r.n) }));
}

/** Migratetypes in the order of the kernel's enum (docs/model.md §9); colours avoid red and amber (not severities). */
const MT_DOMAIN = ['UNMOVABLE', 'MOVABLE', 'RECLAIMABLE', 'HIGHATOMIC', 'RESERVE', 'CMA', 'ISOLATE', 'unknown'];

/** How long page-allocator pages lived (mm_page_alloc to its free), per migratetype, on log-scaled bins. */
export function kmemLifetimeChart(bins: LifetimeBin[]): Chart {
  const id = 'kmem-lifetimes';
  const title = 'Page lifetimes (page allocator)';
  const caption =
    'Time from the allocation (mm_page_alloc, or page_ref_set on kernels that print it) to the free of the same pages, for pages allocated and freed inside the capture, one panel per migratetype; four log-scaled bins per decade from 1 µs to 1000 s, counts on a symlog scale. Pages still alive at the end are not in it (see Pages at the window edges).';
  if (!bins.length) return { id, title, caption, spec: null, note: 'No page allocated and freed inside this trace.', points: 0 };
  const total = bins.reduce((s, b) => s + b.n, 0);
  const seen = [...new Set(bins.map((b) => b.class))];
  const classes = [...MT_DOMAIN.filter((c) => seen.includes(c)), ...seen.filter((c) => !MT_DOMAIN.includes(c))];
  const values = binValues(bins, classes);
  const range = classes.map((_c, i) => NEUTRAL[i % NEUTRAL.length]!);
  const spec = histogram(title, `${plural(total, 'page lifetime')} inside the window; ${BINS_PER_DECADE} bins per decade`, values, classes, range, {
    x: 'lifetime (log scale)',
    y: 'allocations',
    class: 'migratetype',
  });
  return { id, title, caption, spec, points: values.length };
}

// ---------------------------------------------------------------- (2) pin sessions: who held, who released

export interface SessionBar {
  /** The holder, "comm/pid". */
  lane: string;
  class: string;
  start_s: number;
  /** When the last reference was dropped, or the end of the trace when some are still held. */
  end_s: number;
  open: boolean;
  refs_taken: number;
  callsite: string;
  /** "kworker/u4:0 via io_ring_exit_work"; null while still held at the end. */
  releaser: string | null;
}

export interface SessionsData {
  sessions: SessionBar[];
  /** Holders in order of their first session. */
  lanes: string[];
  /** Sessions of the holders left out (more than MAX_LANES). */
  dropped: number;
  t0_s: number;
  t1_s: number;
}

/** Sessions (queries/sessions.sql with its defaults: the report's story), one bar each on its holder's lane. */
export async function sessionsData(db: Db, traceId: number): Promise<SessionsData> {
  const w = await traceWindow(db, traceId);
  const rows = (await runQuery(db, 'sessions', { trace_id: traceId })).rows as Row[];
  const all: SessionBar[] = rows.map((r) => {
    const open = r.end_ts_ns === null || r.end_ts_ns === undefined;
    const releaser = r.release_comm == null ? null : `${String(r.release_comm)}/${String(r.release_pid)}${r.release_via ? ` via ${String(r.release_via)}` : ''}`;
    const mapped = r.kind === 'hold' && num(r.explained) >= num(r.refs_taken);
    return {
      lane: `${String(r.holder_comm ?? '?')}/${String(r.holder_pid ?? '?')}`,
      class: r.kind === 'pin' ? (r.longterm ? 'FOLL_LONGTERM pin' : 'pin') : mapped ? MAPPED_HOLD : 'long hold',
      start_s: num(r.start_ts_ns) / 1e9,
      end_s: (open ? w.t1 : num(r.end_ts_ns)) / 1e9,
      open,
      refs_taken: num(r.refs_taken),
      callsite: String(r.callsite ?? r.holder_via ?? '?'),
      releaser: open ? null : releaser,
    };
  });
  const held = new Map<string, number>();
  for (const x of all) held.set(x.lane, (held.get(x.lane) ?? 0) + x.end_s - x.start_s);
  const kept = new Set([...held].sort((a, b) => b[1] - a[1]).slice(0, MAX_LANES).map(([l]) => l));
  const sessions = all.filter((x) => kept.has(x.lane));
  const first = new Map<string, number>();
  for (const x of sessions) first.set(x.lane, Math.min(first.get(x.lane) ?? Infinity, x.start_s));
  return { sessions, lanes: [...first].sort((a, b) => a[1] - b[1]).map(([l]) => l), dropped: all.length - sessions.length, t0_s: w.t0 / 1e9, t1_s: w.t1 / 1e9 };
}

/** Plain references a mapping explains (page cache, mapped pages): information, grey. */
const MAPPED_HOLD = 'hold of a mapped page';
/** Separates a holder from its row number in the y domain (a private-use character: comms cannot be trusted not to contain others). */
const ROW_SEP = '\ue000';
/** Sessions labelled at their bar end when there are at most this many (tooltips always). */
const MAX_LABELLED = 40;

export function sessionsChart(d: SessionsData): Chart {
  const id = 'pin-timeline';
  const title = 'Pin and reference sessions: who held, who released';
  const caption =
    'One bar per session (one holder, one call path, taken together: the sessions table), on the lane of its holder (comm/pid), from the first reference taken to the last dropped, labelled with the task that released it and how (system call or kworker work function); sessions still held at the end are drawn dashed and faded to the end of the trace.';
  if (!d.sessions.length) return { id, title, caption, spec: null, note: 'No pin or reference session held longer than the threshold in this trace.', points: 0 };
  const span = Math.max(d.t1_s - d.t0_s, 1e-9);
  const minW = span / 500;
  const labelled = d.sessions.length <= MAX_LABELLED;
  // Each session gets a row (slot) of its lane where neither its bar nor its label (above the bar, from its start;
  // right-aligned to its end when it would run past the trace end) meets another's.
  const slots = new Map<string, number[]>();
  const sessions = capRows(d.sessions, MAX_SERIES_POINTS)
    .slice()
    .sort((a, b) => a.start_s - b.start_s)
    .map((x) => {
      const label = x.open ? `${plural(x.refs_taken, 'ref')}, held at end` : `released by ${x.releaser ?? 'an unknown task'}`;
      const drawEnd = Math.max(x.end_s, x.start_s + minW);
      const w = labelled ? ((label.length * 6.2 + 6) * span) / WIDTH : 0;
      const right = x.start_s + w > d.t1_s;
      const from = right ? Math.min(x.start_s, drawEnd - w) : x.start_s;
      const to = Math.max(drawEnd, right ? drawEnd : x.start_s + w);
      const ends = slots.get(x.lane) ?? [];
      let slot = ends.findIndex((e) => e < from);
      if (slot < 0) slot = ends.push(to) - 1;
      else ends[slot] = to;
      slots.set(x.lane, ends);
      return {
        ...x,
        draw_end_s: drawEnd,
        row: `${x.lane}${ROW_SEP}${slot}`,
        label,
        label_right: right,
        released_by: x.open ? 'still held at the end of the trace' : `released by ${x.releaser ?? 'an unknown task'}`,
      };
    });
  const rows = d.lanes.flatMap((l) => Array.from({ length: slots.get(l)?.length ?? 0 }, (_v, i) => `${l}${ROW_SEP}${i}`));
  const domain = [...CLASS_DOMAIN, MAPPED_HOLD];
  const range = [...CLASS_RANGE, '#bab0ac'];
  const present = domain.map((c, i) => [c, range[i]!] as const).filter(([c]) => sessions.some((x) => x.class === c));
  const x = { field: 'start_s', type: 'quantitative', title: 'trace time (seconds)', scale: { domain: [d.t0_s, d.t1_s], nice: false, zero: false }, axis: TIME_AXIS };
  // One row per slot; the holder is named on its first row only.
  const y = {
    field: 'row',
    type: 'nominal',
    scale: { domain: rows, paddingOuter: 0.5 },
    title: 'holder (comm/pid)',
    axis: {
      labelLimit: 220,
      ticks: false,
      labelExpr: `test(regexp('${ROW_SEP}0$'), datum.value) ? replace(datum.value, regexp('${ROW_SEP}0$'), '') : ''`,
    },
  };
  const tooltip = [
    { field: 'lane', title: 'holder' },
    { field: 'class', title: 'kind' },
    { field: 'refs_taken', title: 'references' },
    { field: 'callsite', title: 'call site' },
    { field: 'start_s', title: 'from (s)', format: '.6f' },
    { field: 'end_s', title: 'to (s)', format: '.6f' },
    { field: 'released_by', title: 'release' },
  ];
  const bar = (open: boolean) => ({
    transform: [{ filter: open ? 'datum.open' : '!datum.open' }],
    mark: open
      ? { type: 'bar', height: 12, opacity: 0.45, stroke: '#333', strokeWidth: 1, strokeDash: [4, 2] }
      : { type: 'bar', height: 12, cornerRadius: 1 },
    encoding: {
      x,
      x2: { field: 'draw_end_s' },
      y,
      color: { field: 'class', type: 'nominal', scale: { domain: present.map((p) => p[0]), range: present.map((p) => p[1]) }, legend: { title: null, orient: 'top' } },
      tooltip,
    },
  });
  const text = (right: boolean) => ({
    transform: [{ filter: right ? 'datum.label_right' : '!datum.label_right' }],
    mark: { type: 'text', align: right ? 'right' : 'left', baseline: 'bottom', dy: -7, fontSize: 10.5, color: '#333' },
    encoding: { x: { field: right ? 'draw_end_s' : 'start_s', type: 'quantitative' }, y, text: { field: 'label' }, tooltip },
  });
  const open = sessions.filter((x) => x.open).length;
  const layer = [
    ...(sessions.length > open ? [bar(false)] : []),
    ...(open ? [bar(true)] : []),
    ...(labelled ? [false, true].filter((r) => sessions.some((x) => x.label_right === r)).map(text) : []),
  ];
  const subtitle =
    `${plural(d.sessions.length, 'session')} of ${plural(d.lanes.length, 'holder')}` +
    (open ? `, ${open} still held at the end` : '') +
    (d.dropped ? `; ${d.dropped} more of other holders not drawn` : '') +
    (labelled ? '' : '; releasers in the tooltips');
  const spec = {
    ...base(title, subtitle),
    width: WIDTH,
    height: Math.max(90, rows.length * 28),
    data: { values: sessions },
    layer,
  } as unknown as TopLevelSpec;
  return { id, title, caption, spec, points: sessions.length };
}

// ---------------------------------------------------------------- (2b) CMA allocations against the holds in CMA

export interface CmaData {
  lanes: string[];
  bars: { lane: string; class: string; start_s: number; end_s: number; n: number; refs: number; open: boolean; pfns: string }[];
  attempts: { start_s: number; end_s: number; outcome: string; label: string }[];
  failures: { lane: string; t_s: number; pfn: string; holder: string; outcome: string }[];
}

export async function cmaData(db: Db, traceId: number): Promise<CmaData> {
  const attempts = await rowsOf(db, 'charts/cma-attempts.sql', { trace_id: traceId });
  if (!attempts.length) return { lanes: [], bars: [], attempts: [], failures: [] };
  const laneRows = await rowsOf(db, 'charts/timeline-lanes.sql', { trace_id: traceId, max_lanes: MAX_LANES });
  const lanes = [...laneRows].sort((a, b) => num(a.first) - num(b.first)).map((r) => String(r.lane));
  const bars = !lanes.length ? [] : await rowsOf(db, 'charts/timeline-bars.sql', { trace_id: traceId, lanes: listValue(lanes), max_bars: MAX_SERIES_POINTS });
  const failures = await rowsOf(db, 'charts/cma-failures.sql', { trace_id: traceId, max_rows: MAX_SERIES_POINTS });
  const laneSet = new Set(lanes);
  return {
    lanes,
    bars: bars.map((r) => ({
      lane: String(r.lane),
      class: String(r.class),
      start_s: num(r.s) / 1e9,
      end_s: num(r.e) / 1e9,
      n: num(r.n),
      refs: num(r.refs),
      open: Boolean(r.open),
      pfns: String(r.pfns ?? ''),
    })),
    attempts: attempts.map((r) => {
      const outcome = r.succeeded === true ? 'cma_alloc succeeded' : r.succeeded === false ? 'cma_alloc failed' : 'cma_alloc (outcome unknown)';
      return {
        start_s: num(r.s) / 1e9,
        end_s: Math.max(num(r.e), num(r.s)) / 1e9,
        outcome,
        label: `cma_alloc ${r.request_count ?? '?'} pages from ${r.cma_name ?? '?'}: ${outcome.replace('cma_alloc ', '')}, ${num(r.busy_retries)} busy retries`,
      };
    }),
    failures: failures
      .filter((r) => laneSet.has(String(r.lane)))
      .map((r) => ({ lane: String(r.lane), t_s: num(r.t) / 1e9, pfn: hex(r.pfn), holder: `${r.holder_kind}: ${r.lane}`, outcome: 'range failed (busy)' })),
  };
}

export function cmaChart(d: CmaData): Chart {
  const id = 'cma-attempts';
  const title = 'CMA allocations against the references held in CMA';
  const caption =
    'cma_alloc calls shaded from start to finish (red: failed); one lane per holder task (comm/pid) of a pin or long hold on a CMA / ZONE_MOVABLE page, its references as bars; a cross where a range failed because of a page that holder kept busy.';
  if (!d.attempts.length) return { id, title, caption, spec: null, note: 'No cma_alloc call in this trace.', points: 0 };
  // Bars shorter than ~1 px would not show: draw them at least 1/500 of the shown time range (tooltips keep the truth).
  let lo = Infinity;
  let hi = -Infinity;
  for (const x of [...d.bars, ...d.attempts]) {
    lo = Math.min(lo, x.start_s);
    hi = Math.max(hi, x.end_s);
  }
  const minW = hi > lo ? (hi - lo) / 500 : 0;
  const bars = capRows(d.bars, MAX_SERIES_POINTS).map((b) => ({ ...b, draw_end_s: Math.max(b.end_s, b.start_s + minW) }));
  const attempts = capRows(d.attempts, 500);
  const failures = capRows(d.failures, Math.max(0, MAX_POINTS - bars.length - attempts.length));
  const lanes = d.lanes.length ? d.lanes : ['(no holder in CMA)'];
  // One legend for every layer, listing only what is drawn.
  const allDomain = [...CLASS_DOMAIN, 'cma_alloc failed', 'cma_alloc succeeded', 'cma_alloc (outcome unknown)', 'range failed (busy)'];
  const allRange = [...CLASS_RANGE, RED, '#2ca02c', '#7f7f7f', '#000000'];
  const present = new Set<string>([...bars.map((b) => b.class), ...attempts.map((a) => a.outcome), ...failures.map((f) => f.outcome)]);
  const keep = allDomain.map((v, i) => [v, allRange[i]!] as const).filter(([v]) => present.has(v));
  const color = { type: 'nominal', scale: { domain: keep.map((k) => k[0]), range: keep.map((k) => k[1]) }, legend: { title: null, orient: 'top', columns: 4 } };
  const x = { type: 'quantitative', title: 'trace time (seconds)', scale: { zero: false, nice: false }, axis: TIME_AXIS };
  const y = { field: 'lane', type: 'nominal', scale: { domain: lanes }, title: 'holder (comm/pid)', axis: { labelLimit: 220 } };
  const layer: unknown[] = [
    {
      data: { name: 'attempts' },
      mark: { type: 'rect', opacity: 0.28 },
      encoding: {
        x: { field: 'start_s', ...x },
        x2: { field: 'end_s' },
        color: { field: 'outcome', ...color },
        tooltip: [{ field: 'label', title: 'CMA' }, { field: 'start_s', title: 'start (s)', format: '.6f' }, { field: 'end_s', title: 'end (s)', format: '.6f' }],
      },
    },
    { data: { name: 'attempts' }, mark: { type: 'rule', strokeWidth: 1.5 }, encoding: { x: { field: 'start_s', ...x }, color: { field: 'outcome', ...color } } },
  ];
  if (bars.length)
    layer.push({
      data: { name: 'bars' },
      mark: { type: 'bar', cornerRadius: 1, height: 12 },
      encoding: {
        x: { field: 'start_s', ...x },
        x2: { field: 'draw_end_s' },
        y,
        color: { field: 'class', ...color },
        tooltip: [
          { field: 'lane', title: 'holder' },
          { field: 'class', title: 'kind' },
          { field: 'pfns', title: 'pfns' },
          { field: 'start_s', title: 'from (s)', format: '.6f' },
          { field: 'end_s', title: 'to (s)', format: '.6f' },
          { field: 'n', title: 'intervals' },
          { field: 'refs', title: 'references' },
          { field: 'open', title: 'held at end of trace' },
        ],
      },
    });
  if (failures.length)
    layer.push({
      data: { name: 'failures' },
      mark: { type: 'point', shape: 'cross', size: 90, filled: true },
      encoding: {
        x: { field: 't_s', ...x },
        y,
        color: { field: 'outcome', ...color },
        tooltip: [{ field: 'pfn', title: 'blocking pfn' }, { field: 'holder', title: 'holder' }, { field: 't_s', title: 'range failed at (s)', format: '.6f' }],
      },
    });
  const failed = d.attempts.filter((a) => a.outcome === 'cma_alloc failed').length;
  const subtitle =
    `${plural(d.attempts.length, 'cma_alloc call')} (${failed ? `${failed} failed` : 'none failed'}); ` +
    (d.lanes.length ? `${plural(d.lanes.length, 'holder')} with references in CMA` : 'no reference held in CMA') +
    (d.failures.length ? `, ${d.failures.length} blocked pfn x failed range` : '');
  const spec = {
    ...base(title, subtitle),
    width: WIDTH,
    height: Math.max(90, lanes.length * 30),
    datasets: { bars, attempts, failures },
    layer,
  } as unknown as TopLevelSpec;
  return { id, title, caption, spec, points: bars.length + attempts.length + failures.length };
}

// ---------------------------------------------------------------- (3) refcount / mapcount of suspicious pages

export interface RefcountPoint {
  page: string;
  t_s: number;
  series: 'refcount' | 'mapcount';
  value: number;
  event: string;
}

export async function refcountData(db: Db, traceId: number, pfns: number[]): Promise<{ points: RefcountPoint[]; semantics: string | null }> {
  const pages = [...new Set(pfns)].slice(0, MAX_PAGES);
  const semantics = ((await rowOf(db, 'charts/mapcount-semantics.sql', { trace_id: traceId }))?.m as string | null) ?? null;
  if (!pages.length) return { points: [], semantics };
  const perPage = Math.min(MAX_SERIES_POINTS, Math.floor(MAX_POINTS / 2 / pages.length));
  const points: RefcountPoint[] = [];
  for (const pfn of pages) {
    const rows = await rowsOf(db, 'charts/refcount-points.sql', { trace_id: traceId, pfn, per_page: perPage });
    const page = hex(pfn);
    for (const r of rows.slice(0, perPage)) {
      points.push({ page, t_s: num(r.ts) / 1e9, series: 'refcount', value: num(r.count), event: String(r.event) });
      if (r.mapcount !== null && r.mapcount !== undefined)
        points.push({ page, t_s: num(r.ts) / 1e9, series: 'mapcount', value: num(r.mapcount), event: String(r.event) });
    }
  }
  return { points, semantics };
}

export function refcountChart(d: { points: RefcountPoint[]; semantics: string | null }): Chart {
  const id = 'refcounts';
  const title = 'Refcount and mapcount of the suspicious pages';
  const caption = 'count= and mapcount= printed by page_ref events of the pages named in the findings (step lines; one row per page).';
  if (!d.points.length) return { id, title, caption, spec: null, note: 'No page named in a finding has page_ref events.', points: 0 };
  const values = capRows(d.points, MAX_POINTS);
  const pages = [...new Set(values.map((p) => p.page))];
  const mc = d.semantics === 'raw' ? 'raw _mapcount: -1 = unmapped' : d.semantics === 'page_mapcount' ? 'page_mapcount: 0 = unmapped' : 'as printed';
  const spec = {
    ...base(title, `${plural(pages.length, 'page')}; mapcount ${mc}`),
    data: { values },
    facet: { row: { field: 'page', type: 'nominal', title: null, sort: pages, header: { labelAngle: 0, labelAlign: 'left', labelFontSize: 12, labelFont: 'monospace' } } },
    spacing: 8,
    spec: {
      width: WIDTH - 80,
      height: 80,
      mark: { type: 'line', interpolate: 'step-after', point: values.length <= 400 },
      encoding: {
        x: { field: 't_s', type: 'quantitative', title: 'trace time (seconds)', scale: { zero: false, nice: false }, axis: TIME_AXIS },
        y: { field: 'value', type: 'quantitative', title: 'count', axis: { tickMinStep: 1 } },
        color: { field: 'series', type: 'nominal', scale: { domain: ['refcount', 'mapcount'], range: ['#1f77b4', '#9467bd'] }, legend: { title: null, orient: 'top' } },
        tooltip: [
          { field: 'page', title: 'pfn' },
          { field: 'series' },
          { field: 'value', title: 'value' },
          { field: 't_s', title: 'time (s)', format: '.6f' },
          { field: 'event' },
        ],
      },
    },
    resolve: { scale: { y: 'independent' } },
  } as unknown as TopLevelSpec;
  return { id, title, caption, spec, points: values.length };
}

// ---------------------------------------------------------------- (4) outstanding pages by call site

export interface OutstandingPoint {
  site: string;
  t_s: number;
  pages: number;
}

export async function outstandingData(db: Db, traceId: number): Promise<OutstandingPoint[]> {
  const w = await traceWindow(db, traceId);
  const rows = await rowsOf(db, 'charts/outstanding-pages.sql', {
    trace_id: traceId,
    t0: w.t0,
    span: w.t1 - w.t0,
    other_sites: OTHER_SITES,
    max_sites: MAX_SITES,
    buckets: TIME_BUCKETS,
  });
  const span = w.t1 - w.t0;
  // Each point is the count at the END of its bucket (drawn step-before, so it covers its own bucket); every
  // series starts from 0 at the start of the window (only pages allocated inside it are counted).
  const sites = [...new Set(rows.map((r) => String(r.site)))];
  return [
    ...sites.map((site) => ({ site, t_s: w.t0 / 1e9, pages: 0 })),
    ...rows.map((r) => ({ site: String(r.site), t_s: (w.t0 + ((num(r.b) + 1) * span) / TIME_BUCKETS) / 1e9, pages: num(r.pages) })),
  ];
}

export function outstandingChart(points: OutstandingPoint[]): Chart {
  const id = 'outstanding-pages';
  const title = 'Outstanding pages over time by call site';
  const caption = `Pages allocated inside the window and not yet freed (cumulative allocations - frees), stacked by allocating call site (top ${MAX_SITES}); ${TIME_BUCKETS} time buckets.`;
  if (!points.length || points.every((p) => p.pages === 0))
    return { id, title, caption, spec: null, note: 'No page allocated inside the capture window.', points: 0 };
  const peaks = new Map<string, number>();
  for (const p of points) peaks.set(p.site, Math.max(peaks.get(p.site) ?? 0, p.pages));
  // Sites that never have a page outstanding at a bucket end only clutter the legend.
  const values = capRows(points.filter((p) => (peaks.get(p.site) ?? 0) > 0), MAX_POINTS);
  for (const [s, v] of peaks) if (v <= 0) peaks.delete(s);
  // Largest first; the catch-all series last and grey.
  const order = [...peaks].sort((a, b) => Number(a[0] === OTHER_SITES) - Number(b[0] === OTHER_SITES) || b[1] - a[1]).map(([s]) => s);
  const range = order.map((s, i) => (s === OTHER_SITES ? '#bab0ac' : NEUTRAL[i % NEUTRAL.length]!));
  const spec = {
    ...base(title, `${order.length} call ${order.length === 1 ? 'site' : 'sites'}; end of each time bucket`),
    width: WIDTH,
    height: 240,
    data: { values: values.map((v) => ({ ...v, rank: order.indexOf(v.site) })) },
    mark: { type: 'area', interpolate: 'step-before', opacity: 0.85 },
    encoding: {
      x: { field: 't_s', type: 'quantitative', title: 'trace time (seconds)', scale: { zero: false, nice: false }, axis: TIME_AXIS },
      y: { field: 'pages', type: 'quantitative', stack: 'zero', title: 'outstanding pages (4 KiB)' },
      color: {
        field: 'site',
        type: 'nominal',
        sort: order,
        scale: { domain: order, range },
        legend: { title: 'allocating call site (the task when no stack was recorded)', titleLimit: 600, orient: 'bottom', columns: 2, labelLimit: 330 },
      },
      order: { field: 'rank', type: 'quantitative' },
      tooltip: [
        { field: 'site', title: 'call site' },
        { field: 't_s', title: 'time (s)', format: '.3f' },
        { field: 'pages', title: 'outstanding pages' },
      ],
    },
  } as unknown as TopLevelSpec;
  return { id, title, caption, spec, points: values.length };
}

// ---------------------------------------------------------------- (5) pgmap references

export interface PgmapPoint {
  pgmap: string;
  t_s: number;
  balance: number;
  what: string;
}

export async function pgmapData(db: Db, traceId: number): Promise<PgmapPoint[]> {
  const maps = await rowsOf(db, 'charts/pgmap-maps.sql', { trace_id: traceId });
  if (!maps.length) return [];
  const per = Math.min(MAX_SERIES_POINTS, Math.floor(MAX_POINTS / maps.length));
  const out: PgmapPoint[] = [];
  for (const m of maps) {
    const rows = await rowsOf(db, 'charts/pgmap-refs.sql', {
      trace_id: traceId,
      pgmap: m.pgmap === null ? null : String(m.pgmap),
      per: Math.max(1, per - 20),
    });
    const name = String(m.name);
    for (const r of rows.slice(0, per)) out.push({ pgmap: name, t_s: num(r.ts) / 1e9, balance: num(r.balance), what: String(r.what) });
  }
  return out;
}

/** The lifecycle events of a dev_pagemap, in the order they happen, as the kernel names them. */
const LIFECYCLE: Record<string, string> = {
  remap: 'memremap_pages',
  unmap: 'memunmap_pages',
  release: 'percpu_ref released',
  unmap_ret: 'memunmap_pages returned',
};

/**
 * Labels of the lifecycle events: one row per event kind at the top of the chart (so markers never pile up on the
 * balance line or the axis), events of one kind closer than 1/30 of the time range merged into one label (×N).
 */
export function lifecycleLabels(points: PgmapPoint[]): { what: string; t_s: number; label: string; row: number; right: boolean }[] {
  const lc = points.filter((p) => p.what in LIFECYCLE);
  if (!lc.length) return [];
  const ts = points.map((p) => p.t_s);
  const lo = Math.min(...ts);
  const span = Math.max(Math.max(...ts) - lo, 1e-9);
  const kinds = Object.keys(LIFECYCLE).filter((k) => lc.some((p) => p.what === k));
  const out: { what: string; t_s: number; label: string; row: number; right: boolean }[] = [];
  for (const [row, k] of kinds.entries()) {
    const evs = lc.filter((p) => p.what === k).sort((a, b) => a.t_s - b.t_s);
    for (let i = 0; i < evs.length; ) {
      let j = i;
      while (j + 1 < evs.length && evs[j + 1]!.t_s - evs[i]!.t_s < span / 30) j++;
      const n = j - i + 1;
      out.push({ what: k, t_s: evs[i]!.t_s, label: `${LIFECYCLE[k]}${n > 1 ? ` ×${n}` : ''}`, row, right: evs[i]!.t_s > lo + 0.7 * span });
      i = j + 1;
    }
  }
  return out;
}

export function pgmapChart(points: PgmapPoint[]): Chart {
  const id = 'pgmap-refs';
  const title = 'dev_pagemap references over time';
  const caption =
    'Running balance of references (zone_device_page_init / get_dev_pagemap minus free_zone_device_page) per dev_pagemap, named by its pfn range; ' +
    'lifecycle events (memremap_pages, memunmap_pages, the release of its last reference) as dashed rules labelled at the top, one row per kind; references left at unmap or release circled in red (an imbalance).';
  if (!points.length) return { id, title, caption, spec: null, note: 'No dev_pagemap reference events in this trace.', points: 0 };
  // Labels first (a few per lifecycle event kind), the series in what is left of the budget.
  const labels = lifecycleLabels(points).slice(0, 200);
  const values = capRows(points, MAX_POINTS - labels.length);
  const problem = (p: PgmapPoint) =>
    (p.what === 'unmap' || p.what === 'release') && p.balance !== 0 ? `${p.balance} ref${Math.abs(p.balance) === 1 ? '' : 's'} left at ${p.what}` : null;
  const maps = [...new Set(values.map((p) => p.pgmap))];
  const problems = values.filter((p) => problem(p)).length;
  const rows = Math.max(0, ...labels.map((l) => l.row + 1));
  const x = { field: 't_s', type: 'quantitative', title: 'trace time (seconds)', scale: { zero: false, nice: false }, axis: TIME_AXIS };
  const maxBal = Math.max(1, ...values.map((p) => p.balance));
  const minBal = Math.min(0, ...values.map((p) => p.balance));
  // Head room above the line for the label rows.
  const y = {
    field: 'balance',
    type: 'quantitative',
    title: 'outstanding references (gets - puts)',
    scale: { domain: [minBal, minBal + (maxBal - minBal) / (1 - Math.min(0.6, (rows * 14 + 8) / 220))], nice: false },
    axis: { tickMinStep: 1 },
  };
  const color = { field: 'pgmap', type: 'nominal', scale: { domain: maps, range: NEUTRAL }, legend: { title: 'dev_pagemap', orient: 'top', labelFont: 'monospace' } };
  const label = (right: boolean) => ({
    data: { name: 'labels' },
    transform: [{ filter: right ? 'datum.right' : '!datum.right' }, { calculate: '4 + 14 * datum.row', as: 'py' }],
    mark: { type: 'text', align: right ? 'right' : 'left', baseline: 'top', dx: right ? -3 : 3, fontSize: 10.5, color: '#333' },
    encoding: { x: { field: 't_s', type: 'quantitative' }, y: { field: 'py', type: 'quantitative', scale: null }, text: { field: 'label' } },
  });
  const spec = {
    ...base(title, `${plural(maps.length, 'dev_pagemap')}${problems ? `; ${plural(problems, 'imbalance')} at unmap / release` : ''}`),
    width: WIDTH,
    height: 220,
    datasets: {
      series: values.map((p) => ({ ...p, lifecycle: p.what in LIFECYCLE, event: LIFECYCLE[p.what] ?? p.what, problem: problem(p) })),
      labels,
    },
    layer: [
      ...(values.some((p) => p.what in LIFECYCLE)
        ? [
            {
              data: { name: 'series' },
              transform: [{ filter: 'datum.lifecycle' }],
              mark: { type: 'rule', strokeDash: [3, 3], strokeWidth: 1, opacity: 0.8 },
              encoding: {
                x: { field: 't_s', type: 'quantitative' },
                color,
                tooltip: [{ field: 'pgmap', title: 'dev_pagemap' }, { field: 'event' }, { field: 'balance', title: 'references out' }, { field: 't_s', title: 'time (s)', format: '.6f' }],
              },
            },
          ]
        : []),
      { data: { name: 'series' }, mark: { type: 'line', interpolate: 'step-after', strokeWidth: 1.5 }, encoding: { x, y, color } },
      // A layer whose filter leaves no row makes vega warn of an infinite extent: only the sides used.
      ...[false, true].filter((r) => labels.some((l) => l.right === r)).map(label),
      ...(problems
        ? [
            {
              data: { name: 'series' },
              transform: [{ filter: 'datum.problem' }],
              mark: { type: 'point', filled: false, size: 320, strokeWidth: 2, color: RED },
              encoding: { x: { field: 't_s', type: 'quantitative' }, y: { field: 'balance', type: 'quantitative' } },
            },
            {
              data: { name: 'series' },
              transform: [{ filter: 'datum.problem' }],
              mark: { type: 'text', align: 'right', dx: -12, dy: -12, color: RED, fontWeight: 'bold', fontSize: 12 },
              encoding: { x: { field: 't_s', type: 'quantitative' }, y: { field: 'balance', type: 'quantitative' }, text: { field: 'problem' } },
            },
          ]
        : []),
    ],
  } as unknown as TopLevelSpec;
  return { id, title, caption, spec, points: values.length + labels.length };
}

// ---------------------------------------------------------------- all charts, rendering

export async function buildCharts(db: Db, traceId: number, suspiciousPfns: number[]): Promise<Chart[]> {
  return [
    // First: the report draws it in its Allocator section, which comes before the Charts section.
    kmemLifetimeChart(await kmemLifetimeData(db, traceId)),
    lifetimeChart(await lifetimeData(db, traceId)),
    sessionsChart(await sessionsData(db, traceId)),
    cmaChart(await cmaData(db, traceId)),
    refcountChart(await refcountData(db, traceId, suspiciousPfns)),
    outstandingChart(await outstandingData(db, traceId)),
    pgmapChart(await pgmapData(db, traceId)),
  ];
}

/** SVG of a Vega-Lite spec, rendered headless (no DOM, no canvas, no network: data is inline). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** PNG of an SVG at `scale` (2 = sharp on a high-DPI screen and still small). */
export function svgToPng(svg: string, scale = 1.5): Buffer {
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans', monospaceFamily: 'DejaVu Sans Mono' },
  });
  return r.render().asPng();
}

/** Page frame numbers named in query rows (`pfn`, `folio_pfn`, `example_pfns`), in row order, for the refcount chart. */
export function pfnsOf(rows: Row[]): number[] {
  const out: number[] = [];
  const add = (v: unknown) => {
    const n = toNum(v);
    if (n !== null) out.push(n);
  };
  for (const r of rows)
    for (const [k, v] of Object.entries(r)) {
      if (k === 'pfn' || k === 'folio_pfn') add(v);
      else if ((k === 'example_pfns' || k === 'pfns') && Array.isArray(v)) v.forEach(add);
    }
  return out;
}
