import type { LineContext, LineSink } from './sink.js';
import { decodedSink, hex64, isKmemPage, newKmemFields, renderPayloadAt, type DecodedSink, type EventFormat } from './event-format.js';
export { PerfDataError } from './perfdata/header.js';
import { need, PerfDataError, readHeader, u64, type Attr, type PerfHeader } from './perfdata/header.js';
import { kernelFrame, type KernelSymbols } from './perfdata/symbols.js';
import { drain, STEP, type Steps } from './steps.js';

/**
 * perf.data (`perf record` output) read natively: the records of the data section in the order `perf script
 * --show-lost-events` prints them (its ordered-events queue, flushed at each FINISHED_ROUND up to the previous
 * round's latest time), each tracepoint sample handed to the sink as the perf text reader hands its lines:
 * context (time, cpu, tid, comm from COMM/FORK records), `sys:event`, a `name=value` payload (event-format.ts),
 * then its callchain as kernel / user stacks of raw `0x<addr>` frames (kernel frames named from a kallsyms when
 * given: perfdata/symbols.ts). PERF_RECORD_LOST (or, in a file without any,
 * LOST_SAMPLES) become lost markers. `lineNo` is the record's ordinal in the data section.
 */

const PERF_RECORD_LOST = 2;
const PERF_RECORD_COMM = 3;
const PERF_RECORD_FORK = 7;
const PERF_RECORD_SAMPLE = 9;
const PERF_RECORD_LOST_SAMPLES = 13;
const PERF_RECORD_FINISHED_ROUND = 68;
const PERF_RECORD_COMPRESSED = 81;
const PERF_RECORD_COMPRESSED2 = 83;

const S_IP = 0x1, S_TID = 0x2, S_TIME = 0x4, S_ADDR = 0x8, S_CALLCHAIN = 0x20, S_ID = 0x40, S_CPU = 0x80;
const S_PERIOD = 0x100, S_STREAM_ID = 0x200, S_RAW = 0x400, S_IDENTIFIER = 0x10000;
/** Low words of PERF_CONTEXT_MAX, _KERNEL, _USER (high word all ones): entries from -4095 up are context markers. */
const CONTEXT_MIN = 0xfffff001;
/** Distinct raw frame addresses kept as strings (a kernel and its programs have a few thousand return addresses). */
const MAX_RAW_FRAMES = 1 << 16;
const CONTEXT_KERNEL = 0xffffff80;
const CONTEXT_USER = 0xfffffe00;

/** The perf.data in `buf` (the whole file) into `sink`; a PerfDataError names the offset of what it cannot read. */
export function readPerfData(buf: Buffer, sink: LineSink, header: PerfHeader = readHeader(buf), symbols: KernelSymbols | null = null): number {
  return drain(perfDataSteps(buf, sink, header, symbols));
}

/** The same, as steps (steps.ts): ingest lets DuckDB take the batches between them. */
export function* perfDataSteps(buf: Buffer, sink: LineSink, header: PerfHeader, symbols: KernelSymbols | null): Steps<number> {
  const r = new PerfDataReader(buf, header, sink, symbols);
  try {
    return yield* r.steps();
  } catch (e) {
    // A field read past the file's end: the record's layout does not fit it.
    if (e instanceof RangeError) throw new PerfDataError(r.at, 'a record does not fit its layout');
    throw e;
  }
}

/** Only the structure, without decoding (before anything is written): the header and the record chain. */
export function checkPerfData(buf: Buffer): PerfHeader {
  const h = readHeader(buf);
  const end = h.dataOffset + h.dataSize;
  for (let o = h.dataOffset; o < end; ) {
    need(buf, o, 8, 'a record header');
    const type = buf.readUInt32LE(o);
    const size = buf.readUInt16LE(o + 6);
    if (size < 8) throw new PerfDataError(o, `record size ${size} is below its header's`);
    if (o + size > end) throw new PerfDataError(o, `truncated: a record of ${size} bytes runs past the data section`);
    if (type === PERF_RECORD_COMPRESSED || type === PERF_RECORD_COMPRESSED2)
      throw new PerfDataError(o, 'PERF_RECORD_COMPRESSED (perf record -z) is not supported: record without -z');
    o += size;
  }
  return h;
}

/** Bytes of the u64 sample fields before `bit` (the fields up to ID are one u64 each, IDENTIFIER first). */
function before(st: number, bit: number): number {
  let n = st & S_IDENTIFIER ? 8 : 0;
  for (let b = S_IP; b < bit; b <<= 1) if (st & b & (S_IP | S_TID | S_TIME | S_ADDR)) n += 8;
  return n;
}

interface Queued {
  time: number;
  offset: number;
  ordinal: number;
}

class PerfDataReader {
  private readonly byId = new Map<number, Attr>();
  /** Task names by tid; perf names the idle task (pid 0) `swapper` (machine__init). */
  private readonly comms = new Map<number, string>([[0, 'swapper']]);
  private readonly ctx: LineContext = { tsSec: 0, tsNs: 0, cpu: 0, pid: 0, tgid: -1, comm: '', irq: null };
  /** Where the sample id sits in a sample (every attr of one file shares the sample_type layout up to it). */
  private readonly first: Attr;
  private lostRecords = false;
  /** The record being read, for errors. */
  at = 0;
  /** The sink, when it takes decoded kmem fields (the builder); the record's fields, reused; kmem page formats. */
  private readonly decoded: DecodedSink | null;
  private readonly kmem = newKmemFields();
  private readonly kmemFormats = new Map<EventFormat, boolean>();

  constructor(
    private readonly buf: Buffer,
    private readonly h: PerfHeader,
    private readonly sink: LineSink,
    private readonly symbols: KernelSymbols | null,
  ) {
    for (const a of h.attrs) for (const id of a.ids) this.byId.set(id, a);
    this.first = h.attrs[0];
    this.decoded = decodedSink(sink);
  }

  *steps(): Steps<number> {
    const { buf, h } = this;
    const end = h.dataOffset + h.dataSize;
    let queue: Queued[] = [];
    let nextFlush = 0;
    let maxTime = 0;
    let ordinal = 0;
    this.sink.clock('ns');
    // perf record ends the file with LOST_SAMPLES records: per event and cpu, the kernel's count of samples it
    // could not write, the very loss the LOST records already tell (perf report --stats shows both). They are
    // markers only in a file without LOST records.
    for (let o = h.dataOffset; o + 8 <= end && o < end; o += Math.max(8, buf.readUInt16LE(o + 6)))
      if (buf.readUInt32LE(o) === PERF_RECORD_LOST) this.lostRecords = true;
    const deliver = (o: number, ord: number): void => this.deliver(o, ord);
    let delivered = 0;
    function* flush(upTo: number): Steps<void> {
      queue.sort((a, b) => a.time - b.time);
      let i = 0;
      while (i < queue.length && queue[i].time <= upTo) {
        deliver(queue[i].offset, queue[i++].ordinal);
        if (++delivered % STEP === 0) yield;
      }
      queue = queue.slice(i);
    }
    for (let o = h.dataOffset; o < end; ) {
      need(buf, o, 8, 'a record header');
      const type = buf.readUInt32LE(o);
      const size = buf.readUInt16LE(o + 6);
      if (size < 8 || o + size > end) throw new PerfDataError(o, `truncated: record of ${size} bytes`);
      ordinal++;
      if (type === PERF_RECORD_COMPRESSED || type === PERF_RECORD_COMPRESSED2)
        throw new PerfDataError(o, 'PERF_RECORD_COMPRESSED (perf record -z) is not supported: record without -z');
      if (type === PERF_RECORD_FINISHED_ROUND) {
        yield* flush(nextFlush);
        nextFlush = maxTime;
      } else if (type < 64) {
        // perf's ordered events: a record without a time (0) is delivered at once, the others queued.
        const time = this.recordTime(o, type, size);
        if (time === 0) this.deliver(o, ordinal);
        else {
          queue.push({ time, offset: o, ordinal });
          if (time > maxTime) maxTime = time;
        }
      }
      o += size;
    }
    yield* flush(Infinity);
    return ordinal;
  }

  private attrOfSample(o: number): Attr | undefined {
    const st = this.first.sampleType;
    if (this.h.attrs.length === 1) return this.first;
    let p = o + 8;
    if (st & S_IDENTIFIER) return this.byId.get(u64(this.buf, p));
    if (!(st & S_ID)) return this.first;
    p += before(st, S_ID);
    return this.byId.get(u64(this.buf, p));
  }

  /** The time of a record, 0 when it has none (a non-sample record without sample_id_all). */
  private recordTime(o: number, type: number, size: number): number {
    this.at = o;
    if (type === PERF_RECORD_SAMPLE) {
      const a = this.attrOfSample(o);
      if (!a || !(a.sampleType & S_TIME)) return 0;
      let p = o + 8;
      p += before(a.sampleType, S_TIME);
      return u64(this.buf, p);
    }
    const id = this.trailer(o, size);
    return id?.time ?? 0;
  }

  /** The sample_id trailer of a non-sample record (sample_id_all): tid, time, cpu. */
  private trailer(o: number, size: number): { tid: number; time: number; cpu: number } | null {
    const a0 = this.first;
    if (!a0.sampleIdAll) return null;
    let a = a0;
    let p = o + size;
    if (a0.sampleType & S_IDENTIFIER && this.h.attrs.length > 1) a = this.byId.get(u64(this.buf, p - 8)) ?? a0;
    const st = a.sampleType;
    const r = { tid: -1, time: 0, cpu: -1 };
    if (st & S_IDENTIFIER) p -= 8;
    if (st & S_CPU) (p -= 8), (r.cpu = this.buf.readUInt32LE(p));
    if (st & S_STREAM_ID) p -= 8;
    if (st & S_ID) p -= 8;
    if (st & S_TIME) (p -= 8), (r.time = u64(this.buf, p));
    if (st & S_TID) (p -= 8), (r.tid = this.buf.readUInt32LE(p + 4));
    return p >= o + 8 ? r : null;
  }

  private deliver(o: number, ordinal: number): void {
    const { buf } = this;
    this.at = o;
    const type = buf.readUInt32LE(o);
    const size = buf.readUInt16LE(o + 6);
    switch (type) {
      case PERF_RECORD_SAMPLE:
        return this.sample(o, size, ordinal);
      case PERF_RECORD_COMM: {
        const tid = buf.readUInt32LE(o + 12);
        const nul = buf.indexOf(0, o + 16);
        this.comms.set(tid, buf.toString('utf8', o + 16, nul >= 0 && nul < o + size ? nul : o + size));
        return;
      }
      case PERF_RECORD_FORK: {
        // The child starts with its parent's comm (perf's thread__fork).
        const parent = this.comms.get(buf.readUInt32LE(o + 20));
        if (parent !== undefined) this.comms.set(buf.readUInt32LE(o + 16), parent);
        return;
      }
      case PERF_RECORD_LOST_SAMPLES:
      case PERF_RECORD_LOST: {
        if (type === PERF_RECORD_LOST_SAMPLES && this.lostRecords) return;
        const lost = u64(buf, o + (type === PERF_RECORD_LOST ? 16 : 8));
        const id = this.trailer(o, size);
        return this.sink.lost(ordinal, id && id.cpu >= 0 ? id.cpu : null, lost, 'perf-lost');
      }
    }
  }

  private sample(o: number, size: number, ordinal: number): void {
    const { buf } = this;
    const a = this.attrOfSample(o);
    if (!a || a.type !== 2) return; // not a tracepoint: nothing refscope decodes
    const st = a.sampleType;
    const end = o + size;
    let p = o + 8;
    if (st & S_IDENTIFIER) p += 8;
    if (st & S_IP) p += 8;
    const ctx = this.ctx;
    ctx.pid = -1;
    if (st & S_TID) {
      ctx.pid = buf.readUInt32LE(p + 4);
      p += 8;
    }
    let time = 0;
    if (st & S_TIME) (time = u64(buf, p)), (p += 8);
    ctx.tsSec = Math.floor(time / 1e9);
    ctx.tsNs = time - ctx.tsSec * 1e9;
    if (st & S_ADDR) p += 8;
    if (st & S_ID) p += 8;
    if (st & S_STREAM_ID) p += 8;
    ctx.cpu = -1;
    if (st & S_CPU) (ctx.cpu = buf.readUInt32LE(p)), (p += 8);
    if (st & S_PERIOD) p += 8;
    if (p > end) throw new PerfDataError(o, `sample of ${size} bytes is shorter than its sample_type's fields`);
    let chain: [number, number] | null = null;
    if (st & S_CALLCHAIN) {
      if (p + 8 > end) throw new PerfDataError(p, 'truncated: callchain past its record');
      const nr = u64(buf, p);
      if (p + 8 + nr * 8 > end) throw new PerfDataError(p, `callchain of ${nr} entries runs past its record`);
      chain = [p + 8, nr];
      p += 8 + nr * 8;
    }
    if (!(st & S_RAW)) return;
    if (p + 4 > end) throw new PerfDataError(p, 'truncated: raw data past its record');
    const rawSize = buf.readUInt32LE(p);
    if (p + 4 + rawSize > end || rawSize < 2) throw new PerfDataError(p, `raw data of ${rawSize} bytes does not fit its record`);
    const type = buf.readUInt16LE(p + 4);
    const fmt: EventFormat | undefined = this.h.formats.get(type) ?? this.h.formats.get(a.config);
    if (!fmt) throw new PerfDataError(p + 4, `tracepoint id ${type} has no format in the file's tracing data`);
    // perf names a task it has no COMM for `:<tid>`.
    ctx.comm = this.comms.get(ctx.pid) ?? `:${ctx.pid}`;
    ctx.tgid = -1;
    let kmem = this.kmemFormats.get(fmt);
    if (kmem === undefined) this.kmemFormats.set(fmt, (kmem = this.decoded !== null && isKmemPage(fmt)));
    const stored = kmem
      ? this.decoded!.eventDecoded(ordinal, ctx, fmt.system, fmt.name, renderPayloadAt(fmt, buf, p + 4, p + 4 + rawSize, this.kmem), this.kmem)
      : this.sink.event(ordinal, ctx, fmt.system, fmt.name, renderPayloadAt(fmt, buf, p + 4, p + 4 + rawSize));
    if (stored && chain) this.callchain(chain[0], chain[1], ctx.cpu, ordinal);
  }

  private callchain(at: number, nr: number, cpu: number, ordinal: number): void {
    let kind: 'kernel' | 'user' | null = null;
    let open: 'kernel' | 'user' | null = null;
    for (let i = 0; i < nr; i++) {
      const lo = this.buf.readUInt32LE(at + i * 8);
      const hi = this.buf.readUInt32LE(at + i * 8 + 4);
      if (hi === 0xffffffff && lo >= CONTEXT_MIN) {
        kind = lo === CONTEXT_KERNEL ? 'kernel' : lo === CONTEXT_USER ? 'user' : null;
        continue;
      }
      if (kind === null) continue; // hypervisor / guest frames: not this kernel's
      if (open !== kind) {
        this.sink.stackStart(kind, cpu);
        open = kind;
      }
      const named = kind === 'kernel' && this.symbols !== null ? this.kernelFrame(hi, lo) : null;
      this.sink.frame(named ?? this.rawFrame(hi, lo), ordinal);
    }
  }

  /**
   * A frame without a symbol, `0x<address>`: the same string for the same address. A new string per frame cost
   * its hex formatting and, in the stack table, hashing it again (~15 µs per sample of a 30-frame callchain).
   * The key is hi:lo as one exact number (user addresses fit 53 bits), kernel addresses (hi 0xffffffff) by
   * -1 - lo; other addresses, and any past the cache's bound, are formatted each time.
   */
  private readonly raw = new Map<number, string>();
  private rawFrame(hi: number, lo: number): string {
    const key = hi === 0xffffffff ? -1 - lo : hi < 0x200000 ? hi * 4294967296 + lo : NaN;
    let f = key === key ? this.raw.get(key) : undefined;
    if (f === undefined) {
      f = hex64(hi, lo);
      if (key === key && this.raw.size < MAX_RAW_FRAMES) this.raw.set(key, f);
    }
    return f;
  }

  /** Kernel frames by address (the same few thousand return addresses recur in every stack). */
  private readonly named = new Map<number, string | null>();
  private kernelFrame(hi: number, lo: number): string | null {
    if (hi !== 0xffffffff) return kernelFrame(this.symbols!, hi, lo);
    let f = this.named.get(lo);
    if (f === undefined) this.named.set(lo, (f = kernelFrame(this.symbols!, hi, lo)));
    return f;
  }
}
