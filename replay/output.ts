/**
 * Where trackers write their rows: one RowWriter (columnar appender) per result table, opened inside the
 * replay's transaction, plus the string tables that turn the driver's ids back into text and the conversion
 * of relative timestamps back to events.ts_ns. Trackers fill one reusable row object per table and call add().
 */
import { ChunkAppender } from '../db/chunks.js';
import type { Table } from '../db/columns.js';
import type { Db } from '../db/duckdb.js';
import { RowWriter, type Value } from '../db/rows.js';
import { ColumnarBatch, setBig, setInt, setStr, type BatchColumn } from '../ingest/batch.js';
import { ANOMALIES, CMA_ATTEMPTS, CMA_BLOCKERS, DIVERGENCES, HOLDS, PAGES, PGMAP_REFS, PGMAPS, PINS } from './schema.js';

export type Row = Record<string, Value>;

/**
 * A columnar writer for the high-volume table (`pages`: about one row per allocation): values go straight into
 * the batch's typed columns through column handles resolved once, strings as dictionary codes (appended as
 * ENUM chunks that DuckDB casts to VARCHAR), so a row costs no property lookups by name and no string copies.
 */
export class ColumnWriter {
  private readonly batch: ColumnarBatch;
  private readonly app: ChunkAppender;
  count = 0;
  /** Row index being filled. */
  r = 0;

  constructor(
    db: Db,
    readonly table: Table,
  ) {
    this.batch = new ColumnarBatch(table, []);
    this.app = new ChunkAppender(db, table.name);
  }

  async open(): Promise<this> {
    await this.app.open();
    return this;
  }

  col(name: string): BatchColumn {
    return this.batch.col(name);
  }

  /** Start a row (every column NULL); fill it with the setters below. */
  row(): void {
    if (this.batch.full) this.flush();
    this.r = this.batch.addRow();
    this.count++;
  }

  /** Integer or NaN (NULL). */
  num(c: BatchColumn, v: number): void {
    if (v === v) setInt(c, this.r, v);
  }

  bool(c: BatchColumn, v: boolean): void {
    setInt(c, this.r, v ? 1 : 0);
  }

  str(c: BatchColumn, v: string | null): void {
    if (v !== null) setStr(c, this.r, v);
  }

  /** A relative timestamp (NaN = NULL) stored as events.ts_ns: base + x. */
  ts(c: BatchColumn, x: number, base: bigint): void {
    if (x !== x) return;
    if (base === 0n) setInt(c, this.r, x);
    else this.big(c, base + BigInt(x));
  }

  /** An exact 64-bit value (UBIGINT pointer) or null. */
  big(c: BatchColumn, v: bigint | null): void {
    if (v !== null) setBig(c, this.r, v);
  }

  close(): void {
    this.flush();
    this.app.close();
  }

  private flush(): void {
    this.app.append(this.batch);
    this.batch.clear();
  }
}

export class Output {
  pages!: ColumnWriter;
  pins!: RowWriter;
  holds!: RowWriter;
  cmaAttempts!: RowWriter;
  cmaBlockers!: RowWriter;
  pgmaps!: RowWriter;
  pgmapRefs!: RowWriter;
  anomalies!: RowWriter;
  divergences!: RowWriter;

  constructor(
    private readonly db: Db,
    readonly traceId: number,
    /** events.ts_ns of relative time 0 (0 when absolute ns fit a double exactly). */
    readonly tsBase: bigint,
    readonly comms: string[],
    readonly gfps: string[],
  ) {}

  async open(): Promise<this> {
    const w = (t: typeof PAGES) => new RowWriter(this.db, t).open();
    this.pages = await new ColumnWriter(this.db, PAGES).open();
    this.pins = await w(PINS);
    this.holds = await w(HOLDS);
    this.cmaAttempts = await w(CMA_ATTEMPTS);
    this.cmaBlockers = await w(CMA_BLOCKERS);
    this.pgmaps = await w(PGMAPS);
    this.pgmapRefs = await w(PGMAP_REFS);
    this.anomalies = await w(ANOMALIES);
    this.divergences = await w(DIVERGENCES);
    return this;
  }

  close(): void {
    for (const w of [this.pages, this.pins, this.holds, this.cmaAttempts, this.cmaBlockers, this.pgmaps, this.pgmapRefs, this.anomalies, this.divergences])
      w.close();
  }

  /** A relative timestamp (or NaN) as the events.ts_ns value to store. */
  ts(x: number): number | bigint | null {
    if (x !== x) return null;
    return this.tsBase === 0n ? x : this.tsBase + BigInt(x);
  }

  comm(id: number): string | null {
    return id >= 0 ? (this.comms[id] ?? null) : null;
  }

  gfp(id: number): string | null {
    return id >= 0 ? (this.gfps[id] ?? null) : null;
  }
}

/** NaN / negative-id sentinels to SQL NULL. */
export const num = (x: number): number | null => (x === x ? x : null);
export const id = (x: number): number | null => (x >= 0 ? x : null);
/** A hex pointer string (no 0x) as an exact UBIGINT value. */
export const ptr = (hex: string | null): bigint | null => (hex === null ? null : BigInt('0x' + hex));
