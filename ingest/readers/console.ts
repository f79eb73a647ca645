import { FtraceReader, isContextLine, isFrameLine } from './ftrace.js';
import type { LineContext, LineSink, Reader } from './sink.js';

/**
 * A kernel console log holding an ftrace dump (`ftrace_dump()` in kernel/trace/trace.c, on an oops with
 * ftrace_dump_on_oops, sysrq-z, or kdb's `ftdump`), as captured from a serial console, dmesg or pstore:
 *
 *   [10611.834143] Dumping ftrace buffer:
 *   [10611.834561] ---------------------------------
 *   [10611.835048] CPU:1 [LOST 16689746 EVENTS]
 *   [10611.835048] rcu_tort-70        1dNh3. 10607789211us : sched_wakeup: comm=rcu_torture_fak pid=65 ...
 *
 * Each line carries the printk prefix: an optional log level `<N>` (dmesg -r, /dev/kmsg), the timestamp
 * `[secs.usecs]` and with CONFIG_PRINTK_CALLER a `[T123]` / `[C1]` caller. The prefix is removed and the rest
 * handed to the ftrace reader; the dump prints in latency format (TRACE_FILE_LAT_FMT), which it reads. Kernel
 * log lines around and between the dump's records are counted as unparsed ('console: not a trace line').
 */

const PRINTK_RE = /^[ \t]*(?:<\d{1,3}>)?\[[ \t]*\d+\.\d+\](?:\[[ \t]*[TC]\d+\])?(?: |$)/;
const DUMP_START = /^Dumping ftrace (?:instance \S+ )?buffer:\s*$/;
const SEPARATOR = /^-{33}\s*$/;
const DUMP_EMPTY = /^\s*\(ftrace buffer empty\)\s*$/;
const KDB_SKIP = /^\(skipping \d+ entries\)\s*$/;
const TRACE_MARKER = /^(?:CPU:\d+ \[LOST \d+ EVENTS\]|##### CPU \d+ buffer started ####)\s*$/;
// function_graph output dumped to the console: `[abstime |] cpu) ...`.
const FGRAPH_LINE = /^[ \t]*(?:\d+\.\d+[ \t]*\|[ \t]*)?\d+\)[ \t]/;

/** The line without its printk prefix, or null when it has none. */
export function stripPrintk(text: string): string | null {
  const m = PRINTK_RE.exec(text.length > 128 ? text.slice(0, 128) : text);
  return m ? text.slice(m[0].length) : null;
}

/** The dump's own framing: `Dumping ftrace buffer:`, the separators, `(ftrace buffer empty)`. */
export function dumpMarker(rest: string): boolean {
  return DUMP_START.test(rest) || SEPARATOR.test(rest) || DUMP_EMPTY.test(rest) || KDB_SKIP.test(rest);
}

export class ConsoleReader implements Reader {
  private readonly ftrace: FtraceReader;
  /** The whole current line: unparsed rows keep what the input held, prefix included. */
  private current = '';

  constructor(private readonly sink: LineSink) {
    const outer = this;
    const inner: LineSink = {
      event: (lineNo: number, ctx: LineContext, system: string | null, event: string, payload: string) =>
        sink.event(lineNo, ctx, system, event, payload, outer.current),
      stackStart: (kind, cpu) => sink.stackStart(kind, cpu),
      frame: (text, lineNo) => sink.frame(text, lineNo),
      continuation: (lineNo, text) => sink.continuation(lineNo, text),
      lost: (lineNo, cpu, count, kind) => sink.lost(lineNo, cpu, count, kind, outer.current),
      header: (key, value) => sink.header(key, value),
      clock: (clock) => sink.clock(clock),
      unparsed: (lineNo, _text, reason) => sink.unparsed(lineNo, outer.current, reason),
      skip: (lineNo, what) => sink.skip?.(lineNo, what),
    };
    this.ftrace = new FtraceReader(inner);
  }

  line(text: string, lineNo: number): void {
    if (text.length === 0 || text.trim().length === 0) return;
    this.current = text;
    // Without a prefix (printk.time=0, or a paste that lost it) the line may still be a trace line.
    const rest = stripPrintk(text) ?? text;
    if (rest.trim().length === 0) return;
    if (DUMP_START.test(rest)) return this.sink.header('dump', rest.trim().slice(0, -1));
    if (dumpMarker(rest)) return;
    if (isTraceLine(rest)) return this.ftrace.line(rest, lineNo);
    this.sink.unparsed(lineNo, text, 'console: not a trace line');
  }

  end(): void {
    this.ftrace.end();
  }
}

/** What the ftrace reader reads: context or latency lines, stack frames, loss markers, function_graph lines. */
function isTraceLine(rest: string): boolean {
  return isContextLine(rest) || isFrameLine(rest) || TRACE_MARKER.test(rest) || FGRAPH_LINE.test(rest);
}
