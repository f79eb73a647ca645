import { Interner } from '../../db/batch.js';

/**
 * What a format reader hands on. Readers know line layouts; they split each line into its context
 * (time, cpu, task) and the event name + payload, and never look inside payloads.
 */

/** Context prefix of one event line. Readers reuse one object: copy what you keep. */
export interface LineContext {
  /** Whole seconds (or the whole counter value for counter clocks). */
  tsSec: number;
  /** Fractional part in ns (0..999_999_999). */
  tsNs: number;
  cpu: number;
  pid: number;
  /** -1 when absent or unknown. */
  tgid: number;
  comm: string;
  irq: string | null;
}

export type StackKind = 'kernel' | 'user';
export type LostKind = 'lost' | 'dropped' | 'perf-lost' | 'buffer-started';
/** Lines with nothing to store: blank, header legend (`#` lines, `CPU n is empty`), function_graph separators. */
export type SkipKind = 'blank' | 'header' | 'decoration';
export type Clock = 'us' | 'ns' | 'counter' | 'relative-us';

export interface LineSink {
  /**
   * An event line. `system` when the layout names it (perf `kmem:mm_page_alloc`), else null; `line` is the whole
   * line, for unparsed_lines when a value is out of range (then the sink counts it unparsed and returns false).
   */
  event(lineNo: number, ctx: LineContext, system: string | null, event: string, payload: string, line?: string | (() => string)): boolean;
  /**
   * event() for a line read as bytes (an ASCII block): the payload is b[payloadStart, lineEnd), the whole line
   * b[lineStart, lineEnd). Optional: without it the reader hands every line over as text.
   */
  eventBytes?(
    lineNo: number, ctx: LineContext, system: string | null, event: string, b: Buffer, payloadStart: number, lineStart: number, lineEnd: number,
  ): boolean;
  /** A stack block starts; following frame() calls belong to the latest event of that cpu. */
  stackStart(kind: StackKind, cpu: number): void;
  /** One frame of the open stack (`lineNo` for the unparsed row when the stack is deeper than the limit). */
  frame(text: string, lineNo?: number): void;
  /** A line continuing the previous event's payload (trace-cmd multi-line print). */
  continuation(lineNo: number, text: string): void;
  lost(lineNo: number, cpu: number | null, count: number | null, kind: LostKind, line?: string): void;
  header(key: string, value: string): void;
  /**
   * A line that holds nothing to keep, accounted as such (docs/formats.md: every line is accounted). Optional so
   * a wrapping sink may leave it out (the line is then simply not stored, as it would not be anyway).
   */
  skip?(lineNo: number, what: SkipKind): void;
  clock(clock: Clock): void;
  unparsed(lineNo: number, text: string, reason: string): void;
}

export interface Reader {
  line(text: string, lineNo: number): void;
  /** The line b[s, e) of an ASCII block, when the reader reads it from bytes; false: hand it to line() as text. */
  lineBytes?(b: Buffer, s: number, e: number, lineNo: number): boolean;
  end(): void;
}

/** Parse `secs.frac` (runs of decimal digits: regex `\d+` captures) into ctx.tsSec/tsNs (fraction digits beyond 9 dropped). Returns the clock. */
export function parseTimestamp(ctx: LineContext, secs: string, frac: string | undefined): Clock {
  if (frac === undefined) {
    // Counter clocks print one raw integer: ts_ns keeps it as is (split so sec * 1e9 + ns is the counter, exactly).
    const n = secs.length;
    ctx.tsSec = n > 9 ? digits(secs.slice(0, n - 9)) : 0;
    ctx.tsNs = digits(n > 9 ? secs.slice(n - 9) : secs);
    return 'counter';
  }
  ctx.tsSec = digits(secs);
  const f = frac.length > 9 ? frac.slice(0, 9) : frac;
  ctx.tsNs = digits(f) * POW10[9 - f.length];
  return f.length > 6 ? 'ns' : 'us';
}

/**
 * A run of decimal digits (a regex `\d+` capture) as a number: Number() is a runtime call, and the reader makes
 * about five per line; short runs are summed here. Longer runs than a double holds exactly go
 * to Number() for the same rounding.
 */
export function digits(s: string): number {
  const n = s.length;
  if (n > 15) return Number(s);
  let v = 0;
  for (let i = 0; i < n; i++) v = v * 10 + (s.charCodeAt(i) - 48);
  return v;
}

/** 10^k, k <= 9: a fraction of k digits times POW10[9 - k] is ns. */
export const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

/** A comm is at most TASK_COMM_LEN - 1 bytes (include/linux/sched.h); any byte but NUL. */
export const COMM_BYTES = 15;
/** How far into a line (after the padding) the task field's end is looked for. */
export const TASK_WINDOW = 256;

/** The comm of the latest matchTask() match. */
export let taskComm = '';
/** Comms repeat line after line: one string object each (db/batch.ts Interner). */
const comms = new Interner();
/** Event names, likewise: readers take them with eventName(). */
const events = new Interner();

/** text[start, end) as an event name, the same string object as the last time it was seen. */
export const eventName = (text: string, start: number, end: number): string => events.get(text, start, end);

/**
 * The task field by the line's structure, not by the comm's characters (which may be anything but NUL and newline:
 * spaces, dashes, brackets, `\r`, U+2028, escapes). `tail` is a sticky regex matching from the separator before
 * the pid to the start of the event (pid, cpu and time columns); it is tried at each separator (`-`, or with
 * `ws` the start of a run of blanks) in the first TASK_WINDOW characters. The comm is what precedes the match:
 * the rightmost match leaving a comm of at most 15 bytes (a comm may itself hold `-1 [000] 1.0: `), else the
 * leftmost. Linear: at most TASK_WINDOW tries, each bounded by the runs of digits and blanks it crosses.
 */
export function matchTask(text: string, tail: RegExp, ws: boolean): RegExpExecArray | null {
  let s = 0;
  while (text.charCodeAt(s) === 32 || text.charCodeAt(s) === 9) s++;
  const limit = Math.min(text.length, s + TASK_WINDOW);
  let found: RegExpExecArray | null = null;
  let foundAt = -1;
  for (let i = ws ? nextGap(text, s + 1, limit) : text.indexOf('-', s); i >= 0 && i < limit; i = ws ? nextGap(text, i + 1, limit) : text.indexOf('-', i + 1)) {
    const short = utf8Within(text, s, i, COMM_BYTES);
    if (!short && found) break;
    tail.lastIndex = i;
    const m = tail.exec(text);
    if (m) {
      found = m;
      foundAt = i;
      if (!short) break;
    }
  }
  if (found) taskComm = comms.get(text, s, foundAt);
  return found;
}

/** Next index in [from, limit) where a run of blanks starts after a non-blank, or -1. */
function nextGap(text: string, from: number, limit: number): number {
  for (let i = from; i < limit; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 9) {
      const p = text.charCodeAt(i - 1);
      if (p !== 32 && p !== 9) return i;
    }
  }
  return -1;
}

/** Whether text[from, to) is at most `max` bytes in UTF-8. */
function utf8Within(text: string, from: number, to: number, max: number): boolean {
  if (to - from > max) return false;
  let n = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    n += c < 0x80 ? 1 : c < 0x800 || (c >= 0xd800 && c < 0xe000) ? 2 : 3;
  }
  return n <= max;
}
