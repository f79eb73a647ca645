import type { Db } from '../db/duckdb.js';
import { listQueries, matches, QueryError, runQuery, type QueryDef, type ResultRow, type Value } from './runner.js';
import { statement } from './statements.js';

/**
 * `refscope diff A B`: the findings of two replayed traces (before / after a patch) matched by an identity that
 * survives a reboot, and per call site the change in pins, holds, leaks, CMA blocks and pgmap balance
 * (docs/diff.md). Findings are the rows of the library's @finding queries with their default parameters; nothing
 * here re-derives them. pfns, pids, stack ids and pgmap pointers differ between boots, so a finding's identity is
 * its query, its sub-kind, the holder's comm, the call site (`stacks.callsite`) and its certainty.
 */

export interface DiffSide {
  db: string;
  trace_id: number;
  source: string;
}

export type FindingStatus = 'new' | 'fixed' | 'unchanged';

export interface FindingDiff {
  /** Query name (leaks, pin-leaks, cma-blockers, ...). */
  kind: string;
  /** The row's what / kind / grouping / problems column, when the query has one. */
  sub: string | null;
  comm: string | null;
  callsite: string | null;
  certain: boolean;
  /** `refscope check` gates this kind (@gate). */
  gated: boolean;
  /** Rows of the query with this identity in A and in B. */
  count_a: number;
  count_b: number;
  status: FindingStatus;
}

/** Per call site counts (queries/diff/callsites.sql, plus the finding rows that name the call site). */
export const CALLSITE_COUNTS = [
  'pins', 'pin_refs', 'pins_open', 'holds', 'hold_refs', 'holds_open', 'leaked_pages', 'leaked_pins', 'cma_blocks',
  'pgmap_gets', 'pgmap_puts', 'pgmap_outstanding',
] as const;
export type CallsiteCount = (typeof CALLSITE_COUNTS)[number];
export type Counts = Record<CallsiteCount, number>;

export interface CallsiteDiff {
  callsite: string;
  a: Counts;
  b: Counts;
  /** b - a. */
  delta: Counts;
}

export interface DiffResult {
  a: DiffSide;
  b: DiffSide;
  findings: FindingDiff[];
  callsites: CallsiteDiff[];
  /** Identities of gated kinds, certain, in B and not in A: what --fail-on-new gates on. */
  new_certain: number;
}

/** The call site of rows without a stack, in the call-site table. */
export const NO_STACK = '(no stack)';

const num = (v: Value | undefined): number => (typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 0);

/** First of these columns the row has (non-null), as text. */
function sub(row: ResultRow): string | null {
  for (const c of ['what', 'kind', 'grouping', 'problems']) {
    const v = row[c];
    if (v === null || v === undefined) continue;
    return Array.isArray(v) ? v.map(String).join(',') : String(v);
  }
  return null;
}

/** The holder's comm: holder_comm, comm, or the comms of leaks.sql's `comm/pid` holders (pids are per boot). */
function comm(row: ResultRow): string | null {
  for (const c of ['holder_comm', 'comm']) if (typeof row[c] === 'string') return row[c] as string;
  if (Array.isArray(row.holders)) {
    const comms = [...new Set(row.holders.map((h) => String(h).replace(/\/-?\d+$/, '')))].sort();
    return comms.join(',');
  }
  return null;
}

/** certain, else not uncertain, else not in a lost window (divergence.sql). */
function certain(row: ResultRow): boolean {
  if (typeof row.certain === 'boolean') return row.certain;
  if (typeof row.uncertain === 'boolean') return !row.uncertain;
  if (typeof row.in_lost_window === 'boolean') return !row.in_lost_window;
  return false;
}

interface Side {
  info: DiffSide;
  findings: Map<string, Omit<FindingDiff, 'count_a' | 'count_b' | 'status'> & { count: number }>;
  callsites: Map<string, Counts>;
}

const zero = (): Counts => Object.fromEntries(CALLSITE_COUNTS.map((c) => [c, 0])) as Counts;

async function readSide(db: Db, dbPath: string, traceId: number, queries: QueryDef[]): Promise<Side> {
  const trace = (await runQuery(db, statement('report/trace.sql'), { trace_id: traceId })).rows[0]; // throws: no such trace
  if (!trace) throw new QueryError(`no trace ${traceId} in ${dbPath}`);
  if (!(await runQuery(db, statement('report/replay-run.sql'), { trace_id: traceId })).rows.length) throw new QueryError(`trace ${traceId} of ${dbPath} not replayed (run: refscope replay --db ${dbPath} --trace ${traceId})`);
  const side: Side = { info: { db: dbPath, trace_id: traceId, source: String(trace.source ?? '') }, findings: new Map(), callsites: new Map() };
  const site = (callsite: Value | undefined): Counts => {
    const k = typeof callsite === 'string' ? callsite : NO_STACK;
    let c = side.callsites.get(k);
    if (!c) side.callsites.set(k, (c = zero()));
    return c;
  };
  for (const row of (await runQuery(db, statement('diff/callsites.sql'), { trace_id: traceId })).rows) {
    const c = site(row.callsite);
    for (const k of CALLSITE_COUNTS) c[k] += num(row[k]);
  }
  for (const q of queries) {
    for (const row of (await runQuery(db, q, { trace_id: traceId })).rows) {
      if (q.context && matches(q.context, row)) continue; // context rows are not findings (e.g. lost markers)
      const f = { kind: q.name, sub: sub(row), comm: comm(row), callsite: typeof row.callsite === 'string' ? row.callsite : null, certain: certain(row), gated: q.gate !== null };
      const key = JSON.stringify([f.kind, f.sub, f.comm, f.callsite, f.certain]);
      const have = side.findings.get(key);
      if (have) have.count++;
      else side.findings.set(key, { ...f, count: 1 });
      // The findings that count per call site: certain leaks by the stack of the unreturned get, pin leaks, CMA blocks.
      if (!f.certain) continue;
      if (q.name === 'leaks' && row.grouping === 'get') site(row.callsite).leaked_pages += num(row.pages);
      if (q.name === 'pin-leaks') site(row.callsite).leaked_pins += num(row.pins);
      if (q.name === 'cma-blockers') site(row.callsite).cma_blocks++;
    }
  }
  return side;
}

/** The @finding queries, in their report order. */
export function findingQueries(): QueryDef[] {
  return listQueries()
    .filter((q) => q.finding !== null)
    .sort((x, y) => x.finding! - y.finding! || x.name.localeCompare(y.name));
}

const STATUS_ORDER: Record<FindingStatus, number> = { new: 0, fixed: 1, unchanged: 2 };

/** Compare trace a of dbA with trace b of dbB (the same connection when both are in one database). */
export async function diffTraces(dbA: Db, pathA: string, a: number, dbB: Db, pathB: string, b: number): Promise<DiffResult> {
  const queries = findingQueries();
  const order = new Map(queries.map((q, i) => [q.name, i]));
  const [sa, sb] = [await readSide(dbA, pathA, a, queries), await readSide(dbB, pathB, b, queries)];
  const findings: FindingDiff[] = [];
  for (const key of new Set([...sa.findings.keys(), ...sb.findings.keys()])) {
    const fa = sa.findings.get(key);
    const fb = sb.findings.get(key);
    const { count: _, ...f } = (fa ?? fb)!;
    const count_a = fa?.count ?? 0;
    const count_b = fb?.count ?? 0;
    findings.push({ ...f, count_a, count_b, status: count_a === 0 ? 'new' : count_b === 0 ? 'fixed' : 'unchanged' });
  }
  findings.sort(
    (x, y) =>
      STATUS_ORDER[x.status] - STATUS_ORDER[y.status] || Number(y.certain) - Number(x.certain) ||
      order.get(x.kind)! - order.get(y.kind)! || Math.abs(y.count_b - y.count_a) - Math.abs(x.count_b - x.count_a) ||
      JSON.stringify([x.sub, x.comm, x.callsite]).localeCompare(JSON.stringify([y.sub, y.comm, y.callsite])),
  );
  const callsites: CallsiteDiff[] = [];
  for (const cs of new Set([...sa.callsites.keys(), ...sb.callsites.keys()])) {
    const ca = sa.callsites.get(cs) ?? zero();
    const cb = sb.callsites.get(cs) ?? zero();
    const delta = Object.fromEntries(CALLSITE_COUNTS.map((k) => [k, cb[k] - ca[k]])) as Counts;
    callsites.push({ callsite: cs, a: ca, b: cb, delta });
  }
  const moved = (c: CallsiteDiff) => CALLSITE_COUNTS.reduce((s, k) => s + Math.abs(c.delta[k]), 0);
  callsites.sort((x, y) => moved(y) - moved(x) || x.callsite.localeCompare(y.callsite));
  const new_certain = findings.filter((f) => f.status === 'new' && f.certain && f.gated).length;
  return { a: sa.info, b: sb.info, findings, callsites, new_certain };
}
