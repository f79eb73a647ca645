/**
 * Field access inside one payload string by key, without splitting it: `at(p, 'pfn=')` gives where the value
 * starts, `num*` parse it in place. Keys are matched only at a token start, so `pfn=` never matches `fin_pfn=`.
 */

export function at(p: string, key: string): number {
  let i = p.indexOf(key);
  while (i > 0) {
    const c = p.charCodeAt(i - 1);
    if (c === 32 || c === 44 || c === 9 || c === 40 /* ( */) break;
    i = p.indexOf(key, i + 1);
  }
  return i < 0 ? -1 : i + key.length;
}

/** End of a value: the next space or comma (`addr=%lx, pte=...`). */
export function valueEnd(p: string, i: number): number {
  const n = p.length;
  while (i < n) {
    const c = p.charCodeAt(i);
    if (c === 32 || c === 44 || c === 9) return i;
    i++;
  }
  return n;
}

export function value(p: string, key: string): string | null {
  const i = at(p, key);
  return i < 0 ? null : p.slice(i, valueEnd(p, i));
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Integer at p[i..]: `0x` hex, else decimal (or hex when `hexDefault`), optional sign. NaN if none.
 * Exact below 2^53, which covers pfns, counts and timestamps; pointers go through hex64.
 */
export function num(p: string, i: number, hexDefault = false): number {
  // Every charCodeAt here stays within the string: one past the end makes V8 call it instead of inlining it.
  const n = p.length;
  if (i < 0 || i >= n) return NaN;
  let neg = false;
  let c = p.charCodeAt(i);
  if (c === 45 /* - */) {
    neg = true;
    c = ++i < n ? p.charCodeAt(i) : -1;
  }
  let hex = hexDefault;
  if (c === 48 && i + 1 < n && (p.charCodeAt(i + 1) | 32) === 120 /* x */) {
    hex = true;
    i += 2;
  }
  let v = 0;
  let digits = 0;
  for (; i < n; ) {
    const ch = p.charCodeAt(i);
    const d = hex ? hexDigit(ch) : ch >= 48 && ch <= 57 ? ch - 48 : -1;
    if (d < 0) break;
    v = v * (hex ? 16 : 10) + d;
    digits++;
    i++;
  }
  if (digits === 0) return NaN;
  return neg ? -v : v;
}

export function numAt(p: string, key: string, hexDefault = false): number {
  return num(p, at(p, key), hexDefault);
}

/** Scratch result of hex64: the value as unsigned 32-bit halves; `wide` when it had more than 64 bits. */
export const u64 = { hi: 0, lo: 0, wide: false };

/**
 * A 64-bit hex token (`ffd4000000240880`, `0x...`, hashed `00000000f0e9c5fd`); `(null)`, `(nil)` are 0.
 * Returns false when the text is not hex at all.
 */
export function hex64(p: string, i: number): boolean {
  u64.hi = 0;
  u64.lo = 0;
  u64.wide = false;
  if (i < 0) return false;
  const n = p.length; // charCodeAt within the string only, as in num()
  while (i < n && p.charCodeAt(i) === 32) i++;
  if (i < n && p.charCodeAt(i) === 40 /* ( */) return p.startsWith('(null)', i) || p.startsWith('(nil)', i);
  if (i + 1 < n && p.charCodeAt(i) === 48 && (p.charCodeAt(i + 1) | 32) === 120) i += 2;
  // One pass, keeping the low 64 bits (the last 16 digits) as two 32-bit halves; `sig` counts the digits from
  // the first non-zero one: more than 16 is wide.
  let hi = 0;
  let lo = 0;
  let sig = 0;
  let j = i;
  for (; j < n; j++) {
    const c = p.charCodeAt(j);
    const d = c < 128 ? HEX[c] : -1;
    if (d < 0) break;
    if (sig > 0 || d !== 0) sig++;
    hi = ((hi << 4) | (lo >>> 28)) >>> 0;
    lo = ((lo << 4) | d) >>> 0;
  }
  if (j === i) return false;
  u64.hi = hi;
  u64.lo = lo;
  u64.wide = sig > 16;
  return true;
}

/** Value of each ASCII hex digit, -1 for other characters. */
const HEX = new Int8Array(128).fill(-1);
for (let c = 0; c < 128; c++) HEX[c] = hexDigit(c);

/** `key=value` tokens of a payload as an object, for events without a decoder (kept in events.args). */
export function genericArgs(p: string): Record<string, string> | null {
  const out: Record<string, string> = {};
  let any = false;
  // `key=value` (tracepoints) and `key: value,` (syscalls).
  const re = /(?:^|[\s,(])([A-Za-z_][\w.]*)(?:=|: )(\S*?)(?=,?\s|,?$|\))/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(p))) {
    out[m[1]] = m[2];
    any = true;
  }
  return any ? out : null;
}
