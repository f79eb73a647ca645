import type { Clock, LineContext } from './readers/sink.js';

/**
 * The fast path of text parsing (issue #20): a scan over the line's char codes for the shapes nearly every line
 * of a capture has, instead of the readers' regexes. It accepts a line only when it is sure the regex path reads
 * it the same way, and otherwise returns "no" so the caller takes that path: whatever it does not fully recognise
 * (odd comms, latency format, `(+delta)`, long numbers, other whitespace) costs one failed scan, never a
 * different result. `REFSCOPE_TOKENIZER=1` turns it on (docs/usage.md); tests compare both paths.
 * Char codes of the decoded string, because the readers get strings (source.ts LineSplitter). Measured, that is
 * why it does not pay: charCodeAt on a line (a slice of its block's string) costs 2-3x a Uint8Array read, and
 * a scan of ~60 characters per line in JS costs as much as V8's compiled CONTEXT_TAIL regex (bench/NOTES.md).
 */

/**
 * Whether readers made from now on take the fast path (read once per reader; tests flip it to compare). Off
 * unless `REFSCOPE_TOKENIZER=1`: measured, it is no faster than the regexes (bench/NOTES.md).
 */
export const tokenizer = { on: process.env.REFSCOPE_TOKENIZER === '1' };

/** A comm is at most 15 bytes (sink.ts COMM_BYTES); matchTask() prefers a later split within that many. */
const COMM_BYTES = 15;
/** sink.ts TASK_WINDOW: matchTask() looks for the `-pid` in this many characters after the padding. */
const TASK_WINDOW = 256;
/** Longest run of digits read here; longer ones go through Number() on the regex path. */
const MAX_DIGITS = 15;
const POW10 = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

/** The clock of the latest line fastContext() accepted. */
export let fastClock: Clock = 'us';

const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isBlank = (c: number): boolean => c === 32 || c === 9;
/** The irq-flags column's characters (ftrace.ts CONTEXT_TAIL `[a-zA-Z0-9.:]`). */
const isFlag = (c: number): boolean =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 46 || c === 58;

/** Value of text[from, to), decimal digits only (the caller checked), at most MAX_DIGITS of them. */
function dec(text: string, from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * 10 + (text.charCodeAt(i) - 48);
  return v;
}

/** tail(): not a match, or not sure (then the regex path decides). */
const NO = -1;
const UNSURE = -2;
// The columns of the latest match of tail(), written only when it matches.
let mPid = 0;
let mTgid = -1;
let mCpu = 0;
let mIrq0 = 0;
let mIrq1 = 0;
let mSec0 = 0;
let mSec1 = 0;
let mFrac0 = -1;
let mFrac1 = 0;

/**
 * The tracefs / trace-cmd context prefix `comm-pid [(tgid)] [cpu] [flags] secs[.frac]: ` as matchTask() finds
 * it with ftrace.ts CONTEXT_TAIL: the same `-` positions tried in the same order, the same choice among matches
 * (the rightmost leaving a comm of at most 15 bytes, else the first). Returns where the event name starts and
 * fills ctx (and fastClock), or -1 and leaves ctx as it was: for a line that is not a context line, and for one
 * where tail() cannot be sure what the regex would do.
 */
export function fastContext(text: string, ctx: LineContext): number {
  const n = text.length;
  let s = 0;
  while (s < n && isBlank(text.charCodeAt(s))) s++;
  // Header (`#`) and frame (`=>`) lines come before context lines in FtraceReader.line().
  const c = s < n ? text.charCodeAt(s) : 0;
  if (c === 35 /* # */ || c === 61 /* = */) return -1;
  const limit = Math.min(n, s + TASK_WINDOW);
  let found = -1;
  let at = -1;
  // UTF-8 bytes of text[s, i) (sink.ts utf8Within), counted as i moves on, up to one past the limit.
  let bytes = 0;
  let counted = s;
  for (let i = text.indexOf('-', s); i >= 0 && i < limit; i = text.indexOf('-', i + 1)) {
    for (; counted < i && bytes <= COMM_BYTES; counted++) {
      const u = text.charCodeAt(counted);
      bytes += u < 0x80 ? 1 : u < 0x800 || (u >= 0xd800 && u < 0xe000) ? 2 : 3;
    }
    const short = i - s <= COMM_BYTES && bytes <= COMM_BYTES;
    if (!short && found >= 0) break;
    const end = tail(text, i, n);
    if (end === UNSURE) return -1;
    if (end >= 0) {
      found = i;
      at = end;
      if (!short) break;
    }
  }
  if (found < 0) return -1;
  // sink.ts parseTimestamp.
  if (mFrac0 < 0) {
    const len = mSec1 - mSec0;
    ctx.tsSec = len > 9 ? dec(text, mSec0, mSec1 - 9) : 0;
    ctx.tsNs = dec(text, len > 9 ? mSec1 - 9 : mSec0, mSec1);
    fastClock = 'counter';
  } else {
    ctx.tsSec = dec(text, mSec0, mSec1);
    const fl = Math.min(mFrac1 - mFrac0, 9);
    ctx.tsNs = dec(text, mFrac0, mFrac0 + fl) * POW10[9 - fl];
    fastClock = fl > 6 ? 'ns' : 'us';
  }
  ctx.comm = text.slice(s, found);
  ctx.pid = mPid;
  ctx.tgid = mTgid;
  ctx.cpu = mCpu;
  ctx.irq = mIrq1 > mIrq0 ? text.slice(mIrq0, mIrq1) : null;
  return at;
}

/**
 * CONTEXT_TAIL at the `-` text[i]: where its match ends, NO when it cannot match, UNSURE for what this does not
 * read (`(+delta)`, a tab or other whitespace after the colon, runs of more than 15 digits, a failure past the
 * pid where the regex's backtracking would need thought).
 */
function tail(text: string, i: number, n: number): number {
  // `-(\d+)[ \t]+`: certain failures, the common case for a `-` inside a comm.
  const p0 = ++i;
  while (i < n && isDigit(text.charCodeAt(i))) i++;
  if (i === p0 || i === n || !isBlank(text.charCodeAt(i))) return NO;
  if (i - p0 > MAX_DIGITS) return UNSURE;
  const p1 = i;
  while (i < n && isBlank(text.charCodeAt(i))) i++;
  if (i === n) return NO;
  // `(tgid)` or `(-------)`.
  let tgid = -1;
  let ch = text.charCodeAt(i);
  if (ch === 40 /* ( */) {
    i++;
    while (i < n && isBlank(text.charCodeAt(i))) i++;
    const t0 = i;
    ch = i < n ? text.charCodeAt(i) : 0;
    if (isDigit(ch)) {
      while (i < n && isDigit(text.charCodeAt(i))) i++;
      if (i - t0 > MAX_DIGITS) return UNSURE;
      tgid = dec(text, t0, i);
    } else if (ch === 45) {
      while (i < n && text.charCodeAt(i) === 45) i++;
    } else return UNSURE;
    while (i < n && isBlank(text.charCodeAt(i))) i++;
    if (i >= n - 1 || text.charCodeAt(i) !== 41 /* ) */ || !isBlank(text.charCodeAt(i + 1))) return UNSURE;
    i++;
    while (i < n && isBlank(text.charCodeAt(i))) i++;
    if (i === n) return UNSURE;
    ch = text.charCodeAt(i);
  }
  if (ch !== 91 /* [ */) return UNSURE;
  const c0 = ++i;
  while (i < n && isDigit(text.charCodeAt(i))) i++;
  if (i === c0 || i - c0 > MAX_DIGITS || i === n || text.charCodeAt(i) !== 93 /* ] */) return UNSURE;
  const c1 = i++;
  while (i < n && isBlank(text.charCodeAt(i))) i++;
  // Irq flags: a run of 4-6 flag characters followed by a blank (the regex tries them before the timestamp).
  let f = i;
  while (f < n && isFlag(text.charCodeAt(f))) f++;
  let irq0 = i;
  let irq1 = i;
  if (f - i >= 4 && f - i <= 6 && f < n && isBlank(text.charCodeAt(f))) {
    irq1 = f;
    i = f;
    while (i < n && isBlank(text.charCodeAt(i))) i++;
  }
  // secs[.frac] then `: `; anything else is the regex path's (so is a run of flag-like characters not followed
  // by a timestamp, where the regex would backtrack).
  const s0 = i;
  while (i < n && isDigit(text.charCodeAt(i))) i++;
  const s1 = i;
  if (s1 === s0 || s1 - s0 > MAX_DIGITS || i === n) return UNSURE;
  let f0 = -1;
  if (text.charCodeAt(i) === 46 /* . */) {
    f0 = ++i;
    while (i < n && isDigit(text.charCodeAt(i))) i++;
    if (i === f0) return UNSURE;
  }
  if (i >= n - 1 || text.charCodeAt(i) !== 58 /* : */ || text.charCodeAt(i + 1) !== 32) return UNSURE;
  mPid = dec(text, p0, p1);
  mTgid = tgid;
  mCpu = dec(text, c0, c1);
  mIrq0 = irq0;
  mIrq1 = irq1;
  mSec0 = s0;
  mSec1 = s1;
  mFrac0 = f0;
  mFrac1 = i;
  return i + 2;
}

/**
 * A stack frame line ` => func` (ftrace.ts frameText) whose frame is already normal (stack.ts ftraceFrame): a
 * symbol of identifier characters, not all hex (a bare address is rewritten), optionally `+0xoff[/0xsize]` in
 * lower case. Returns the frame, or null for the regex path.
 */
export function fastFrame(text: string): string | null {
  const n = text.length;
  let i = 0;
  while (i < n && isBlank(text.charCodeAt(i))) i++;
  i += 2; // `=>`, checked by the caller (isFrameLine)
  while (text.charCodeAt(i) === 32) i++;
  const s = i;
  // A leading digit could make it an address (`0xffff...`, ADDR_ONLY in stack.ts).
  if (isDigit(text.charCodeAt(s))) return null;
  let named = false;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 103 && c <= 122) || (c >= 71 && c <= 90) || c === 95 || c === 46) named = true;
    else if (!((c >= 97 && c <= 102) || (c >= 65 && c <= 70) || isDigit(c))) break;
  }
  if (!named || i === s) return null;
  if (i < n) {
    if (text.charCodeAt(i) !== 43 /* + */ || !lowerHex(text, i + 1)) return null;
    i = hexEnd(text, i + 3);
    if (i < n) {
      if (text.charCodeAt(i) !== 47 /* / */ || !lowerHex(text, i + 1)) return null;
      i = hexEnd(text, i + 3);
      if (i < n) return null;
    }
  }
  return text.slice(s, n);
}

/** `0x` and at least one lower-case hex digit at text[i]. */
function lowerHex(text: string, i: number): boolean {
  if (text.charCodeAt(i) !== 48 || text.charCodeAt(i + 1) !== 120) return false;
  return hexEnd(text, i + 2) > i + 2;
}

function hexEnd(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (!(isDigit(c) || (c >= 97 && c <= 102))) return i;
    i++;
  }
}
