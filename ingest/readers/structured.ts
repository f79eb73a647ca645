import { open, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { RecordBatchReader, Type, type DataType, type RecordBatch, type Vector } from 'apache-arrow';
import Papa from 'papaparse';
import { setBig, setInt, setStr, type BatchColumn } from '../../db/batch.js';
import type { EventBuilder } from '../builder.js';
import type { Progress } from '../progress.js';
import { EVENTS } from '../../db/tables/ingest.js';
import { outOfRange, rangeOf } from '../decode/limits.js';
import { InputError, MAX_LINE_BYTES, type Source } from '../source.js';
import type { Clock, LineContext } from './sink.js';

/**
 * CSV and Arrow IPC input: rows whose columns are named after the `events` table (the canonical events schema,
 * which `refscope export` writes). Required: `ts_ns` (or `ts` in seconds), `event`, and `payload` or typed
 * columns. Every row goes through the EventBuilder like a text line, so the payload is decoded; typed columns
 * present in the input then replace what the decoder found (an empty CSV field / Arrow null = NULL).
 * `stack` / `user_stack` carry frames (one per line, innermost first) and keep `stack_id` / `user_stack_id`.
 * `trace_id` and `seq` are ignored: the ingest numbers rows itself. Unknown columns are ignored.
 *
 * CSV is parsed block by block (papaparse's incremental Parser); a row with the wrong number of fields or a
 * value that is not a number where one is needed is an unparsed line, not an error. Arrow is read batch by batch.
 */

type Cell = string | number | bigint | boolean | null | undefined;

/** Columns that describe the row itself, not the decoded payload. */
const CONTEXT = new Set(['trace_id', 'seq', 'line_no', 'ts_ns', 'cpu', 'pid', 'tgid', 'comm', 'irq_flags', 'system', 'event', 'payload']);
const STACK_IDS = new Set(['stack_id', 'user_stack_id']);
/** The typed (decoded) columns: taken from the input when present, else decoded from the payload. */
export const TYPED_COLUMNS = EVENTS.columns.map((c) => c.name).filter((n) => !CONTEXT.has(n) && !STACK_IDS.has(n));
/** Extra columns of the canonical schema: the frames of the row's stacks. */
export const STACK_COLUMNS = ['stack', 'user_stack'];

/** The column names structured input understands (events columns, `ts`, `stack`, `user_stack`). */
export const KNOWN_INPUT_COLUMNS = new Set([...EVENTS.columns.map((c) => c.name), 'ts', ...STACK_COLUMNS]);

/** Missing required columns of a header (empty when it is usable). */
export function missingColumns(names: string[]): string[] {
  const has = new Set(names);
  const missing: string[] = [];
  if (!has.has('ts_ns') && !has.has('ts')) missing.push('ts_ns (or ts)');
  if (!has.has('event')) missing.push('event');
  if (!has.has('payload') && !TYPED_COLUMNS.some((c) => has.has(c))) missing.push('payload (or typed columns such as pfn)');
  return missing;
}

const INT_RE = /^[+-]?\d+$/;
const HEX_RE = /^0x[0-9a-fA-F]+$/;
const TWO_64 = 1n << 64n;
const KERNEL_BOUNDED = new Set(['pfn', 'pfn_end', 'fin_pfn', 'order']);

/** An integer cell: number when exact, bigint beyond 2^53, undefined when not an integer. */
function intCell(v: Cell): number | bigint | undefined {
  switch (typeof v) {
    case 'number':
      return Number.isInteger(v) ? v : undefined;
    case 'bigint':
      return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
    case 'boolean':
      return v ? 1 : 0;
    case 'string': {
      const s = v.trim();
      if (INT_RE.test(s)) {
        if (s.length <= 15) return Number(s);
        const b = BigInt(s);
        return b >= -9007199254740991n && b <= 9007199254740991n ? Number(b) : b;
      }
      if (HEX_RE.test(s)) {
        const b = BigInt(s);
        return b <= 9007199254740991n ? Number(b) : b;
      }
      return undefined;
    }
    default:
      return undefined;
  }
}

/** A staged value for a batch column, or a string saying why it does not fit. */
function stage(col: BatchColumn, v: Cell): { ok: true; v: number | bigint | string | null } | { ok: false; why: string } {
  if (v === null || v === undefined) return { ok: true, v: null };
  if (col.storage === 'str' || col.storage === 'dict') return { ok: true, v: typeof v === 'string' ? v : String(v) };
  const n = intCell(v);
  if (n === undefined) return { ok: false, why: `${col.name}: not an integer: ${String(v).slice(0, 40)}` };
  const fits =
    col.storage === 'i16'
      ? typeof n === 'number' && n >= -32768 && n <= 32767
      : col.storage === 'i32'
        ? typeof n === 'number' && n >= -2147483648 && n <= 2147483647
        : col.storage === 'bool'
          ? n === 0 || n === 1
          : col.storage === 'i64'
            ? typeof n === 'number' || BigInt.asIntN(64, n) === n
            : /* u64 */ typeof n === 'number'
              ? n >= 0
              : n >= 0n && n < TWO_64;
  if (!fits) return { ok: false, why: `${col.name}: out of range for ${col.storage}: ${String(v).slice(0, 40)}` };
  // The kernel's bounds (pfns, orders) as for text input.
  if (KERNEL_BOUNDED.has(col.name)) {
    const [lo, hi] = rangeOf(col.name, col.storage);
    if (typeof n !== 'number' || n < lo || n > hi) return { ok: false, why: outOfRange(col.name, col.storage, n) };
  }
  return { ok: true, v: n };
}

function put(col: BatchColumn, r: number, v: number | bigint | string | null): void {
  if (v === null) {
    col.valid[r >>> 5] &= ~(1 << (r & 31));
  } else if (typeof v === 'string') setStr(col, r, v);
  else if (typeof v === 'number') setInt(col, r, v);
  else setBig(col, r, v);
}

/** `ts_ns` (integer ns) or `ts` (decimal seconds) into ctx.tsSec / tsNs; false when it is not a timestamp. */
function setTs(ctx: LineContext, v: Cell, seconds: boolean): boolean {
  if (v === null || v === undefined) return false;
  if (!seconds) {
    const n = intCell(v);
    if (n === undefined || n < 0) return false;
    if (typeof n === 'number') {
      ctx.tsSec = Math.floor(n / 1e9);
      ctx.tsNs = n % 1e9;
    } else {
      ctx.tsSec = Number(n / 1_000_000_000n);
      ctx.tsNs = Number(n % 1_000_000_000n);
    }
    return true;
  }
  const s = typeof v === 'number' ? (Number.isFinite(v) && v >= 0 ? v.toFixed(9) : '') : String(v).trim();
  const m = /^(\d+)(?:\.(\d*))?$/.exec(s);
  if (!m) return false;
  ctx.tsSec = Number(m[1]);
  const frac = (m[2] ?? '').slice(0, 9);
  ctx.tsNs = frac ? Number(frac.padEnd(9, '0')) : 0;
  return Number.isSafeInteger(ctx.tsSec);
}

/** Maps named cells of one structured row onto the builder. Shared by the CSV and Arrow readers. */
class RowMapper {
  private readonly idx = new Map<string, number>();
  private readonly typed: { i: number; col: BatchColumn }[] = [];
  private readonly staged: (number | bigint | string | null)[] = [];
  private readonly ctx: LineContext = { tsSec: 0, tsNs: 0, cpu: -1, pid: -1, tgid: -1, comm: '', irq: null };
  private readonly tsIdx: number;
  private readonly tsSeconds: boolean;
  private clockSet = false;
  private readonly mapcount: BatchColumn;

  constructor(
    private readonly b: EventBuilder,
    names: string[],
    what: string,
    file: string,
  ) {
    names.forEach((n, i) => {
      if (!this.idx.has(n)) this.idx.set(n, i);
    });
    const missing = missingColumns([...this.idx.keys()]);
    if (missing.length)
      throw new InputError(
        file,
        null,
        `${what} lacks required column${missing.length > 1 ? 's' : ''} ${missing.join(', ')} ` +
          `(has: ${names.slice(0, 12).join(', ') || 'none'}${names.length > 12 ? ', ...' : ''})`,
      );
    this.tsSeconds = !this.idx.has('ts_ns');
    this.tsIdx = this.idx.get(this.tsSeconds ? 'ts' : 'ts_ns')!;
    for (const name of TYPED_COLUMNS) {
      const i = this.idx.get(name);
      if (i !== undefined) this.typed.push({ i, col: b.batch.col(name) });
    }
    this.mapcount = b.batch.col('mapcount');
  }

  private at(cells: Cell[], name: string): Cell {
    const i = this.idx.get(name);
    return i === undefined ? null : cells[i];
  }

  /** Small integer context column; -1 when absent, undefined when not a number. */
  private small(cells: Cell[], name: string, max: number): number | undefined {
    const v = this.at(cells, name);
    if (v === null || v === undefined) return -1;
    const n = intCell(v);
    return typeof n === 'number' && n >= 0 && n <= max ? n : undefined;
  }

  /** One row; `lineNo` is its position in the input, `text` renders it for unparsed_lines. */
  row(cells: Cell[], lineNo: number, text: () => string): void {
    const b = this.b;
    const bad = (why: string) => b.unparsed(lineNo, text(), why);
    const ctx = this.ctx;
    const ts = cells[this.tsIdx];
    if (!setTs(ctx, ts, this.tsSeconds)) return bad(`${this.tsSeconds ? 'ts' : 'ts_ns'}: not a timestamp: ${String(ts ?? '').slice(0, 40)}`);
    const ev = this.at(cells, 'event');
    if (ev === null || ev === undefined || String(ev).trim() === '') return bad('event: empty');
    const cpu = this.small(cells, 'cpu', 32767);
    if (cpu === undefined) return bad(`cpu: not a number: ${String(this.at(cells, 'cpu')).slice(0, 40)}`);
    const pid = this.small(cells, 'pid', 2147483647);
    if (pid === undefined) return bad(`pid: not a number: ${String(this.at(cells, 'pid')).slice(0, 40)}`);
    const tgid = this.small(cells, 'tgid', 2147483647);
    if (tgid === undefined) return bad(`tgid: not a number: ${String(this.at(cells, 'tgid')).slice(0, 40)}`);
    let line = lineNo;
    const ln = this.at(cells, 'line_no');
    if (ln !== null && ln !== undefined) {
      const n = intCell(ln);
      if (typeof n !== 'number' || n < 0) return bad(`line_no: not a line number: ${String(ln).slice(0, 40)}`);
      line = n;
    }
    for (let k = 0; k < this.typed.length; k++) {
      const s = stage(this.typed[k].col, cells[this.typed[k].i]);
      if (!s.ok) return bad(s.why);
      this.staged[k] = s.v;
    }
    let kernelId: number | undefined;
    let userId: number | undefined;
    const sid = intCell(this.at(cells, 'stack_id'));
    if (typeof sid === 'number') kernelId = sid;
    const uid = intCell(this.at(cells, 'user_stack_id'));
    if (typeof uid === 'number') userId = uid;

    ctx.cpu = cpu;
    ctx.pid = pid;
    ctx.tgid = tgid;
    const comm = this.at(cells, 'comm');
    ctx.comm = comm === null || comm === undefined ? '' : String(comm);
    const irq = this.at(cells, 'irq_flags');
    ctx.irq = irq === null || irq === undefined ? null : String(irq);
    if (!this.clockSet) {
      this.clockSet = true;
      const frac = this.tsSeconds ? /\.(\d+)/.exec(String(ts))?.[1] ?? '' : '';
      const clock: Clock = this.tsSeconds && frac.length <= 6 ? 'us' : 'ns';
      b.clock(clock);
    }
    const sys = this.at(cells, 'system');
    const payload = this.at(cells, 'payload');
    const kept = b.event(
      line,
      ctx,
      sys === null || sys === undefined || sys === '' ? null : String(sys),
      String(ev).trim(),
      payload === null || payload === undefined ? '' : String(payload),
      text,
    );
    if (!kept) return;
    const r = b.batch.rows - 1;
    for (let k = 0; k < this.typed.length; k++) put(this.typed[k].col, r, this.staged[k]);
    if (this.typed.length) b.storePayload(r, payload === null || payload === undefined ? '' : String(payload));
    if (this.typed.length && this.mapcount.valid[r >>> 5] & (1 << (r & 31))) {
      const m = this.mapcount.i32![r];
      if (m < b.minMapcount) b.minMapcount = m;
    }
    const ks = this.at(cells, 'stack');
    if (ks !== null && ks !== undefined && ks !== '') b.attachStack('kernel', splitFrames(String(ks)), kernelId);
    const us = this.at(cells, 'user_stack');
    if (us !== null && us !== undefined && us !== '') b.attachStack('user', splitFrames(String(us)), userId);
  }
}

function splitFrames(s: string): string[] {
  return s.split('\n').map((f) => (f.endsWith('\r') ? f.slice(0, -1) : f));
}

/** `room` resolves when the writer can take more batches: awaited after every input block or record batch. */
export async function readStructured(format: 'csv' | 'arrow', src: Source, b: EventBuilder, p: Progress, room: () => Promise<void>): Promise<number> {
  return format === 'csv' ? readCsv(src, b, p, room) : readArrow(src, b, p, room);
}

/** A quoted field may hold newlines, but one that never closes would swallow the rest of the input. */
const MAX_PENDING_CHARS = 64 << 20;

async function readCsv(src: Source, b: EventBuilder, p: Progress, room: () => Promise<void>): Promise<number> {
  const decoder = new StringDecoder('utf8');
  let parser: Papa.Parser | null = null;
  let mapper: RowMapper | null = null;
  let header: string[] = [];
  let pending = '';
  let base = 0;
  let lineNo = 0; // lines consumed so far (a quoted field can span several)
  let first = true;
  let hasQuotes = false;
  let skipping = false; // inside a row already counted as too long: drop input up to its newline

  const rows = (data: string[][], errors: { row: number; code?: string; message: string }[]) => {
    const errByRow = new Map<number, string>();
    for (const e of errors) if (!errByRow.has(e.row)) errByRow.set(e.row, e.message);
    for (let i = 0; i < data.length; i++) {
      const cells = data[i];
      const start = lineNo + 1;
      lineNo++;
      if (hasQuotes) for (const c of cells) for (let j = c.indexOf('\n'); j >= 0; j = c.indexOf('\n', j + 1)) lineNo++;
      if (mapper === null) {
        header = cells.map((h) => h.trim());
        mapper = new RowMapper(b, header, 'CSV header', src.name);
        continue;
      }
      if (cells.length === 1 && cells[0] === '') continue; // blank line
      const text = () => Papa.unparse([cells]).slice(0, 1000);
      const err = errByRow.get(i);
      if (err) {
        b.unparsed(start, text(), `CSV: ${err}`);
        continue;
      }
      if (cells.length !== header.length) {
        b.unparsed(start, text(), `CSV row has ${cells.length} fields, the header ${header.length}`);
        continue;
      }
      mapper.row(
        cells.map((c) => (c === '' ? null : c)),
        start,
        text,
      );
    }
  };

  for await (const block of src.blocks()) {
    let chunk = decoder.write(block);
    if (first) {
      first = false;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
      const nl = chunk.indexOf('\n');
      const headerLine = nl < 0 ? chunk : chunk.slice(0, nl);
      const newline = nl > 0 && chunk.charCodeAt(nl - 1) === 13 ? '\r\n' : '\n';
      const delimiter = !headerLine.includes(',') && headerLine.includes('\t') ? '\t' : headerLine.includes(',') ? ',' : ';';
      parser = new Papa.Parser({ delimiter, newline, quoteChar: '"' });
    }
    if (skipping) {
      const nl = chunk.indexOf('\n');
      if (nl < 0) continue;
      skipping = false;
      chunk = chunk.slice(nl + 1);
    }
    if (!hasQuotes && chunk.includes('"')) hasQuotes = true;
    const input = pending + chunk;
    const res = parser!.parse(input, base, true);
    pending = input.substring(res.meta.cursor - base);
    base = res.meta.cursor;
    rows(res.data, res.errors);
    // An unquoted row past the line limit is one unparsed line, skipped as it streams (as text lines are); a
    // quoted field may hold newlines, so a quoted one may grow to MAX_PENDING_CHARS.
    if (pending.length > MAX_LINE_BYTES && !pending.includes('"') && mapper !== null) {
      b.unparsed(++lineNo, pending.slice(0, 200), 'line longer than 1 MiB');
      skipping = true; // unquoted, so no newline in it yet
      pending = '';
    }
    if (pending.length > MAX_PENDING_CHARS)
      throw new InputError(src.name, lineNo + 1, 'CSV quoted field never ends (an unbalanced " quote)');
    p.update(src.rawBytesRead, lineNo);
    await room();
  }
  const tail = pending + decoder.end();
  if (parser && tail.length) {
    const res = parser.parse(tail, base, false);
    rows(res.data, res.errors);
  }
  if (mapper === null) throw new InputError(src.name, null, 'CSV input has no header line');
  return lineNo;
}

/** Arrow file format = magic + padding + the stream format + footer: read the stream part batch by batch. */
const ARROW_FILE_MAGIC = Buffer.from('ARROW1\0\0', 'latin1');

async function readArrow(src: Source, b: EventBuilder, p: Progress, room: () => Promise<void>): Promise<number> {
  const blocks = src.blocks()[Symbol.asyncIterator]();
  const fileFormat = src.head.subarray(0, 8).equals(ARROW_FILE_MAGIC);
  let first = true;
  let ended = false;
  // Sequential read: the stream format, or the stream part of a file (after the magic). The Arrow reader stops
  // at the end-of-stream marker and may close its source: keep our own iterator so the rest (the file footer)
  // is still read for the content hash.
  const feed: AsyncIterableIterator<Uint8Array> = {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      const n = await blocks.next();
      if (n.done) {
        ended = true;
        return { done: true, value: undefined };
      }
      let v: Buffer = n.value;
      if (first) {
        first = false;
        if (fileFormat) v = v.subarray(8);
      }
      return { done: false, value: v };
    },
    async return() {
      return { done: true, value: undefined };
    },
  };
  // A file format writer need not repeat the schema in the stream part (apache-arrow JS does not): a plain file
  // on disk is read through its footer instead, batch by batch with random access, and hashed separately.
  let handle: FileHandle | null = null;
  let reader: Awaited<ReturnType<typeof RecordBatchReader.from>>;
  try {
    if (fileFormat && src.compression === null && src.name !== '-') {
      handle = await open(src.name, 'r');
      reader = await RecordBatchReader.from(handle);
    } else reader = await RecordBatchReader.from(feed);
    await reader.open();
  } catch (e) {
    await handle?.close();
    if (e instanceof InputError) throw e;
    throw new InputError(src.name, null, `not a readable Arrow IPC file: ${(e as Error).message}`);
  }
  try {
    const fields = reader.schema?.fields ?? [];
    const names = fields.map((f) => f.name);
    const mapper = new RowMapper(b, names, 'Arrow schema', src.name);
    for (const f of fields) checkArrowType(src.name, f.name, f.type);
    let rowNo = 0;
    const it = reader[Symbol.asyncIterator]();
    for (;;) {
      let n: IteratorResult<RecordBatch>;
      try {
        n = await it.next();
      } catch (e) {
        if (e instanceof InputError) throw e;
        throw new InputError(src.name, null, `Arrow IPC data is corrupt after row ${rowNo}: ${(e as Error).message}`);
      }
      if (n.done) break;
      const batch = n.value;
      const vecs: (Vector | null)[] = names.map((_, i) => (KNOWN_INPUT_COLUMNS.has(names[i]) ? batch.getChildAt(i) : null));
      const cells: Cell[] = new Array(names.length).fill(null);
      for (let r = 0; r < batch.numRows; r++) {
        rowNo++;
        for (let c = 0; c < vecs.length; c++) {
          const v = vecs[c];
          cells[c] = v === null ? null : (v.get(r) as Cell);
        }
        mapper.row(cells, rowNo, () => JSON.stringify(cells, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)).slice(0, 1000));
      }
      p.update(handle ? 0 : src.rawBytesRead, rowNo);
      await room();
    }
    if (!ended) while (!(await blocks.next()).done);
    return rowNo;
  } finally {
    await handle?.close();
  }
}

/** Structured input must not hand us values we would silently misread (floats for ids, ms timestamps). */
function checkArrowType(file: string, name: string, t: DataType): void {
  if (!KNOWN_INPUT_COLUMNS.has(name)) return;
  const id = t.typeId;
  const isInt = id === Type.Int;
  const isStr = id === Type.Utf8 || id === Type.LargeUtf8 || id === Type.Dictionary;
  let ok: boolean;
  if (name === 'ts') ok = isInt || id === Type.Float || isStr;
  else if (['comm', 'irq_flags', 'system', 'event', 'payload', 'stack', 'user_stack'].includes(name)) ok = isStr;
  else {
    const col = EVENTS.columns.find((c) => c.name === name);
    const str = col !== undefined && /^(VARCHAR|JSON)/.test(col.type);
    ok = str ? isStr : isInt || id === Type.Bool;
  }
  if (!ok) throw new InputError(file, null, `Arrow column ${name} has type ${String(t)}, which refscope cannot read as ${name}`);
}
