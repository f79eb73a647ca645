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
import { BATCH_ROWS, ColumnarBatch, setBig } from '../db/batch.js';
import { ANOMALIES, CMA_ATTEMPTS, CMA_BLOCKERS, DIVERGENCES, HOLDS, PAGES, PGMAP_REFS, PGMAPS, PINS } from '../db/tables/replay.js';

export type Row = Record<string, Value>;

/** Column kinds of the staging transposition (ColumnWriter.flush). */
const K_I64 = 0, K_TS = 1, K_BIG = 2, K_I32 = 3, K_I16 = 4, K_BOOL = 5, K_CODE = 6;
const TWO32 = 4294967296;

/**
 * A columnar writer for the high-volume table (`pages`: about one row per allocation). A row is written into a
 * row-major Float64Array (NaN = NULL) with plain indexed stores, and each full batch is turned into the batch's
 * typed columns by one tight loop per column, cheaper for the JS thread than a typed setter call per cell. Strings
 * are dictionary codes (inserted as ENUMs that DuckDB casts to VARCHAR); relative timestamps and exact 64-bit
 * pointers, which a double cannot hold, are converted in the transposition.
 */
export class ColumnWriter {
  private readonly batch: ColumnarBatch;
  readonly feed: TableFeed;
  /** Columns per row (the table's). */
  private readonly n: number;
  private readonly kinds: Int32Array;
  private readonly stage: Float64Array;
  /** UBIGINT values of this batch (K_BIG cells hold an index here). */
  private bigs: bigint[] = [];
  /** events.ts_ns of relative time 0, as 32-bit halves (K_TS columns). */
  private readonly baseHi: number;
  private readonly baseLo: number;
  private rows = 0;
  count = 0;
  /** Offset of the row being filled in `stage`. */
  private o = 0;

  constructor(
    db: Db,
    readonly table: Table,
    tsBase: bigint,
  ) {
    this.batch = new ColumnarBatch(table, []);
    this.feed = new TableFeed(db, table);
    this.n = this.batch.columns.length;
    this.kinds = Int32Array.from(this.batch.columns, (c) => {
      switch (c.storage) {
        case 'i64':
          return K_I64;
        case 'u64':
          return K_BIG;
        case 'i32':
          return K_I32;
        case 'i16':
          return K_I16;
        case 'bool':
          return K_BOOL;
        case 'dict':
          return K_CODE;
        default:
          throw new Error(`ColumnWriter: ${table.name}.${c.name} is ${c.storage}`);
      }
    });
    this.stage = new Float64Array(BATCH_ROWS * this.n).fill(NaN);
    const u = BigInt.asUintN(64, tsBase);
    this.baseHi = Number(u >> 32n) | 0;
    this.baseLo = Number(u & 0xffffffffn);
  }

  open(): this {
    this.feed.open();
    return this;
  }

  /** A column's handle (its index). */
  col(name: string): number {
    return this.batch.columns.indexOf(this.batch.col(name));
  }

  /** A BIGINT column written with ts(): relative timestamps. */
  tsCol(name: string): number {
    const i = this.col(name);
    if (this.kinds[i] !== K_I64) throw new Error(`ColumnWriter: ${name} is not BIGINT`);
    this.kinds[i] = K_TS;
    return i;
  }

  /**
   * A column whose dictionary codes are the indexes of `values` (the driver's string tables): code() then
   * stores an id with no string lookup.
   */
  coded(name: string, values: string[]): number {
    this.batch.col(name).dict!.seed(values);
    return this.col(name);
  }

  /** Start a row (every column NULL); fill it with the setters below. */
  row(): void {
    if (this.rows === BATCH_ROWS) this.flush();
    this.o = this.rows++ * this.n;
    this.count++;
  }

  /** Integer (|v| < 2^53) or NaN (NULL). */
  num(c: number, v: number): void {
    this.stage[this.o + c] = v;
  }

  bool(c: number, v: boolean): void {
    this.stage[this.o + c] = v ? 1 : 0;
  }

  /** A string of a dictionary column, or null. */
  str(c: number, v: string | null): void {
    if (v !== null) this.stage[this.o + c] = this.batch.columns[c].dict!.code(v);
  }

  /** An index into the column's seeded values (see coded()); negative = NULL. */
  code(c: number, id: number): void {
    if (id >= 0) this.stage[this.o + c] = id;
  }

  /** A relative timestamp (NaN = NULL) of a tsCol(), stored as events.ts_ns: base + x. */
  ts(c: number, x: number): void {
    this.stage[this.o + c] = x;
  }

  /** An exact 64-bit value (UBIGINT pointer) or null. */
  big(c: number, v: bigint | null): void {
    if (v === null) return;
    this.stage[this.o + c] = this.bigs.length;
    this.bigs.push(v);
  }

  close(): Promise<void> {
    this.flush();
    return this.feed.close();
  }

  /** The staged rows into the batch's columns, column by column; the batch goes to the feed. */
  private flush(): void {
    const rows = this.rows;
    if (rows === 0) return;
    const b = this.batch;
    for (let k = 0; k < this.n; k++) {
      const c = b.columns[k];
      c.valid.fill(0);
      switch (this.kinds[k]) {
        case K_I64:
          this.i64(c.i32!, c.valid, k, rows, 0, 0);
          break;
        case K_TS:
          this.i64(c.i32!, c.valid, k, rows, this.baseHi, this.baseLo);
          break;
        case K_BIG:
          this.each(c.valid, k, rows, (r, v) => setBig(c, r, this.bigs[v]));
          break;
        case K_I32:
          this.narrow(c.i32!, c.valid, k, rows);
          break;
        case K_I16:
          this.narrow(c.i16!, c.valid, k, rows);
          break;
        case K_BOOL:
          this.narrow(c.u8!, c.valid, k, rows);
          break;
        default:
          this.narrow(c.codes!, c.valid, k, rows);
      }
    }
    b.rows = rows;
    this.feed.append(b);
    this.stage.fill(NaN, 0, rows * this.n);
    this.rows = 0;
    this.bigs = [];
  }

  /** Column k as 64-bit halves of base + value: exact past 2^53, carry between the halves included. */
  private i64(out: Int32Array, valid: Uint32Array, k: number, rows: number, baseHi: number, baseLo: number): void {
    const S = this.stage;
    for (let r = 0, o = k; r < rows; r++, o += this.n) {
      const v = S[o];
      if (v !== v) continue;
      valid[r >>> 5] |= 1 << (r & 31);
      const hi = Math.floor(v / TWO32);
      let lo = baseLo + (v - hi * TWO32);
      let carry = 0;
      if (lo >= TWO32) {
        lo -= TWO32;
        carry = 1;
      }
      out[2 * r] = lo | 0;
      out[2 * r + 1] = (baseHi + hi + carry) | 0;
    }
  }

  /** Column k into a typed array of its width (values fit: they came from the same kind of column). */
  private narrow(out: Int32Array | Int16Array | Uint8Array | Uint32Array, valid: Uint32Array, k: number, rows: number): void {
    const S = this.stage;
    for (let r = 0, o = k; r < rows; r++, o += this.n) {
      const v = S[o];
      if (v !== v) continue;
      valid[r >>> 5] |= 1 << (r & 31);
      out[r] = v;
    }
  }

  private each(valid: Uint32Array, k: number, rows: number, fn: (r: number, v: number) => void): void {
    const S = this.stage;
    for (let r = 0, o = k; r < rows; r++, o += this.n) {
      const v = S[o];
      if (v !== v) continue;
      valid[r >>> 5] |= 1 << (r & 31);
      fn(r, v);
    }
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
    this.pages = new ColumnWriter(this.db, PAGES, this.tsBase).open();
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
