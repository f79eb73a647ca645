import { ByteInterner } from '../../db/batch.js';
import { COMM_BYTES, POW10, TASK_WINDOW } from './sink.js';

/**
 * The ftrace context prefix read from bytes (an ASCII block), for FtraceReader.lineBytes: the same match as
 * ftrace.ts CONTEXT_TAIL tried by sink.ts matchTask, written out by hand (no regex, no string per line). Where the
 * regex could backtrack (the optional irq flags column, which may hold digits) the match falls back to no flags,
 * as the regex does. Runs of more than 15 digits are left to the string path.
 */

/** Where the columns of the latest match are in the line (start, end); -1 starts: absent. */
export const ctxm = {
  pidS: 0,
  pidE: 0,
  tgidS: -1,
  tgidE: 0,
  cpuS: 0,
  cpuE: 0,
  irqS: -1,
  irqE: 0,
  secS: 0,
  secE: 0,
  fracS: -1,
  fracE: 0,
};

const MAX_DIGITS = 15;

export const isBlank = (c: number): boolean => c === 32 || c === 9;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
/** `[a-zA-Z0-9.:]`: the irq flags column's characters. */
const isFlag = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || isDigit(c) || c === 46 || c === 58;
/** `\s` in an ASCII line. */
const isSpace = (c: number): boolean => c === 32 || (c >= 9 && c <= 13);

export function digitsEnd(b: Uint8Array, p: number, e: number): number {
  while (p < e && isDigit(b[p])) p++;
  return p;
}

export function blanksEnd(b: Uint8Array, p: number, e: number): number {
  while (p < e && isBlank(b[p])) p++;
  return p;
}

/** `(\d+)(?:\.(\d+))?(?:[ \t]*\(\+[\d.]+\))?:\s` at b[p..e): the end of the match or -1. */
function timeAt(b: Uint8Array, p: number, e: number): number {
  let q = digitsEnd(b, p, e);
  if (q === p) return -1;
  ctxm.secS = p;
  ctxm.secE = q;
  ctxm.fracS = -1;
  p = q;
  if (p < e && b[p] === 46) {
    q = digitsEnd(b, p + 1, e);
    if (q > p + 1) {
      ctxm.fracS = p + 1;
      ctxm.fracE = q;
      p = q;
    }
  }
  // `(+delta)` of --ts-diff style output.
  const u = blanksEnd(b, p, e);
  if (u + 1 < e && b[u] === 40 && b[u + 1] === 43) {
    let v = u + 2;
    while (v < e && (isDigit(b[v]) || b[v] === 46)) v++;
    if (v > u + 2 && v < e && b[v] === 41) p = v + 1;
  }
  return p + 1 < e && b[p] === 58 && isSpace(b[p + 1]) ? p + 2 : -1;
}

/** CONTEXT_TAIL at b[i] (a `-`): the end of the match or -1; the columns in ctxm. */
function tailAt(b: Uint8Array, i: number, e: number): number {
  let p = i + 1;
  let q = digitsEnd(b, p, e);
  if (q === p || q >= e || !isBlank(b[q])) return -1;
  ctxm.pidS = p;
  ctxm.pidE = q;
  p = blanksEnd(b, q, e);
  // `(tgid)` or `(-------)`, then blanks; a malformed one leaves `(` where `[` must be.
  ctxm.tgidS = -1;
  if (p < e && b[p] === 40) {
    const t = blanksEnd(b, p + 1, e);
    let te = t;
    if (te < e && b[te] === 45) while (te < e && b[te] === 45) te++;
    else te = digitsEnd(b, t, e);
    if (te === t) return -1;
    const u = blanksEnd(b, te, e);
    if (u >= e || b[u] !== 41 || u + 1 >= e || !isBlank(b[u + 1])) return -1;
    ctxm.tgidS = t;
    ctxm.tgidE = te;
    p = blanksEnd(b, u + 1, e);
  }
  if (p >= e || b[p] !== 91) return -1;
  q = digitsEnd(b, p + 1, e);
  if (q === p + 1 || q >= e || b[q] !== 93) return -1;
  ctxm.cpuS = p + 1;
  ctxm.cpuE = q;
  p = blanksEnd(b, q + 1, e);
  // Optional flags: 4 to 6 flag characters, then blanks (a shorter run of them is never followed by a blank, so
  // the regex's backtracking comes down to: the whole run, else no flags).
  let f = p;
  while (f < e && f - p < 6 && isFlag(b[f])) f++;
  if (f - p >= 4 && f < e && isBlank(b[f])) {
    const end = timeAt(b, blanksEnd(b, f, e), e);
    if (end >= 0) {
      ctxm.irqS = p;
      ctxm.irqE = f;
      return end;
    }
  }
  ctxm.irqS = -1;
  return timeAt(b, p, e);
}

/** The comm of the latest matchTaskBytes() match: b[commS, commE). */
export const task = { commS: 0, commE: 0 };

/**
 * sink.ts matchTask on bytes: `tailAt` (a format's tail, writing its columns where it keeps them) tried at each `-`,
 * or with `ws` at the start of each run of blanks after a non-blank, in the first 256 bytes after the padding; the
 * rightmost match leaving a comm of at most 15 bytes, else the leftmost. The end of the match or -1; the chosen
 * match's columns are the tail's latest.
 */
export function matchTaskBytes(b: Uint8Array, s0: number, e: number, tailAt: (b: Uint8Array, i: number, e: number) => number, ws: boolean): number {
  const s = blanksEnd(b, s0, e);
  const limit = Math.min(e, s + TASK_WINDOW);
  let foundAt = -1;
  let foundEnd = -1;
  let lastOk = false;
  for (let i = ws ? s + 1 : s; i < limit; i++) {
    const short = i - s <= COMM_BYTES;
    // Past a short comm with a match: no later separator can win (matchTask stops at the next one).
    if (!short && foundAt >= 0) break;
    if (ws ? !isBlank(b[i]) || isBlank(b[i - 1]) : b[i] !== 45) continue;
    const end = tailAt(b, i, e);
    lastOk = end >= 0;
    if (lastOk) {
      foundAt = i;
      foundEnd = end;
      if (!short) break;
    }
  }
  if (foundAt < 0) return -1;
  // A later try overwrote the columns: read the match again.
  if (!lastOk) tailAt(b, foundAt, e);
  task.commS = s;
  task.commE = foundAt;
  return foundEnd;
}

/** matchTaskBytes with CONTEXT_TAIL; -1 also when a number has more than 15 digits (the string path's). */
export function matchContextBytes(b: Uint8Array, s0: number, e: number): number {
  const end = matchTaskBytes(b, s0, e, tailAt, false);
  if (end < 0) return -1;
  if (ctxm.pidE - ctxm.pidS > MAX_DIGITS || ctxm.cpuE - ctxm.cpuS > MAX_DIGITS || ctxm.secE - ctxm.secS > MAX_DIGITS) return -1;
  if (ctxm.tgidS >= 0 && ctxm.tgidE - ctxm.tgidS > MAX_DIGITS) return -1;
  return end;
}

/** A run of at most 15 decimal digits as a number. */
export function digitsAt(b: Uint8Array, s: number, e: number): number {
  let v = 0;
  for (let i = s; i < e; i++) v = v * 10 + (b[i] - 48);
  return v;
}

/** A timestamp's fraction digits b[s, e) in ns (digits beyond 9 dropped), as sink.ts parseTimestamp reads them. */
export function fractionNs(b: Uint8Array, s: number, e: number): number {
  const f = Math.min(e - s, 9);
  return digitsAt(b, s, s + f) * POW10[9 - f];
}

export const comms = new ByteInterner();
export const irqFlags = new ByteInterner();
export const eventNames = new ByteInterner();

/**
 * The slot of a stack frame line in a direct-mapped cache of FRAME_SLOTS lines (ftrace.ts, perf.ts): a hash of up to
 * its first 16 and its last 8 characters, where names and addresses differ. Four sampled characters were cheaper,
 * but perf's raw callchain lines (`\tffffffff8163eab7 [unknown] ([kernel.kallsyms])`) differ only in their address
 * digits: they fell into a handful of slots and nearly every line was parsed again.
 */
export const FRAME_SLOTS = 1024;

export function frameSlot(b: Uint8Array, s: number, e: number): number {
  let h = e - s;
  const head = Math.min(e, s + 16);
  for (let i = s; i < head; i++) h = (Math.imul(h, 31) + b[i]!) | 0;
  for (let i = Math.max(head, e - 8); i < e; i++) h = (Math.imul(h, 31) + b[i]!) | 0;
  return (h ^ (h >>> 15)) & (FRAME_SLOTS - 1);
}

/** frameSlot() of a line given as text. */
export function frameSlotOfText(t: string): number {
  const e = t.length;
  let h = e;
  const head = Math.min(e, 16);
  for (let i = 0; i < head; i++) h = (Math.imul(h, 31) + t.charCodeAt(i)) | 0;
  for (let i = Math.max(head, e - 8); i < e; i++) h = (Math.imul(h, 31) + t.charCodeAt(i)) | 0;
  return (h ^ (h >>> 15)) & (FRAME_SLOTS - 1);
}
