import { ByteInterner, sameBytes } from '../../db/batch.js';
import type { KmemFields, RefFields } from './decoders.js';

/**
 * Byte scanners for the two payload layouts most of a page trace is made of (page_ref and kmem page events), read
 * straight from the text block's bytes (ASCII): they accept what decoders.ts REF_RE / KMEM_RE match and give the
 * values pageRef / kmemPage would store from the match. They are narrower where that is simpler (numbers of at most
 * 15 digits; 13 hex digits for a pfn, 16 for a pointer) and wider in one place: page_ref's mapping as perf prints
 * it (`0x…`, `(nil)`), a layout pageRef reads by key, to the same values. Anything else returns false and the
 * payload goes the string way (decoders.ts).
 */

/** Flag words (page flags, gfp) repeat: one string each. */
const words = new ByteInterner(9);

export const refScan: RefFields = { pfn: 0, flags: '', count: 0, mapcount: 0, mappingHi: 0, mappingLo: 0, mt: 0, val: 0, ret: NaN, canonical: false };
export const kmemScan: KmemFields = { ok: true, pfn: 0, order: 0, mt: NaN, gfp: null, page: false, pageHi: 0, pageLo: 0 };

/** The value read by the latest dec() / pfn(), and the halves read by hex(). */
let value = 0;
/** Whether the latest dec() / hex() read its number as printf prints it (no leading zero, no `-0`). */
let plain = false;
let hi = 0;
let lo = 0;

const PFN = 'pfn=';
const FLAGS = ' flags=';
const COUNT = ' count=';
const MAPCOUNT = ' mapcount=';
const MAPPING = ' mapping=';
const NIL = '(nil)';
const MT = ' mt=';
const VAL = ' val=';
const RET = ' ret=';
const PAGE = 'page=';
const KPFN = ' pfn=';
const ORDER = ' order=';
const MIGRATETYPE = ' migratetype=';
const GFP = ' gfp_flags=';

/** p past `lit` when b[p..e) starts with it, else -1. */
function lit(b: Uint8Array, p: number, e: number, l: string): number {
  return p >= 0 && p + l.length <= e && sameBytes(l, b, p) ? p + l.length : -1;
}

/** `-?\d+` of at most 15 digits at b[p..e): value set, the end returned; -1 when none. */
function dec(b: Uint8Array, p: number, e: number): number {
  if (p < 0) return -1;
  const neg = p < e && b[p] === 45;
  if (neg) p++;
  const s = p;
  let v = 0;
  while (p < e && b[p] >= 48 && b[p] <= 57) v = v * 10 + (b[p++] - 48);
  if (p === s || p - s > 15) return -1;
  value = neg ? -v : v;
  plain = (p - s === 1 || b[s] !== 48) && !(neg && v === 0);
  return p;
}

/** Lowercase hex digit value, or -1. */
const hexDigit = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1);

/** `[0-9a-f]{1,max}` at b[p..e), as halves hi:lo (and value when max <= 13); -1 when none or longer. */
function hex(b: Uint8Array, p: number, e: number, max: number): number {
  const s = p;
  let h = 0;
  let l = 0;
  for (; p < e; p++) {
    const d = hexDigit(b[p]);
    if (d < 0) break;
    h = ((h << 4) | (l >>> 28)) >>> 0;
    l = ((l << 4) | d) >>> 0;
  }
  if (p === s || p - s > max) return -1;
  plain = p - s === 1 || b[s] !== 48;
  hi = h;
  lo = l;
  value = h * 4294967296 + l;
  return p;
}

/** A pfn as REF_RE / KMEM_RE take it (`0x[0-9a-f]+|\d+`): value below 2^52, the end returned. */
function pfn(b: Uint8Array, p: number, e: number): number {
  if (p < 0) return -1;
  if (p + 1 < e && b[p] === 48 && b[p + 1] === 120) return hex(b, p + 2, e, 13);
  return b[p] === 45 ? -1 : dec(b, p, e);
}

/** `[^\s,(]*` at b[p..e) as a word; its end. */
function word(b: Uint8Array, p: number, e: number): number {
  let q = p;
  for (; q < e; q++) {
    const c = b[q];
    if (c === 32 || c === 44 || c === 40 || (c >= 9 && c <= 13)) break;
  }
  return q;
}

/**
 * `pfn=… flags=… count=… mapcount=… mapping=… mt=… val=…[ ret=…]`, the whole of b[p, e), into refScan; `canonical`
 * when the text is the kernel's own rendering of those values: pfn as `0x%lx`, numbers as `%d` within their
 * columns' types, mapping as 16 hex digits, a non-empty flags word.
 */
export function scanRef(b: Uint8Array, p: number, e: number): boolean {
  const f = refScan;
  f.canonical = false;
  const at = lit(b, p, e, PFN);
  p = pfn(b, at, e);
  if (p < 0) return false;
  f.pfn = value;
  let canonical = plain && b[at + 1] === 120; // `0x…`, not decimal
  p = lit(b, p, e, FLAGS);
  if (p < 0) return false;
  const w = word(b, p, e);
  f.flags = words.get(b as Buffer, p, w);
  canonical &&= w > p;
  p = dec(b, lit(b, w, e, COUNT), e);
  if (p < 0) return false;
  f.count = value;
  canonical &&= plain && isInt32(value);
  p = dec(b, lit(b, p, e, MAPCOUNT), e);
  if (p < 0) return false;
  f.mapcount = value;
  canonical &&= plain && isInt32(value);
  p = lit(b, p, e, MAPPING);
  if (p < 0) return false;
  // ftrace prints the hashed pointer bare, perf (libtraceevent) as `0x…` or `(nil)`: decoders.ts reads the
  // latter two through hex64 too (its key search), to the same value.
  if (lit(b, p, e, NIL) > 0) {
    p += NIL.length;
    hi = lo = 0;
    canonical = false;
  } else {
    const bare = !(p + 1 < e && b[p] === 48 && b[p + 1] === 120);
    const s = p;
    if ((p = hex(b, bare ? p : p + 2, e, 16)) < 0) return false;
    canonical &&= bare && p - s === 16;
  }
  f.mappingHi = hi;
  f.mappingLo = lo;
  p = dec(b, lit(b, p, e, MT), e);
  if (p < 0) return false;
  f.mt = value;
  canonical &&= plain && value >= -32768 && value < 32768;
  p = dec(b, lit(b, p, e, VAL), e);
  if (p < 0) return false;
  f.val = value;
  canonical &&= plain && isInt32(value);
  f.ret = NaN;
  if (p === e) {
    f.canonical = canonical;
    return true;
  }
  p = dec(b, lit(b, p, e, RET), e);
  if (p < 0) return false;
  f.ret = value;
  f.canonical = canonical && plain;
  return p === e;
}

const isInt32 = (v: number): boolean => v >= -2147483648 && v <= 2147483647;

/** `page=… pfn=… order=…[ migratetype=…[ gfp_flags=…]]`, the whole of b[p, e), into kmemScan. */
export function scanKmem(b: Uint8Array, p: number, e: number): boolean {
  const f = kmemScan;
  p = lit(b, p, e, PAGE);
  if (p < 0) return false;
  // The pointer as hex64 reads it: `0x` optional, then at most 16 digits (no more `x` after).
  if (p + 1 < e && b[p] === 48 && b[p + 1] === 120) p += 2;
  p = hex(b, p, e, 16);
  if (p < 0) return false;
  f.page = true;
  f.pageHi = hi;
  f.pageLo = lo;
  p = pfn(b, lit(b, p, e, KPFN), e);
  if (p < 0) return false;
  f.pfn = value;
  p = dec(b, lit(b, p, e, ORDER), e);
  if (p < 0) return false;
  f.order = value;
  f.mt = NaN;
  f.gfp = null;
  if (p === e) return true;
  p = dec(b, lit(b, p, e, MIGRATETYPE), e);
  if (p < 0) return false;
  f.mt = value;
  if (p === e) return true;
  p = lit(b, p, e, GFP);
  if (p < 0) return false;
  const w = word(b, p, e);
  f.gfp = words.get(b as Buffer, p, w);
  return w === e;
}

/** Room for a page_ref payload given as text (the binary readers' and the string route's): longer ones are stored. */
const scratch = Buffer.alloc(512);

/**
 * scanRef() of a payload given as text, so that every route stores a payload or renders it by the same rule; null
 * when it is not in the layout, or not plain ASCII (latin1 bytes would hide a wider character).
 */
export function scanRefText(payload: string): RefFields | null {
  const n = payload.length;
  if (n > scratch.length) return null;
  if (Buffer.byteLength(payload, 'utf8') !== n) return null;
  scratch.write(payload, 0, n, 'latin1');
  return scanRef(scratch, 0, n) ? refScan : null;
}
