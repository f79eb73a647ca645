import { Option, type Command } from 'commander';
import type { OutputFormat } from '../../queries/format.js';
import type { QueryResult } from '../../queries/library.js';
import { collect, commandOutput, dbOption, openReadOnly, quietErrors, traceId, UsageError } from '../common.js';

/** `refscope query`: a query of the library (queries/*.sql), or --sql on a read-only connection, or --list. */
export function queryCommand(program: Command): void {
  quietErrors(program.command('query'))
    .description('run a query of the library (queries/*.sql), or --sql on a read-only connection, or --list them')
    .argument('[name]', 'query name (see --list)')
    .addOption(dbOption())
    .option('--trace <id>', 'trace id (default: every trace)')
    .option('--param <key=value>', 'query parameter (repeat for more)', collect, [])
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'))
    .option('--limit <n>', 'print at most n rows')
    .option('--columns <list>', 'print only these columns, in this order (comma-separated)')
    .option('--sql <sql>', 'run this SQL (SELECT statements only) on a READ-ONLY connection instead of a library query')
    .option('--allow-file-reads', '--sql may read local files (read_csv, read_parquet ...); writes stay refused')
    .option('--csv-raw', 'csv: write text exactly as stored (no leading \' before formulas, control characters unescaped)')
    .option('--list', 'list the queries with their parameters and defaults')
    .action(async (name: string | undefined, o: QueryCommandOptions) => {
      commandOutput.write(await queryOutput(name, o));
    });
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
  /** Let --sql read local files (DuckDB's external access stays on; statements other than SELECT stay refused). */
  allowFileReads?: boolean;
  /** CSV text exactly as stored (see queries/format.ts formatCsv). */
  csvRaw?: boolean;
  list?: boolean;
}

/** What `refscope query` prints (scripts/readme-queries.ts and its test compare it with README). */
export async function queryOutput(name: string | undefined, o: QueryCommandOptions): Promise<string> {
  if (o.list) {
    const { listQueries } = await import('../../queries/library.js'); // not runner.js: --list needs no DuckDB
    const out: string[] = [];
    for (const q of listQueries()) {
      out.push(`${q.name}\n  ${q.description}`);
      for (const p of q.params) out.push(`    --param ${p.name}=${p.defaultText}  (${p.type}) ${p.description}`);
    }
    return out.join('\n') + '\n';
  }
  const { getQuery, runQuery, runSql } = await import('../../queries/runner.js');
  const { formatResult, OUTPUT_FORMATS } = await import('../../queries/format.js');
  const format = (o.format ?? 'table') as OutputFormat;
  if (!OUTPUT_FORMATS.includes(format)) throw new UsageError(`bad --format ${o.format} (table, json or csv)`);
  let limit: number | undefined;
  if (o.limit !== undefined) {
    if (!/^\d+$/.test(o.limit)) throw new UsageError(`bad --limit ${JSON.stringify(o.limit)}: expected an integer >= 0`);
    limit = Number(o.limit);
  }
  if (o.sql !== undefined && name !== undefined) throw new UsageError('give a query NAME or --sql, not both');
  if (o.sql === undefined && name === undefined) throw new UsageError('give a query NAME, --sql "SELECT ..." or --list');
  const params: Record<string, string | number> = {};
  if (o.sql === undefined) {
    const def = getQuery(name!); // unknown names fail before the database is opened
    for (const kv of o.param ?? []) {
      const i = kv.indexOf('=');
      if (i <= 0) throw new UsageError(`bad --param ${JSON.stringify(kv)}: expected key=value`);
      const k = kv.slice(0, i);
      if (!def.params.some((p) => p.name === k))
        throw new UsageError(`unknown parameter '${k}' for query ${def.name} (parameters: ${def.params.map((p) => p.name).join(', ')})`);
      params[k] = kv.slice(i + 1);
    }
    const t = traceId(o.trace);
    if (t !== undefined) params.trace_id = t;
  } else if (o.param?.length || o.trace !== undefined) {
    throw new UsageError('--param and --trace apply to library queries, not to --sql');
  }
  if (o.allowFileReads && o.sql === undefined) throw new UsageError('--allow-file-reads applies to --sql only');
  const db = await openReadOnly(o.db, { allowFileReads: o.allowFileReads, anySchema: o.sql !== undefined });
  try {
    const r = o.sql !== undefined ? await adHoc(() => runSql(db, o.sql!, { limit })) : await runQuery(db, name!, params, { limit });
    return formatResult(o.columns === undefined ? r : pickColumns(r, o.columns), format, { raw: o.csvRaw });
  } finally {
    db.close();
  }
}

/** DuckDB refusing a write (or a refused statement) on the locked connection: one line naming the rule. */
const REFUSED = /Permission Error|read-only mode|READ_ONLY|configuration has been locked|disabled (?:by|through) configuration/;

async function adHoc<T>(run: () => Promise<T>): Promise<T> {
  const { ReadOnlySqlError } = await import('../../queries/runner.js');
  try {
    return await run();
  } catch (e) {
    if (e instanceof ReadOnlySqlError) throw new UsageError(`--sql is read-only: ${e.reason}`);
    const first = (e as Error).message.split('\n')[0]!.replace(/^Failed to extract statements: /, '');
    throw new UsageError(REFUSED.test(first) ? `--sql is read-only: ${first}` : `--sql: ${first}`);
  }
}

/** Keep only the named columns, in the order given (`--columns pfn,holder_comm`). */
function pickColumns(r: QueryResult, list: string): QueryResult {
  const names = list.split(',').map((c) => c.trim()).filter(Boolean);
  if (!names.length) throw new UsageError('--columns: give at least one column name');
  const known = new Map(r.columns.map((c) => [c.name, c]));
  for (const n of names)
    if (!known.has(n)) throw new UsageError(`--columns: no column '${n}' (columns: ${r.columns.map((c) => c.name).join(', ')})`);
  return { ...r, columns: names.map((n) => known.get(n)!) };
}
