import { sameBytes } from '../../db/batch.js';
import { normalFrame } from '../stack.js';
import { comms, digitsAt, eventNames, FRAME_SLOTS, frameSlot, fractionNs, task } from './ftrace-bytes.js';
import { matchSampleBytes, modifiersOnly, perfm } from './perf-bytes.js';
import { matchTask, parseTimestamp, taskComm, type LineContext, type LineSink, type Reader } from './sink.js';

/**
 * `perf script` output for tracepoints (tools/perf/builtin-script.c print_sample_start()):
 *   comm (%16s, or %s with callchains) pid[/tid] [cpu] secs.usecs: [period] sys:event: payload
 * With -g, callchain frames follow as `\t<addr> sym+0xoff (dso)` and a blank line ends the sample.
 * --ns gives 9 fraction digits; -F may drop the cpu; --show-lost-events adds PERF_RECORD_LOST lines.
 */
// From the blanks after the comm (which may hold any byte but NUL, blanks and digits too: sink.ts matchTask) to the
// payload.
const SAMPLE_TAIL =
  /[ \t]+(\d+)(?:\/(\d+))?[ \t]+(?:\[(\d+)\][ \t]+)?(\d+)\.(\d+):[ \t]+(?:\d+[ \t]+)?([\w-]+):([\w.-]+):[ \t]?/y;
/**
 * A sample of a hardware / software event (`63788766 cycles:`, `cycles:ppp:`, `cpu/cycles/P:`): the period, then
 * the event's name with its modifiers, no `sys:`.
 */
const COUNTER_TAIL =
  /[ \t]+(\d+)(?:\/(\d+))?[ \t]+(?:\[(\d+)\][ \t]+)?(\d+)\.(\d+):[ \t]+\d+[ \t]+([\w./-]+(?::[ukhHGpPSDIWe]+)?):(?=[ \t]|$)[ \t]?/y;
const FRAME_HEAD_RE = /^\s+([0-9a-fA-F]+)\s+/;
const USER_PSEUDO_DSOS = new Set(['[unknown]', '[vdso]', '[vsyscall]', '[heap]', '[stack]', '[anon]', '[uprobes]']);
const LOST_AFTER_RE = /(?:lost:?\s*|\s)(\d+)/;

/**
 * Callchain lines seen, by their bytes (the same calls recur sample after sample): the line, its frame and whose
 * frame it is by its dso (null: the dso does not say, the frame is read by line() each time). Direct-mapped as
 * ftrace.ts's frame cache (frameSlot); a slot keeps a copy of its line.
 */
const frameLines: string[] = new Array<string>(FRAME_SLOTS).fill('');
const frames: string[] = new Array<string>(FRAME_SLOTS).fill('');
const frameKernel: (boolean | null)[] = new Array<boolean | null>(FRAME_SLOTS).fill(null);

/** Whether a line is a perf script sample line (format detection). */
export function isPerfSample(text: string): boolean {
  return sampleMatch(text) !== null;
}

interface Sample {
  m: RegExpExecArray;
  /** null for a counter event (no `sys:`). */
  system: string | null;
  event: string;
}

/** perf's event modifiers (`cycles:ppp`): no tracepoint is named by these letters alone. */
const MODIFIERS = /^[ukhHGpPSDIWe]+$/;

/** A sample line: a tracepoint's, else a counter event's (COUNTER_TAIL; `cycles:ppp:` also matches SAMPLE_TAIL). */
function sampleMatch(text: string): Sample | null {
  const t = matchTask(text, SAMPLE_TAIL, true);
  if (t && !MODIFIERS.test(t[7])) return { m: t, system: t[6], event: t[7] };
  const c = matchTask(text, COUNTER_TAIL, true);
  return c && { m: c, system: null, event: c[6] };
}

export class PerfReader implements Reader {
  private readonly ctx: LineContext = { tsSec: 0, tsNs: 0, cpu: 0, pid: 0, tgid: -1, comm: '', irq: null };
  private inStack = false;
  private clockSeen = false;

  constructor(private readonly sink: LineSink) {}

  line(text: string, lineNo: number): void {
    if (text.length === 0 || text.trim().length === 0) {
      this.inStack = false;
      return this.sink.skip?.(lineNo, 'blank');
    }
    const c0 = text.charCodeAt(0);
    if (c0 === 9 /* \t */) return this.frame(text, lineNo);
    if (c0 === 35 /* # */) return this.sink.skip?.(lineNo, 'header'); // perf script -I header
    const sample = sampleMatch(text);
    if (sample) {
      const { m } = sample;
      const ctx = this.ctx;
      ctx.comm = taskComm;
      if (m[2] !== undefined) {
        ctx.tgid = Number(m[1]);
        ctx.pid = Number(m[2]);
      } else {
        ctx.pid = Number(m[1]);
        ctx.tgid = -1;
      }
      ctx.cpu = m[3] === undefined ? -1 : Number(m[3]);
      const clock = parseTimestamp(ctx, m[4], m[5]);
      if (!this.clockSeen) {
        this.clockSeen = true;
        this.sink.clock(clock);
      }
      this.inStack = false;
      this.sink.event(lineNo, ctx, sample.system, sample.event, text.slice(m.index + m[0].length), text);
      return;
    }
    // The first `PERF_RECORD_LOST` only: a regex from each occurrence would rescan the line for each.
    const l = text.indexOf('PERF_RECORD_LOST');
    const lost = l >= 0 ? LOST_AFTER_RE.exec(text.slice(l + 16)) : null;
    if (lost) return this.sink.lost(lineNo, null, Number(lost[1]), 'perf-lost', text);
    if (/^\s+[0-9a-fA-F]+\s/.test(text)) return this.frame(text, lineNo);
    this.sink.unparsed(lineNo, text, 'no perf script layout matches');
  }

  /**
   * A sample line of an ASCII block read from its bytes (perf-bytes.ts), as line() reads it, and a callchain line
   * whose dso names its side (frameBytes); false, having told the sink nothing, for any other line (lost records,
   * counter events, headers, frames perf names no dso for).
   */
  lineBytes(b: Buffer, s: number, e: number, lineNo: number): boolean {
    const sink = this.sink;
    if (sink.eventBytes === undefined || b[s] === 35) return false;
    if (b[s] === 9) return this.frameBytes(b, s, e, lineNo);
    const end = matchSampleBytes(b, s, e);
    const m = perfm;
    if (end < 0 || modifiersOnly(b, m.eventS, m.eventE)) return false;
    const ctx = this.ctx;
    ctx.comm = comms.get(b, task.commS, task.commE);
    if (m.tidS >= 0) {
      ctx.tgid = digitsAt(b, m.pidS, m.pidE);
      ctx.pid = digitsAt(b, m.tidS, m.tidE);
    } else {
      ctx.pid = digitsAt(b, m.pidS, m.pidE);
      ctx.tgid = -1;
    }
    ctx.cpu = m.cpuS < 0 ? -1 : digitsAt(b, m.cpuS, m.cpuE);
    // parseTimestamp() on the byte columns.
    ctx.tsSec = digitsAt(b, m.secS, m.secE);
    ctx.tsNs = fractionNs(b, m.fracS, m.fracE);
    if (!this.clockSeen) {
      this.clockSeen = true;
      sink.clock(m.fracE - m.fracS > 6 ? 'ns' : 'us');
    }
    this.inStack = false;
    sink.eventBytes(lineNo, ctx, eventNames.get(b, m.sysS, m.sysE), eventNames.get(b, m.eventS, m.eventE), b, end, s, e);
    return true;
  }

  end(): void {}

  /**
   * frame() of a callchain line given as bytes, when its dso says whose frame it is (then the frame does not depend
   * on the lines before it): the same bytes seen recently give the frame kept for them, others are parsed once and
   * kept. false: line() reads it.
   */
  private frameBytes(b: Buffer, s: number, e: number, lineNo: number): boolean {
    const n = e - s;
    if (n < 8 || n > 512) return false;
    const h = frameSlot(b, s, e);
    const line = frameLines[h];
    let frame: string;
    let kernel: boolean | null;
    if (line.length === n && sameBytes(line, b, s)) {
      frame = frames[h];
      kernel = frameKernel[h];
    } else {
      const text = b.toString('latin1', s, e);
      const f = parseFrame(text);
      kernel = f === null ? null : kernelOrigin(f[3] ?? '');
      frameLines[h] = text;
      frameKernel[h] = kernel;
      frame = frames[h] = kernel === null ? '' : perfFrame(f![1], f![2], f![3] ?? '', kernel);
    }
    if (kernel === null) return false;
    this.stackFrame(kernel, frame, lineNo);
    return true;
  }

  private frame(text: string, lineNo: number): void {
    const f = parseFrame(text);
    if (!f) return this.sink.unparsed(lineNo, text, 'callchain line without address');
    const dso = f[3] ?? '';
    // No origin printed: x86/arm64 kernel addresses are ffff...; another top-half address (ppc64 c000...) is the
    // kernel's only where the kernel run of the chain is (a broken user unwind prints such garbage too).
    const kernel =
      kernelOrigin(dso) ?? (/^ffff[0-9a-f]{12}$/i.test(f[1]) || (highHalf(f[1]) && (!this.inStack || this.currentKind === 'kernel')));
    this.stackFrame(kernel, perfFrame(f[1], f[2], dso, kernel), lineNo);
  }

  /** A frame of the sample's stack: a kernel/user switch starts a stack of the other kind. */
  private stackFrame(kernel: boolean, frame: string, lineNo: number): void {
    const kind = kernel ? 'kernel' : 'user';
    if (!this.inStack || this.currentKind !== kind) {
      this.sink.stackStart(kind, this.ctx.cpu);
      this.currentKind = kind;
      this.inStack = true;
    }
    this.sink.frame(frame, lineNo);
  }

  private currentKind: 'kernel' | 'user' = 'kernel';
}

/**
 * Whether a frame is the kernel's, by the symbol's origin perf names: `[kernel.kallsyms]` (also `_text`, guest),
 * a `[module]`, a vmlinux or `.ko` path (--kallsyms / a debug vmlinux, as on ppc64 where kernel addresses are
 * `c000...`). null when the dso says nothing (`[unknown]`, none printed).
 */
export function kernelOrigin(dso: string): boolean | null {
  if (dso === '' || dso === '[unknown]') return null;
  if (dso.startsWith('[')) return !USER_PSEUDO_DSOS.has(dso);
  const base = dso.slice(dso.lastIndexOf('/') + 1);
  return base.startsWith('vmlinux') || /\.ko(\.[a-z]+)?$/.test(base);
}

/** The top half of a 64-bit address space, the kernel's on x86, arm64 and ppc64. */
const highHalf = (addr: string): boolean => addr.length === 16 && addr.charCodeAt(0) >= 56 /* '8' and up */;

/**
 * The normal frame (stack.ts normalFrame): kernel `func+0xoff [module]`, user `func+0xoff [dso]`, no symbol
 * `0x<addr>` (with its dso when perf names one: `0x75641 [/usr/bin/bash]`).
 */
function perfFrame(addr: string, sym: string, dso: string, kernel: boolean): string {
  if (sym === '[unknown]') sym = '0x' + addr.toLowerCase();
  const plus = sym.lastIndexOf('+0x');
  const fn = plus > 0 ? sym.slice(0, plus) : sym;
  const off = plus > 0 && /^\+0x[0-9a-fA-F]+$/.test(sym.slice(plus)) ? sym.slice(plus + 1) : undefined;
  let module = '';
  if (kernel) {
    // A module's frame names the module, as %pS does: `[nvme]` or `/lib/modules/.../nvme.ko`.
    if (dso.startsWith('[') && dso !== '[unknown]' && !dso.startsWith('[kernel.') && !dso.startsWith('[guest.kernel.')) module = dso.slice(1, -1);
    else if (/\.ko(\.[a-z]+)?$/.test(dso)) module = dso.slice(dso.lastIndexOf('/') + 1).replace(/\.ko(\.[a-z]+)?$/, '');
  } else if (dso !== '[unknown]') module = dso;
  return normalFrame(off === undefined ? sym : fn, off, undefined, module);
}

/**
 * `\t<addr> sym+0xoff (dso)` as [, addr, sym, dso?]: the sym ends at the first blanks + `(` when the line ends
 * with `)`. By hand: the equivalent regex backtracks quadratically on long blank runs.
 */
function parseFrame(text: string): [string, string, string, string | undefined] | null {
  const h = FRAME_HEAD_RE.exec(text.length > 256 ? text.slice(0, 256) : text);
  if (!h) return null;
  let end = text.length;
  while (end > 0 && /\s/.test(text[end - 1])) end--;
  const rest = text.slice(h[0].length, end);
  if (rest.endsWith(')')) {
    const o = rest.search(/\s\(/);
    if (o >= 0) {
      let symEnd = o;
      while (symEnd > 0 && /\s/.test(rest[symEnd - 1])) symEnd--;
      return ['', h[1], rest.slice(0, symEnd), rest.slice(o + 2, -1)];
    }
  }
  return ['', h[1], rest, undefined];
}
