import { parseTimestamp, type LineContext, type LineSink, type Reader } from './sink.js';

/**
 * `perf script` output for tracepoints (tools/perf/builtin-script.c print_sample_start()):
 *   comm (%16s, or %s with callchains) pid[/tid] [cpu] secs.usecs: [period] sys:event: payload
 * With -g, callchain frames follow as `\t<addr> sym+0xoff (dso)` and a blank line ends the sample.
 * --ns gives 9 fraction digits; -F may drop the cpu; --show-lost-events adds PERF_RECORD_LOST lines.
 */
const SAMPLE_RE =
  /^\s*(.*?)\s+(\d+)(?:\/(\d+))?\s+(?:\[(\d+)\]\s+)?(\d+)\.(\d+):\s+(?:\d+\s+)?([\w-]+):([\w.-]+):\s?(.*)$/;
const FRAME_RE = /^\s+([0-9a-fA-F]+)\s+(.*?)(?:\s+\((.*)\))?\s*$/;
const USER_PSEUDO_DSOS = new Set(['[unknown]', '[vdso]', '[vsyscall]', '[heap]', '[stack]', '[anon]', '[uprobes]']);
const LOST_RE = /PERF_RECORD_LOST.*?(?:lost:?\s*|\s)(\d+)/;

export class PerfReader implements Reader {
  private readonly ctx: LineContext = { tsSec: 0, tsNs: 0, cpu: 0, pid: 0, tgid: -1, comm: '', irq: null };
  private inStack = false;
  private clockSeen = false;

  constructor(private readonly sink: LineSink) {}

  line(text: string, lineNo: number): void {
    if (text.length === 0 || text.trim().length === 0) {
      this.inStack = false;
      return;
    }
    const c0 = text.charCodeAt(0);
    if (c0 === 9 /* \t */) return this.frame(text, lineNo);
    if (c0 === 35 /* # */) return; // perf script -I header
    const m = SAMPLE_RE.exec(text);
    if (m) {
      const ctx = this.ctx;
      ctx.comm = m[1];
      if (m[3] !== undefined) {
        ctx.tgid = Number(m[2]);
        ctx.pid = Number(m[3]);
      } else {
        ctx.pid = Number(m[2]);
        ctx.tgid = -1;
      }
      ctx.cpu = m[4] === undefined ? -1 : Number(m[4]);
      const clock = parseTimestamp(ctx, m[5], m[6]);
      if (!this.clockSeen) {
        this.clockSeen = true;
        this.sink.clock(clock);
      }
      this.inStack = false;
      return this.sink.event(lineNo, ctx, m[7], m[8], m[9]);
    }
    const lost = LOST_RE.exec(text);
    if (lost) return this.sink.lost(lineNo, null, Number(lost[1]), 'perf-lost');
    if (/^\s+[0-9a-fA-F]+\s/.test(text)) return this.frame(text, lineNo);
    this.sink.unparsed(lineNo, text, 'no perf script layout matches');
  }

  end(): void {}

  private frame(text: string, lineNo: number): void {
    const f = FRAME_RE.exec(text);
    if (!f) return this.sink.unparsed(lineNo, text, 'callchain line without address');
    const dso = f[3] ?? '';
    // Kernel frames: kernel-half addresses, [kernel.kallsyms] or a [module]; `[unknown]`/`[vdso]` are user frames.
    const kernel = /^ffff[0-9a-f]{12}$/i.test(f[1]) || (dso.startsWith('[') && !USER_PSEUDO_DSOS.has(dso));
    const kind = kernel ? 'kernel' : 'user';
    if (!this.inStack || this.currentKind !== kind) {
      this.sink.stackStart(kind, this.ctx.cpu);
      this.currentKind = kind;
      this.inStack = true;
    }
    const sym = f[2] === '[unknown]' ? '0x' + f[1] : f[2];
    this.sink.frame(kernel || !dso ? sym : `${sym} [${dso}]`);
  }

  private currentKind: 'kernel' | 'user' = 'kernel';
}
