import { MAX_CPUS, MAX_LOST } from '../decode/limits.js';
import { sameBytes } from '../../db/batch.js';
import { ftraceFrame } from '../stack.js';
import { comms, ctxm, digitsAt, eventNames, FRAME_SLOTS, frameSlot, frameSlotOfText, fractionNs, irqFlags, matchContextBytes, task } from './ftrace-bytes.js';
import { digits, eventName, matchTask, parseTimestamp, taskComm, type LineContext, type LineSink, type Reader, type StackKind } from './sink.js';

/**
 * tracefs `trace` / `trace_pipe` text (kernel/trace/trace_output.c trace_print_context()):
 *   "%16s-%-7d " comm-pid [+ "(%7d) " tgid | "(-------) "] "[%03d] " cpu [irq flags, 4 or 5 chars] " %5lu.%06lu: "
 * followed by "<event>: <payload>". Also: the header block, `CPU:N [LOST M EVENTS]`, `##### CPU N buffer started ####`,
 * `<stack trace>` / `<user stack trace>` + ` => frame` lines, latency-format lines, and events printed as
 * comments inside function_graph output. Other tracers' records are events of their own (system 'ftrace'):
 * `function` (`func <-parent`), `bprint` (trace_printk `func+0x12/0x40: text`), `wakeup` / `context_switch`
 * (wakeup tracers), `funcgraph_entry` / `funcgraph_exit` / `funcgraph_comment` / `funcgraph_switch`.
 */

// The comm may hold any byte but NUL: the task field ends at the `-<pid>` before the `[cpu]` column (sink.ts
// matchTask). Older kernels print pid %-5d and tgid (%5d)/(-----); newer %-7d and (%7d)/(-------). Flags: 0, 4 or 5
// chars. CONTEXT_TAIL matches from the `-` to the event name.
const CONTEXT_TAIL =
  /-(\d+)[ \t]+(?:\([ \t]*(\d+|-+)[ \t]*\)[ \t]+)?\[(\d+)\][ \t]*(?:([a-zA-Z0-9.:]{4,6})[ \t]+)?(\d+)(?:\.(\d+))?(?:[ \t]*\(\+[\d.]+\))?:\s/y;
// Latency format: "<comm>-<pid> <cpu><flags> <time>us<delay>: event: payload", time relative to the trace start.
const LATENCY_TAIL = /-(\d+)[ \t]+(\d+)([a-zA-Z.][a-zA-Z0-9.]{3,5})[ \t]+(\d+)us([!#*@$+ ]?)[ \t]*:\s/y;
// function_graph: "[abstime |] cpu) [comm-pid |] ... /* event: payload */": the head, read from the line's first
// FGRAPH_HEAD characters (the comment is found with indexOf, so no regex spans the line).
const FGRAPH_RE = /^[ \t]*(?:(\d+)\.(\d+)[ \t]*\|[ \t]*)?(\d+)\)[ \t]*(?:([^|]+?)-(\d+)[ \t]+\|)?/;
const FGRAPH_HEAD = 512;
// function tracer (trace_fn_trace): `func <-parent`, `func` (noprint-parent), `func+0x6/0xa0` (sym-offset),
// `func <c0339346>` (sym-addr), and those combined.
const FUNCTION_RE = /^[^\s<>:]+(?: <[0-9a-fA-F]+>)?(?: <-[^\s<>]+(?: <[0-9a-fA-F]+>)?)?\s*$/;
// hwlat tracer: `#1     inner/outer(us):   12/14    ts:1499801089.066141940`.
const HWLAT_RE = /^#\d+\s+inner\/outer/;
// trace_printk() and trace_marker records (trace_output.c trace_bprint_print, trace_bputs_print, trace_print_print):
// the ip as seq_print_ip_sym() prints it, then ": ". Told from an event `name: ` only where the ip part cannot be
// an event name: empty (kernels before 5.x print nothing for an ip without a symbol: bpf_trace_printk's fake ip 1),
// `0x%08lx` (an ip without a symbol, later kernels), `+0x12/0x40` (sym-offset; ` [module]` in a module) or
// ` <ffffffff814abf11>` (sym-addr). Groups: the symbol, its offset, its address.
const PRINT_IP_RE = /^(?:0x[0-9a-fA-F]+|([\w.$]+)(\+0x[0-9a-fA-F]+\/0x[0-9a-fA-F]+(?: \[[\w.-]+\])?)?( <[0-9a-fA-F]+>)?)?: /;
// wakeup tracers' own records (trace_ctxwake_print): `  2389:120:R   + [003]  2394:120:R bash` / ` ==> `.
const CTXWAKE_RE = /^\s*\d+:\s*\d+:\S\s+(\+|==>)\s+\[\d+\]/;
// function_graph separators: the task-switch frame and irq entry/exit arrows.
const FGRAPH_RULE_RE = /^\s*-{8,}\s*$/;
const FGRAPH_SWITCH_RE = /^\s*(\S.*?)\s+=>\s+(\S.*?)\s*$/;

/** Whether a line has the ftrace context prefix (format detection). */
export function isContextLine(text: string): boolean {
  return matchTask(text, CONTEXT_TAIL, false) !== null || matchTask(text, LATENCY_TAIL, false) !== null;
}
const LOST_RE = /^CPU:(\d+) \[LOST (\d+) EVENTS\]\s*$/;
const BUFFER_STARTED_RE = /^##### CPU (\d+) buffer started ####\s*$/;
const ENTRIES_RE = /entries-in-buffer\/entries-written:\s*(\d+)\/(\d+)\s+#P:(\d+)/;
const SYSCALL_ENTER_RE = /^(sys_\w+)\(([^]*)\)\s*$/;
const SYSCALL_EXIT_RE = /^(sys_\w+) -> (\S+)\s*$/;

export class FtraceReader implements Reader {
  protected readonly ctx: LineContext = { tsSec: 0, tsNs: 0, cpu: 0, pid: 0, tgid: -1, comm: '', irq: null };
  private clockSeen = false;

  constructor(protected readonly sink: LineSink) {}

  line(text: string, lineNo: number): void {
    const c0 = text.charCodeAt(0);
    if (c0 === 35 /* # */) {
      // `##### CPU N buffer started ####` (annotate option) looks like a header line but is a marker.
      if (text.startsWith('#####') && this.special(text, lineNo)) return;
      return this.headerLine(text, lineNo);
    }
    if (trimEnd(text) === 0) return this.sink.skip?.(lineNo, 'blank');
    if (isFrameLine(text)) return this.sink.frame(cachedFrame(text), lineNo);
    const m = matchTask(text, CONTEXT_TAIL, false);
    if (m) {
      const ctx = this.ctx;
      ctx.comm = taskComm;
      ctx.pid = digits(m[1]);
      ctx.tgid = m[2] === undefined || m[2].charCodeAt(0) === 45 /* - */ ? -1 : digits(m[2]);
      ctx.cpu = digits(m[3]);
      ctx.irq = m[4] ?? null;
      this.setClock(parseTimestamp(ctx, m[5], m[6]));
      return this.rest(lineNo, text.slice(m.index + m[0].length), text);
    }
    if (this.special(text, lineNo)) return;
    this.sink.unparsed(lineNo, text, 'no ftrace layout matches');
  }

  /**
   * The line b[s, e) of an ASCII block, read from its bytes when it is a frame or a plain event line (the bulk of a
   * trace): no string for the line, no regex. Returns false, having told the sink nothing, for any other line:
   * the caller hands it to line() as text.
   */
  lineBytes(b: Buffer, s: number, e: number, lineNo: number): boolean {
    const sink = this.sink;
    if (sink.eventBytes === undefined || b[s] === 35 /* # */) return false;
    let i = s;
    while (i < e && (b[i] === 32 || b[i] === 9)) i++;
    if (i + 1 < e && b[i] === 61 && b[i + 1] === 62 /* => */) {
      sink.frame(frameOfBytes(b, s, e), lineNo);
      return true;
    }
    const end = matchContextBytes(b, s, e);
    if (end < 0) return false;
    // The event name: an identifier up to the first `:` (not `0x…`, an ip).
    let q = end;
    while (q < e && isNameByte(b[q])) q++;
    if (q === end || q >= e || b[q] !== 58 || (b[end] === 48 && b[end + 1] === 120)) {
      if (b[end] !== 60 /* < */) return false;
      // `<stack trace>` / `<user stack trace>`, anything else the string path's.
      const kind = startsWith(b, end, e, '<stack trace>') ? 'kernel' : startsWith(b, end, e, '<user stack trace>') ? 'user' : null;
      if (kind === null) return false;
      this.contextFromBytes(b);
      this.named('');
      sink.stackStart(kind, this.ctx.cpu);
      return true;
    }
    this.contextFromBytes(b);
    const name = eventNames.get(b, end, q);
    const stack = this.named(name);
    if (stack !== null) {
      sink.stackStart(stack, this.ctx.cpu);
      return true;
    }
    let p = q + 1;
    while (p < e && b[p] === 32) p++;
    sink.eventBytes(lineNo, this.ctx, null, name, b, p, s, e);
    return true;
  }

  /** What a format makes of an event name before the event is stored: a stack's start (trace-cmd), or null. */
  protected named(_name: string): StackKind | null {
    return null;
  }

  /** ctx and the clock from the columns matchContextBytes found (ctxm), as line() sets them from its match. */
  private contextFromBytes(b: Buffer): void {
    const ctx = this.ctx;
    const m = ctxm;
    ctx.comm = comms.get(b, task.commS, task.commE);
    ctx.pid = digitsAt(b, m.pidS, m.pidE);
    ctx.tgid = m.tgidS < 0 || b[m.tgidS] === 45 ? -1 : digitsAt(b, m.tgidS, m.tgidE);
    ctx.cpu = digitsAt(b, m.cpuS, m.cpuE);
    ctx.irq = m.irqS < 0 ? null : irqFlags.get(b, m.irqS, m.irqE);
    // parseTimestamp() on the byte columns.
    if (m.fracS < 0) {
      const n = m.secE - m.secS;
      ctx.tsSec = n > 9 ? digitsAt(b, m.secS, m.secE - 9) : 0;
      ctx.tsNs = digitsAt(b, n > 9 ? m.secE - 9 : m.secS, m.secE);
      this.setClock('counter');
    } else {
      ctx.tsSec = digitsAt(b, m.secS, m.secE);
      ctx.tsNs = fractionNs(b, m.fracS, m.fracE);
      this.setClock(m.fracE - m.fracS > 6 ? 'ns' : 'us');
    }
  }

  end(): void {}

  protected setClock(c: ReturnType<typeof parseTimestamp>): void {
    if (!this.clockSeen) {
      this.clockSeen = true;
      this.sink.clock(c);
    }
  }

  /** Event name and payload after the context prefix. */
  protected rest(lineNo: number, rest: string, text: string): void {
    if (rest.charCodeAt(0) === 60 /* < */) {
      if (rest.startsWith('<stack trace>')) return this.sink.stackStart('kernel', this.ctx.cpu);
      if (rest.startsWith('<user stack trace>')) return this.sink.stackStart('user', this.ctx.cpu);
    }
    const colon = rest.indexOf(':');
    // `0x...:` is an ip without a symbol, never an event name.
    if (colon > 0 && isEventName(rest, colon) && !(rest.charCodeAt(0) === 48 && rest.charCodeAt(1) === 120)) {
      let p = colon + 1;
      while (rest.charCodeAt(p) === 32) p++;
      this.sink.event(lineNo, this.ctx, null, eventName(rest, 0, colon), rest.slice(p), text);
      return;
    }
    // A bare `func: text` took the branch above: the kernel prints it exactly as an event named func.
    const ip = colon >= 0 ? PRINT_IP_RE.exec(rest.length > 512 ? rest.slice(0, 512) : rest) : null;
    if (ip && (ip[1] === undefined || ip[2] !== undefined || ip[3] !== undefined)) {
      // trace_marker writes are printed the same way, with tracing_mark_write as the symbol.
      if (ip[1] === 'tracing_mark_write') this.sink.event(lineNo, this.ctx, 'ftrace', 'tracing_mark_write', rest.slice(ip[0].length), text);
      else this.sink.event(lineNo, this.ctx, 'ftrace', 'bprint', rest.slice(0, trimEnd(rest)), text);
      return;
    }
    if (rest.length <= 1024 && FUNCTION_RE.test(rest)) {
      this.sink.event(lineNo, this.ctx, 'ftrace', 'function', rest.slice(0, trimEnd(rest)), text);
      return;
    }
    if (HWLAT_RE.test(rest.length > 64 ? rest.slice(0, 64) : rest)) {
      this.sink.event(lineNo, this.ctx, 'ftrace', 'hwlat', rest.slice(0, trimEnd(rest)), text);
      return;
    }
    const cw = CTXWAKE_RE.exec(rest.length > 256 ? rest.slice(0, 256) : rest);
    if (cw) {
      const p = rest.search(/\S/);
      this.sink.event(lineNo, this.ctx, 'ftrace', cw[1] === '+' ? 'wakeup' : 'context_switch', rest.slice(p, trimEnd(rest)), text);
      return;
    }
    if (rest.startsWith('sys_')) {
      let s = SYSCALL_ENTER_RE.exec(rest);
      if (s) {
        this.sink.event(lineNo, this.ctx, 'syscalls', 'sys_enter_' + s[1].slice(4), s[2], text);
        return;
      }
      s = SYSCALL_EXIT_RE.exec(rest);
      if (s) {
        this.sink.event(lineNo, this.ctx, 'syscalls', 'sys_exit_' + s[1].slice(4), '-> ' + s[2], text);
        return;
      }
    }
    this.sink.unparsed(lineNo, text, 'context prefix without an event name');
  }

  protected headerLine(text: string, lineNo: number): void {
    if (text.startsWith('# tracer:')) return this.sink.header('tracer', text.slice(9).trim());
    const m = ENTRIES_RE.exec(text);
    if (m) {
      if (!(Number(m[1]) < MAX_LOST && Number(m[2]) < MAX_LOST && Number(m[3]) <= MAX_CPUS))
        return this.sink.unparsed(lineNo, text, 'header counts out of range');
      this.sink.header('entries_in_buffer', m[1]);
      this.sink.header('entries_written', m[2]);
      this.sink.header('cpus', m[3]);
      return;
    }
    // Legend lines carry nothing else.
    this.sink.skip?.(lineNo, 'header');
  }

  /** Lines other than plain event lines; true when handled. */
  protected special(text: string, lineNo: number): boolean {
    let m = LOST_RE.exec(text);
    if (m) {
      this.sink.lost(lineNo, Number(m[1]), Number(m[2]), 'lost', text);
      return true;
    }
    m = BUFFER_STARTED_RE.exec(text);
    if (m) {
      this.sink.lost(lineNo, Number(m[1]), null, 'buffer-started');
      return true;
    }
    m = matchTask(text, LATENCY_TAIL, false);
    if (m) {
      const ctx = this.ctx;
      ctx.comm = taskComm;
      ctx.pid = Number(m[1]);
      ctx.tgid = -1;
      ctx.cpu = Number(m[2]);
      ctx.irq = m[3];
      const us = Number(m[4]);
      ctx.tsSec = Math.floor(us / 1e6);
      ctx.tsNs = (us % 1e6) * 1000;
      this.setClock('relative-us');
      this.rest(lineNo, text.slice(m.index + m[0].length), text);
      return true;
    }
    return this.funcgraph(text, lineNo);
  }

  /**
   * function_graph output (kernel/trace/trace_functions_graph.c): `[abstime |] cpu) [comm-pid |] [duration] |
   * calls`. `func() {` and leaf `func();` are funcgraph_entry, `}` (with `/* func = ret *\/` when funcgraph-retval)
   * funcgraph_exit, a `/* event: payload *\/` comment the event it holds, another comment (trace_printk,
   * trace_marker) funcgraph_comment, `comm-pid => comm-pid` funcgraph_switch. The payload is the line from the
   * duration column on (the calls' indentation is their depth). A line without abstime keeps the previous time: the
   * task-switch line, which the kernel prints without it; with no abstime anywhere, 0 and no clock (docs/formats.md §1.7).
   */
  private funcgraph(text: string, lineNo: number): boolean {
    if (FGRAPH_RULE_RE.test(text.length > 256 ? text.slice(0, 256) : text)) {
      this.sink.skip?.(lineNo, 'decoration');
      return true;
    }
    const m = FGRAPH_RE.exec(text.length > FGRAPH_HEAD ? text.slice(0, FGRAPH_HEAD) : text);
    if (!m) {
      // An indented legend (` #     TIME ...`).
      if (!/^\s+#/.test(text.length > 64 ? text.slice(0, 64) : text)) return false;
      this.sink.skip?.(lineNo, 'header');
      return true;
    }
    const ctx = this.ctx;
    if (m[1] !== undefined) this.setClock(parseTimestamp(ctx, m[1], m[2]));
    ctx.cpu = Number(m[3]);
    if (m[5] !== undefined) {
      ctx.comm = m[4].trim();
      ctx.pid = Number(m[5]);
    } else {
      ctx.comm = '';
      ctx.pid = -1;
    }
    ctx.tgid = -1;
    ctx.irq = null;
    const body = text.slice(m[0].length, trimEnd(text));
    const bar = body.indexOf('|');
    if (bar < 0) {
      const sw = FGRAPH_SWITCH_RE.exec(body.length > 256 ? body.slice(0, 256) : body);
      if (sw) {
        this.sink.event(lineNo, ctx, 'ftrace', 'funcgraph_switch', `${sw[1]} => ${sw[2]}`, text);
        return true;
      }
      this.sink.unparsed(lineNo, text, 'function_graph line without its calls column');
      return true;
    }
    const head = body.slice(0, bar);
    if (head.includes('==========>') || head.includes('<==========')) {
      this.sink.skip?.(lineNo, 'decoration');
      return true;
    }
    const calls = body.slice(bar + 1).trimStart();
    const open = calls.indexOf('/* ');
    if (calls.charCodeAt(0) === 125 /* } */) {
      this.sink.event(lineNo, ctx, 'ftrace', 'funcgraph_exit', body, text);
    } else if (open === 0 && calls.endsWith('*/')) {
      const inner = calls.slice(3, trimEnd(calls, calls.length - 2));
      const colon = inner.indexOf(':');
      if (colon > 0 && isEventName(inner, colon)) {
        let p = colon + 1;
        while (inner.charCodeAt(p) === 32) p++;
        this.sink.event(lineNo, ctx, null, inner.slice(0, colon), inner.slice(p), text);
      } else this.sink.event(lineNo, ctx, 'ftrace', 'funcgraph_comment', inner, text);
    } else if (calls.endsWith('{') || calls.endsWith(';')) {
      this.sink.event(lineNo, ctx, 'ftrace', 'funcgraph_entry', body, text);
    } else this.sink.unparsed(lineNo, text, 'function_graph calls column not an entry, exit or comment');
    return true;
  }
}

/** End of text[0, end) without trailing blanks. */
function trimEnd(text: string, end = text.length): number {
  while (end > 0 && isBlank(text.charCodeAt(end - 1))) end--;
  return end;
}

const isBlank = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 11 || c === 12 || c === 13;

/** cachedFrame() of a frame line given as bytes: the same slots, the line compared byte for byte. */
function frameOfBytes(b: Buffer, s: number, e: number): string {
  const n = e - s;
  if (n < 8 || n > 512) return frameText(b.toString('latin1', s, e));
  const h = frameSlot(b, s, e);
  const line = frameLines[h];
  if (line.length === n && sameBytes(line, b, s)) return frames[h];
  const text = b.toString('latin1', s, e);
  frameLines[h] = text;
  return (frames[h] = frameText(text));
}

/** Whether b[p, e) starts with the ASCII text `l`. */
function startsWith(b: Buffer, p: number, e: number, l: string): boolean {
  return p + l.length <= e && sameBytes(l, b, p);
}

/** isEventName's characters: `[A-Za-z0-9_.-]`. */
const isNameByte = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 46 || c === 45;

/** ` => func+0x1c/0x80`, ` => func (ffffffff8117c9e4)`, `=> f`. */
export function isFrameLine(text: string): boolean {
  let i = 0;
  while (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9) i++;
  return text.charCodeAt(i) === 61 /* = */ && text.charCodeAt(i + 1) === 62 /* > */;
}

/**
 * frameText() of a frame line, remembered: stacks repeat the same call paths, so most frame lines were seen a
 * few stacks ago. Direct-mapped (frameSlot); a slot keeps a copy of its line (a slice would
 * keep the whole block of text alive) and the frame made from that copy.
 */
const frameLines: string[] = new Array<string>(FRAME_SLOTS).fill('');
const frames: string[] = new Array<string>(FRAME_SLOTS).fill('');

function cachedFrame(text: string): string {
  const n = text.length;
  if (n < 8 || n > 512) return frameText(text); // long lines are not kept (memory), nor frequent
  const h = frameSlotOfText(text);
  if (frameLines[h] === text) return frames[h];
  const line = JSON.parse(JSON.stringify(text)) as string;
  frameLines[h] = line;
  return (frames[h] = frameText(line));
}

/** The frame after the arrow, normalised (stack.ts ftraceFrame): addresses change with KASLR, names don't. */
export function frameText(text: string): string {
  return ftraceFrame(text.slice(text.indexOf('=>') + 2).trim());
}

/** Event names are identifiers (`mm_page_alloc`, `__gup_longterm_locked`, `0` for old markers). */
export function isEventName(s: string, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i);
    const ok = (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 46 || c === 45;
    if (!ok) return false;
  }
  return true;
}
