import { DuckDBConnection, DuckDBInstance } from './duckdb-api.js';
import type { DuckDBValue } from '@duckdb/node-api';
import { closeSync, fsyncSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * Thin typed layer over @duckdb/node-api: open a database with refscope's settings, run SQL with bound
 * parameters (never spliced), read rows as plain objects.
 */

export type Params = DuckDBValue[] | Record<string, DuckDBValue>;
export type Row = Record<string, unknown>;

export interface OpenOptions {
  readOnly?: boolean;
  /** DuckDB memory_limit, e.g. '2GB'. Bounds the buffer pool so large ingests spill instead of growing RSS. */
  memoryLimit?: string;
  threads?: number;
  /**
   * Storage format of a database file this open creates (an existing file keeps its own). Default STORAGE_VERSION;
   * null = DuckDB's default (v0.10.2 in DuckDB 1.5), which the bench's regex baseline uses as a power user would.
   */
  storageVersion?: string | null;
}

/**
 * Files refscope creates are readable by DuckDB 1.3 and later. The format of 1.3 brings the compression methods
 * `events` uses (db/columns.ts): ZSTD for the payload (a twelfth of FSST's blocks, written in ~2/3 of its time) and
 * DICT_FSST for the low-cardinality text columns.
 */
export const STORAGE_VERSION = 'v1.3.0';

export class Db {
  private constructor(
    readonly path: string,
    public instance: DuckDBInstance,
    public conn: DuckDBConnection,
    /** memory_limit as configured at open (DuckDB reports it back rounded). */
    readonly memoryLimit: string,
    readonly threads?: number,
    private readonly config: Record<string, string> = {},
  ) {
    this.limit = memoryLimit;
  }

  static async open(path: string, opts: OpenOptions = {}): Promise<Db> {
    const memoryLimit = opts.memoryLimit ?? (process.env.REFSCOPE_MEMORY_LIMIT || '2GB');
    const config: Record<string, string> = {
      // Only the extensions built into the package exist offline; never try to download one.
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      memory_limit: memoryLimit,
    };
    if (opts.readOnly) config.access_mode = 'READ_ONLY';
    if (opts.threads) config.threads = String(opts.threads);
    const storage = opts.storageVersion === undefined ? STORAGE_VERSION : opts.storageVersion;
    if (storage) config.storage_compatibility_version = storage;
    const instance = await DuckDBInstance.create(path, config);
    const conn = await instance.connect();
    return new Db(path, instance, conn, memoryLimit, opts.threads, config);
  }

  /**
   * Put the database file `tmp` (closed, fsync'd) in place of this one and reopen: close, rename over the path,
   * fsync the directory. A crash leaves either file whole (db/recover.ts reclaim()).
   */
  async replaceFile(tmp: string): Promise<void> {
    this.close();
    rmSync(this.path + '.wal', { force: true });
    renameSync(tmp, this.path);
    const fd = openSync(dirname(resolve(this.path)), 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.instance = await DuckDBInstance.create(this.path, this.config);
    this.conn = await this.instance.connect();
  }

  async run(sql: string, params?: Params): Promise<void> {
    await this.conn.run(sql, params);
  }

  async all<T = Row>(sql: string, params?: Params): Promise<T[]> {
    const r = await this.conn.runAndReadAll(sql, params);
    return r.getRowObjectsJS() as T[];
  }

  async one<T = Row>(sql: string, params?: Params): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  async tableExists(name: string): Promise<boolean> {
    const r = await this.one<{ n: number }>(
      'SELECT count(*)::INTEGER AS n FROM information_schema.tables WHERE table_name = $1',
      [name],
    );
    return (r?.n ?? 0) > 0;
  }

  /**
   * Whether the database file predates STORAGE_VERSION (made by DuckDB's default format, or by refscope before it
   * set one): its tables then take the older compression methods (db/columns.ts).
   */
  async legacyStorage(): Promise<boolean> {
    // An in-memory database has no tag: the setting it was opened with decides.
    const r = await this.one<{ v: string }>(
      "SELECT coalesce(tags['storage_version'], current_setting('storage_compatibility_version')) AS v FROM duckdb_databases() WHERE database_name = current_database()",
    );
    return versionBefore(r?.v ?? '', STORAGE_VERSION);
  }

  /** Run fn inside one transaction; roll back on any error. */
  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    await this.run('BEGIN TRANSACTION');
    try {
      const v = await fn();
      await this.run('COMMIT');
      return v;
    } catch (e) {
      await this.run('ROLLBACK').catch(() => undefined);
      throw e;
    }
  }

  /**
   * Run fn with DuckDB's buffer pool capped at `limit` (unless REFSCOPE_MEMORY_LIMIT is set), then restore it.
   * Ingest and replay read or write each block once; the pool would otherwise keep them cached up to memory_limit
   * (2GB), so that peak memory grew with the trace; a single pass gains nothing from cached blocks.
   */
  async withMemoryLimit<T>(limit: '64MB' | '128MB' | '256MB', fn: () => Promise<T>): Promise<T> {
    if (process.env.REFSCOPE_MEMORY_LIMIT) return fn();
    // Nested calls restore the cap of the enclosing one.
    const prev = this.limit;
    this.limit = limit;
    try {
      // Settings cannot be bound parameters; the values are refscope's own, never text from a trace.
      return await this.withSetting(`SET memory_limit = '${limit}'`, `SET memory_limit = '${prev.replace(/'/g, '')}'`, fn);
    } finally {
      this.limit = prev;
    }
  }

  /** memory_limit in force (withMemoryLimit's, else the one set at open). */
  private limit: string;

  /**
   * Run fn with DuckDB on one thread. Ingest: DuckDB's background tasks no longer compete with the parse worker
   * for the cores. Replay's event stream: a single-threaded scan keeps the table's order, so no
   * ORDER BY seq sort is needed.
   */
  async withOneThread<T>(fn: () => Promise<T>): Promise<T> {
    return this.withSetting('SET threads = 1', this.threads ? `SET threads = ${Number(this.threads)}` : 'RESET threads', fn);
  }

  private async withSetting<T>(set: string, restore: string, fn: () => Promise<T>): Promise<T> {
    await this.run(set);
    let v: T;
    try {
      v = await fn();
    } catch (e) {
      // fn's error is the one to report, even if an aborted caller transaction refuses the restore too.
      await this.run(restore).catch(() => undefined);
      throw e;
    }
    await this.run(restore);
    return v;
  }

  close(): void {
    this.conn.closeSync();
    this.instance.closeSync();
  }
}

/** 'v1.2.0+' < 'v1.3.0'? (DuckDB tags a file's storage format as the first version that reads it.) */
function versionBefore(a: string, b: string): boolean {
  const n = (v: string) => (v.match(/\d+/g) ?? []).map(Number);
  const [x, y] = [n(a), n(b)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
  return false;
}
