import type { Row } from '../db/duckdb.js';
import { matches } from '../queries/runner.js';
import type { QueryInfo, ReportData } from './data.js';
import { toNum } from './format.js';

/**
 * What every output shows in the same way: the verdict lines (one per finding kind, counted as `refscope check`
 * counts them, from the summary query), the severity of each finding row, and which columns of each query make a
 * compact table. All three are read from the query files' headers (@verdict, @context, @severity, @columns).
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
  /** What the count leaves out, in refscope's words (e.g. loss markers that print no count). */
  note?: string;
}

export function verdictLines(data: ReportData): VerdictLine[] {
  const summary = data.queries.find((q) => q.name === 'summary')?.rows.find((r) => toNum(r.trace_id) === data.traceId);
  const out: VerdictLine[] = [];
  for (const d of data.library) {
    const v = d.verdict;
    if (!v) continue;
    const q = data.queries.find((x) => x.name === d.name);
    if (!q && !summary) continue;
    const fromSummary = summary ? toNum(summary[v.column]) : null;
    const context = d.context;
    const count = fromSummary ?? (q ? (context ? q.rows.filter((r) => !matches(context, r)).length : q.rows.length) : 0);
    const uncertain = summary ? (toNum(summary[`${v.column}_uncertain`]) ?? 0) : 0;
    // Red only when a certain row is an error (rowSeverity): e.g. a pin still held at the end is one only when its
    // holder exited, a CMA blocker only when the call failed rather than succeeded after retries.
    const problem =
      v.level === 'error' &&
      (!q || q.error !== undefined || q.rows.some((r) => r.certain === true && rowSeverity(q, r) === 'error'));
    const level = count > 0 ? (problem ? 'bad' : 'warn') : uncertain > 0 ? 'warn' : 'ok';
    out.push({ query: d.name, label: v.label, count, uncertain, level });
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
  // trace-cmd's `CPU:N [EVENTS DROPPED]` says events were lost without saying how many: the count is a lower bound.
  const uncounted = toNum(data.trace.lost_markers_uncounted) ?? 0;
  out.push({
    query: 'lost-events',
    anchor: 'summary',
    label: 'events lost by the tracer',
    count: lost,
    uncertain: 0,
    level: lost > 0 || markers > 0 ? 'warn' : 'ok',
    ...(uncounted > 0 ? { note: `and ${uncounted} loss marker${uncounted === 1 ? '' : 's'} without a count` } : {}),
  });
  return out;
}

/**
 * The references still held when the capture ended (summary's outstanding_* columns, outstanding.sql), as one
 * sentence of information for the verdict area: "N references outstanding at the end of the capture (held by
 * ...)". Never a finding by itself (docs/model.md §15); null when there are none or the trace was not replayed.
 */
export function outstandingSentence(data: ReportData): string | null {
  const summary = data.queries.find((q) => q.name === 'summary')?.rows.find((r) => toNum(r.trace_id) === data.traceId);
  if (!summary) return null;
  const pins = toNum(summary.outstanding_pins) ?? 0;
  const holds = toNum(summary.outstanding_holds) ?? 0;
  const pgmap = toNum(summary.outstanding_pgmap_refs) ?? 0;
  const total = pins + holds + pgmap;
  if (total === 0) return null;
  const exited = toNum(summary.outstanding_exited) ?? 0;
  const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
  const parts = [
    pins ? plural(pins, 'pin', 'pins') : '',
    holds ? plural(holds, 'plain reference', 'plain references') : '',
    pgmap ? plural(pgmap, 'pgmap reference', 'pgmap references') : '',
  ].filter(Boolean);
  const named = typeof summary.outstanding_holders === 'string' ? summary.outstanding_holders : '';
  // The summary names the top 3 holders with their counts: say when others hold the rest.
  const shown = [...named.matchAll(/\((\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
  const holders = named ? ` (held by ${named}${shown < total ? ', and others' : ''})` : '';
  return (
    `${plural(total, 'reference', 'references')} outstanding at the end of the capture${holders}: ${parts.join(', ')}` +
    (exited ? `; ${exited} of them held by processes that exited (pins and pgmap references among them are leaks, listed above)` : '') +
    '. Information: a capture ends while pages are in use.'
  );
}

/** "2 kinds of problem found, 1 warning" / "no problem found". */
export function verdictTitle(lines: VerdictLine[]): string {
  const bad = lines.filter((l) => l.level === 'bad').length;
  const warn = lines.filter((l) => l.level === 'warn').length;
  const head = bad ? `${bad} kind${bad > 1 ? 's' : ''} of problem found` : 'no problem found';
  return head + (warn ? `, ${warn} warning${warn > 1 ? 's' : ''}` : '');
}

/** Severity of one finding row, as the verdict line of its query would colour it; null for rows that are not problems. */
export function rowSeverity(q: Pick<QueryInfo, 'severity'>, r: Row): 'error' | 'warning' | null {
  if (r.severity === 'error' || r.severity === 'warning') return r.severity;
  const s = q.severity;
  if (!s) return null;
  return s.when ? (matches(s.when, r) ? s.level : s.otherwise) : s.level;
}

/**
 * Columns that say how far a row can be trusted (issue #18): how its holder is known ('exact' / 'inferred' /
 * 'ambiguous') and, when ambiguous, the other possible holders. Every table of a query that has them shows them,
 * whatever its @columns list, so a guess never reads as a fact.
 */
export const TRUST_COLUMNS = ['attribution', 'candidates'] as const;

/** The query whose rows are the references still held at the end of the capture (outstandingSentence's table). */
export const OUTSTANDING_QUERY = 'outstanding';

/** tableColumns, then the trust columns the rows carry (not NULL everywhere) that it left out. */
export function trustedColumns(q: Pick<QueryInfo, 'show'>, rows: Row[], kind: 'html' | 'md'): string[] {
  const cols = tableColumns(q, rows, kind);
  const extra = TRUST_COLUMNS.filter((c) => !cols.includes(c) && rows.some((r) => r[c] !== null && r[c] !== undefined));
  return [...cols, ...extra];
}

/** Columns to show for a query: the preferred ones that exist and are not NULL everywhere, else the first few. */
export function tableColumns(q: Pick<QueryInfo, 'show'>, rows: Row[], kind: 'html' | 'md'): string[] {
  const present = (c: string) => rows.some((r) => r[c] !== null && r[c] !== undefined);
  const pref = q.show[kind];
  if (pref) {
    const cols = pref.filter((c) => rows.some((r) => c in r) && present(c));
    if (cols.length) return cols;
  }
  const all = rows.length ? Object.keys(rows[0]!) : [];
  return all.filter((c) => c !== 'trace_id' && c !== 'stack' && present(c)).slice(0, kind === 'md' ? 7 : 14);
}
