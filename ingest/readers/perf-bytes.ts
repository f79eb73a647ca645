import { blanksEnd, digitsEnd, isBlank, matchTaskBytes } from './ftrace-bytes.js';

/**
 * A `perf script` sample line's head read from bytes (an ASCII block), for PerfReader.lineBytes: perf.ts
 * SAMPLE_TAIL tried as sink.ts matchTask tries it with `ws` (at the start of each run of blanks after the comm),
 * written out by hand. Where the regex backtracks (the optional period before `sys:event:`) both ways are tried,
 * in the regex's order. Runs of more than 15 digits are left to the string path.
 */

/** Where the columns of the latest match are (start, end); -1 starts: absent. */
export const perfm = {
  pidS: 0,
  pidE: 0,
  tidS: -1,
  tidE: 0,
  cpuS: -1,
  cpuE: 0,
  secS: 0,
  secE: 0,
  fracS: 0,
  fracE: 0,
  sysS: 0,
  sysE: 0,
  eventS: 0,
  eventE: 0,
};

const MAX_DIGITS = 15;

/** `\w`, and `-` (the system's characters); with `.` the event's. */
const isWordDash = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 45;

/** `([\w-]+):([\w.-]+):[ \t]?` at b[p..e): the end or -1. */
function eventAt(b: Uint8Array, p: number, e: number): number {
  let q = p;
  while (q < e && isWordDash(b[q])) q++;
  if (q === p || q >= e || b[q] !== 58) return -1;
  let r = q + 1;
  while (r < e && (isWordDash(b[r]) || b[r] === 46)) r++;
  if (r === q + 1 || r >= e || b[r] !== 58) return -1;
  perfm.sysS = p;
  perfm.sysE = q;
  perfm.eventS = q + 1;
  perfm.eventE = r;
  return r + 1 < e && isBlank(b[r + 1]) ? r + 2 : r + 1;
}

/** SAMPLE_TAIL at b[i] (the start of a run of blanks): the end of the match or -1; the columns in perfm. */
function tailAt(b: Uint8Array, i: number, e: number): number {
  let p = blanksEnd(b, i, e);
  if (p === i) return -1;
  let q = digitsEnd(b, p, e);
  if (q === p) return -1;
  perfm.pidS = p;
  perfm.pidE = q;
  perfm.tidS = -1;
  p = q;
  if (p < e && b[p] === 47 /* / */) {
    q = digitsEnd(b, p + 1, e);
    if (q > p + 1) {
      perfm.tidS = p + 1;
      perfm.tidE = q;
      p = q;
    }
  }
  q = blanksEnd(b, p, e);
  if (q === p) return -1;
  p = q;
  perfm.cpuS = -1;
  if (p < e && b[p] === 91 /* [ */) {
    q = digitsEnd(b, p + 1, e);
    if (q > p + 1 && q < e && b[q] === 93) {
      const r = blanksEnd(b, q + 1, e);
      if (r > q + 1) {
        perfm.cpuS = p + 1;
        perfm.cpuE = q;
        p = r;
      }
    }
  }
  q = digitsEnd(b, p, e);
  if (q === p || q >= e || b[q] !== 46) return -1;
  perfm.secS = p;
  perfm.secE = q;
  const f = digitsEnd(b, q + 1, e);
  if (f === q + 1 || f >= e || b[f] !== 58) return -1;
  perfm.fracS = q + 1;
  perfm.fracE = f;
  p = blanksEnd(b, f + 1, e);
  if (p === f + 1) return -1;
  // An optional period (`1 `), then sys:event: (the regex tries the period first).
  q = digitsEnd(b, p, e);
  if (q > p && q < e && isBlank(b[q])) {
    const end = eventAt(b, blanksEnd(b, q, e), e);
    if (end >= 0) return end;
  }
  return eventAt(b, p, e);
}

/** matchTaskBytes with SAMPLE_TAIL (at runs of blanks); -1 also when a number has more than 15 digits. */
export function matchSampleBytes(b: Uint8Array, s0: number, e: number): number {
  const end = matchTaskBytes(b, s0, e, tailAt, true);
  if (end < 0) return -1;
  const m = perfm;
  if (m.pidE - m.pidS > MAX_DIGITS || m.secE - m.secS > MAX_DIGITS) return -1;
  if ((m.tidS >= 0 && m.tidE - m.tidS > MAX_DIGITS) || (m.cpuS >= 0 && m.cpuE - m.cpuS > MAX_DIGITS)) return -1;
  return end;
}

const MODIFIER = new Uint8Array(128);
for (const c of 'ukhHGpPSDIWe') MODIFIER[c.charCodeAt(0)] = 1;

/** perf's event modifiers (`cycles:ppp`) alone: the string path's (a counter event, perf.ts sampleMatch). */
export function modifiersOnly(b: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (MODIFIER[b[i] & 127] === 0 || b[i] > 127) return false;
  return true;
}
