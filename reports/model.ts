import type { Row } from '../db/duckdb.js';
import type { ReportData } from './data.js';
import { toNum } from './format.js';

/**
 * What every output shows in the same way: the verdict lines (one per finding kind, counted as `refscope check`
 * counts them, from the summary query), the severity of each finding row, and which columns of each query make a
 * compact table.
 *
 * Severity follows replay/anomalies.ts: red ('bad' / 'error') for what is certainly a kernel bug or blocks memory
 * (use after free, refcount underflow, pgmap imbalance, CMA blockers, leaked pages and pins whose holder exited);
 * amber ('warn' / 'warning') for what deserves a look but may be legitimate (long holds, pins still held when the
 * capture ended, model divergences, lost events, findings that are only uncertain).
 */

export interface VerdictLine {
  query: string;
  label: string;
  count: number;
  uncertain: number;
  /** bad: certain findings of an error kind; warn: worth a look (long pins, divergences, lost events, uncertain only); ok: none. */
  level: 'bad' | 'warn' | 'ok';
  /** Section of index.html the line links to (default q-<query>). */
  anchor?: string;
}

const VERDICT: { query: string; column: string; label: string; problem: boolean }[] = [
  { query: 'cma-blockers', column: 'cma_blockers', label: 'CMA allocation blockers', problem: true },
  { query: 'leaks', column: 'leaks', label: 'leaked pages', problem: true },
  { query: 'pin-leaks', column: 'pin_leaks', label: 'pins never released', problem: true },
  { query: 'use-after-free', column: 'use_after_free', label: 'use-after-free / refcount errors', problem: true },
  { query: 'pgmap-imbalance', column: 'pgmap_imbalance', label: 'dev_pagemap imbalances', problem: true },
  { query: 'long-pins', column: 'long_pins', label: 'pins / refs held > 1 s', problem: false },
  { query: 'divergence', column: 'divergences', label: 'model divergences', problem: false },
];

export function verdictLines(data: ReportData): VerdictLine[] {
  const summary = data.queries.find((q) => q.name === 'summary')?.rows.find((r) => toNum(r.trace_id) === data.traceId);
  const out: VerdictLine[] = [];
  for (const v of VERDICT) {
    const q = data.queries.find((x) => x.name === v.query);
    if (!q && !summary) continue;
    const fromSummary = summary ? toNum(summary[v.column]) : null;
    const count = fromSummary ?? (q ? divergenceCount(q.name, q.rows) : 0);
    const uncertain = summary ? (toNum(summary[`${v.column}_uncertain`]) ?? 0) : 0;
    // Red only when a certain row is an error (rowSeverity): e.g. a pin still held at the end is one only when its
    // holder exited, a CMA blocker only when the call failed rather than succeeded after retries.
    const problem = v.problem && (!q || q.error !== undefined || q.rows.some((r) => r.certain !== false && r.uncertain !== true && rowSeverity(v.query, r) === 'error'));
    const level = count > 0 ? (problem ? 'bad' : 'warn') : uncertain > 0 ? 'warn' : 'ok';
    out.push({ query: v.query, label: v.label, count, uncertain, level });
  }
  // Every anomaly kind, including those no query lists (e.g. longterm_pin_in_cma): certain errors count as problems.
  const an = data.anomalies.rows;
  const certain = an.filter((r) => r.certain === true).length;
  const errors = an.filter((r) => r.certain === true && r.severity === 'error').length;
  out.push({
    query: 'anomalies',
    label: 'replay anomalies (all kinds)',
    count: certain,
    uncertain: an.length - certain,
    level: errors > 0 ? 'bad' : an.length > 0 ? 'warn' : 'ok',
  });
  // Lost events make everything near them uncertain: said up front, not only in the trace facts.
  const lost = toNum(data.trace.lost_events) ?? 0;
  const markers = toNum(data.trace.lost_markers) ?? 0;
  out.push({ query: 'lost-events', anchor: 'summary', label: 'events lost by the tracer', count: lost, uncertain: 0, level: lost > 0 || markers > 0 ? 'warn' : 'ok' });
  return out;
}

/** "2 kinds of problem found, 1 warning" / "no problem found". */
export function verdictTitle(lines: VerdictLine[]): string {
  const bad = lines.filter((l) => l.level === 'bad').length;
  const warn = lines.filter((l) => l.level === 'warn').length;
  const head = bad ? `${bad} kind${bad > 1 ? 's' : ''} of problem found` : 'no problem found';
  return head + (warn ? `, ${warn} warning${warn > 1 ? 's' : ''}` : '');
}

/** Severity of one finding row, as the verdict line of its query would colour it; null for rows that are not problems. */
export function rowSeverity(query: string, r: Row): 'error' | 'warning' | null {
  if (r.severity === 'error' || r.severity === 'warning') return r.severity;
  switch (query) {
    case 'cma-blockers':
      return r.succeeded === false || r.what === 'longterm_migrate_failed' ? 'error' : 'warning';
    case 'leaks':
    case 'use-after-free':
      return 'error';
    case 'pgmap-imbalance':
      return r.problems ? 'error' : null;
    case 'pin-leaks':
      return r.holder_exited === true ? 'error' : 'warning';
    case 'long-pins':
    case 'divergence':
      return 'warning';
    default:
      return null;
  }
}

function divergenceCount(name: string, rows: Row[]): number {
  return name === 'divergence' ? rows.filter((r) => r.what !== 'lost').length : rows.length;
}

/** Compact columns per query, most telling first (for the HTML and Markdown tables; all columns go to JSON). */
const COLUMNS: Record<string, { html: string[]; md: string[] }> = {
  'cma-blockers': {
    html: ['what', 'cma_name', 'request_count', 'succeeded', 'busy_retries', 'pfn', 'is_fin_pfn', 'ref_type', 'refs', 'holder_comm', 'holder_pid', 'since_ts_ns', 'released_ts_ns', 'callsite', 'nr_failed', 'certain'],
    md: ['pfn', 'ref_type', 'refs', 'holder_comm', 'holder_pid', 'since_ts_ns', 'callsite'],
  },
  leaks: {
    html: ['grouping', 'callsite', 'pages', 'bytes', 'refs_outstanding', 'holders', 'first_seen_ns', 'last_seen_ns', 'example_pfns', 'uncertain'],
    md: ['grouping', 'callsite', 'pages', 'refs_outstanding', 'holders', 'example_pfns'],
  },
  'pin-leaks': {
    html: ['holder_comm', 'holder_pid', 'callsite', 'pins', 'refs', 'pages', 'longterm_pins', 'cma_or_movable_pins', 'first_pin_ns', 'max_duration_ns', 'holder_exited', 'example_pfns', 'certain'],
    md: ['holder_comm', 'holder_pid', 'callsite', 'pins', 'pages', 'longterm_pins', 'example_pfns'],
  },
  'use-after-free': {
    html: ['kind', 'severity', 'pfn', 'ts_ns', 'comm', 'pid', 'event', 'callsite', 'detail', 'certain'],
    md: ['kind', 'pfn', 'ts_ns', 'comm', 'pid', 'detail'],
  },
  'pgmap-imbalance': {
    html: ['pgmap', 'pfn_start', 'pfn_end', 'gets', 'puts', 'outstanding_end', 'outstanding_at_unmap', 'puts_without_get', 'freed_without_put', 'problems', 'certain'],
    md: ['pgmap', 'gets', 'puts', 'outstanding_end', 'outstanding_at_unmap', 'problems'],
  },
  'long-pins': {
    html: ['priority', 'kind', 'pfn', 'refs', 'holder_comm', 'holder_pid', 'start_ts_ns', 'duration_ns', 'held_to_end', 'longterm', 'foll_get', 'mt_name', 'in_cma', 'longterm_in_cma', 'release_comm', 'callsite', 'uncertain'],
    md: ['priority', 'kind', 'pfn', 'holder_comm', 'holder_pid', 'duration_ns', 'longterm', 'mt_name', 'callsite'],
  },
  divergence: {
    html: ['what', 'ts_ns', 'cpu', 'comm', 'pid', 'pfn', 'event', 'expected', 'printed', 'delta', 'explanation', 'lost', 'line_no'],
    md: ['what', 'ts_ns', 'pfn', 'event', 'expected', 'printed', 'explanation', 'lost'],
  },
  anomalies: {
    html: ['kind', 'severity', 'certain', 'pfn', 'ts_ns', 'comm', 'pid', 'pgmap', 'callsite', 'detail'],
    md: ['kind', 'severity', 'pfn', 'ts_ns', 'comm', 'detail'],
  },
  'top-callers': {
    html: ['callsite', 'pages_outstanding', 'bytes_outstanding', 'pages_allocated', 'holds_open', 'hold_refs_outstanding', 'pins_open', 'pin_refs_outstanding', 'pins', 'pin_seconds', 'holds', 'hold_seconds', 'stacks'],
    md: ['callsite', 'pages_outstanding', 'pages_allocated', 'pins_open', 'pins', 'pin_seconds', 'holds'],
  },
};

/** Columns to show for a query: the preferred ones that exist and are not NULL everywhere, else the first few. */
export function tableColumns(query: string, rows: Row[], kind: 'html' | 'md'): string[] {
  const present = (c: string) => rows.some((r) => r[c] !== null && r[c] !== undefined);
  const pref = COLUMNS[query]?.[kind];
  if (pref) {
    const cols = pref.filter((c) => rows.some((r) => c in r) && present(c));
    if (cols.length) return cols;
  }
  const all = rows.length ? Object.keys(rows[0]!) : [];
  return all.filter((c) => c !== 'trace_id' && c !== 'stack' && present(c)).slice(0, kind === 'md' ? 7 : 14);
}
