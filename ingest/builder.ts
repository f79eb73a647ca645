import { BATCH_ROWS, ColumnarBatch, Dictionary, getStr, isValid, setBig, setCode, setInt, setStr, setTextBytes } from '../db/batch.js';
import { decodingOf, type Decoding, type EventCols, type TraceFacts } from './decode/catalogue.js';
import { kmemDecoded, kmemPage, pageRef, refDecoded, takeRejected, type KmemFields, type RefFields } from './decode/decoders.js';
import { kmemScan, refScan, scanKmem, scanRef, scanRefText } from './decode/scan.js';
import { contextOutOfRange, MAX_CPUS, MAX_LOST, MAX_PFN } from './decode/limits.js';
import type { Clock, LineContext, LineSink, LostKind, SkipKind, StackKind } from './readers/sink.js';
import { EVENT_ROWS } from '../db/tables/ingest.js';
import { MAX_LINE_BYTES } from './source.js';
import { StackTable, type StackRow } from './stack.js';

/**
 * Turns reader output into event batches: decodes payloads, attaches stacks to the event they follow,
 * numbers events (lost-event markers point at the event they precede), and collects the facts that go into `traces`.
 * Full batches go to `flush` (the DuckDB writer, or an Arrow file).
 */

export interface LostRow {
  seq: number;
  lineNo: number;
  cpu: number | null;
  lost: number | null;
  kind: LostKind;
}

export interface UnparsedRow {
  lineNo: number;
  reason: string;
  text: string;
}

/** What the builder keeps per event name: its `event` dictionary code and its decoding, found once. */
interface EventKind extends Decoding {
  code: number;
}

const MAX_UNPARSED_ROWS = 1000;
const MAX_EXAMPLES = 10;
const TWO_53 = 2 ** 53;
/** Deepest stack kept (docs/formats.md §5). */
const MAX_FRAMES = 4096;
/** stackTarget: no open stack; an open stack with no event (missing, or its line did not parse). */
const NO_STACK = -1;
const ORPHAN = -2;

/** Everything about a parsed trace except its events: plain data, so it can cross a worker boundary. */
export interface ParseFacts {
  lines: number;
  events: number;
  unparsedCount: number;
  stacks: StackRow[];
  lostRows: LostRow[];
  unparsedRows: UnparsedRow[];
  lateStacks: { seq: number; stackId: number; kind: StackKind }[];
  headers: Record<string, string>;
  eventCounts: [string, number][];
  clockKind: Clock | null;
  hasTgid: boolean;
  minMapcount: number;
  firstTs: [number, number] | null;
  lastTs: [number, number] | null;
  vmemmapBase: bigint | null;
  /** SHA-256 of the content, when the parser hashed it (worker parsing); otherwise the Source has it. */
  sha256?: string;
}

export class EventBuilder implements LineSink, TraceFacts {
  readonly batch: ColumnarBatch;
  private readonly c: EventCols;
  readonly stacks = new StackTable();
  readonly lostRows: LostRow[] = [];
  readonly unparsedRows: UnparsedRow[] = [];
  readonly headers = new Map<string, string>();
  /** Rows per event name, by the `event` column's dictionary code (an array slot, cheaper than a Map per row). */
  private readonly countByCode: number[] = [];
  /** Stacks that arrived after their event's batch was flushed: applied with one UPDATE at the end. */
  readonly lateStacks: { seq: number; stackId: number; kind: StackKind }[] = [];
  clockKind: Clock | null = null;
  seq = 0;
  events = 0;
  unparsedCount = 0;
  hasTgid = false;
  minMapcount = Infinity;
  // Smallest and largest timestamp as (sec, ns) pairs; no array per row (the largest changes on nearly every row).
  private firstSec = Infinity;
  private firstNs = 0;
  private lastSec = -Infinity;
  private lastNs = 0;
  vmemmapBase: bigint | null = null;
  private basePairs = new Map<bigint, number>();

  private readonly kinds = new Map<string, EventKind>();
  // Consecutive lines often have the same event: its kind without a lookup.
  private lastEvent = '';
  private lastKind: EventKind | null = null;

  private lastSeqByCpu: number[] = []; // [cpu + 1] -> seq of its latest event (cpu -1: unknown)
  private batchFirstSeq = 0;
  private stackTarget = NO_STACK; // seq the open stack belongs to, or ORPHAN
  // An unparsed line since the latest event: a stack that follows is that line's, not the event's.
  private afterUnparsed = false;
  private stackKind: StackKind = 'kernel';
  private frames: string[] = [];
  private lastSeq = -1;
  // A print payload continued over lines (trace-cmd): its parts, written to its row once it ends.
  private contRow = -1;
  private contParts: string[] = [];
  private contLen = 0;
  /** eventDecoded's values for the event() it is calling. */
  private kmem: KmemFields | null = null;
  /**
   * eventBytes' values for the event() it is calling: the page_ref fields, whether the payload is stored from the
   * bytes, and where the payload and the line are in lineBuf.
   */
  private ref: RefFields | null = null;
  private payloadInBytes = false;
  private lineBuf: Buffer | null = null;
  private payloadStart = 0;
  private lineStart = 0;
  private lineEnd = 0;
  /** The line eventBytes() is storing, as text, only for an unparsed row. */
  private readonly bytesLine = (): string => this.lineBuf!.toString('latin1', this.lineStart, this.lineEnd);

  constructor(
    readonly traceId: number,
    private readonly flush: (batch: ColumnarBatch) => void,
    dicts: Map<string, Dictionary> = new Map(),
  ) {
    this.batch = new ColumnarBatch(EVENT_ROWS, ['payload_text', 'args'], dicts);
    this.c = Object.fromEntries(this.batch.columns.map((col) => [col.name, col]));
  }

  /**
   * event() of a binary record whose kmem page fields the reader took from its bytes (renderPayloadAt): kmemPage's
   * columns set from them instead of parsing the payload again, when the event is one kmemPage decodes.
   */
  eventDecoded(lineNo: number, ctx: LineContext, system: string | null, event: string, payload: string, kmem: KmemFields): boolean {
    this.kmem = kmem;
    return this.event(lineNo, ctx, system, event, payload);
  }

  /**
   * event() of a text line read as bytes (an ASCII block: the text reader's byte path): the payload is
   * b[payloadStart, lineEnd) and the line b[lineStart, lineEnd). A page_ref or kmem page payload in the kernel's
   * exact layout is decoded from the bytes and copied as bytes; any other goes through event() as a string.
   */
  eventBytes(
    lineNo: number, ctx: LineContext, system: string | null, event: string, b: Buffer, payloadStart: number, lineStart: number, lineEnd: number,
  ): boolean {
    // The decoding only: event() gives the name its dictionary code, once the line's context is in range.
    const decode = event === this.lastEvent && this.lastKind !== null ? this.lastKind.decode : (this.kinds.get(event) ?? decodingOf(event)).decode;
    this.lineBuf = b;
    this.payloadStart = payloadStart;
    this.lineStart = lineStart;
    this.lineEnd = lineEnd;
    if (decode === pageRef && scanRef(b, payloadStart, lineEnd)) this.ref = refScan;
    else if (decode === kmemPage && scanKmem(b, payloadStart, lineEnd)) this.kmem = kmemScan;
    else return this.event(lineNo, ctx, system, event, b.toString('latin1', payloadStart, lineEnd), this.bytesLine);
    this.payloadInBytes = true;
    return this.event(lineNo, ctx, system, event, '', this.bytesLine);
  }

  /** Returns false when the line's values are out of range (limits.ts): it is counted unparsed instead. */
  event(lineNo: number, ctx: LineContext, system: string | null, event: string, payload: string, line?: string | (() => string)): boolean {
    const kmem = this.kmem;
    this.kmem = null;
    let ref = this.ref;
    this.ref = null;
    const payloadInBytes = this.payloadInBytes;
    this.payloadInBytes = false;
    this.closeStack();
    const bad = contextOutOfRange(ctx.cpu, ctx.pid, ctx.tgid, ctx.tsSec, ctx.tsNs);
    if (bad !== null) {
      this.unparsed(lineNo, lineText(line, event, payload), bad);
      return false;
    }
    if (this.batch.full) this.flushBatch();
    // Trace markers: trace-cmd prints `print: tracing_mark_write: text`, old Android `0: text`. bprint/bputs are
    // trace_printk() from kernel code: events of their own.
    if (event === 'print' || event === '0') {
      if (payload.startsWith('tracing_mark_write: ')) payload = payload.slice(20);
      event = 'tracing_mark_write';
      system = 'ftrace';
    }
    const c = this.c;
    const r = this.batch.addRow();
    const seq = this.seq++;
    setInt(c.trace_id, r, this.traceId);
    setInt(c.seq, r, seq);
    setInt(c.line_no, r, lineNo);
    this.setTs(r, ctx.tsSec, ctx.tsNs);
    if (ctx.cpu >= 0) setInt(c.cpu, r, ctx.cpu);
    if (ctx.pid >= 0) setInt(c.pid, r, ctx.pid);
    if (ctx.tgid >= 0) {
      setInt(c.tgid, r, ctx.tgid);
      this.hasTgid = true;
    }
    if (ctx.comm) setStr(c.comm, r, ctx.comm);
    if (ctx.irq !== null) setStr(c.irq_flags, r, ctx.irq);
    const kind = event === this.lastEvent && this.lastKind !== null ? this.lastKind : this.kindOf(event);
    const code = kind.code;
    setCode(c.event, r, code);
    this.countByCode[code]++;
    // A page_ref payload as the kernel renders it is not stored: the view events renders it from the columns. Text
    // of the other routes goes through the same scanner, so that every route stores the same.
    if (ref === null && kind.decode === pageRef) {
      const t = scanRefText(payload);
      if (t !== null && t.canonical) ref = t;
    }
    if (ref === null || !ref.canonical) {
      if (payloadInBytes) setTextBytes(c.payload_text, r, this.lineBuf!, this.payloadStart, this.lineEnd);
      else setStr(c.payload_text, r, payload);
    }
    // Always: perf names the system but still needs decoding.
    if (kmem !== null && kmem.ok && kind.decode === kmemPage) kmemDecoded(kmem, r, c, this);
    else if (ref !== null && kind.decode === pageRef) refDecoded(ref, r, c);
    else kind.decode(payload, r, c, this);
    const catalogued = kind.system;
    const rejected = takeRejected();
    if (rejected !== null) {
      this.batch.dropLastRow();
      this.seq--;
      this.countByCode[code]--;
      this.unparsed(lineNo, lineText(line, event, payload), rejected);
      return false;
    }
    this.trackTs(ctx.tsSec, ctx.tsNs);
    const sys = system ?? catalogued;
    if (sys) setStr(c.system, r, sys);
    if (c.mapcount.valid[r >>> 5] & (1 << (r & 31))) {
      const m = c.mapcount.i32![r];
      if (m < this.minMapcount) this.minMapcount = m;
    }
    this.events++;
    this.afterUnparsed = false;
    this.lastSeqByCpu[ctx.cpu + 1] = seq;
    this.lastSeq = seq;
    return true;
  }

  /**
   * Row r's columns were set again after event() (structured input's typed columns): its payload is stored, since
   * the view would render it from the new values.
   */
  storePayload(r: number, payload: string): void {
    if (!isValid(this.c.payload_text, r)) setStr(this.c.payload_text, r, payload);
  }

  /** The kind of an event name: the event dictionary's code and the catalogue's decoding, once per name. */
  private kindOf(event: string): EventKind {
    let kind = this.kinds.get(event);
    if (kind === undefined) {
      const d = decodingOf(event);
      kind = { decode: d.decode, system: d.system, code: this.c.event.dict!.code(event) };
      this.kinds.set(event, kind);
      while (this.countByCode.length <= kind.code) this.countByCode.push(0);
    }
    this.lastEvent = event;
    this.lastKind = kind;
    return kind;
  }

  stackStart(kind: StackKind, cpu: number): void {
    this.closeStack();
    // A stack belongs to the latest event of its CPU (another CPU's events may sit in between), unless a line that
    // did not parse came after that event (it was the stack's event) or there is no event yet: then it is kept
    // with no event.
    const target = this.afterUnparsed ? ORPHAN : (this.lastSeqByCpu[cpu + 1] ?? this.lastSeq);
    this.stackTarget = target < 0 ? ORPHAN : target;
    this.stackKind = kind;
  }

  frame(text: string, lineNo = 0): void {
    // Kernel stacks are at most a few hundred frames (PERF_MAX_STACK_DEPTH 127, FTRACE_STACK_ENTRIES 512): a
    // deeper one is input that would grow without bound.
    if (this.frames.length >= MAX_FRAMES) return this.unparsedFrame(lineNo, text);
    if (this.stackTarget === NO_STACK) {
      // Frames with no stack header (an excerpt that starts inside a stack): the latest event's, if any.
      this.stackTarget = this.afterUnparsed || this.lastSeq < 0 ? ORPHAN : this.lastSeq;
      this.stackKind = 'kernel';
    }
    this.frames.push(text);
  }

  /**
   * A whole stack at once, as stackStart() and frame() for each of `frames` followed by the stack's end (binary
   * readers, which hand the same array, never changed, for the same stack).
   */
  stackFrames(kind: StackKind, cpu: number, frames: readonly string[], lineNo = 0): void {
    this.stackStart(kind, cpu);
    if (frames.length === 0) return;
    if (frames.length > MAX_FRAMES) {
      for (const text of frames) this.frame(text, lineNo);
      return;
    }
    const target = this.stackTarget;
    this.stackTarget = NO_STACK;
    // The rows keep the array: nobody changes it (readonly to the reader that hands it again).
    const list = frames as string[];
    if (target === ORPHAN) this.stacks.intern(kind, list, undefined, 0);
    else this.attach(target, kind, this.stacks.intern(kind, list));
  }

  /** A whole stack of the latest event at once (structured input: CSV/Arrow `stack` columns), keeping its id if free. */
  attachStack(kind: StackKind, frames: string[], preferId?: number): void {
    this.closeStack();
    const r = this.lastSeq - this.batchFirstSeq;
    if (frames.length === 0 || r < 0 || r >= this.batch.rows) return;
    setInt(kind === 'kernel' ? this.c.stack_id : this.c.user_stack_id, r, this.stacks.intern(kind, frames, preferId));
  }

  continuation(lineNo: number, text: string): void {
    if (this.stackTarget !== NO_STACK) this.closeStack();
    if (this.contRow < 0) {
      const r = this.lastSeq - this.batchFirstSeq;
      if (r < 0 || r >= this.batch.rows) return this.unparsed(lineNo, text, 'continuation without the event it continues');
      this.contRow = r;
      this.contParts = [getStr(this.c.payload_text, r) ?? '']; // only print events continue: their text is stored
      this.contLen = this.contParts[0].length;
    }
    // Parts are joined once, when the payload ends: appending line by line would rewrite it each time.
    if (this.contLen + 1 + text.length > MAX_LINE_BYTES) return this.unparsed(lineNo, text, 'print payload continued beyond 1 MiB');
    this.contParts.push(text);
    this.contLen += 1 + text.length;
  }

  private endContinuation(): void {
    if (this.contRow < 0) return;
    setStr(this.c.payload_text, this.contRow, this.contParts.join('\n'));
    this.contRow = -1;
    this.contParts = [];
  }

  lost(lineNo: number, cpu: number | null, count: number | null, kind: LostKind, line?: string): void {
    this.closeStack();
    const bad =
      count !== null && !(count < MAX_LOST) ? 'lost count beyond 2^53' : cpu !== null && cpu >= MAX_CPUS ? `cpu ${cpu} beyond ${MAX_CPUS}` : null;
    if (bad !== null) return this.unparsed(lineNo, line ?? `[LOST ${count} EVENTS]`, bad);
    // The marker sits before the next event: it takes that event's seq, it does not consume one.
    this.lostRows.push({ seq: this.seq, lineNo, cpu, lost: count, kind });
  }

  header(key: string, value: string): void {
    this.headers.set(key, value);
  }

  /** A line with nothing to keep (blank, header legend, function_graph separator): accounted, no row. */
  skip(_lineNo: number, _what: SkipKind): void {}

  clock(clock: Clock): void {
    this.clockKind ??= clock;
  }

  private unparsedFrame(lineNo: number, text: string): void {
    this.unparsedCount++;
    if (this.unparsedRows.length < MAX_UNPARSED_ROWS)
      this.unparsedRows.push({ lineNo, reason: `stack deeper than ${MAX_FRAMES} frames`, text: text.slice(0, 1000) });
  }

  unparsed(lineNo: number, text: string, reason: string): void {
    this.closeStack();
    this.afterUnparsed = true;
    this.unparsedCount++;
    if (this.unparsedRows.length < MAX_UNPARSED_ROWS) this.unparsedRows.push({ lineNo, reason, text: text.slice(0, 1000) });
  }

  /** Rows per event name. */
  get eventCounts(): [string, number][] {
    const names = this.c.event.dict!.values;
    return this.countByCode.flatMap((n, code) => (n > 0 ? [[names[code], n] as [string, number]] : []));
  }

  get unparsedExamples(): UnparsedRow[] {
    return this.unparsedRows.slice(0, MAX_EXAMPLES);
  }

  facts(lines: number): ParseFacts {
    return {
      lines,
      events: this.events,
      unparsedCount: this.unparsedCount,
      stacks: this.stacks.rows,
      lostRows: this.lostRows,
      unparsedRows: this.unparsedRows,
      lateStacks: this.lateStacks,
      headers: Object.fromEntries(this.headers),
      eventCounts: this.eventCounts,
      clockKind: this.clockKind,
      hasTgid: this.hasTgid,
      minMapcount: this.minMapcount,
      firstTs: this.events > 0 ? [this.firstSec, this.firstNs] : null,
      lastTs: this.events > 0 ? [this.lastSec, this.lastNs] : null,
      vmemmapBase: this.vmemmapBase,
    };
  }

  /** Flush what is left; call once at the end of the input. */
  finish(): void {
    this.closeStack();
    this.flushBatch();
  }

  // TraceFacts: learn vmemmap_base from raw page pointers printed with their pfn (docs/model.md §11).
  pagePointer(hi: number, lo: number, pfn: number): void {
    // A pfn past the bounds (decode/limits.ts) makes the line unparsed later; it teaches nothing either.
    if (this.vmemmapBase !== null || this.basePairs.size > 64 || !(pfn > 0 && pfn < MAX_PFN)) return;
    const base = ((BigInt(hi) << 32n) | BigInt(lo)) - BigInt(pfn) * 64n;
    const n = (this.basePairs.get(base) ?? 0) + 1;
    this.basePairs.set(base, n);
    if (n >= 3) this.vmemmapBase = base; // three agreeing pairs before trusting it
  }

  probeVmemmapBase(hi: number, lo: number): void {
    this.vmemmapBase = (BigInt(hi) << 32n) | BigInt(lo);
    this.basePairs.set(this.vmemmapBase, Infinity);
  }

  private setTs(r: number, sec: number, ns: number): void {
    const col = this.c.ts_ns;
    const t = sec * 1e9 + ns;
    if (t < TWO_53) setInt(col, r, t);
    else setBig(col, r, BigInt(sec) * 1_000_000_000n + BigInt(ns));
  }

  private trackTs(sec: number, ns: number): void {
    if (sec < this.firstSec || (sec === this.firstSec && ns < this.firstNs)) {
      this.firstSec = sec;
      this.firstNs = ns;
    }
    if (sec > this.lastSec || (sec === this.lastSec && ns > this.lastNs)) {
      this.lastSec = sec;
      this.lastNs = ns;
    }
  }

  private closeStack(): void {
    if (this.contRow >= 0) this.endContinuation();
    if (this.stackTarget === NO_STACK) return;
    if (this.frames.length > 0 && this.stackTarget === ORPHAN) {
      this.stacks.intern(this.stackKind, this.frames, undefined, 0);
      this.frames = [];
    } else if (this.frames.length > 0) {
      this.attach(this.stackTarget, this.stackKind, this.stacks.intern(this.stackKind, this.frames));
      this.frames = [];
    }
    this.stackTarget = NO_STACK;
  }

  /** Stack `id` on the event numbered `seq`: in its row, or applied later when its batch went already. */
  private attach(seq: number, kind: StackKind, id: number): void {
    const r = seq - this.batchFirstSeq;
    const col = kind === 'kernel' ? this.c.stack_id : this.c.user_stack_id;
    if (r >= 0 && r < this.batch.rows) setInt(col, r, id);
    else this.lateStacks.push({ seq, stackId: id, kind });
  }

  private flushBatch(): void {
    if (this.batch.rows > 0) this.flush(this.batch);
    this.batch.clear();
    this.batchFirstSeq = this.seq;
  }
}

const lineText = (line: string | (() => string) | undefined, event: string, payload: string): string =>
  typeof line === 'function' ? line() : (line ?? `${event}: ${payload}`);

export { BATCH_ROWS };
