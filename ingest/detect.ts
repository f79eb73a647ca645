import { isContextLine } from './readers/ftrace.js';
import { isPerfSample } from './readers/perf.js';
import { matchTask } from './readers/sink.js';
import { dumpMarker, stripPrintk } from './readers/console.js';

/**
 * Which reader fits the input, decided by the structure of its first record-like lines, not by its first line:
 * pasted excerpts lose their header, reports start with `CPU N is empty`, console dumps put a printk prefix on
 * every line. Each reader has a cheap "looks like my record" test; the reader whose records dominate wins.
 */

export type Format = 'ftrace' | 'trace-cmd' | 'perf' | 'perf-data' | 'trace-dat' | 'console' | 'csv' | 'arrow';
export const FORMATS: Format[] = ['ftrace', 'trace-cmd', 'perf', 'perf-data', 'trace-dat', 'console', 'csv', 'arrow'];

const TRACE_DAT_MAGIC = Buffer.from([0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67]);
/** Record-like lines looked at, at most: enough to see past a preamble, a legend or a log before the dump. */
const RECORD_LINES = 200;
/** Lines looked at, at most (a console log can hold many lines before its dump). */
const SCAN_LINES = 2000;

export function isArrowIpc(head: Buffer): boolean {
  return head.subarray(0, 6).toString('latin1') === 'ARROW1' || (head.length >= 8 && head.readUInt32LE(0) === 0xffffffff);
}

// function_graph: `[abstime |] cpu) ...` (kernel/trace/trace_functions_graph.c print_graph_cpu()).
const FGRAPH_LINE = /^[ \t]*(?:\d+\.\d+[ \t]*\|[ \t]*)?\d+\)[ \t]/;
const FTRACE_MARKER = /^(?:CPU:\d+ \[LOST \d+ EVENTS\]|##### CPU \d+ buffer started ####)\s*$/;
// trace-cmd: preamble, drop marker, and `report -l` lines (latency flags glued to a bare cpu, secs.usecs time).
const TRACECMD_MARKER = /^(?:version = \d+|cpus=\d+|CPU \d+ is empty|CPU:\d+ \[(?:\d+ )?EVENTS DROPPED\])\s*$/;
const LAT_FLAGS_TAIL = /-(\d+)[ \t]+(\d+)[a-zA-Z.][a-zA-Z0-9.]{3,5}[ \t]+\d+\.\d+:(?:\s|$)/y;
// A context prefix whose line was cut at (or just after) the timestamp: a pasted excerpt trimmed to fit a mail.
const TRIMMED_TAIL = /-(\d+)[ \t]+(?:\([ \t]*(?:\d+|-+)[ \t]*\)[ \t]+)?\[\d+\][ \t]*(?:[a-zA-Z0-9.:]{4,6}[ \t]+)?\d+(?:\.\d+)?:?[ \t]*$/y;

/** The ftrace reader's records: context or latency lines, function_graph lines, its loss markers. */
export function looksLikeFtrace(l: string): boolean {
  return isContextLine(l) || FGRAPH_LINE.test(l) || FTRACE_MARKER.test(l) || matchTask(l, TRIMMED_TAIL, false) !== null;
}

/** What only trace-cmd prints: its preamble, its drop marker, `-l` lines, `kernel_stack:` events. */
export function looksLikeTraceCmd(l: string): boolean {
  return TRACECMD_MARKER.test(l) || matchTask(l, LAT_FLAGS_TAIL, false) !== null || /\]\s+[\d.]+:\s+kernel_stack:/.test(l);
}

/** A console line: printk prefix, then a trace record or a dump marker. */
export function looksLikeConsole(l: string): boolean {
  const rest = stripPrintk(l);
  return rest !== null && (dumpMarker(rest) || looksLikeFtrace(rest));
}

/** The format, or a reason why the input is not a trace refscope reads. */
export function detectFormat(head: Buffer): Format | { refuse: string } {
  const bin = refuseBinary(head);
  if (bin === 'arrow' || bin === 'perf-data' || bin === 'trace-dat') return bin;
  if (bin) return bin;
  const lines = head.subarray(0, 65536).toString('utf8').split('\n', SCAN_LINES);
  // Bounded: the CSV header test below backtracks.
  const first = (lines.find((l) => l.trim().length > 0) ?? '').slice(0, 4096);
  if (/^\s*(ts_ns|seq|trace_id)?.*\bevent\b.*,/.test(first) && first.split(',').length >= 3 && /ts/.test(first)) return 'csv';
  let ftrace = 0;
  let traceCmd = 0;
  let perf = 0;
  let console = 0;
  let records = 0;
  for (const raw of lines) {
    if (records >= RECORD_LINES) break;
    const l = raw.length > 4096 ? raw.slice(0, 4096) : raw;
    if (l.startsWith('# tracer:') || l.includes('entries-in-buffer/entries-written')) ftrace += 5;
    let record = false;
    if (looksLikeConsole(l)) (console++, (record = true));
    else if (isPerfSample(l)) (perf++, (record = true));
    else {
      if (looksLikeTraceCmd(l)) (traceCmd++, (record = true));
      if (looksLikeFtrace(l)) (ftrace++, (record = true));
    }
    if (record) records++;
  }
  if (console === 0 && ftrace === 0 && perf === 0 && traceCmd === 0)
    return { refuse: 'no line looks like ftrace, trace-cmd report, perf script or a console ftrace dump' };
  // Printk prefixes on most record lines: a console log, whatever the lines under the prefix are.
  if (console >= Math.max(ftrace, perf, traceCmd)) return 'console';
  if (perf > ftrace + traceCmd) return 'perf';
  // trace-cmd lines are ftrace lines plus what only trace-cmd prints.
  return traceCmd > 0 ? 'trace-cmd' : 'ftrace';
}

/**
 * The reader to use: `requested` when given (even where detection would refuse; only empty or binary input is
 * refused for a text reader), else the detected one.
 */
export function chooseFormat(head: Buffer, requested?: Format | 'auto'): Format | { refuse: string } {
  if (!requested || requested === 'auto') return detectFormat(head);
  // Binary readers check their own magic (the perf.data reader refuses a bad one with its offset).
  if (requested === 'arrow' || requested === 'csv' || requested === 'perf-data' || requested === 'trace-dat') return requested;
  const bin = refuseBinary(head);
  if (bin === 'arrow') return { refuse: `this is an Arrow IPC file, not ${requested} text: use --format arrow` };
  if (bin === 'perf-data') return { refuse: `this is a binary perf.data, not ${requested} text: use --format perf-data (or auto)` };
  if (bin === 'trace-dat') return { refuse: `this is a binary trace-cmd trace.dat, not ${requested} text: use --format trace-dat (or auto)` };
  return bin ?? requested;
}

/** 'arrow', 'perf-data', 'trace-dat' by their magic, a refusal for empty or other binary input, null for text. */
function refuseBinary(head: Buffer): 'arrow' | 'perf-data' | 'trace-dat' | { refuse: string } | null {
  if (head.length === 0) return { refuse: 'empty input' };
  if (isArrowIpc(head)) return 'arrow';
  // Each binary reader refuses what it cannot read (trace.dat: file version, a latency trace; perf.data: a pipe
  // header; both: big-endian) with the offset.
  if (head.subarray(0, TRACE_DAT_MAGIC.length).equals(TRACE_DAT_MAGIC)) return 'trace-dat';
  if (head.subarray(0, 8).toString('latin1') === 'PERFILE2' || head.subarray(0, 8).toString('latin1') === '2ELIFREP') return 'perf-data';
  if (head.subarray(0, 4).toString('latin1') === 'PERF')
    return { refuse: 'this is an old perf.data (not PERFILE2): convert it with `perf script --show-lost-events > FILE.txt` first' };
  const probe = head.subarray(0, 65536);
  // Text never holds NUL; control bytes it may (a comm is any byte but NUL: escapes, `\r`), so only a
  // high share of them says binary.
  let ctrl = 0;
  for (const b of probe) {
    if (b === 0) return { refuse: 'binary content, not trace text' };
    if (b < 9 || (b > 13 && b < 32) || b === 127) ctrl++;
  }
  if (ctrl > probe.length / 4) return { refuse: 'binary content, not trace text' };
  return null;
}

/** What the input did not say, for the ingest summary: header facts a pasted excerpt or a dump lacks. */
export function missingHeaderNote(format: Format, headers: Record<string, string>): string | null {
  if (format === 'ftrace' || format === 'console')
    return headers.cpus === undefined && headers.entries_written === undefined
      ? 'no header: cpus, buffer sizes and loss counts unknown'
      : null;
  if (format === 'trace-cmd') return headers.cpus === undefined ? 'no preamble: cpus unknown' : null;
  return null;
}
