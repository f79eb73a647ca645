import { Option, type Command, type CommanderError } from 'commander';
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Db } from '../db/duckdb.js';
import { escapeControl } from '../db/escape.js';

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

/**
 * DuckDB's lock conflict as one refscope sentence, or undefined for any other error. DuckDB names the holder
 * ("Conflicting lock is held in /usr/bin/node (PID 1234)") and hints at a -readonly flag of its own shell.
 */
export function lockConflict(path: string, e: unknown): string | undefined {
  const m = /Could not set lock on file[^]*?Conflicting lock is held in ([^\n]*?)\s*\(PID (\d+)\)/.exec((e as Error)?.message ?? '');
  if (!m) return undefined;
  const holder = basename(m[1]!.trim()) || 'another program';
  return (
    `${escapeControl(path)} is in use by another process (PID ${m[2]}, ${escapeControl(holder)}: e.g. a running refscope ingest or replay); ` +
    'wait for it to finish or use another --db'
  );
}

/** Db.open, with a lock conflict (another process has the file open for writing) as one UsageError sentence. */
export async function openDb(...a: Parameters<typeof Db.open>): Promise<Db> {
  const { Db } = await import('../db/duckdb.js');
  return Db.open(...a).catch((e: unknown) => {
    const lock = lockConflict(a[0], e);
    throw lock ? new UsageError(lock) : e;
  });
}

export interface ReadOnlyOptions {
  /** `query --allow-file-reads`: ad-hoc SQL may read local files (read_csv ...); runSql still runs only SELECTs. */
  allowFileReads?: boolean;
  /** Directories DuckDB itself may write to (export's COPY into its temporary file). */
  writeDirs?: string[];
}

/**
 * Open the database READ-ONLY and lock it down for commands that only read: no file access (ATTACH, COPY TO,
 * EXPORT, INSTALL/LOAD, read_csv ...) and no configuration change (SET, RESET, PRAGMA settings) for the rest of
 * the connection. Nothing refscope reads with needs a SET later (withMemoryLimit / withOneThread are write paths).
 * Errors: a lock conflict as one sentence; any other as `PATH: cannot open database: DuckDB's first line`.
 */
export async function openLocked(path: string, o: ReadOnlyOptions = {}, Err: new (m: string) => Error = UsageError): Promise<Db> {
  const db = await openDb(path, { readOnly: true }).catch((e: Error) => {
    // openDb made a lock conflict a UsageError already.
    throw new Err(e instanceof UsageError ? e.message : `${path}: cannot open database: ${e.message.split('\n')[0]}`);
  });
  try {
    if (o.writeDirs?.length) {
      const dirs = o.writeDirs.map((d) => `'${resolve(d).replace(/'/g, "''")}/'`); // settings take no bound parameters
      await db.run(`SET allowed_directories = [${dirs.join(', ')}]`);
    }
    if (!o.allowFileReads) await db.run('SET enable_external_access = false');
    await db.run('SET lock_configuration = true');
  } catch (e) {
    db.close();
    throw e;
  }
  return db;
}

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

/** Open an existing refscope database read-only and locked (never creates one), for `query` and `check`. */
export async function openReadOnly(path: string, o: ReadOnlyOptions = {}): Promise<Db> {
  if (!existsSync(path)) throw new UsageError(`no such database: ${path}`);
  const db = await openLocked(path, o);
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
  const db = await openLocked(o.db, {}, ReportUsageError);
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
