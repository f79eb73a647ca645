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
export type Clock = 'us' | 'ns' | 'counter' | 'relative-us';

export interface LineSink {
  /** An event line. `system` when the layout names it (perf `kmem:mm_page_alloc`), else null. */
  event(lineNo: number, ctx: LineContext, system: string | null, event: string, payload: string): void;
  /** A stack block starts; following frame() calls belong to the latest event of that cpu. */
  stackStart(kind: StackKind, cpu: number): void;
  frame(text: string): void;
  /** A line continuing the previous event's payload (trace-cmd multi-line print). */
  continuation(lineNo: number, text: string): void;
  lost(lineNo: number, cpu: number | null, count: number | null, kind: LostKind): void;
  header(key: string, value: string): void;
  clock(clock: Clock): void;
  unparsed(lineNo: number, text: string, reason: string): void;
}

export interface Reader {
  line(text: string, lineNo: number): void;
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

const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];
