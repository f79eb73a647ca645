import { Interner, setBig, setInt, setStr, setU64, type BatchColumn } from '../../db/batch.js';
import { at, genericArgs, hex64, num, numAt, u64, value, valueEnd } from './fields.js';
import { outOfRange, rangeOf } from './limits.js';

/**
 * Payload decoders: each moves the fields of one event format into typed columns, by field name (see
 * docs/formats.md §3).
 * The catalogue (catalogue.ts) says which event uses which; fields a decoder does not read stay in the payload.
 */

export type EventCols = Record<string, BatchColumn>;

/** What decoders may learn about the trace as a whole (pointer -> pfn mapping, docs/model.md §11). */
export interface TraceFacts {
  /** A raw `struct page *` printed together with its pfn. */
  pagePointer(hi: number, lo: number, pfn: number): void;
  /** vmemmap_base printed by the memremap_pages probe. */
  probeVmemmapBase(hi: number, lo: number): void;
}

export type Decoder = (p: string, r: number, c: EventCols, facts: TraceFacts) => void;

/** Why the row being decoded cannot be stored (its first value out of range, limits.ts), or null. */
let rejected: string | null = null;

/** The reason a decoder gave since the last call (the caller then drops the row), or null. */
export function takeRejected(): string | null {
  const why = rejected;
  rejected = null;
  return why;
}

function setNum(col: BatchColumn, r: number, v: number): void {
  if (v !== v) return; // NaN: absent
  // The range setInt stores (limits.ts rangeOf), kept on the column: no lookup per value.
  const b = (col.range ??= rangeOf(col.name, col.storage));
  if (v >= b[0] && v <= b[1]) setInt(col, r, v);
  else rejected ??= outOfRange(col.name, col.storage, v);
}

/**
 * A signed 64-bit value (kretprobe returns print s64 or u64 in decimal): exact via BigInt beyond 2^53; a u64
 * keeps its two's complement (ret=18446744073709551615 is -1). Beyond 64 bits the line is unparsed.
 */
function setNum64(col: BatchColumn, r: number, p: string, i: number): void {
  const v = num(p, i);
  if (v !== v) return;
  if (Number.isSafeInteger(v)) return setInt(col, r, v);
  const tok = p.slice(i, valueEnd(p, i));
  let b: bigint | null = null;
  if (/^-?(?:0[xX][0-9a-fA-F]{1,16}|\d{1,20})$/.test(tok)) b = tok.startsWith('-') ? -BigInt(tok.slice(1)) : BigInt(tok);
  if (b === null || b < -(1n << 63n) || b >= 1n << 64n) rejected ??= `${col.name} ${tok.slice(0, 24)} out of 64 bits`;
  else setBig(col, r, b);
}

/**
 * A pfn field; -1UL (cma_alloc's pfn when it failed, `pfn=ffffffffffffffff`) is -1: the only value above 2^52 a
 * kernel prints, and the only one past 2^53 a double cannot tell apart from its neighbours.
 */
function pfnAt(p: string, key: string, hexDefault = false): number {
  return pfnOf(p, at(p, key), hexDefault);
}

/** pfnAt() of the value at p[i..] (-1: none). */
function pfnOf(p: string, i: number, hexDefault = false): number {
  const v = num(p, i, hexDefault);
  if (v < 2 ** 52) return v;
  const tok = p.slice(i, valueEnd(p, i));
  return /^(?:0[xX])?[fF]{16}$/.test(tok) || tok === '18446744073709551615' ? -1 : v;
}

function setHex64(col: BatchColumn, r: number, p: string, i: number): boolean {
  if (i < 0 || !hex64(p, i)) return false;
  if (u64.wide) {
    rejected ??= `${col.name} ${p.slice(i, valueEnd(p, i)).slice(0, 24)} beyond 64 bits`;
    return false;
  }
  setU64(col, r, u64.hi, u64.lo);
  return true;
}

/** Flag words (page flags, gfp, modes) repeat: one string object each, coded without hashing it again. */
const words = new Interner(9);

function setWord(col: BatchColumn, r: number, p: string, key: string): void {
  const i = at(p, key);
  if (i >= 0) setStr(col, r, words.get(p, i, valueEnd(p, i)));
}

/** Hashed pointers are 32-bit values; real kernel pointers start 0xff.. */
function isKernelPointer(): boolean {
  return u64.hi >>> 24 === 0xff;
}

/*
 * The layouts the kernel prints, matched whole: then each value is a capture, read with the same functions as at
 * its position in the payload (they read forward and stop where the capture ends: a space or the end follows),
 * and at() would find each key at its own token (values hold no blank, comma or `(`, so the only token starts are
 * the keys', none a prefix of another). One regex pass instead of a key search each. Any other payload: at().
 */
const REF_RE = /^pfn=(0x[0-9a-f]+|\d+) flags=([^\s,(]*) count=(-?\d+) mapcount=(-?\d+) mapping=([0-9a-f]{1,16}) mt=(-?\d+) val=(-?\d+)(?: ret=(-?\d+))?$/;
const KMEM_RE = /^page=([0-9a-fx]+) pfn=(0x[0-9a-f]+|\d+) order=(-?\d+)(?: migratetype=(-?\d+)(?: gfp_flags=([^\s,(]*))?)?$/;

// page_ref (include/trace/events/page_ref.h): pfn flags count mapcount mapping mt val [ret].
export const pageRef: Decoder = (p, r, c) => {
  const m = REF_RE.exec(p);
  if (m !== null) {
    setNum(c.pfn, r, pfnOf(m[1], 0));
    setStr(c.page_flags, r, words.get(m[2], 0, m[2].length));
    setNum(c.count, r, num(m[3], 0));
    setNum(c.mapcount, r, num(m[4], 0));
    setHex64(c.mapping, r, m[5], 0);
    setNum(c.mt, r, num(m[6], 0));
    setNum(c.val, r, num(m[7], 0));
    if (m[8] !== undefined) setNum(c.ret, r, num(m[8], 0));
    return;
  }
  setNum(c.pfn, r, pfnAt(p, 'pfn='));
  setWord(c.page_flags, r, p, 'flags=');
  setNum(c.count, r, numAt(p, 'count='));
  setNum(c.mapcount, r, numAt(p, 'mapcount='));
  setHex64(c.mapping, r, p, at(p, 'mapping='));
  setNum(c.mt, r, numAt(p, 'mt='));
  setNum(c.val, r, numAt(p, 'val='));
  setNum(c.ret, r, numAt(p, 'ret='));
};

// kmem page events: page pfn order [migratetype] [gfp_flags]. page= is never a key (docs/model.md §11) but a raw
// pointer next to its pfn teaches us vmemmap_base.
export const kmemPage: Decoder = (p, r, c, facts) => {
  const m = KMEM_RE.exec(p);
  if (m !== null) {
    const pfn = pfnOf(m[2], 0);
    setNum(c.pfn, r, pfn);
    const order = num(m[3], 0);
    setNum(c.order, r, order);
    if (order === order && order >= 0 && order < 31) setInt(c.nr_pages, r, 2 ** order);
    if (m[4] !== undefined) setNum(c.mt, r, num(m[4], 0));
    if (m[5] !== undefined) setStr(c.gfp, r, words.get(m[5], 0, m[5].length));
    if (pfn > 0 && hex64(m[1], 0) && isKernelPointer()) facts.pagePointer(u64.hi, u64.lo, pfn);
    return;
  }
  const pfn = pfnAt(p, 'pfn=');
  setNum(c.pfn, r, pfn);
  const order = numAt(p, 'order=');
  setNum(c.order, r, order);
  if (order === order && order >= 0 && order < 31) setInt(c.nr_pages, r, 2 ** order);
  setNum(c.mt, r, numAt(p, 'migratetype='));
  setWord(c.gfp, r, p, 'gfp_flags=');
  if (pfn > 0 && hex64(p, at(p, 'page=')) && isKernelPointer()) facts.pagePointer(u64.hi, u64.lo, pfn);
};

/**
 * A kmem page record's fields as a binary reader took them from its raw bytes while rendering its payload
 * (event-format.ts renderPayloadAt): what kmemPage would read from that payload. NaN: the key is absent.
 * `ok` false: the reader could not vouch for a value (kmemPage then reads the payload).
 */
export interface KmemFields {
  ok: boolean;
  pfn: number;
  order: number;
  mt: number;
  /** gfp_flags= as rendered (no blank, comma, tab or `(` in it), or null. */
  gfp: string | null;
  /** page= as a u64 (hi:lo), when the payload has it. */
  page: boolean;
  pageHi: number;
  pageLo: number;
}

/** kmemPage's columns and facts from fields already decoded: the same values, without parsing the text. */
export function kmemDecoded(d: KmemFields, r: number, c: EventCols, facts: TraceFacts): void {
  const pfn = d.pfn;
  setNum(c.pfn, r, pfn);
  const order = d.order;
  setNum(c.order, r, order);
  if (order === order && order >= 0 && order < 31) setInt(c.nr_pages, r, 2 ** order);
  setNum(c.mt, r, d.mt);
  if (d.gfp !== null) setStr(c.gfp, r, words.get(d.gfp, 0, d.gfp.length));
  if (pfn > 0 && d.page && d.pageHi >>> 24 === 0xff) facts.pagePointer(d.pageHi, d.pageLo, pfn);
}

/**
 * A page_ref payload in the kernel's exact layout (REF_RE; or mapping= as perf prints it, which pageRef reads by
 * key) as a byte scanner read it (scan.ts): the values pageRef would store. NaN: ret= absent.
 */
export interface RefFields {
  pfn: number;
  flags: string;
  count: number;
  mapcount: number;
  mappingHi: number;
  mappingLo: number;
  mt: number;
  val: number;
  ret: number;
  /** The text is exactly what events.payload renders from these values (db/tables/ingest.ts PAYLOAD): not stored. */
  canonical: boolean;
}

/** pageRef's columns from fields already decoded. */
export function refDecoded(f: RefFields, r: number, c: EventCols): void {
  setNum(c.pfn, r, f.pfn);
  setStr(c.page_flags, r, f.flags);
  setNum(c.count, r, f.count);
  setNum(c.mapcount, r, f.mapcount);
  setU64(c.mapping, r, f.mappingHi, f.mappingLo);
  setNum(c.mt, r, f.mt);
  setNum(c.val, r, f.val);
  setNum(c.ret, r, f.ret);
}

export const extfrag: Decoder = (p, r, c) => {
  setNum(c.pfn, r, pfnAt(p, 'pfn='));
  setNum(c.order, r, numAt(p, 'alloc_order='));
  setNum(c.mt, r, numAt(p, 'alloc_migratetype='));
};

// cma: pfn printed %lx (no 0x) before ≈5.14, 0x%lx after; count is pages.
export const cma: Decoder = (p, r, c, facts) => {
  const n = at(p, 'name=');
  if (n >= 0) setStr(c.name, r, p.slice(n, valueEnd(p, n)));
  const pfn = pfnAt(p, 'pfn=', true);
  setNum(c.pfn, r, pfn);
  let count = numAt(p, 'count=');
  if (count !== count) count = numAt(p, 'request_count=');
  setNum(c.nr_pages, r, count);
  if (pfn >= 0 && count === count) setInt(c.pfn_end, r, pfn + count);
  if (setHex64(c.ptr, r, p, at(p, 'page=')) && isKernelPointer() && pfn > 0) facts.pagePointer(u64.hi, u64.lo, pfn);
  setNum(c.ret, r, numAt(p, 'errorno='));
  setNum(c.nr_succeeded, r, numAt(p, 'nr_migrated='));
  // cma_alloc(cma, count, align, ...): align is an order (the allocation starts at a multiple of 2^align pages).
  setNum(c.order, r, numAt(p, 'align='));
};

export const migratePages: Decoder = (p, r, c) => {
  setNum(c.nr_succeeded, r, numAt(p, 'nr_succeeded='));
  setNum(c.nr_failed, r, numAt(p, 'nr_failed='));
  setWord(c.mode, r, p, 'mode=');
  setWord(c.name, r, p, 'reason=');
};

export const migrationPte: Decoder = (p, r, c) => {
  setHex64(c.addr, r, p, at(p, 'addr='));
  setNum(c.order, r, numAt(p, 'order='));
};

export const migrateUnmapFolio: Decoder = (p, r, c) => {
  setNum(c.pfn, r, pfnAt(p, 'pfn='));
  setHex64(c.addr, r, p, at(p, 'addr='));
};

// test_pages_isolated: ret=success|fail; fin_pfn is the first pfn that blocked (docs/model.md §8).
export const testPagesIsolated: Decoder = (p, r, c) => {
  const start = numAt(p, 'start_pfn=');
  const end = numAt(p, 'end_pfn=');
  setNum(c.pfn, r, start);
  setNum(c.pfn_end, r, end);
  if (start === start && end === end) setInt(c.nr_pages, r, end - start);
  setNum(c.fin_pfn, r, numAt(p, 'fin_pfn='));
  const ret = value(p, 'ret=');
  if (ret !== null) setInt(c.ret, r, ret === 'success' ? 0 : 1);
};

// filemap add/delete: "dev %d:%d ino %lx [page=%p] pfn=... ofs=%lu [order=%u]" (dev/ino without '=').
export const filemapPage: Decoder = (p, r, c) => {
  setNum(c.pfn, r, pfnAt(p, 'pfn='));
  const o = numAt(p, 'order=');
  setNum(c.order, r, o === o ? o : 0);
  setInt(c.nr_pages, r, o === o ? 2 ** o : 1);
};

// fs_dax: "dev %d:%d ino %#lx ... address %#lx ... pfn %#llx" (space separated). pfn_t flag bits sit high.
export const fsDax: Decoder = (p, r, c) => {
  const a = p.indexOf(' address ');
  if (a >= 0) setHex64(c.addr, r, p, a + 9);
  const f = p.indexOf(' pfn ');
  if (f >= 0 && hex64(p, f + 5)) setInt(c.pfn, r, (u64.hi & 0xfffff) * 4294967296 + u64.lo);
};

export const rssStat: Decoder = (p, r, c) => {
  setWord(c.name, r, p, 'type=');
};

// Probe events (kprobe/kretprobe/fprobe): "(func+0x0/0x140) k=v ..." or "(caller+off/size <- func) k=v".
// Field names are the ones `refscope probes` defines (and the qemu-6.1 captures used).
export const probe: Decoder = (p, r, c, facts) => {
  let i = at(p, 'page=');
  if (i < 0) i = at(p, 'folio=');
  setHex64(c.ptr, r, p, i);
  setNum(c.refs, r, numAt(p, 'refs='));
  i = at(p, 'gup_flags=');
  if (i < 0) i = at(p, 'flags=');
  setHex64(c.gup_flags, r, p, i);
  i = at(p, 'start=');
  if (i < 0) i = at(p, 'addr=');
  if (i < 0) i = at(p, 'address=');
  if (i < 0) i = at(p, 'vaddr=');
  setHex64(c.addr, r, p, i);
  let n = numAt(p, 'nr_pages=');
  if (n !== n) n = numAt(p, 'npages=');
  setNum(c.nr_pages, r, n);
  i = at(p, 'pgmap=');
  if (i < 0) i = at(p, 'ref=');
  setHex64(c.pgmap, r, p, i);
  setNum(c.pfn, r, pfnAt(p, 'pfn='));
  i = at(p, 'ret=');
  if (i >= 0) {
    // kretprobe values print signed (s32/s64) or hex (x64: pointers); keep what fits exactly.
    if (p.charCodeAt(i) === 48 && p.charCodeAt(i + 1) === 120) {
      if (hex64(p, i) && u64.hi < 0x200000) setInt(c.ret, r, u64.hi * 4294967296 + u64.lo);
      else if (u64.hi >= 0x200000) setInt(c.ret, r, 1); // a non-NULL pointer: "returned something"
    } else setNum64(c.ret, r, p, i);
  }
  if (hex64(p, at(p, 'vmemmap_base='))) facts.probeVmemmapBase(u64.hi, u64.lo);
};

// alloc_contig_range(start, end, migratetype, gfp): start/end are pfns.
export const allocContigRange: Decoder = (p, r, c) => {
  const start = numAt(p, 'start=');
  const end = numAt(p, 'end=');
  setNum(c.pfn, r, start);
  setNum(c.pfn_end, r, end);
  if (start === start && end === end) setInt(c.nr_pages, r, end - start);
  setNum(c.mt, r, numAt(p, 'migratetype='));
  setWord(c.gfp, r, p, 'gfp=');
};

export const syscallExit: Decoder = (p, r, c) => {
  // "-> 0x100000" (hex) or "-> -22"
  const v = p.startsWith('-> ') ? num(p, 3) : NaN;
  setNum(c.ret, r, v);
};

export const syscallEnter: Decoder = (p, r, c) => {
  const a = at(p, 'addr: ');
  if (a >= 0) setHex64(c.addr, r, p, a);
  const args = genericArgs(p);
  if (args) setStr(c.args, r, JSON.stringify(args));
};

export const moduleEvent: Decoder = (p, r, c) => {
  const name = p.trim().split(/\s+/)[0];
  if (name) setStr(c.name, r, name);
};

export const marker: Decoder = () => {};

// sched_process_exit: comm= pid= prio= [group_dead=] (include/trace/events/sched.h). The exiting task is the
// current one (do_exit), so replay reads the event's own pid/tgid; the fields stay in `args` (the queries' _exits
// view reads pid= from there, as it does for traces ingested before this decoder).
export const taskExit: Decoder = (p, r, c) => {
  const args = genericArgs(p);
  if (args) setStr(c.args, r, JSON.stringify(args));
};

// sched_process_fork: comm= pid= child_comm= child_pid= (include/trace/events/sched.h), fired in the parent (the
// current task; a new thread too). The fields stay in `args` (the queries' _forks view); replay reads child_pid=
// from the payload.
export const taskFork: Decoder = (p, r, c) => {
  const args = genericArgs(p);
  if (args) setStr(c.args, r, JSON.stringify(args));
};

/** Events without a decoder keep their key=value fields in `args`. */
export const generic: Decoder = (p, r, c) => {
  const args = genericArgs(p);
  if (args) setStr(c.args, r, JSON.stringify(args));
};
