/**
 * Where trackers write their rows: one writer per result table, opened inside the replay's transaction, each
 * inserting through a TableFeed (DuckDB inserts on its own thread while the replay goes on), plus the string
 * tables that turn the driver's ids back into text and the conversion of relative timestamps back to
 * events.ts_ns. Trackers fill one reusable row object per table and call add().
 */
import type { Table } from '../db/columns.js';
import type { Db } from '../db/duckdb.js';
import { TableFeed } from '../db/feed.js';
import { RowWriter, type Value } from '../db/rows.js';
import { ColumnarBatch, setBig, setCode, setInt, setStr, type BatchColumn } from '../ingest/batch.js';
import { ANOMALIES, CMA_ATTEMPTS, CMA_BLOCKERS, DIVERGENCES, HOLDS, PAGES, PGMAP_REFS, PGMAPS, PINS } from './schema.js';

export type Row = Record<string, Value>;

/**
 * A columnar writer for the high-volume table (`pages`: about one row per allocation): values go straight into
 * the batch's typed columns through column handles resolved once, strings as dictionary codes (inserted as ENUMs
 * that DuckDB casts to VARCHAR), so a row costs no property lookups by name and no string copies.
 */
export class ColumnWriter {
  private readonly batch: ColumnarBatch;
  readonly feed: TableFeed;
  count = 0;
  /** Row index being filled. */
  r = 0;

  constructor(
    db: Db,
    readonly table: Table,
  ) {
    this.batch = new ColumnarBatch(table, []);
    this.feed = new TableFeed(db, table);
  }

  open(): this {
    this.feed.open();
    return this;
  }

  col(name: string): BatchColumn {
    return this.batch.col(name);
  }

  /**
   * A column whose dictionary codes are the indexes of `values` (the driver's string tables): code() then
   * stores an id with no string lookup.
   */
  coded(name: string, values: string[]): BatchColumn {
    const c = this.batch.col(name);
    c.dict!.seed(values);
    return c;
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

  /** An index into the column's seeded values (see coded()); negative = NULL. */
  code(c: BatchColumn, id: number): void {
    if (id >= 0) setCode(c, this.r, id);
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

  close(): Promise<void> {
    this.flush();
    return this.feed.close();
  }

  private flush(): void {
    this.feed.append(this.batch);
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

  private readonly feeds: TableFeed[] = [];

  async open(): Promise<this> {
    const w = (t: Table) => {
      const feed = new TableFeed(this.db, t);
      this.feeds.push(feed);
      return new RowWriter(this.db, t, feed).open();
    };
    this.pages = new ColumnWriter(this.db, PAGES).open();
    this.feeds.push(this.pages.feed);
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

  /** Rows written but not yet in their tables. */
  get backlog(): number {
    return this.feeds.reduce((s, f) => s + f.backlog, 0);
  }

  /** Wait until every row written so far is in its table. */
  async drain(): Promise<void> {
    for (const f of this.feeds) await f.drain();
  }

  /** Every row into its table; throws the first insert error. */
  async close(): Promise<void> {
    for (const w of [this.pages, this.pins, this.holds, this.cmaAttempts, this.cmaBlockers, this.pgmaps, this.pgmapRefs, this.anomalies, this.divergences])
      await w.close();
  }

  /** The replay failed: drop the queued rows (its transaction rolls back). */
  async abort(): Promise<void> {
    for (const f of this.feeds) await f.abort();
  }

  /** A relative timestamp (or NaN) as the events.ts_ns value to store. */
  ts(x: number): number | bigint | null {
    if (x !== x) return null;
    return this.tsBase === 0n ? x : this.tsBase + BigInt(x);
  }

  comm(id: number): string | null {
    return id >= 0 ? (this.comms[id] ?? null) : null;
  }
}

/** NaN / negative-id sentinels to SQL NULL. */
export const num = (x: number): number | null => (x === x ? x : null);
export const id = (x: number): number | null => (x >= 0 ? x : null);
/** A hex pointer string (no 0x) as an exact UBIGINT value. */
export const ptr = (hex: string | null): bigint | null => (hex === null ? null : BigInt('0x' + hex));
