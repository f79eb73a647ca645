import { existsSync } from 'node:fs';
import type { Command, CommanderError } from 'commander';
import { Db } from '../db/duckdb.js';
import { check, FINDING_KINDS, formatCheck, parseFailOn, parseMax } from '../queries/check.js';
import { formatResult, OUTPUT_FORMATS, type OutputFormat } from '../queries/format.js';
import { getQuery, listQueries, QueryError, runQuery, runSql, type QueryResult } from '../queries/runner.js';

/** Actions of `refscope query` and `refscope check` (cli.ts only declares the options). */

let pipeGuard = false;
/** Write to stdout; a reader that goes away early (`refscope query ... | head`) just ends the output. */
function out(text: string): void {
  if (!pipeGuard) {
    pipeGuard = true;
    process.stdout.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit();
      throw e;
    });
  }
  process.stdout.write(text);
}

export interface QueryCommandOptions {
  db: string;
  trace?: string;
  param?: string[];
  format?: string;
  limit?: string;
  /** Comma-separated output columns, in this order (default: all). */
  columns?: string;
  sql?: string;
  list?: boolean;
}

export interface CheckCommandOptions {
  db: string;
  trace?: string;
  failOn?: string;
  max?: string[];
  json?: boolean;
  includeUncertain?: boolean;
}

function traceId(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d{1,9}$/.test(s.trim())) throw new QueryError(`bad --trace ${JSON.stringify(s)}: expected a trace id (integer)`);
  return Number(s.trim());
}

/** Open an existing database READ-ONLY (never creates one). */
async function openReadOnly(path: string): Promise<Db> {
  if (!existsSync(path)) throw new QueryError(`no such database: ${path}`);
  const db = await Db.open(path, { readOnly: true }).catch((e: Error) => {
    throw new QueryError(`${path}: cannot open database: ${e.message.split('\n')[0]}`);
  });
  if (!(await db.tableExists('traces')) || !(await db.tableExists('pages'))) {
    db.close();
    throw new QueryError(`${path}: not a refscope database (run refscope ingest and refscope replay first)`);
  }
  return db;
}

export function listText(): string {
  const out: string[] = [];
  for (const q of listQueries()) {
    out.push(`${q.name}\n  ${q.description}`);
    for (const p of q.params) out.push(`    --param ${p.name}=${p.defaultText}  (${p.type}) ${p.description}`);
  }
  return out.join('\n') + '\n';
}

export async function queryCommand(name: string | undefined, o: QueryCommandOptions): Promise<void> {
  out(await queryOutput(name, o));
}

/** What `refscope query` prints (scripts/readme-queries.ts and its test compare it with README). */
export async function queryOutput(name: string | undefined, o: QueryCommandOptions): Promise<string> {
  if (o.list) return listText();
  const format = (o.format ?? 'table') as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format)) throw new QueryError(`bad --format ${o.format} (table, json or csv)`);
  let limit: number | undefined;
  if (o.limit !== undefined) {
    if (!/^\d+$/.test(o.limit)) throw new QueryError(`bad --limit ${JSON.stringify(o.limit)}: expected an integer >= 0`);
    limit = Number(o.limit);
  }
  if (o.sql !== undefined && name !== undefined) throw new QueryError('give a query NAME or --sql, not both');
  if (o.sql === undefined && name === undefined) throw new QueryError('give a query NAME, --sql "SELECT ..." or --list');
  const params: Record<string, string | number> = {};
  if (o.sql === undefined) {
    const def = getQuery(name!); // unknown names fail before the database is opened
    for (const kv of o.param ?? []) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new QueryError(`bad --param ${JSON.stringify(kv)}: expected key=value`);
      const k = kv.slice(0, i);
      if (!def.params.some((p) => p.name === k))
        throw new QueryError(`unknown parameter '${k}' for query ${def.name} (parameters: ${def.params.map((p) => p.name).join(', ')})`);
      params[k] = kv.slice(i + 1);
    }
    const t = traceId(o.trace);
    if (t !== undefined) params.trace_id = t;
  } else if (o.param?.length || o.trace !== undefined) {
    throw new QueryError('--param and --trace apply to library queries, not to --sql');
  }
  const db = await openReadOnly(o.db);
  try {
    const r = o.sql !== undefined ? await runSql(db, o.sql, { limit }) : await runQuery(db, name!, params, { limit });
    return formatResult(o.columns === undefined ? r : pickColumns(r, o.columns), format);
  } finally {
    db.close();
  }
}

/** Keep only the named columns, in the order given (`--columns pfn,holder_comm`). */
export function pickColumns(r: QueryResult, list: string): QueryResult {
  const names = list.split(',').map((c) => c.trim()).filter(Boolean);
  if (!names.length) throw new QueryError('--columns: give at least one column name');
  const known = new Map(r.columns.map((c) => [c.name, c]));
  for (const n of names)
    if (!known.has(n)) throw new QueryError(`--columns: no column '${n}' (columns: ${r.columns.map((c) => c.name).join(', ')})`);
  return { ...r, columns: names.map((n) => known.get(n)!) };
}

/** Returns the exit code: 0 all within limits, 1 a gated kind over its limit. */
export async function checkCommand(o: CheckCommandOptions): Promise<number> {
  const failOn = o.failOn === undefined ? [...FINDING_KINDS] : parseFailOn(o.failOn);
  const max = parseMax(o.max ?? []);
  const t = traceId(o.trace);
  const db = await openReadOnly(o.db);
  try {
    const rep = await check(db, { traceId: t, failOn, max, includeUncertain: o.includeUncertain });
    if (o.json) out(JSON.stringify(rep, null, 2) + '\n');
    else out(formatCheck(rep, o.includeUncertain));
    return rep.ok ? 0 : 1;
  } finally {
    db.close();
  }
}

/**
 * Commander's exitOverride for `query` and `check`: a usage error (unknown option, bad choice, missing value)
 * becomes one QueryError line and exit 2, like every other usage error of these commands; --help still exits 0.
 */
export function usageExit(err: CommanderError): void {
  if (err.exitCode === 0) return; // --help: commander prints it and exits 0
  throw new QueryError(err.message.replace(/^error: /, ''));
}

/** Settings for the `query` and `check` commands: errors print once, as one line (see usageExit). */
export function quietErrors<T extends Command>(cmd: T): T {
  return cmd.showHelpAfterError(false).configureOutput({ outputError: () => undefined }).exitOverride(usageExit);
}

/** Commander argParser of repeatable options (`--param a=1 --param b=2`). */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];
