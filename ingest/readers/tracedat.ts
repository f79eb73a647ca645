import type { EventBuilder } from '../builder.js';
import { Kallsyms } from '../kallsyms.js';
import { ftraceFrame } from '../stack.js';
import type { LineContext, LineSink } from './sink.js';
import { decodedSink, hex64, isKmemPage, newKmemFields, renderPayloadAt, type DecodedSink, type EventFormat } from './event-format.js';
import { readTraceDatHeader, TraceDatError, type CpuBuffer, type TraceDat } from './tracedat/header.js';
import { formatBprint } from './tracedat/printk.js';
import { CpuStream, PageError, timeAdjust } from './tracedat/ring.js';
import { drain, STEP, type Steps } from './steps.js';
export { TraceDatError } from './tracedat/header.js';

/**
 * trace-cmd's trace.dat read natively, handed to the sink as the trace-cmd text reader (tracecmd.ts) hands the
 * lines of `trace-cmd report` of the same file: the CPUs' events merged by time exactly as trace-cmd's
 * tracecmd_iterate_events_multi() merges them (earliest first, ties to the lower CPU, each CPU's last time kept
 * until its next event is looked at), context from the record (common_pid) and the saved cmdlines (`<idle>` for
 * pid 0, `<...>` for a pid without a name, as libtraceevent prints them; sched_switch / sched_wakeup name pids the
 * cmdlines did not, as its sched plugin does), the payload rendered from the event's embedded format (event-format.ts),
 * ftrace `print` as `func: text`, `kernel_stack` as a stack whose frames are symbolised with the file's kallsyms
 * as trace-cmd prints them, and a page's dropped events as a `dropped` marker before its first event.
 * `lineNo` is the record's ordinal in that merged order (1-based).
 */

/** Trace clocks trace-cmd prints as secs.usecs (trace-input.c extract_trace_clock); any other is a raw counter. */
const NS_CLOCKS = /^(?:local|global|uptime|perf|mono.*|tai|tsc2nsec)$/;

/** The metadata and every page's structure, without rendering: a corrupt file is refused before anything is written. */
export function checkTraceDat(buf: Buffer): TraceDat {
  return checkPages(readTraceDatHeader(buf));
}

/** Every page of every CPU walked (headers, event sizes, times); returns `f`. */
export function checkPages(f: TraceDat): TraceDat {
  for (const b of f.buffers) {
    if (!b) continue;
    const s = stream(b, f);
    while (s.has) step(s, b);
  }
  return f;
}

function stream(b: CpuBuffer, f: TraceDat): CpuStream {
  try {
    return new CpuStream(b, f, timeAdjust(f));
  } catch (e) {
    throw pageError(e, b);
  }
}

function step(s: CpuStream, b: CpuBuffer): void {
  try {
    s.advance();
  } catch (e) {
    throw pageError(e, b);
  }
}

function pageError(e: unknown, b: CpuBuffer): unknown {
  if (!(e instanceof PageError)) return e;
  return b.compressed
    ? new TraceDatError(b.fileOffset, `CPU ${b.cpu}: ${e.message} (the page at byte ${e.page} of its decompressed data)`)
    : new TraceDatError(b.fileOffset + e.page, `CPU ${b.cpu}: ${e.message}`);
}

let lastText: string | null = null;
let lastSyms: Kallsyms | null = null;

/** The file's kallsyms, parsed when a frame or an ip is first named (once per file: the last table is kept). */
function symbols(f: TraceDat): Kallsyms {
  if (lastSyms === null || lastText !== f.kallsyms) {
    lastSyms = Kallsyms.parse(f.kallsyms);
    lastText = f.kallsyms;
  }
  return lastSyms;
}

/** The trace.dat in `buf` into `sink`; returns the records read. */
export function readTraceDat(buf: Buffer, sink: LineSink, f: TraceDat = checkTraceDat(buf)): number {
  return drain(traceDatSteps(f, sink));
}

/** The same, as steps (steps.ts): ingest lets DuckDB take the batches between them. */
export function traceDatSteps(f: TraceDat, sink: LineSink): Steps<number> {
  return new TraceDatReader(f, sink).steps();
}

interface Handler {
  /** null: the file has no format for the id. */
  fmt: EventFormat | null;
  stack: 'kernel' | 'user' | undefined;
  special: 'print' | 'bputs' | 'bprint' | 'function' | undefined;
  /** sched events name tasks (saveComms). */
  sched: boolean;
  /** A kmem page event whose fields renderPayloadAt hands over (kmemFormat). */
  kmem: boolean;
  /** Offset of a stack's `caller` array; -1: the format has none. */
  caller: number;
}

/** The builder, taking a whole stack at once (stackSink). */
type StackSink = Pick<EventBuilder, 'stackFrames'>;

function stackSink(sink: LineSink): StackSink | null {
  return typeof (sink as Partial<StackSink>).stackFrames === 'function' ? (sink as unknown as StackSink) : null;
}

/** Distinct stacks remembered by their addresses; past this many, a new one goes frame by frame each time it comes. */
const MAX_CACHED_STACKS = 1 << 16;

class TraceDatReader {
  private readonly ctx: LineContext = { tsSec: 0, tsNs: 0, cpu: 0, pid: 0, tgid: -1, comm: '', irq: null };
  private readonly comms: Map<number, string>;
  /** Frames as printed, by address (low word; the high word checked). */
  private readonly frames = new Map<number, [number, string]>();
  private readonly stackIds = new Map<number, 'kernel' | 'user'>();
  private readonly special = new Map<number, 'print' | 'bputs' | 'bprint' | 'function'>();
  /** What record() does with an event id, worked out on its first record. */
  private readonly handlers = new Map<number, Handler>();
  private readonly long: number;
  /** The latest pid's name (consecutive records are mostly one task's). */
  private lastPid = -1;
  private lastComm = '';
  /** The sink, when it takes decoded kmem fields (the builder); the record's fields, reused. */
  private readonly decoded: DecodedSink | null;
  private readonly kmem = newKmemFields();
  /** The sink, when it takes whole stacks (the builder); each stack's frames by its address bytes, per kind. */
  private readonly stacks: StackSink | null;
  private readonly stackFrames = { kernel: new Map<string, readonly string[]>(), user: new Map<string, readonly string[]>() };

  constructor(
    private readonly f: TraceDat,
    private readonly sink: LineSink,
  ) {
    this.comms = new Map(f.cmdlines);
    this.long = f.kernelLong;
    this.decoded = decodedSink(sink);
    this.stacks = stackSink(sink);
    for (const [id, fmt] of f.formats) {
      if (fmt.system !== 'ftrace') continue;
      if (fmt.name === 'kernel_stack') this.stackIds.set(id, 'kernel');
      else if (fmt.name === 'user_stack') this.stackIds.set(id, 'user');
      else if (fmt.name === 'print' || fmt.name === 'bputs' || fmt.name === 'bprint' || fmt.name === 'function') this.special.set(id, fmt.name);
    }
  }

  *steps(): Steps<number> {
    const f = this.f;
    const sink = this.sink;
    sink.header('cpus', String(f.cpus));
    sink.header('file_version', String(f.version));
    const release = f.uname !== null ? /^\S+\s+\S+\s+(\S+)/.exec(f.uname)?.[1] : undefined;
    if (release) sink.header('kernel_version', release);
    if (f.clock !== null) sink.header('trace_clock', f.clock);
    const counter = f.tsc === null && f.clock !== null && !NS_CLOCKS.test(f.clock);
    sink.clock(counter ? 'counter' : 'ns');

    const bufs = f.buffers;
    const n = bufs.length;
    const streams: (CpuStream | null)[] = bufs.map((b) => (b ? stream(b, f) : null));
    // tracecmd_iterate_events_multi: each CPU's time as last looked at (-1: no more records).
    const sec = new Float64Array(n).fill(-1);
    const ns = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const s = streams[i];
      if (s && s.has) (sec[i] = s.tsSec, (ns[i] = s.tsNs));
    }
    let records = 0;
    for (;;) {
      let next = -1;
      for (let i = 0; i < n; i++) {
        if (sec[i] < 0) continue;
        if (next < 0 || sec[i] < sec[next] || (sec[i] === sec[next] && ns[i] < ns[next])) next = i;
      }
      if (next < 0) break;
      const s = streams[next]!;
      // The CPU's record moved on since its time was taken: take the new time and choose again.
      if (!s.has) {
        sec[next] = -1;
        continue;
      }
      if (s.tsSec !== sec[next] || s.tsNs !== ns[next]) {
        sec[next] = s.tsSec;
        ns[next] = s.tsNs;
        continue;
      }
      this.record(s, ++records);
      step(s, bufs[next]!);
      if (records % STEP === 0) yield;
    }
    return records;
  }

  private record(s: CpuStream, lineNo: number): void {
    const d = s.buffer;
    const start = s.dataStart;
    const size = s.dataEnd - start;
    const sink = this.sink;
    if (s.missed !== 0) sink.lost(lineNo, s.cpu, s.missed > 0 ? s.missed : null, 'dropped');
    const ctx = this.ctx;
    ctx.tsSec = s.tsSec;
    ctx.tsNs = s.tsNs;
    ctx.cpu = s.cpu;
    if (size < 8) {
      sink.unparsed(lineNo, `CPU ${s.cpu} record of ${size} bytes`, 'a record shorter than its common fields');
      return;
    }
    const id = d.readUInt16LE(start);
    const pid = d.readInt32LE(start + 4);
    ctx.pid = pid;
    if (pid !== this.lastPid) {
      this.lastPid = pid;
      this.lastComm = pid === 0 ? '<idle>' : (this.comms.get(pid) ?? '<...>');
    }
    ctx.comm = this.lastComm;
    const h = this.handlers.get(id) ?? this.handler(id);
    if (h.fmt === null) {
      sink.unparsed(lineNo, `[UNKNOWN TYPE ${id}]`, `event id ${id} has no format in the file`);
      return;
    }
    const fmt = h.fmt;
    if (h.stack !== undefined) return this.stack(h.stack, h.caller, d.subarray(start, start + size), lineNo);
    if (h.kmem) {
      const payload = renderPayloadAt(fmt, d, start, start + size, this.kmem);
      this.decoded!.eventDecoded(lineNo, ctx, fmt.system, fmt.name, payload, this.kmem);
      return;
    }
    const payload = h.special !== undefined ? this.printPayload(h.special, fmt, d.subarray(start, start + size)) : renderPayloadAt(fmt, d, start, start + size);
    sink.event(lineNo, ctx, fmt.system, fmt.name, payload);
    if (h.sched) this.saveComms(fmt, d.subarray(start, start + size));
  }

  private handler(id: number): Handler {
    const fmt = this.f.formats.get(id) ?? null;
    const stack = this.stackIds.get(id);
    const special = this.special.get(id);
    const sched = fmt?.system === 'sched';
    const kmem = fmt !== null && this.decoded !== null && stack === undefined && special === undefined && !sched && isKmemPage(fmt);
    const caller = stack !== undefined ? (fmt?.fields.find((x) => x.name === 'caller')?.offset ?? -1) : -1;
    const h: Handler = { fmt, stack, special, sched, kmem, caller };
    this.handlers.set(id, h);
    return h;
  }

  /** kernel_stack / user_stack (plugin_function.c trace_stack_handler): longs up to the record's end or a -1. */
  private stack(kind: 'kernel' | 'user', caller: number, raw: Buffer, lineNo: number): void {
    const long = this.long;
    let end = caller;
    if (caller >= 0) while (end + long <= raw.length && raw.readUInt32LE(end) !== 0xffffffff) end += long;
    // Stacks repeat: the same addresses are the same frames, one array the builder knows without a key.
    let frames: readonly string[] | undefined;
    if (this.stacks !== null && caller >= 0) {
      const cache = this.stackFrames[kind];
      const key = raw.toString('latin1', caller, end);
      frames = cache.get(key);
      if (frames === undefined && cache.size < MAX_CACHED_STACKS) {
        const list: string[] = [];
        for (let p = caller; p < end; p += long) list.push(this.stackFrame(kind, raw, p));
        cache.set(key, (frames = list));
      }
    }
    if (frames !== undefined) return this.stacks!.stackFrames(kind, this.ctx.cpu, frames, lineNo);
    this.sink.stackStart(kind, this.ctx.cpu);
    for (let p = caller; p < end; p += long) this.sink.frame(this.stackFrame(kind, raw, p), lineNo);
  }

  private stackFrame(kind: 'kernel' | 'user', raw: Buffer, p: number): string {
    const lo = raw.readUInt32LE(p);
    const hi = this.long === 8 ? raw.readUInt32LE(p + 4) : 0;
    return kind === 'kernel' ? this.frame(hi, lo) : hex64(hi, lo);
  }

  /** `func (addr)` or the bare address, as trace-cmd prints a frame, normalised as the text reader does. */
  private frame(hi: number, lo: number): string {
    const hit = this.frames.get(lo);
    if (hit !== undefined && hit[0] === hi) return hit[1];
    const sym = symbols(this.f).lookup(hi, lo);
    const addr = hex64(hi, lo).slice(2);
    const text = ftraceFrame(sym ? `${sym.name} (${addr})` : addr);
    if (hit === undefined) this.frames.set(lo, [hi, text]);
    return text;
  }

  private symbol(hi: number, lo: number): string | null {
    return symbols(this.f).lookup(hi, lo)?.name ?? null;
  }

  /**
   * ftrace's print (`ip: buf`), bputs (`ip: str` from printk formats), bprint (`ip: formatted`) and the function
   * tracer's `function` (`func <-- parent`, libtraceevent's plugin_function.c).
   */
  private printPayload(kind: 'print' | 'bputs' | 'bprint' | 'function', fmt: EventFormat, raw: Buffer): string {
    const field = (name: string) => fmt.fields.find((x) => x.name === name);
    const long = this.long;
    const word = (name: string): [number, number] => {
      const x = field(name);
      if (!x || x.offset + long > raw.length) return [0, 0];
      return [long === 8 ? raw.readUInt32LE(x.offset + 4) : 0, raw.readUInt32LE(x.offset)];
    };
    const [ipHi, ipLo] = word('ip');
    const ip = this.symbol(ipHi, ipLo) ?? hex64(ipHi, ipLo);
    if (kind === 'function') {
      const [pHi, pLo] = word('parent_ip');
      return `${ip} <-- ${this.symbol(pHi, pLo) ?? hex64(pHi, pLo)}`;
    }
    if (kind === 'print') {
      const buf = field('buf');
      const from = buf ? buf.offset : raw.length;
      const nul = raw.indexOf(0, from);
      let text = raw.toString('utf8', from, nul >= 0 ? nul : raw.length);
      if (text.endsWith('\n')) text = text.slice(0, -1);
      return `${ip}: ${text}`;
    }
    const [fHi, fLo] = word(kind === 'bputs' ? 'str' : 'fmt');
    const format = this.f.printk.get(hex64(fHi, fLo).slice(2));
    let text: string;
    if (format === undefined) text = `[UNKNOWN FORMAT ${hex64(fHi, fLo)}]`;
    else if (kind === 'bputs') text = format;
    else {
      const buf = field('buf');
      text = formatBprint(format, raw.subarray(buf ? buf.offset : raw.length), long, (h, l) => this.symbol(h, l));
    }
    if (text.endsWith('\n')) text = text.slice(0, -1);
    return `${ip}: ${text}`;
  }

  /**
   * libtraceevent's sched_switch plugin registers the names it prints (prev_comm, next_comm; sched_wakeup's comm)
   * for pids without one: tep_register_comm() neither replaces a known name nor names pid 0.
   */
  private saveComms(fmt: EventFormat, raw: Buffer): void {
    const pairs = fmt.name === 'sched_switch' ? [['prev_comm', 'prev_pid'], ['next_comm', 'next_pid']] : fmt.name === 'sched_wakeup' || fmt.name === 'sched_wakeup_new' ? [['comm', 'pid']] : [];
    for (const [c, p] of pairs) {
      const cf = fmt.fields.find((x) => x.name === c);
      const pf = fmt.fields.find((x) => x.name === p);
      if (!cf || !pf || cf.offset + cf.size > raw.length || pf.offset + 4 > raw.length) continue;
      const nul = raw.indexOf(0, cf.offset);
      const end = nul >= 0 && nul < cf.offset + cf.size ? nul : cf.offset + cf.size;
      const pid = raw.readInt32LE(pf.offset);
      if (pid !== 0 && !this.comms.has(pid)) {
        this.comms.set(pid, raw.toString('utf8', cf.offset, end));
        if (pid === this.lastPid) this.lastPid = -1; // named now: the next record of it looks again
      }
    }
  }
}
