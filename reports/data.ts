import { listValue } from '@duckdb/node-api';
import type { Db, Row } from '../db/duckdb.js';
import { getQuery, listQueries, runQuery } from '../queries/runner.js';
import { evidenceSeqs } from './evidence.js';
import { toBig, toNum } from './format.js';
import { splitFrames } from './stackfmt.js';

/**
 * Everything a report shows, read from the database: trace facts (traces, replay_runs), the rows of every query of
 * the query library, and the events and stacks those rows point at (their evidence). No analysis happens here: the
 * findings are the query library's rows; this module only looks up what they reference.
 */

/** Runs one query of the library for one trace (queries/runner.ts bound to a database). */
export type QueryRunner = (name: string, traceId: number) => Promise<Row[]>;

export interface QueryInfo {
  name: string;
  title: string;
  /** What a row means, one sentence. */
  description: string;
  /** Rows are problems (counted in the verdict); false for summaries and rankings. */
  finding: boolean;
}

export interface QueryResult extends QueryInfo {
  /** First line of the query file's header. */
  summary: string;
  /** Column name -> its @column description. */
  columnDocs: Map<string, string>;
  rows: Row[];
  /** Event seqs behind each of the first rows (evidence), same order as rows. */
  evidence: number[][];
  error?: string;
}

export interface StackInfo {
  stack_id: number;
  kind: string;
  frames: string[];
  callsite: string | null;
}

export interface EventInfo {
  seq: number;
  line_no: number;
  ts_ns: number;
  cpu: number | null;
  pid: number | null;
  comm: string | null;
  event: string;
  payload: string;
  stack_id: number | null;
}

export interface ReportData {
  generatedAt: string;
  traceId: number;
  trace: Row;
  replay: Row | null;
  queries: QueryResult[];
  /** Every anomaly replay recorded (table `anomalies`), most severe first: not all kinds have a query of their own. */
  anomalies: QueryResult;
  stacks: Map<number, StackInfo>;
  events: Map<number, EventInfo>;
  /** The first trace markers (tracing_mark_write), untrusted text: the workload's own account of its steps. */
  markers: EventInfo[];
}

/** Titles and meanings of the library's queries; a query the library adds later shows under its own name. */
export const QUERY_INFO: Record<string, Omit<QueryInfo, 'name'>> = {
  'cma-blockers': {
    title: 'CMA allocations blocked',
    description: 'Pages inside a failed CMA range that carried a pin or a plain reference when the range failed.',
    finding: true,
  },
  leaks: {
    title: 'Leaked pages by call site',
    description: 'Pages allocated in the window, alive at the end with references their mappings do not explain.',
    finding: true,
  },
  'pin-leaks': { title: 'Pins never released', description: 'FOLL_PIN intervals still open when the trace ends.', finding: true },
  'use-after-free': {
    title: 'Use after free / refcount errors',
    description: 'Reference operations on freed pages, frees while mapped or pinned, refcount underflows.',
    finding: true,
  },
  'pgmap-imbalance': {
    title: 'dev_pagemap reference imbalance',
    description: 'dev_pagemaps whose gets and puts do not balance, or with references left at memunmap_pages.',
    finding: true,
  },
  'long-pins': {
    title: 'Long-held pins and references',
    description: 'Pins and plain references held longer than the threshold (FOLL_LONGTERM pins first).',
    finding: true,
  },
  divergence: {
    title: 'Model divergences',
    description: 'page_ref events whose printed count= differs from the replayed model.',
    finding: true,
  },
  'top-callers': { title: 'Top call sites', description: 'Call sites ranked by references and pages.', finding: false },
  summary: { title: 'Summary', description: 'Per-trace totals of the query library.', finding: false },
};

/** Order in which findings are shown: the ones that block or lose memory first. */
export const FINDING_ORDER = ['cma-blockers', 'leaks', 'pin-leaks', 'use-after-free', 'pgmap-imbalance', 'long-pins', 'divergence'];

export function queryInfo(name: string): QueryInfo {
  const i = QUERY_INFO[name];
  return i ? { name, ...i } : { name, title: name, description: '', finding: true };
}

export function orderQueries(names: string[]): string[] {
  const rank = (n: string) => {
    const i = FINDING_ORDER.indexOf(n);
    if (i >= 0) return i;
    return queryInfo(n).finding ? FINDING_ORDER.length : FINDING_ORDER.length + 1;
  };
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

const SEVERITY_RANK: Record<string, number> = { error: 0, critical: 0, warning: 1, warn: 1, info: 2 };

/** Rows with a `severity` column, most severe first (stable: the query's own order is kept within a severity). */
export function bySeverity(rows: Row[]): Row[] {
  if (!rows.length || !('severity' in rows[0]!)) return rows;
  return rows
    .map((r, i) => ({ r, i }))
    .sort((a, b) => (SEVERITY_RANK[String(a.r.severity)] ?? 3) - (SEVERITY_RANK[String(b.r.severity)] ?? 3) || a.i - b.i)
    .map((x) => x.r);
}

/** Columns of a row that point at events (`seq`, `*_seq`) or stacks (`stack_id`, `*_stack_id`). */
export const SEQ_COLUMN = /(^|_)seq$/;
export const STACK_COLUMN = /(^|_)stack_id$/;

export async function traceIds(db: Db): Promise<number[]> {
  const rows = await db.all<{ trace_id: number }>('SELECT trace_id FROM traces ORDER BY trace_id');
  return rows.map((r) => r.trace_id);
}

/** The trace to report: the one asked for, else the most recently ingested. */
export async function pickTrace(db: Db, asked?: number): Promise<number> {
  const ids = await traceIds(db);
  if (!ids.length) throw new Error(`${db.path}: no trace ingested (run refscope ingest first)`);
  if (asked === undefined) return ids[ids.length - 1]!;
  if (!ids.includes(asked)) throw new Error(`${db.path}: no trace ${asked} (traces: ${ids.join(', ')})`);
  return asked;
}

export async function traceFacts(db: Db, traceId: number): Promise<Row> {
  const r = await db.one(
    `SELECT trace_id, source, format, size_bytes, ingested_at, kernel_version, cpus, clock, lines, events, stacks,
            unparsed_lines, lost_events, lost_markers, first_ts_ns, last_ts_ns, mapcount_semantics, mt_layout
     FROM traces WHERE trace_id = $1`,
    [traceId],
  );
  if (!r) throw new Error(`no trace ${traceId}`);
  return r;
}

export async function replayFacts(db: Db, traceId: number): Promise<Row | null> {
  if (!(await db.tableExists('replay_runs'))) return null;
  return (await db.one('SELECT * FROM replay_runs WHERE trace_id = $1', [traceId])) ?? null;
}

/** Stacks by id (only those asked for). */
export async function loadStacks(db: Db, traceId: number, ids: Iterable<number>): Promise<Map<number, StackInfo>> {
  const want = [...new Set([...ids].filter((x) => Number.isFinite(x)))];
  const out = new Map<number, StackInfo>();
  for (let i = 0; i < want.length; i += 1000) {
    const part = want.slice(i, i + 1000);
    const rows = await db.all(
      `SELECT stack_id, kind, frames, callsite FROM stacks WHERE trace_id = $1 AND list_contains($2::INTEGER[], stack_id)`,
      [traceId, listValue(part)],
    );
    for (const r of rows)
      out.set(Number(r.stack_id), {
        stack_id: Number(r.stack_id),
        kind: String(r.kind),
        frames: splitFrames(r.frames),
        callsite: (r.callsite as string | null) ?? null,
      });
  }
  return out;
}

/** Events by seq (only those asked for). */
export async function loadEvents(db: Db, traceId: number, seqs: Iterable<number>): Promise<Map<number, EventInfo>> {
  const want = [...new Set([...seqs].filter((x) => Number.isFinite(x)))].sort((a, b) => a - b);
  const out = new Map<number, EventInfo>();
  for (let i = 0; i < want.length; i += 2000) {
    const part = want.slice(i, i + 2000);
    const rows = await db.all(
      `SELECT seq, line_no, ts_ns, cpu, pid, comm, event, payload, stack_id FROM events
       WHERE trace_id = $1 AND seq BETWEEN $2 AND $3 AND list_contains($4::BIGINT[], seq)`,
      [traceId, part[0]!, part[part.length - 1]!, listValue(part)],
    );
    for (const r of rows)
      out.set(Number(r.seq), {
        seq: Number(r.seq),
        line_no: Number(r.line_no),
        ts_ns: Number(r.ts_ns),
        cpu: toNum(r.cpu),
        pid: toNum(r.pid),
        comm: (r.comm as string | null) ?? null,
        event: String(r.event),
        payload: String(r.payload),
        stack_id: toNum(r.stack_id),
      });
  }
  return out;
}

/** Event seqs and stack ids referenced by some rows. */
export function references(rows: Row[]): { seqs: number[]; stackIds: number[] } {
  const seqs: number[] = [];
  const stackIds: number[] = [];
  for (const r of rows)
    for (const [k, v] of Object.entries(r)) {
      const n = toNum(v);
      if (n === null) continue;
      if (STACK_COLUMN.test(k)) stackIds.push(n);
      else if (SEQ_COLUMN.test(k)) seqs.push(n);
    }
  return { seqs, stackIds };
}

export interface LoadOptions {
  /** Rows per query whose evidence is looked up (all rows still go to findings.json). */
  evidenceRows?: number;
  /** Run a query: defaults to the query library (queries/runner.ts). */
  runner?: QueryRunner;
  /** Queries to run: defaults to every query of the library. */
  names?: string[];
}

/** The query library bound to a database: every query with its default parameters, for one trace. */
export function libraryRunner(db: Db): QueryRunner {
  return async (name, traceId) => {
    const def = getQuery(name);
    const params = def.params.some((p) => p.name === 'trace_id') ? { trace_id: traceId } : {};
    return (await runQuery(db, def, params)).rows as Row[];
  };
}

export function libraryColumns(): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const d of listQueries()) out.set(d.name, new Map(d.columns.map((c) => [c.name, c.description])));
  return out;
}

export async function loadReportData(db: Db, traceId: number, opts: LoadOptions = {}): Promise<ReportData> {
  const evidenceRows = opts.evidenceRows ?? 100;
  const runner = opts.runner ?? libraryRunner(db);
  const defs = new Map(listQueries().map((d) => [d.name, d]));
  const names = opts.names ?? [...defs.keys()];
  const queries: QueryResult[] = [];
  for (const name of orderQueries(names)) {
    const def = defs.get(name);
    const info = queryInfo(name);
    const base = {
      ...info,
      description: info.description || def?.description || '',
      summary: def?.description ?? '',
      columnDocs: new Map((def?.columns ?? []).map((c) => [c.name, c.description])),
    };
    try {
      const rows = bySeverity(await runner(name, traceId));
      const evidence = await evidenceSeqs(db, traceId, name, rows.slice(0, evidenceRows));
      queries.push({ ...base, rows, evidence });
    } catch (e) {
      queries.push({ ...base, rows: [], evidence: [], error: e instanceof Error ? e.message.split('\n')[0] : String(e) });
    }
  }
  const anomalies = await loadAnomalies(db, traceId);
  const seqs: number[] = [];
  const stackIds: number[] = [];
  for (const q of [...queries, anomalies]) {
    for (const ev of q.evidence) seqs.push(...ev);
    stackIds.push(...references(q.rows.slice(0, evidenceRows)).stackIds);
  }
  const events = await loadEvents(db, traceId, seqs);
  for (const e of events.values()) if (e.stack_id !== null) stackIds.push(e.stack_id);
  const stacks = await loadStacks(db, traceId, stackIds);
  return {
    generatedAt: new Date().toISOString(),
    traceId,
    trace: await traceFacts(db, traceId),
    replay: await replayFacts(db, traceId),
    queries,
    anomalies,
    stacks,
    events,
    markers: await loadMarkers(db, traceId),
  };
}

const MAX_ANOMALIES = 1000;

/** The anomalies table as a pseudo-query (same shape as the library's results), with the event of each as evidence. */
export async function loadAnomalies(db: Db, traceId: number): Promise<QueryResult> {
  const rows = await db.all(
    `SELECT a.anomaly_id, a.kind, a.severity, a.certain, a.pfn, a.seq, a.ts_ns, a.pid, a.comm, a.pin_id,
            CASE WHEN a.pgmap IS NOT NULL THEN printf('0x%x', a.pgmap) END AS pgmap, a.detail, s.callsite, a.stack_id,
            s.frames AS stack
     FROM anomalies a LEFT JOIN stacks s ON s.trace_id = a.trace_id AND s.stack_id = a.stack_id
     WHERE a.trace_id = $1
     ORDER BY CASE a.severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, NOT a.certain, a.seq
     LIMIT ${MAX_ANOMALIES}`,
    [traceId],
  );
  const total = toNum((await db.one('SELECT count(*) AS n FROM anomalies WHERE trace_id = $1', [traceId]))?.n) ?? rows.length;
  return {
    name: 'anomalies',
    title: 'Replay anomalies (all kinds)',
    description: 'Everything the replay recorded as impossible or suspicious, each with the event that shows it.',
    summary: `Table anomalies: ${total} row${total === 1 ? '' : 's'}${total > rows.length ? `, the first ${rows.length} shown` : ''}; the queries above list some kinds in detail.`,
    finding: true,
    columnDocs: new Map(),
    rows,
    evidence: rows.map((r) => [toNum(r.seq)].filter((x): x is number => x !== null)),
  };
}

export const MAX_MARKERS = 60;

export async function loadMarkers(db: Db, traceId: number, limit = MAX_MARKERS): Promise<EventInfo[]> {
  const rows = await db.all(
    `SELECT seq FROM events WHERE trace_id = $1 AND event IN ('tracing_mark_write', 'print') ORDER BY seq LIMIT ${Math.floor(limit)}`,
    [traceId],
  );
  const evs = await loadEvents(db, traceId, rows.map((r) => Number(r.seq)));
  return [...evs.values()].sort((a, b) => a.seq - b.seq);
}

/** Model agreement of the replay, as a fraction (null when nothing could be checked). */
export function agreement(replay: Row | null): { checked: number; agreed: number; ratio: number | null; outside: number | null } | null {
  if (!replay) return null;
  const checked = toNum(replay.checked) ?? 0;
  const agreed = toNum(replay.agreed) ?? 0;
  const co = toNum(replay.checked_outside_lost) ?? 0;
  const ao = toNum(replay.agreed_outside_lost) ?? 0;
  return { checked, agreed, ratio: checked ? agreed / checked : null, outside: co ? ao / co : null };
}

export function bigOrNum(v: unknown): number | bigint | null {
  const n = toNum(v);
  if (n === null) return null;
  return Number.isSafeInteger(n) ? n : (toBig(v) ?? n);
}
