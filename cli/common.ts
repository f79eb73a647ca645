import { Option, type Command, type CommanderError } from 'commander';
import { existsSync } from 'node:fs';
import type { Db } from '../db/duckdb.js';

/**
 * What the commands share: the errors a user can act on, common options, and opening the database. Heavy
 * modules (DuckDB, the report stack) load only when a command runs, so that `--version` or `--help` start fast.
 */

/** A mistake on the command line: printed as one line, exit 2. */
export class UsageError extends Error {}

/** A mistake the user can fix (bad option, no such trace, not replayed) in `report` or `export --perfetto`. */
export class ReportUsageError extends Error {}

export const dbOption = (): Option => new Option('--db <file>', 'DuckDB database file').default('refscope.duckdb');

/** Commander argParser of repeatable options (`--param a=1 --param b=2`). */
export const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export const openDb = async (...a: Parameters<typeof Db.open>): Promise<Db> => (await import('../db/duckdb.js')).Db.open(...a);

/**
 * Commander's exitOverride for `query` and `check`: a usage error (unknown option, bad choice, missing value)
 * becomes one line and exit 2, like every other usage error of these commands; --help still exits 0.
 */
export function usageExit(err: CommanderError): void {
  if (err.exitCode === 0) return; // --help: commander prints it and exits 0
  throw new UsageError(err.message.replace(/^error: /, ''));
}

/** Settings for the `query` and `check` commands: errors print once, as one line (see usageExit). */
export function quietErrors<T extends Command>(cmd: T): T {
  return cmd.showHelpAfterError(false).configureOutput({ outputError: () => undefined }).exitOverride(usageExit);
}

/** `--trace` of `query` and `check`: a trace id, or undefined for every trace. */
export function traceId(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  if (!/^\d{1,9}$/.test(s.trim())) throw new UsageError(`bad --trace ${JSON.stringify(s)}: expected a trace id (integer)`);
  return Number(s.trim());
}

/** Open an existing refscope database READ-ONLY (never creates one), for `query` and `check`. */
export async function openReadOnly(path: string): Promise<Db> {
  if (!existsSync(path)) throw new UsageError(`no such database: ${path}`);
  const db = await openDb(path, { readOnly: true }).catch((e: Error) => {
    throw new UsageError(`${path}: cannot open database: ${e.message.split('\n')[0]}`);
  });
  if (!(await db.tableExists('traces')) || !(await db.tableExists('pages'))) {
    db.close();
    throw new UsageError(`${path}: not a refscope database (run refscope ingest and refscope replay first)`);
  }
  return db;
}

/** Open the database read-only, pick the trace (--trace or the last), insist it was replayed, run fn. */
export async function withReplayedTrace<T>(o: { db: string; trace?: string }, fn: (db: Db, traceId: number) => Promise<T>): Promise<T> {
  if (o.trace !== undefined && !/^\d+$/.test(o.trace)) throw new ReportUsageError(`--trace ${o.trace}: not a trace id`);
  const asked = o.trace === undefined ? undefined : Number(o.trace);
  const { pickTrace, replayFacts } = await import('../reports/data.js');
  const db = await openDb(o.db, { readOnly: true }).catch((e: Error) => {
    throw new ReportUsageError(`${o.db}: cannot open database: ${e.message.split('\n')[0]}`);
  });
  try {
    let traceId: number;
    try {
      traceId = await pickTrace(db, asked);
    } catch (e) {
      throw new ReportUsageError((e as Error).message);
    }
    if (!(await replayFacts(db, traceId)))
      throw new ReportUsageError(`trace ${traceId} not replayed (run: refscope replay --db ${o.db} --trace ${traceId})`);
    return await fn(db, traceId);
  } finally {
    db.close();
  }
}
