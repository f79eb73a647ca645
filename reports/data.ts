import { listValue } from '../db/duckdb-api.js';
import type { Db, Row } from '../db/duckdb.js';
import { getQuery, listQueries, QUERIES_DIR, runQuery, type QueryDef } from '../queries/runner.js';
import { rowOf, rowsOf, statement } from '../queries/statements.js';
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
  /** How its rows are coloured (the header's @severity). */
  severity: QueryDef['severity'];
  /** Compact table columns (the header's @columns). */
  show: QueryDef['show'];
  /** Rank of its pfns in the refcount chart (the header's @refcounts); null = not charted. */
  refcounts: number | null;
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
  /** The library's query definitions, in finding order: the verdict lines come from their headers. */
  library: QueryDef[];
  /** Every anomaly replay recorded (table `anomalies`), most severe first: not all kinds have a query of their own. */
  anomalies: QueryResult;
  stacks: Map<number, StackInfo>;
  events: Map<number, EventInfo>;
  /** The first trace markers (tracing_mark_write), untrusted text: the workload's own account of its steps. */
  markers: EventInfo[];
  /** Untraced windows by source and kind (queries/report/gaps.sql): the tracer's markers and replay's inferred ones. */
  gaps: Row[];
  /** The page-allocator story (the kmem* queries); null when the trace has no mm_page_alloc / mm_page_free. */
  allocator?: Allocator | null;
}

/** Groupings of the `kmem` query the report shows, in order. */
export const KMEM_GROUPINGS = ['callsite', 'gfp', 'order', 'migratetype', 'comm'] as const;
export type KmemGrouping = (typeof KMEM_GROUPINGS)[number];

export interface Allocator {
  /** kmem-summary's row for the trace. */
  summary: Row;
  /** Whether the trace has page_ref events (without them the allocator is the whole story). */
  pageRefs: boolean;
  /** kmem-orders, kmem-alive and kmem-live-pfn with their default parameters. */
  orders: QueryResult;
  alive: QueryResult;
  livePfn: QueryResult;
  /** kmem-allocs by each grouping (the `kmem-allocs` query of data.queries runs with its default, 'callsite'). */
  by: Map<KmemGrouping, QueryResult>;
}

/** Queries the Allocator section shows (not listed again among the other tables). */
export const isAllocatorQuery = (name: string): boolean => name.startsWith('kmem-');

/** What the report shows of a query, from its header; a query the runner knows but the library does not shows under its name. */
export function queryInfo(name: string, def?: QueryDef): QueryInfo {
  if (!def) return { name, title: name, description: '', finding: true, severity: null, show: {}, refcounts: null };
  return {
    name, title: def.title, description: def.meaning, finding: def.finding !== null, severity: def.severity, show: def.show, refcounts: def.refcounts,
  };
}

/** Findings first, by their @finding order (then name), then the other queries by name. */
export function orderQueries(names: string[], defs: Map<string, QueryDef>): string[] {
  const rank = (n: string): [number, number] => {
    const d = defs.get(n);
    if (!d) return [1, 0];
    if (d.finding === null) return [2, 0];
    return Number.isFinite(d.finding) ? [0, d.finding] : [1, 0];
  };
  return [...names].sort((a, b) => {
    const ra = rank(a);
    const rb = rank(b);
    return ra[0] - rb[0] || ra[1] - rb[1] || a.localeCompare(b);
  });
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
  const rows = await rowsOf<{ trace_id: number }>(db, 'report/trace-ids.sql');
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
  const r = await rowOf(db, 'report/trace.sql', { trace_id: traceId });
  if (!r) throw new Error(`no trace ${traceId}`);
  return r;
}

/** replay_runs' row, with cma_alloc and cma_release calls counted apart (its cma_attempts counts both). */
export async function replayFacts(db: Db, traceId: number): Promise<Row | null> {
  if (!(await db.tableExists('replay_runs'))) return null;
  const run = await rowOf(db, 'report/replay-run.sql', { trace_id: traceId });
  if (!run) return null;
  return { ...run, ...(await rowOf(db, 'report/cma-calls.sql', { trace_id: traceId })) };
}

/** Stacks by id (only those asked for). */
export async function loadStacks(db: Db, traceId: number, ids: Iterable<number>): Promise<Map<number, StackInfo>> {
  const want = [...new Set([...ids].filter((x) => Number.isFinite(x)))];
  const out = new Map<number, StackInfo>();
  for (let i = 0; i < want.length; i += 1000) {
    const part = want.slice(i, i + 1000);
    const rows = await rowsOf(db, 'report/stacks.sql', { trace_id: traceId, ids: listValue(part) });
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
    const rows = await rowsOf(db, 'report/events.sql', {
      trace_id: traceId,
      first: part[0]!,
      last: part[part.length - 1]!,
      seqs: listValue(part),
    });
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
  /** Query library directory (tests). */
  dir?: string;
}

/** The query library bound to a database: every query with its default parameters, for one trace. */
export function libraryRunner(db: Db, dir = QUERIES_DIR): QueryRunner {
  return async (name, traceId) => {
    const def = getQuery(name, dir);
    const params = def.params.some((p) => p.name === 'trace_id') ? { trace_id: traceId } : {};
    return (await runQuery(db, def, params, { dir })).rows as Row[];
  };
}

export function libraryColumns(dir = QUERIES_DIR): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const d of listQueries(dir)) out.set(d.name, new Map(d.columns.map((c) => [c.name, c.description])));
  return out;
}

export async function loadReportData(db: Db, traceId: number, opts: LoadOptions = {}): Promise<ReportData> {
  const evidenceRows = opts.evidenceRows ?? 100;
  const dir = opts.dir ?? QUERIES_DIR;
  const runner = opts.runner ?? libraryRunner(db, dir);
  const defs = new Map(listQueries(dir).map((d) => [d.name, d]));
  const names = opts.names ?? [...defs.keys()];
  const queries: QueryResult[] = [];
  for (const name of orderQueries(names, defs)) {
    const def = defs.get(name);
    const info = queryInfo(name, def);
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
    library: orderQueries([...defs.keys()], defs).map((n) => defs.get(n)!),
    anomalies,
    stacks,
    events,
    markers: await loadMarkers(db, traceId),
    gaps: await rowsOf(db, 'report/gaps.sql', { trace_id: traceId }),
    allocator: await loadAllocator(db, traceId, queries, dir),
  };
}

/**
 * The Allocator section's tables: the kmem* results already run (their default parameters) and `kmem` once more
 * per grouping. Null when the trace has no page-allocator events (or the library has no kmem queries).
 */
export async function loadAllocator(db: Db, traceId: number, queries: QueryResult[], dir = QUERIES_DIR): Promise<Allocator | null> {
  const get = (n: string) => queries.find((q) => q.name === n);
  const sum = get('kmem-summary')?.rows.find((r) => toNum(r.trace_id) === traceId);
  const orders = get('kmem-orders');
  const alive = get('kmem-alive');
  const livePfn = get('kmem-live-pfn');
  const kmem = get('kmem-allocs');
  if (!sum || !orders || !alive || !livePfn || !kmem) return null;
  if ((toNum(sum.alloc_requests) ?? 0) + (toNum(sum.free_requests) ?? 0) === 0) return null;
  const def = getQuery('kmem-allocs', dir);
  const by = new Map<KmemGrouping, QueryResult>();
  for (const g of KMEM_GROUPINGS) {
    const rows = g === 'callsite' && !kmem.error ? kmem.rows : ((await runQuery(db, def, { trace_id: traceId, by: g }, { dir }).catch(() => ({ rows: [] }))).rows as Row[]);
    by.set(g, { ...kmem, rows, evidence: [] });
  }
  const refs = await rowOf(db, 'report/page-ref-events.sql', { trace_id: traceId });
  return { summary: sum, pageRefs: refs?.y === true, orders, alive, livePfn, by };
}

const MAX_ANOMALIES = 1000;

/** The anomalies table as a pseudo-query (same shape as the library's results), with the event of each as evidence. */
export async function loadAnomalies(db: Db, traceId: number): Promise<QueryResult> {
  const rows = await rowsOf(db, 'report/anomalies.sql', { trace_id: traceId, max_rows: MAX_ANOMALIES });
  const total = toNum((await rowOf(db, 'report/anomaly-count.sql', { trace_id: traceId }))?.n) ?? rows.length;
  const def = statement('report/anomalies.sql');
  return {
    ...queryInfo('anomalies', def),
    description: def.description,
    summary: `Table anomalies: ${total} row${total === 1 ? '' : 's'}${total > rows.length ? `, the first ${rows.length} shown` : ''}; the queries above list some kinds in detail.`,
    columnDocs: new Map(),
    rows,
    evidence: rows.map((r) => [toNum(r.seq)].filter((x): x is number => x !== null)),
  };
}

export const MAX_MARKERS = 60;

export async function loadMarkers(db: Db, traceId: number, limit = MAX_MARKERS): Promise<EventInfo[]> {
  const rows = await rowsOf(db, 'report/markers.sql', { trace_id: traceId, max_rows: Math.floor(limit) });
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
