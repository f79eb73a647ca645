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
const FRAME_HEAD_RE = /^\s+([0-9a-fA-F]+)\s+/;
const USER_PSEUDO_DSOS = new Set(['[unknown]', '[vdso]', '[vsyscall]', '[heap]', '[stack]', '[anon]', '[uprobes]']);
const LOST_AFTER_RE = /(?:lost:?\s*|\s)(\d+)/;

/** Whether a line is a perf script sample line (format detection). */
export function isPerfSample(text: string): boolean {
  return matchTask(text, SAMPLE_TAIL, true) !== null;
}

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
    const m = matchTask(text, SAMPLE_TAIL, true);
    if (m) {
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
      this.sink.event(lineNo, ctx, m[6], m[7], text.slice(m.index + m[0].length), text);
      return;
    }
    // The first `PERF_RECORD_LOST` only: a regex from each occurrence would rescan the line for each.
    const l = text.indexOf('PERF_RECORD_LOST');
    const lost = l >= 0 ? LOST_AFTER_RE.exec(text.slice(l + 16)) : null;
    if (lost) return this.sink.lost(lineNo, null, Number(lost[1]), 'perf-lost', text);
    if (/^\s+[0-9a-fA-F]+\s/.test(text)) return this.frame(text, lineNo);
    this.sink.unparsed(lineNo, text, 'no perf script layout matches');
  }

  end(): void {}

  private frame(text: string, lineNo: number): void {
    const f = parseFrame(text);
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
    this.sink.frame(kernel || !dso ? sym : `${sym} [${dso}]`, lineNo);
  }

  private currentKind: 'kernel' | 'user' = 'kernel';
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
