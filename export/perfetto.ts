import { renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Db } from '../db/duckdb.js';
import { rowOf, rowsOf } from '../queries/statements.js';
import { hex, toNum } from '../reports/format.js';

/**
 * `refscope export --perfetto FILE`: pin intervals, long holds, page lifetimes and CMA allocations of one trace as
 * Chrome trace-event JSON ({"traceEvents": [...]}), which ui.perfetto.dev and chrome://tracing open.
 *
 *  - process "CMA allocations": one thread per CMA area, a complete ('X') slice per cma_alloc / cma_release, an
 *    instant ('i') per failed range;
 *  - one process per holder task ("comm (pid N)"): one thread per pfn, a slice per pin or hold. Intervals that
 *    overlap on the same pfn go to extra threads ("pfn 0x7dc00 #2"), so slices on a thread never overlap;
 *  - process "page lifetimes": one thread per pfn, a slice per lifetime (allocation .. free, or the window edge),
 *    only for pages that carry a pin, a hold, a CMA blocker or an anomaly, at most `maxPages`.
 * Timestamps are trace time in µs (ts_ns / 1000), so they read the same as the trace. All strings (comm, area
 * names) reach the file through JSON.stringify only. The rows come from the statements of queries/export/.
 */

export interface PerfettoOptions {
  /** Page lifetimes exported at most (default 500). */
  maxPages?: number;
  /** Pins + holds exported at most (default 20000): never-released and CMA ones first, then the longest. */
  maxIntervals?: number;
}

export interface TraceEvent {
  name: string;
  ph: 'X' | 'i' | 'M';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  s?: 't' | 'p' | 'g';
  args?: Record<string, unknown>;
}

export interface PerfettoTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms' | 'ns';
  otherData: Record<string, string | number>;
}

const PID_CMA = 1;
const PID_PAGES = 2;
const PID_HOLDERS = 100;

const us = (ns: unknown) => (toNum(ns) ?? 0) / 1000;

function meta(name: 'process_name' | 'thread_name' | 'process_sort_index' | 'thread_sort_index', pid: number, tid: number, value: string | number): TraceEvent {
  return { name, ph: 'M', pid, tid, args: name.endsWith('_name') ? { name: value } : { sort_index: value } };
}

function jsonSafe(v: unknown): unknown {
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  return v;
}

function args(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) out[k] = jsonSafe(v);
  return out;
}

/** Greedy lane assignment: the first lane whose last slice ended at or before `start`. */
class Lanes {
  private ends: number[] = [];
  take(start: number, end: number): number {
    let i = this.ends.findIndex((e) => e <= start);
    if (i < 0) {
      i = this.ends.length;
      this.ends.push(end);
    } else this.ends[i] = end;
    return i;
  }
}

export async function buildPerfetto(db: Db, traceId: number, opts: PerfettoOptions = {}): Promise<PerfettoTrace> {
  const maxPages = opts.maxPages ?? 500;
  const maxIntervals = opts.maxIntervals ?? 20000;
  const t = await rowOf(db, 'export/perfetto-trace.sql', { trace_id: traceId });
  if (!t) throw new Error(`no trace ${traceId}`);
  const t0 = toNum(t.first_ts_ns) ?? 0;
  const t1 = toNum(t.last_ts_ns) ?? t0;
  const ev: TraceEvent[] = [];

  // ---- CMA allocations
  const attempts = await rowsOf(db, 'export/perfetto-cma-attempts.sql', { trace_id: traceId });
  if (attempts.length) {
    ev.push(meta('process_name', PID_CMA, 0, 'CMA allocations'), meta('process_sort_index', PID_CMA, 0, 0));
    const areas = new Map<string, number>();
    const area = (n: unknown) => {
      const k = n === null || n === undefined ? '(unknown area)' : String(n);
      let tid = areas.get(k);
      if (tid === undefined) {
        tid = areas.size + 1;
        areas.set(k, tid);
        ev.push(meta('thread_name', PID_CMA, tid, `cma area ${k}`));
      }
      return tid;
    };
    for (const a of attempts) {
      const start = toNum(a.start_ts_ns) ?? t0;
      const end = toNum(a.end_ts_ns) ?? (a.kind === 'release' ? start : t1);
      const outcome = a.kind === 'release' ? 'release' : a.succeeded === true ? 'ok' : a.succeeded === false ? 'FAILED' : 'unfinished';
      ev.push({
        name: a.kind === 'release' ? `cma_release ${a.request_count ?? '?'} pages` : `cma_${a.kind} ${a.request_count ?? '?'} pages: ${outcome}`,
        cat: 'cma',
        ph: 'X',
        ts: us(start),
        dur: Math.max(0, (end - start) / 1000),
        pid: PID_CMA,
        tid: area(a.cma_name),
        args: args({
          attempt_id: a.attempt_id,
          cma_name: a.cma_name,
          task: `${a.comm ?? '?'} (pid ${a.pid ?? '?'})`,
          pfn: a.pfn === null ? null : hex(a.pfn),
          busy_retries: a.busy_retries,
          ranges_tried: a.ranges_tried,
          failed_ranges: a.failed_ranges,
          migrated: a.migrated,
          migrate_failed: a.migrate_failed,
          errorno: a.errorno,
          succeeded: a.succeeded,
          blockers: a.blockers,
        }),
      });
    }
    const ranges = await rowsOf(db, 'export/perfetto-cma-ranges.sql', { trace_id: traceId });
    for (const r of ranges)
      ev.push({
        name: 'range failed',
        cat: 'cma',
        ph: 'i',
        s: 't',
        ts: us(r.ts),
        pid: PID_CMA,
        tid: area(r.cma_name),
        args: args({
          attempt_id: r.attempt_id,
          range: `${hex(r.range_start)}..${hex(r.range_end)}`,
          blocking_pfns: Array.isArray(r.pfns) ? r.pfns.slice(0, 32).map(hex).join(', ') : null,
        }),
      });
  }

  // ---- pins and holds, one process per holder
  const intervals = await rowsOf(db, 'export/perfetto-intervals.sql', { trace_id: traceId, max_intervals: Math.max(0, Math.floor(maxIntervals)) });
  intervals.sort((a, b) => (toNum(a.start_ts_ns) ?? 0) - (toNum(b.start_ts_ns) ?? 0));
  const holders = new Map<string, { pid: number; threads: Map<string, { lanes: Lanes; tids: number[] }>; nextTid: number }>();
  for (const iv of intervals) {
    const key = `${iv.holder_comm ?? '?'}\u0000${iv.holder_pid ?? '?'}`;
    let h = holders.get(key);
    if (!h) {
      h = { pid: PID_HOLDERS + holders.size, threads: new Map(), nextTid: 1 };
      holders.set(key, h);
      ev.push(meta('process_name', h.pid, 0, `${iv.holder_comm ?? '?'} (pid ${iv.holder_pid ?? '?'}): pins and holds`));
      ev.push(meta('process_sort_index', h.pid, 0, 10 + holders.size));
    }
    const pfn = hex(iv.pfn);
    let th = h.threads.get(pfn);
    if (!th) {
      th = { lanes: new Lanes(), tids: [] };
      h.threads.set(pfn, th);
    }
    const start = toNum(iv.start_ts_ns) ?? t0;
    const end = toNum(iv.end_ts_ns) ?? start + (toNum(iv.duration_ns) ?? 0);
    const lane = th.lanes.take(start, end);
    if (lane >= th.tids.length) {
      const tid = h.nextTid++;
      th.tids.push(tid);
      ev.push(meta('thread_name', h.pid, tid, lane ? `pfn ${pfn} #${lane + 1}` : `pfn ${pfn}`));
      ev.push(meta('thread_sort_index', h.pid, tid, toNum(iv.pfn) ?? 0));
    }
    const name =
      iv.kind === 'pin'
        ? iv.longterm
          ? 'FOLL_PIN|FOLL_LONGTERM pin'
          : 'FOLL_PIN pin'
        : iv.source === 'gup' || ((toNum(iv.gup_flags) ?? 0) & 4) !== 0
          ? 'hold (FOLL_GET)'
          : 'hold (get)';
    ev.push({
      name: iv.end_ts_ns === null ? `${name}, never released` : name,
      cat: String(iv.kind),
      ph: 'X',
      ts: us(start),
      dur: Math.max(0, (end - start) / 1000),
      pid: h.pid,
      tid: th.tids[lane]!,
      args: args({
        id: iv.id,
        pfn,
        refs: iv.refs,
        holder: `${iv.holder_comm ?? '?'} (pid ${iv.holder_pid ?? '?'})`,
        released_by: iv.release_pid === null ? null : `${iv.release_comm ?? '?'} (pid ${iv.release_pid})`,
        held_to_end: iv.end_ts_ns === null,
        gup_flags: iv.gup_flags === null ? null : hex(iv.gup_flags),
        in_cma: iv.in_cma,
        uncertain: iv.uncertain,
        source: iv.source as string | null,
      }),
    });
  }

  // ---- page lifetimes of pages that matter
  const pages = await rowsOf(db, 'export/perfetto-pages.sql', { trace_id: traceId, max_pages: Math.max(0, Math.floor(maxPages)) });
  if (pages.length) {
    ev.push(meta('process_name', PID_PAGES, 0, 'page lifetimes (pages with pins, holds or findings)'), meta('process_sort_index', PID_PAGES, 0, 1));
    const tids = new Map<string, number>();
    for (const p of pages) {
      const pfn = hex(p.pfn);
      let tid = tids.get(pfn);
      if (tid === undefined) {
        tid = tids.size + 1;
        tids.set(pfn, tid);
        ev.push(meta('thread_name', PID_PAGES, tid, `pfn ${pfn}`));
        ev.push(meta('thread_sort_index', PID_PAGES, tid, toNum(p.pfn) ?? 0));
      }
      const start = toNum(p.alloc_ts_ns) ?? t0;
      const end = toNum(p.free_ts_ns) ?? t1;
      ev.push({
        name: `page ${pfn}${p.order ? ` order ${p.order}` : ''}${p.end_edge ? ' (alive at end)' : ''}`,
        cat: 'page',
        ph: 'X',
        ts: us(start),
        dur: Math.max(0, (end - start) / 1000),
        pid: PID_PAGES,
        tid,
        args: args({
          allocated_by: p.alloc_ts_ns === null ? 'before the capture' : `${p.alloc_comm ?? '?'} (pid ${p.alloc_pid ?? '?'}) ${p.alloc_event ?? ''}`.trim(),
          freed_by: p.free_ts_ns === null ? 'after the capture' : `${p.free_comm ?? '?'} (pid ${p.free_pid ?? '?'}) ${p.free_event ?? ''}`.trim(),
          refcount_end: p.refcount_end,
          refcount_max: p.refcount_max,
          pins_end: p.pins_end,
          holds_end: p.holds_end,
          in_cma: p.in_cma,
          zone_device: p.zone_device,
          uncertain: p.uncertain,
        }),
      });
    }
  }
  return {
    traceEvents: ev,
    displayTimeUnit: 'ms',
    otherData: { producer: 'refscope', trace_id: traceId, source: String(t.source) },
  };
}

export async function writePerfetto(db: Db, traceId: number, file: string, opts: PerfettoOptions = {}): Promise<{ file: string; events: number }> {
  const trace = await buildPerfetto(db, traceId, opts);
  // Written beside the target and renamed: a killed export leaves the old file or the new one, never half of one.
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, JSON.stringify(trace) + '\n');
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return { file, events: trace.traceEvents.length };
}
