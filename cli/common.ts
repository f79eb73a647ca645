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

/**
 * Where `query` and `check` write their results. A test that runs them in its own process (test/lib/cli.ts
 * runCliInProcess) captures this, never process.stdout: the test runner reports through that stream meanwhile.
 */
export const commandOutput = { write: (s: string): void => void process.stdout.write(s) };

export interface ReadOnlyOptions {
  /** `query --allow-file-reads`: ad-hoc SQL may read local files (read_csv ...); runSql still runs only SELECTs. */
  allowFileReads?: boolean;
  /** Directories DuckDB itself may write to (export's COPY into its temporary file). */
  writeDirs?: string[];
  /** `query --sql`: a database of an older refscope is read as it is (its own tables), not refused. */
  anySchema?: boolean;
}

/**
 * Open the database READ-ONLY and lock it down for commands that only read: no file access (ATTACH, COPY TO,
 * EXPORT, INSTALL/LOAD, read_csv ...) and no configuration change (SET, RESET, PRAGMA settings) for the rest of
 * the connection. Nothing refscope reads with needs a SET later (withMemoryLimit / withOneThread are write paths).
 * Errors: a lock conflict as one sentence; any other as `PATH: cannot open database: DuckDB's first line`.
 */
export async function openLocked(path: string, o: ReadOnlyOptions = {}, Err: new (m: string) => Error = UsageError): Promise<Db> {
  const open = () =>
    openDb(path, { readOnly: true }).catch((e: Error) => {
      // openDb made a lock conflict a UsageError already.
      throw new Err(e instanceof UsageError ? e.message : `${path}: cannot open database: ${e.message.split('\n')[0]}`);
    });
  let db = await open();
  // What a killed ingest or replay left (db/recover.ts) is removed before anything reads it: once, writable.
  const { needsRecovery } = await import('../db/recover.js');
  const left = await needsRecovery(db).catch(() => ({ traces: [], replays: [] }));
  if (left.traces.length || left.replays.length) {
    db.close();
    // A file we may not write keeps them: queries then still see only complete traces' `traces` rows.
    const rw = await openDb(path).catch(() => null);
    if (rw) {
      try {
        await (await import('../db/setup.js')).ensureSchema(rw);
      } finally {
        rw.close();
      }
    }
    db = await open();
  }
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
  // An older refscope's tables lack what the queries read: one line saying what to run, not DuckDB's binder error.
  const { olderSchema } = await import('../db/setup.js');
  const older = o.anySchema ? null : await olderSchema(db).catch(() => null);
  if (older !== null) {
    db.close();
    throw new Err(`${path}: written by an older refscope (${older}): run \`refscope replay --db ${path}\` once to bring it up to date`);
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

export interface TraceListing {
  trace_id: number;
  source: string;
  events: number | null;
  replayed: boolean;
}

/** The traces of a database, as a user picks them (queries/report/trace-list.sql). */
export async function listTraces(db: Db): Promise<TraceListing[]> {
  const { rowsOf } = await import('../queries/statements.js');
  const rows = await rowsOf<{ trace_id: unknown; source: string; events: unknown; replayed: boolean }>(db, 'report/trace-list.sql');
  return rows.map((r) => ({ trace_id: Number(r.trace_id), source: r.source, events: r.events === null ? null : Number(r.events), replayed: r.replayed }));
}

/** `  trace 2  b.txt  1234 events  replayed`, one line per trace. */
export function formatTraceList(traces: TraceListing[]): string {
  return traces
    .map((t) => `  trace ${t.trace_id}  ${escapeControl(t.source)}  ${t.events ?? '?'} events  ${t.replayed ? 'replayed' : 'not replayed'}`)
    .join('\n');
}

/**
 * `--trace` of a command that works on one trace: an id, `all` where `all` says what it does, or nothing, which
 * means the only trace and is refused (with the list of traces and how to pick) when the database holds several.
 * Returns the traces to work on.
 */
export async function pickTraces(db: Db, asked: string | undefined, o: { all?: string } = {}): Promise<TraceListing[]> {
  const traces = await listTraces(db);
  if (!traces.length) throw new ReportUsageError(`${db.path}: no trace ingested (run refscope ingest first)`);
  const how = `give --trace N${o.all ? ` (or --trace all: ${o.all})` : ''}`;
  if (asked === 'all' && o.all) return traces;
  if (asked === undefined) {
    if (traces.length === 1) return traces;
    throw new ReportUsageError(`${db.path} holds ${traces.length} traces; ${how}:\n${formatTraceList(traces)}`);
  }
  if (!/^\d{1,9}$/.test(asked)) throw new ReportUsageError(`--trace ${asked}: not a trace id; ${how}`);
  const picked = traces.filter((t) => t.trace_id === Number(asked));
  if (!picked.length) throw new ReportUsageError(`${db.path}: no trace ${Number(asked)}; ${how}:\n${formatTraceList(traces)}`);
  return picked;
}

/**
 * Open the database read-only, pick the traces (--trace N, `all` when o.all says what that does, or the only
 * one), insist each was replayed, run fn on each in trace order.
 */
export async function withReplayedTraces<T>(
  o: { db: string; trace?: string; all?: string },
  fn: (db: Db, traceId: number, of: number) => Promise<T>,
): Promise<T[]> {
  const db = await openLocked(o.db, {}, ReportUsageError);
  try {
    const picked = await pickTraces(db, o.trace, { all: o.all });
    const ids = picked.map((t) => t.trace_id);
    const notReplayed = picked.filter((t) => !t.replayed).map((t) => t.trace_id);
    if (notReplayed.length)
      throw new ReportUsageError(
        `trace ${notReplayed.join(', ')} not replayed (run: ${notReplayed.map((id) => `refscope replay --db ${o.db} --trace ${id}`).join('; ')})`,
      );
    const out: T[] = [];
    for (const id of ids) out.push(await fn(db, id, ids.length));
    return out;
  } finally {
    db.close();
  }
}

/** withReplayedTraces for a command that works on exactly one trace. */
export async function withReplayedTrace<T>(o: { db: string; trace?: string }, fn: (db: Db, traceId: number) => Promise<T>): Promise<T> {
  const [r] = await withReplayedTraces({ db: o.db, trace: o.trace }, (db, id) => fn(db, id));
  return r!;
}
