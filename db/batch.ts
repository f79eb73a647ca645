import type { Table } from './columns.js';

/**
 * A columnar batch of rows: typed arrays for numbers (int64 kept as exact lo/hi 32-bit halves, no BigInt
 * on the hot path), dictionary codes for low-cardinality strings, and UTF-8 bytes in one buffer per batch for
 * text where every row differs (payload, args). A batch crosses threads as transferable buffers, and the DuckDB
 * writer (db/chunks.ts) copies these arrays straight into data-chunk vectors, with no JS string per row.
 */

/** DuckDB's STANDARD_VECTOR_SIZE: one batch = one data chunk. */
export const BATCH_ROWS = 2048;

export type Storage = 'i64' | 'u64' | 'i32' | 'i16' | 'bool' | 'dict' | 'str';

export interface BatchColumn {
  name: string;
  storage: Storage;
  notNull: boolean;
  /** i64/u64: 2 words per row (lo, hi). */
  i32?: Int32Array;
  i16?: Int16Array;
  u8?: Uint8Array;
  /** dict: code per row into dict.values. */
  codes?: Uint32Array;
  dict?: Dictionary;
  /** str: UTF-8 bytes of every row's value (row r = bytes[start[r], start[r] + len[r])). */
  text?: TextBytes;
  /** Validity bitmap, 1 bit per row (bit set = valid), the layout DuckDB and Arrow share. */
  valid: Uint32Array;
  /** Values a writer may check before setInt ([lo, hi]), kept here by it so the check costs no lookup; null: not yet. */
  range: [number, number] | null;
}

export interface TextBytes {
  bytes: Buffer;
  start: Int32Array;
  len: Int32Array;
  /** Bytes in use. */
  used: number;
}

function newText(bytes = 64 * BATCH_ROWS): TextBytes {
  return { bytes: Buffer.allocUnsafeSlow(bytes), start: new Int32Array(BATCH_ROWS), len: new Int32Array(BATCH_ROWS), used: 0 };
}

/** A TextBytes that crossed threads arrives with a plain Uint8Array: make it a Buffer again (no copy). */
function textFrom(t: TextBytes): TextBytes {
  // Fields in newText()'s order: one object shape for setText.
  return { bytes: Buffer.from(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength), start: t.start, len: t.len, used: t.used };
}

export class Dictionary {
  readonly values: string[] = [];
  private readonly index = new Map<string, number>();
  // Consecutive rows mostly repeat the last value (same task, same event): skip hashing the string then.
  private last = '';
  private lastCode = -1;

  /** Start with `values` as codes 0..n-1 (distinct strings; the dictionary must be empty). */
  seed(values: string[]): void {
    if (this.values.length) throw new Error('Dictionary.seed on a dictionary in use');
    for (const v of values) this.code(v);
    if (this.values.length !== values.length) throw new Error('Dictionary.seed: values are not distinct');
  }

  code(s: string): number {
    if (s === this.last && this.lastCode >= 0) return this.lastCode;
    let c = this.index.get(s);
    if (c === undefined) {
      c = this.values.length;
      this.values.push(s);
      this.index.set(s, c);
    }
    this.last = s;
    this.lastCode = c;
    return c;
  }
}

/**
 * Canonical strings for text slices that repeat (comm, event names, flag words): get(text, start, end) equals
 * text.slice(start, end) but, when a recent call gave the same characters, is that same string object, found
 * without making the substring or hashing it. A Dictionary then codes it by identity (its `last`) or by its
 * hash, computed once. A direct-mapped table: each slot keeps the latest string whose length and a few
 * characters pick it, checked in full before it is returned.
 */
export class Interner {
  private readonly slots: string[];
  private readonly mask: number;

  constructor(bits = 8) {
    this.slots = new Array<string>(1 << bits).fill('');
    this.mask = (1 << bits) - 1;
  }

  get(text: string, start: number, end: number): string {
    const n = end - start;
    if (n <= 0) return '';
    if (n > 256) return text.slice(start, end); // not kept: a slot holds short strings only
    const h = (n * 31 + text.charCodeAt(start) * 7 + text.charCodeAt(end - 1) * 3 + text.charCodeAt(start + (n >> 1))) & this.mask;
    const s = this.slots[h];
    if (s.length === n && text.startsWith(s, start)) return s;
    // A copy, not a slice: a slice would keep the whole block of text it came from alive.
    const fresh = n < 13 ? text.slice(start, end) : (JSON.parse(JSON.stringify(text.slice(start, end))) as string);
    this.slots[h] = fresh;
    return fresh;
  }
}

/**
 * Interner for text read as bytes (the text reader's byte path, ASCII blocks): get(b, start, end) equals
 * b.toString('latin1', start, end), the same string object as the last time those bytes were seen (same slots
 * and checks as Interner).
 */
export class ByteInterner {
  private readonly slots: string[];
  private readonly mask: number;

  constructor(bits = 8) {
    this.slots = new Array<string>(1 << bits).fill('');
    this.mask = (1 << bits) - 1;
  }

  get(b: Buffer, start: number, end: number): string {
    const n = end - start;
    if (n <= 0) return '';
    if (n > 256) return b.toString('latin1', start, end);
    const h = (n * 31 + b[start] * 7 + b[end - 1] * 3 + b[start + (n >> 1)]) & this.mask;
    const s = this.slots[h];
    if (s.length === n && sameBytes(s, b, start)) return s;
    // toString makes a string of its own: nothing keeps the block alive.
    return (this.slots[h] = b.toString('latin1', start, end));
  }
}

/** Whether b[at, at + s.length) holds the characters of the one-byte string s. */
export function sameBytes(s: string, b: Uint8Array, at: number): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== b[at + i]) return false;
  return true;
}

function storageFor(type: string, name: string, plainStrings: Set<string>): Storage {
  const t = type.split(' ')[0];
  switch (t) {
    case 'BIGINT':
      return 'i64';
    case 'UBIGINT':
      return 'u64';
    case 'INTEGER':
      return 'i32';
    case 'SMALLINT':
      return 'i16';
    case 'BOOLEAN':
      return 'bool';
    case 'VARCHAR':
    case 'JSON':
      return plainStrings.has(name) ? 'str' : 'dict';
    default:
      throw new Error(`batch: unsupported column type ${type} for ${name}`);
  }
}

export class ColumnarBatch {
  readonly columns: BatchColumn[];
  readonly byName = new Map<string, BatchColumn>();
  rows = 0;

  constructor(
    readonly table: Table,
    plainStrings: string[],
    /** Shared across batches so codes stay stable for a whole ingest. */
    dicts: Map<string, Dictionary> = new Map(),
  ) {
    const plain = new Set(plainStrings);
    this.columns = table.columns.map((c) => {
      const storage = storageFor(c.type, c.name, plain);
      // Every column has every field (unused ones undefined): one object shape, so the setters' property loads
      // stay monomorphic.
      const col: BatchColumn = {
        name: c.name,
        storage,
        notNull: c.type.includes('NOT NULL'),
        i32: undefined,
        i16: undefined,
        u8: undefined,
        codes: undefined,
        dict: undefined,
        text: undefined,
        valid: new Uint32Array(BATCH_ROWS / 32),
        range: null,
      };
      if (storage === 'i64' || storage === 'u64') col.i32 = new Int32Array(BATCH_ROWS * 2);
      else if (storage === 'i32') col.i32 = new Int32Array(BATCH_ROWS);
      else if (storage === 'i16') col.i16 = new Int16Array(BATCH_ROWS);
      else if (storage === 'bool') col.u8 = new Uint8Array(BATCH_ROWS);
      else if (storage === 'dict') {
        col.codes = new Uint32Array(BATCH_ROWS);
        let d = dicts.get(c.name);
        if (!d) dicts.set(c.name, (d = new Dictionary()));
        col.dict = d;
      } else col.text = newText();
      this.byName.set(c.name, col);
      return col;
    });
  }

  col(name: string): BatchColumn {
    const c = this.byName.get(name);
    if (!c) throw new Error(`batch: no column ${name} in ${this.table.name}`);
    return c;
  }

  get full(): boolean {
    return this.rows >= BATCH_ROWS;
  }

  /** Start a new row; every column starts NULL. Returns its index. */
  addRow(): number {
    const r = this.rows++;
    const w = r >>> 5;
    if ((r & 31) === 0) for (const c of this.columns) c.valid[w] = 0;
    return r;
  }

  /** Undo addRow() of the last row (its values were rejected): every column NULL again, its text bytes freed. */
  dropLastRow(): void {
    const r = --this.rows;
    const w = r >>> 5;
    const bit = ~(1 << (r & 31));
    for (const c of this.columns) {
      if (c.text && c.valid[w] & ~bit) c.text.used = c.text.start[r];
      c.valid[w] &= bit;
    }
  }

  clear(): void {
    this.rows = 0;
    for (const c of this.columns) if (c.text) c.text.used = 0;
  }

  /**
   * Hand this batch's arrays to another thread (transferable buffers) and continue with fresh ones, taken
   * from `spare` (arrays the receiver handed back) when given: recycling them spares the allocator and the
   * page faults of zeroing new memory for every batch. Dictionary values added since the last detach travel
   * along so the receiver's codes stay in step.
   */
  detach(sent: Map<string, number>, spare?: TransferredBatch): TransferredBatch {
    const cols = this.columns.map((c, i) => {
      const s = spare?.cols[i];
      const t: TransferredColumn = { valid: c.valid };
      c.valid = s?.valid ?? new Uint32Array(BATCH_ROWS / 32);
      if (c.i32) [t.i32, c.i32] = [c.i32, s?.i32 ?? new Int32Array(c.i32.length)];
      if (c.i16) [t.i16, c.i16] = [c.i16, s?.i16 ?? new Int16Array(BATCH_ROWS)];
      if (c.u8) [t.u8, c.u8] = [c.u8, s?.u8 ?? new Uint8Array(BATCH_ROWS)];
      if (c.codes) {
        [t.codes, c.codes] = [c.codes, s?.codes ?? new Uint32Array(BATCH_ROWS)];
        const from = sent.get(c.name) ?? 0;
        t.newValues = c.dict!.values.slice(from);
        sent.set(c.name, c.dict!.values.length);
      }
      if (c.text) {
        t.text = c.text;
        c.text = s?.text ? textFrom(s.text) : newText(c.text.bytes.length);
        c.text.used = 0;
      }
      return t;
    });
    const out = { rows: this.rows, cols };
    this.rows = 0;
    return out;
  }

  /** Give up the arrays (to hand them back to the thread that filled them); attach() must follow before reuse. */
  release(): TransferredBatch {
    const cols = this.columns.map((c) => ({ valid: c.valid, i32: c.i32, i16: c.i16, u8: c.u8, codes: c.codes, text: c.text }));
    this.rows = 0;
    return { rows: 0, cols };
  }

  /** Receive a detached batch (the counterpart of detach). */
  attach(t: TransferredBatch): void {
    this.rows = t.rows;
    this.columns.forEach((c, i) => {
      const s = t.cols[i];
      c.valid = s.valid;
      if (s.i32) c.i32 = s.i32;
      if (s.i16) c.i16 = s.i16;
      if (s.u8) c.u8 = s.u8;
      if (s.codes) {
        c.codes = s.codes;
        for (const v of s.newValues!) c.dict!.code(v);
      }
      if (s.text) c.text = textFrom(s.text);
    });
  }
}

export interface TransferredColumn {
  valid: Uint32Array;
  i32?: Int32Array;
  i16?: Int16Array;
  u8?: Uint8Array;
  codes?: Uint32Array;
  newValues?: string[];
  text?: TextBytes;
}

export interface TransferredBatch {
  rows: number;
  cols: TransferredColumn[];
}

export function transferList(t: TransferredBatch): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const c of t.cols)
    for (const a of [c.valid, c.i32, c.i16, c.u8, c.codes, c.text?.bytes, c.text?.start, c.text?.len])
      if (a) out.push(a.buffer as ArrayBuffer);
  return out;
}

/* Setters. Kept as free functions on a column so the hot path does no name lookups. */

function setValid(c: BatchColumn, r: number): void {
  c.valid[r >>> 5] |= 1 << (r & 31);
}

export function isValid(c: BatchColumn, r: number): boolean {
  return (c.valid[r >>> 5] & (1 << (r & 31))) !== 0;
}

/** A non-negative or negative integer that fits a double exactly (|v| < 2^53). */
export function setInt(c: BatchColumn, r: number, v: number): void {
  setValid(c, r);
  switch (c.storage) {
    case 'i64':
    case 'u64': {
      // Two's complement halves: floor division keeps negative values (ret=-16) exact.
      const hi = Math.floor(v / 4294967296);
      c.i32![2 * r] = (v - hi * 4294967296) | 0;
      c.i32![2 * r + 1] = hi | 0;
      break;
    }
    case 'i32':
      c.i32![r] = v;
      break;
    case 'i16':
      c.i16![r] = v;
      break;
    case 'bool':
      c.u8![r] = v ? 1 : 0;
      break;
    default:
      throw new Error(`setInt on ${c.storage} column ${c.name}`);
  }
}

/** An exact 64-bit value given as unsigned 32-bit halves. */
export function setU64(c: BatchColumn, r: number, hi: number, lo: number): void {
  setValid(c, r);
  c.i32![2 * r] = lo | 0;
  c.i32![2 * r + 1] = hi | 0;
}

/** An exact 64-bit value given as a bigint (negative values as their two's complement). */
export function setBig(c: BatchColumn, r: number, v: bigint): void {
  const u = BigInt.asUintN(64, v);
  setU64(c, r, Number(u >> 32n), Number(u & 0xffffffffn));
}

export function setStr(c: BatchColumn, r: number, s: string): void {
  setValid(c, r);
  if (c.storage === 'dict') c.codes![r] = c.dict!.code(s);
  else setText(c.text!, r, s);
}

/** A dictionary code the caller already knows (Dictionary.seed). */
export function setCode(c: BatchColumn, r: number, code: number): void {
  setValid(c, r);
  c.codes![r] = code;
}

function setText(t: TextBytes, r: number, s: string): void {
  // A UTF-16 unit is at most 3 UTF-8 bytes: grow first, then write without checking.
  if (t.used + 3 * s.length > t.bytes.length) {
    const grown = Buffer.allocUnsafeSlow(Math.max(2 * t.bytes.length, t.used + 3 * s.length));
    t.bytes.copy(grown, 0, 0, t.used);
    t.bytes = grown;
  }
  const n = t.bytes.write(s, t.used, 'utf8');
  t.start[r] = t.used;
  t.len[r] = n;
  t.used += n;
}

/** A str column's value copied from bytes (b[start, end), UTF-8 or ASCII): no string in between. */
export function setTextBytes(c: BatchColumn, r: number, b: Uint8Array, start: number, end: number): void {
  setValid(c, r);
  const t = c.text!;
  const n = end - start;
  if (t.used + n > t.bytes.length) {
    const grown = Buffer.allocUnsafeSlow(Math.max(2 * t.bytes.length, t.used + n));
    t.bytes.copy(grown, 0, 0, t.used);
    t.bytes = grown;
  }
  const out = t.bytes;
  const at = t.used;
  out.set(b.subarray(start, end), at);
  t.start[r] = at;
  t.len[r] = n;
  t.used += n;
}

export function getInt(c: BatchColumn, r: number): number | null {
  if (!isValid(c, r)) return null;
  switch (c.storage) {
    case 'i64':
      return c.i32![2 * r + 1] * 4294967296 + (c.i32![2 * r] >>> 0);
    case 'u64':
      return (c.i32![2 * r + 1] >>> 0) * 4294967296 + (c.i32![2 * r] >>> 0);
    case 'i32':
      return c.i32![r];
    case 'i16':
      return c.i16![r];
    case 'bool':
      return c.u8![r];
    default:
      throw new Error(`getInt on ${c.storage}`);
  }
}

export function getStr(c: BatchColumn, r: number): string | null {
  if (!isValid(c, r)) return null;
  if (c.storage === 'dict') return c.dict!.values[c.codes![r]];
  const t = c.text!;
  return t.bytes.toString('utf8', t.start[r], t.start[r] + t.len[r]);
}

/** Exact int64 as a decimal string (for values beyond 2^53). */
export function getI64String(c: BatchColumn, r: number): string | null {
  if (!isValid(c, r)) return null;
  const lo = BigInt(c.i32![2 * r] >>> 0);
  const hi = BigInt(c.i32![2 * r + 1]);
  const v = (hi << 32n) | lo;
  return (c.storage === 'u64' ? BigInt.asUintN(64, v) : BigInt.asIntN(64, v)).toString();
}
