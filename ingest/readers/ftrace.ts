import { MAX_CPUS, MAX_LOST } from '../decode/limits.js';
import { digits, matchTask, parseTimestamp, taskComm, type LineContext, type LineSink, type Reader } from './sink.js';

/**
 * tracefs `trace` / `trace_pipe` text (kernel/trace/trace_output.c trace_print_context()):
 *   "%16s-%-7d " comm-pid [+ "(%7d) " tgid | "(-------) "] "[%03d] " cpu [irq flags, 4 or 5 chars] " %5lu.%06lu: "
 * followed by "<event>: <payload>". Also: the header block, `CPU:N [LOST M EVENTS]`, `##### CPU N buffer started ####`,
 * `<stack trace>` / `<user stack trace>` + ` => frame` lines, latency-format lines, and events printed as
 * comments inside function_graph output.
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
    if (text.length === 0 || (c0 === 13 && text.length === 1)) return;
    if (isFrameLine(text)) return this.sink.frame(frameText(text), lineNo);
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
    if (colon > 0 && isEventName(rest, colon)) {
      let p = colon + 1;
      while (rest.charCodeAt(p) === 32) p++;
      this.sink.event(lineNo, this.ctx, null, rest.slice(0, colon), rest.slice(p), text);
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
    }
    // Legend lines carry nothing else.
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
    const open = text.indexOf('/* ');
    const close = trimEnd(text);
    if (open >= 0 && close >= open + 5 && text.startsWith('*/', close - 2)) {
      m = FGRAPH_RE.exec(text.slice(0, Math.min(open, FGRAPH_HEAD)));
      if (m) {
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
        const inner = text.slice(open + 3, trimEnd(text, close - 2));
        const colon = inner.indexOf(':');
        // Plain function_graph comments (`/* foo */`) are not events: skip them quietly.
        if (colon > 0 && isEventName(inner, colon)) {
          let p = colon + 1;
          while (inner.charCodeAt(p) === 32) p++;
          this.sink.event(lineNo, ctx, null, inner.slice(0, colon), inner.slice(p), text);
        }
        return true;
      }
    }
    if (/^\s*\d+\)/.test(text) || /^\s*#/.test(text)) return true; // function_graph lines without an event
    return false;
  }
}

/** End of text[0, end) without trailing blanks. */
function trimEnd(text: string, end = text.length): number {
  while (end > 0 && isBlank(text.charCodeAt(end - 1))) end--;
  return end;
}

const isBlank = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 11 || c === 12 || c === 13;

/** ` => func+0x1c/0x80`, ` => func (ffffffff8117c9e4)`, `=> f`. */
export function isFrameLine(text: string): boolean {
  let i = 0;
  while (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9) i++;
  return text.charCodeAt(i) === 61 /* = */ && text.charCodeAt(i + 1) === 62 /* > */;
}

/** Frame text without the arrow and without a trailing ` (address)`: addresses change with KASLR, names don't. */
export function frameText(text: string): string {
  let s = text.slice(text.indexOf('=>') + 2).trim();
  const paren = s.lastIndexOf(' (');
  if (paren > 0 && s.endsWith(')') && /^[0-9a-fA-Fx]+$/.test(s.slice(paren + 2, -1))) s = s.slice(0, paren);
  return s;
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
