import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIGINT, BOOLEAN, DOUBLE, DuckDBArrayValue, DuckDBDecimalValue, DuckDBListValue, DuckDBMapValue, DuckDBStructValue, INTEGER, VARCHAR } from '../db/duckdb-api.js';
import type { DuckDBResultReader, DuckDBType, DuckDBValue } from '@duckdb/node-api';
import type { Db } from '../db/duckdb.js';
import { sqlFile } from '../db/sql.js';
import { getQuery, QUERIES_DIR, QueryError, resolveParams, type ParamType, type QueryDef, type QueryResult, type ResultRow, type Value } from './library.js';

/**
 * Runs the queries of the library (library.ts: the files, their headers, parameter checks): binds parameters
 * with their declared types (values are never spliced into SQL text) and returns rows as plain values.
 */

export * from './library.js';

const DUCK_TYPES: Record<ParamType, DuckDBType> = { INTEGER, BIGINT, DOUBLE, BOOLEAN, VARCHAR };

const helpersLoaded = new WeakSet<Db>();

/** The database's tables are an older refscope's: the queries' helpers cannot be made on it. */
export class OlderSchemaError extends QueryError {}

/**
 * Create the TEMP helpers of queries/_helpers.sql on this connection (once). On a database written by an older
 * refscope (a column the helpers read is missing: replay tables of an older model, columns added since), DuckDB's
 * binder error becomes one line saying what to run: a writable open updates the tables, and replay rebuilds its own.
 */
export async function ensureHelpers(db: Db, dir = QUERIES_DIR): Promise<void> {
  if (helpersLoaded.has(db)) return;
  try {
    await db.run(readFileSync(join(dir, '_helpers.sql'), 'utf8'));
  } catch (e) {
    const m = e instanceof Error ? /^(?:Binder|Catalog) Error: ([^\n]*)/.exec(e.message) : null;
    if (m === null) throw e;
    throw new OlderSchemaError(
      `${db.path}: its tables were written by an older refscope (${m[1]}): run \`refscope replay --db ${db.path}\` once to bring them up to date`,
    );
  }
  helpersLoaded.add(db);
}

/** Turn a DuckDB value into a plain value without losing anything. */
export function plainValue(v: DuckDBValue): Value {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string' || typeof v === 'bigint') return v;
  if (v instanceof DuckDBListValue || v instanceof DuckDBArrayValue) return v.items.map(plainValue);
  if (v instanceof DuckDBStructValue) {
    const o: { [k: string]: Value } = {};
    for (const [k, x] of Object.entries(v.entries)) o[k] = plainValue(x);
    return o;
  }
  if (v instanceof DuckDBMapValue) return v.entries.map((e) => ({ key: plainValue(e.key), value: plainValue(e.value) }));
  if (v instanceof DuckDBDecimalValue) {
    if (v.scale === 0) return v.value;
    const s = v.toString();
    const n = Number(s);
    // Keep the number only when it prints back to the same decimal (no precision lost).
    return Number.isFinite(n) && n.toFixed(v.scale) === s ? n : s;
  }
  return String(v);
}

async function readResult(reader: DuckDBResultReader, limit: number | undefined): Promise<QueryResult> {
  if (limit !== undefined) await reader.readUntil(limit + 1);
  else await reader.readAll();
  const names = reader.columnNames();
  const types = reader.columnTypes().map((t) => String(t));
  const raw = reader.getRowObjects();
  const truncated = limit !== undefined && raw.length > limit;
  const rows = (limit !== undefined ? raw.slice(0, limit) : raw).map((r) => {
    const o: ResultRow = {};
    for (const n of names) o[n] = plainValue(r[n] ?? null);
    return o;
  });
  return { columns: names.map((name, i) => ({ name, type: types[i]! })), rows, truncated };
}

function checkLimit(limit: number | undefined): void {
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) throw new QueryError(`bad --limit ${limit}: expected an integer >= 0`);
}

export interface RunOptions {
  /** Return at most this many rows. */
  limit?: number;
  dir?: string;
}

/** Run a library query by name (or definition) with parameters (JS values, or strings parsed per declared type). */
export async function runQuery(
  db: Db,
  query: string | QueryDef,
  params: Record<string, unknown> = {},
  opts: RunOptions = {},
): Promise<QueryResult> {
  checkLimit(opts.limit);
  const def = typeof query === 'string' ? getQuery(query, opts.dir) : query;
  const values = resolveParams(def, params);
  await ensureHelpers(db, opts.dir);
  if (values.trace_id !== null && values.trace_id !== undefined) {
    const t = await db.one<{ n: number }>(sqlFile('common/trace-exists.sql'), { trace_id: values.trace_id as number });
    if (!t?.n) throw new QueryError(`no trace ${String(values.trace_id)} in ${db.path}`);
  }
  const ps = await db.conn.prepare(def.sql);
  const bind: Record<string, DuckDBValue> = {};
  const types: Record<string, DuckDBType> = {};
  for (let i = 1; i <= ps.parameterCount; i++) {
    const name = ps.parameterName(i);
    const p = def.params.find((x) => x.name === name);
    if (!p) throw new Error(`${def.file}: $${name} is used but not declared with @param`);
    bind[name] = values[name] ?? null;
    types[name] = DUCK_TYPES[p.type];
  }
  ps.bind(bind, types);
  const reader = opts.limit !== undefined ? await ps.streamAndReadUntil(opts.limit + 1) : await ps.runAndReadAll();
  return readResult(reader, opts.limit);
}

/** Ad-hoc SQL that is not a query: refused before anything runs. */
export class ReadOnlySqlError extends QueryError {
  constructor(readonly reason: string) {
    super(`read-only: ${reason}`);
  }
}

/**
 * Refuse `sql` unless every statement is a SELECT (WITH, FROM-first, VALUES, DESCRIBE, SHOW, SUMMARIZE are). The
 * check only parses (json_serialize_sql serialises SELECTs alone): preparing would bind, and binding EXPORT
 * DATABASE already creates its directory. The read-only connection refuses writes, ATTACH, COPY and SET by itself;
 * this also refuses CHECKPOINT (DuckDB accepts it on a read-only file), EXPLAIN and PRAGMA, and whatever DuckDB adds.
 */
async function onlySelects(db: Db, sql: string): Promise<void> {
  const r = await db.one<{ j: string }>('SELECT json_serialize_sql($1::VARCHAR) AS j', [sql]);
  const parsed = JSON.parse(r!.j) as { error?: boolean; error_message?: string };
  if (!parsed.error) return;
  const why = parsed.error_message ?? 'cannot parse';
  if (/only select statements/i.test(why))
    throw new ReadOnlySqlError('only SELECT statements run (WITH, FROM, VALUES, DESCRIBE, SHOW and SUMMARIZE too)');
  throw new QueryError(why);
}

/**
 * Run ad-hoc SQL: SELECT statements only (the CLI also opens the database READ-ONLY with external access and
 * configuration locked, cli/common.ts). The private helpers are available.
 */
export async function runSql(db: Db, sql: string, opts: RunOptions = {}): Promise<QueryResult> {
  checkLimit(opts.limit);
  // On an older database the SQL still runs, over its own tables: only the helpers are missing then.
  await ensureHelpers(db, opts.dir).catch((e: unknown) => {
    if (!(e instanceof OlderSchemaError)) throw e;
  });
  await onlySelects(db, sql);
  const reader = opts.limit !== undefined ? await db.conn.streamAndReadUntil(sql, opts.limit + 1) : await db.conn.runAndReadAll(sql);
  return readResult(reader, opts.limit);
}
