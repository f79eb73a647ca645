/**
 * The per-pfn page state every tracker shares, kept in typed arrays: each Page owns one int32 row (counts, ids,
 * booleans) and one float64 row (seqs and timestamps) of a PageStore, and its number fields are accessors on them.
 * About 480 bytes per live page instead of ~830 for a plain ~70-field object (8 bytes a field, a boxed double per
 * timestamp). Object-valued fields (pins, holds, strings) stay on the Page. PageTable pools released Pages with their
 * rows, so a row belongs to one Page for good; the store grows by doubling.
 *
 * "Unknown" for the integer fields (counts, mapcount, migratetypes) is NO, a small-integer sentinel, not NaN.
 */
import type { Hold } from './holds.js';
import type { Pin } from './pins.js';

export const NO = -0x40000000;
/** NO -> NaN (for output and for arithmetic that must not see the sentinel). */
export const nz = (x: number): number => (x === NO ? NaN : x);

/** Slots of the int32 row. A new field: a slot here (or in F), its default in I_INIT / F_INIT unless 0, an accessor pair in Page. */
const enum I {
  startEdge = 0,
  allocPid = 1,
  allocTgid = 2,
  allocComm = 3,
  allocStack = 4,
  gfp = 5,
  migratetype = 6,
  kmemAlloc = 7,
  deviceInit = 8,
  order = 9,
  lastMt = 10,
  cmaSeen = 11,
  zoneDevice = 12,
  refMax = 13,
  refEvents = 14,
  lifeEpoch = 15,
  cpus = 16,
  zeroName = 17,
  zeroPid = 18,
  zeroComm = 19,
  frozen = 20,
  count = 21,
  mapcount = 22,
  chkEpoch = 23,
  shadow = 24,
  shadowCpu = 25,
  shadowDiv = 26,
  grpPid = 27,
  grpPrev = 28,
  grpTgid = 29,
  grpComm = 30,
  grpStack = 31,
  grpCpu = 32,
  grpMt = 33,
  grpProbe = 34,
  grpDefer = 35,
  defPid = 36,
  defComm = 37,
  pinRefs = 38,
  pinCount = 39,
  holdRefs = 40,
  gupRefs = 41,
  owners = 42,
  baseLow = 43,
  exPid = 44,
  exComm = 45,
  exStack = 46,
  /** Slots per row (keep last). */
  ROW,
}
const I_ROW = I.ROW;
/** Slots of the float64 row. */
const enum F {
  allocSeq = 0,
  allocTs = 1,
  firstSeq = 2,
  lastSeq = 3,
  zeroSeq = 4,
  zeroTs = 5,
  lastEvSeq = 6,
  grpLastSeq = 7,
  grpSeq = 8,
  grpTs = 9,
  grpFlags = 10,
  defSeq = 11,
  defTs = 12,
  exSeq = 13,
  exTs = 14,
  /** Slots per row (keep last). */
  ROW,
}
const F_ROW = F.ROW;

/** A fresh page's rows. */
const I_INIT = new Int32Array(I_ROW);
const F_INIT = new Float64Array(F_ROW);
I_INIT[I.allocPid] = -1;
I_INIT[I.allocTgid] = -1;
I_INIT[I.allocComm] = -1;
I_INIT[I.allocStack] = -1;
I_INIT[I.gfp] = -1;
I_INIT[I.migratetype] = NO;
I_INIT[I.order] = -1;
I_INIT[I.lastMt] = NO;
I_INIT[I.refMax] = NO;
I_INIT[I.zeroName] = -1;
I_INIT[I.zeroPid] = -1;
I_INIT[I.zeroComm] = -1;
I_INIT[I.count] = NO;
I_INIT[I.mapcount] = NO;
I_INIT[I.shadow] = NO;
I_INIT[I.shadowCpu] = -1;
I_INIT[I.shadowDiv] = -1;
I_INIT[I.grpPid] = -1;
I_INIT[I.grpTgid] = -1;
I_INIT[I.grpComm] = -1;
I_INIT[I.grpStack] = -1;
I_INIT[I.grpCpu] = -1;
I_INIT[I.grpMt] = NO;
I_INIT[I.defPid] = -1;
I_INIT[I.defComm] = -1;
I_INIT[I.baseLow] = NO;
I_INIT[I.exPid] = -1;
I_INIT[I.exComm] = -1;
I_INIT[I.exStack] = -1;
F_INIT[F.allocSeq] = NO;
F_INIT[F.allocTs] = NaN;
F_INIT[F.zeroSeq] = -1;
F_INIT[F.lastEvSeq] = -1;
F_INIT[F.grpLastSeq] = -1;
F_INIT[F.grpFlags] = NO;
F_INIT[F.exSeq] = -1;

/** The typed arrays behind the pages of one replay. */
export class PageStore {
  i32: Int32Array;
  f64: Float64Array;
  rows = 0;

  constructor() {
    // Stored twice here on purpose: V8 treats a field written once as constant and optimized code that read it
    // depends on that; the first growth then deoptimized every accessor and tracker at once (and they were
    // compiled again).
    this.i32 = new Int32Array(0);
    this.f64 = new Float64Array(0);
    this.grow(1024);
  }

  /** A new row number (rows are never given back: PageTable pools the Pages that own them). */
  newRow(): number {
    if (this.rows * I_ROW === this.i32.length) this.grow(this.rows * 2);
    return this.rows++;
  }

  private grow(rows: number): void {
    const i32 = new Int32Array(rows * I_ROW);
    i32.set(this.i32);
    this.i32 = i32;
    const f64 = new Float64Array(rows * F_ROW);
    f64.set(this.f64);
    this.f64 = f64;
  }
}

export class Page {
  pfn = 0;
  allocEvent: string | null = null;
  pgmap: string | null = null;
  /** The hold the coalesced group's first +k opened (withdrawn if it turns out to be the first half of a pin). */
  grpHold: Hold | null = null;
  pins: Pin[] | null = null;
  holds: Hold[] | null = null;
  /** Offsets of this page's rows in the store. */
  private readonly oi: number;
  private readonly of: number;

  constructor(private readonly s: PageStore) {
    const row = s.newRow();
    this.oi = row * I_ROW;
    this.of = row * F_ROW;
  }

  /** A fresh state for a new lifetime of `pfn`. */
  reset(pfn: number): void {
    this.pfn = pfn;
    this.allocEvent = null;
    this.pgmap = null;
    this.grpHold = null;
    if (this.pins !== null) this.pins.length = 0;
    if (this.holds !== null) this.holds.length = 0;
    this.s.i32.set(I_INIT, this.oi);
    this.s.f64.set(F_INIT, this.of);
  }

  // ---- lifetime (pages.ts)
  get startEdge(): boolean { return this.s.i32[this.oi + I.startEdge] !== 0; }
  set startEdge(v: boolean) { this.s.i32[this.oi + I.startEdge] = v ? 1 : 0; }
  get allocSeq(): number { return this.s.f64[this.of + F.allocSeq]; }
  set allocSeq(v: number) { this.s.f64[this.of + F.allocSeq] = v; }
  get allocTs(): number { return this.s.f64[this.of + F.allocTs]; }
  set allocTs(v: number) { this.s.f64[this.of + F.allocTs] = v; }
  get allocPid(): number { return this.s.i32[this.oi + I.allocPid]; }
  set allocPid(v: number) { this.s.i32[this.oi + I.allocPid] = v; }
  get allocTgid(): number { return this.s.i32[this.oi + I.allocTgid]; }
  set allocTgid(v: number) { this.s.i32[this.oi + I.allocTgid] = v; }
  get allocComm(): number { return this.s.i32[this.oi + I.allocComm]; }
  set allocComm(v: number) { this.s.i32[this.oi + I.allocComm] = v; }
  get allocStack(): number { return this.s.i32[this.oi + I.allocStack]; }
  set allocStack(v: number) { this.s.i32[this.oi + I.allocStack] = v; }
  get gfp(): number { return this.s.i32[this.oi + I.gfp]; }
  set gfp(v: number) { this.s.i32[this.oi + I.gfp] = v; }
  get migratetype(): number { return this.s.i32[this.oi + I.migratetype]; }
  set migratetype(v: number) { this.s.i32[this.oi + I.migratetype] = v; }
  /** This lifetime's mm_page_alloc was seen (a second one starts a new lifetime). */
  get kmemAlloc(): boolean { return this.s.i32[this.oi + I.kmemAlloc] !== 0; }
  set kmemAlloc(v: boolean) { this.s.i32[this.oi + I.kmemAlloc] = v ? 1 : 0; }
  /** zone_device_page_init started the lifetime and its page_ref_set is still to come. */
  get deviceInit(): boolean { return this.s.i32[this.oi + I.deviceInit] !== 0; }
  set deviceInit(v: boolean) { this.s.i32[this.oi + I.deviceInit] = v ? 1 : 0; }
  get order(): number { return this.s.i32[this.oi + I.order]; }
  set order(v: number) { this.s.i32[this.oi + I.order] = v; }
  get firstSeq(): number { return this.s.f64[this.of + F.firstSeq]; }
  set firstSeq(v: number) { this.s.f64[this.of + F.firstSeq] = v; }
  get lastSeq(): number { return this.s.f64[this.of + F.lastSeq]; }
  set lastSeq(v: number) { this.s.f64[this.of + F.lastSeq] = v; }
  get lastMt(): number { return this.s.i32[this.oi + I.lastMt]; }
  set lastMt(v: number) { this.s.i32[this.oi + I.lastMt] = v; }
  get cmaSeen(): boolean { return this.s.i32[this.oi + I.cmaSeen] !== 0; }
  set cmaSeen(v: boolean) { this.s.i32[this.oi + I.cmaSeen] = v ? 1 : 0; }
  get zoneDevice(): boolean { return this.s.i32[this.oi + I.zoneDevice] !== 0; }
  set zoneDevice(v: boolean) { this.s.i32[this.oi + I.zoneDevice] = v ? 1 : 0; }
  get refMax(): number { return this.s.i32[this.oi + I.refMax]; }
  set refMax(v: number) { this.s.i32[this.oi + I.refMax] = v; }
  get refEvents(): number { return this.s.i32[this.oi + I.refEvents]; }
  set refEvents(v: number) { this.s.i32[this.oi + I.refEvents] = v; }
  get lifeEpoch(): number { return this.s.i32[this.oi + I.lifeEpoch]; }
  set lifeEpoch(v: number) { this.s.i32[this.oi + I.lifeEpoch] = v; }
  /** CPUs this lifetime's events came from (lost.ts cpuBit mask; -1 = every CPU, after a count showed lost events). */
  get cpus(): number { return this.s.i32[this.oi + I.cpus]; }
  set cpus(v: number) { this.s.i32[this.oi + I.cpus] = v; }
  /** The put that brought the count to 0 (awaiting mm_page_free); -1 = none. */
  get zeroSeq(): number { return this.s.f64[this.of + F.zeroSeq]; }
  set zeroSeq(v: number) { this.s.f64[this.of + F.zeroSeq] = v; }
  get zeroTs(): number { return this.s.f64[this.of + F.zeroTs]; }
  set zeroTs(v: number) { this.s.f64[this.of + F.zeroTs] = v; }
  get zeroName(): number { return this.s.i32[this.oi + I.zeroName]; }
  set zeroName(v: number) { this.s.i32[this.oi + I.zeroName] = v; }
  get zeroPid(): number { return this.s.i32[this.oi + I.zeroPid]; }
  set zeroPid(v: number) { this.s.i32[this.oi + I.zeroPid] = v; }
  get zeroComm(): number { return this.s.i32[this.oi + I.zeroComm]; }
  set zeroComm(v: number) { this.s.i32[this.oi + I.zeroComm] = v; }
  get frozen(): boolean { return this.s.i32[this.oi + I.frozen] !== 0; }
  set frozen(v: boolean) { this.s.i32[this.oi + I.frozen] = v ? 1 : 0; }
  // ---- refcount model (refcheck.ts)
  get count(): number { return this.s.i32[this.oi + I.count]; }
  set count(v: number) { this.s.i32[this.oi + I.count] = v; }
  get mapcount(): number { return this.s.i32[this.oi + I.mapcount]; }
  set mapcount(v: number) { this.s.i32[this.oi + I.mapcount] = v; }
  get chkEpoch(): number { return this.s.i32[this.oi + I.chkEpoch]; }
  set chkEpoch(v: number) { this.s.i32[this.oi + I.chkEpoch] = v; }
  get shadow(): number { return this.s.i32[this.oi + I.shadow]; }
  set shadow(v: number) { this.s.i32[this.oi + I.shadow] = v; }
  get shadowCpu(): number { return this.s.i32[this.oi + I.shadowCpu]; }
  set shadowCpu(v: number) { this.s.i32[this.oi + I.shadowCpu] = v; }
  get shadowDiv(): number { return this.s.i32[this.oi + I.shadowDiv]; }
  set shadowDiv(v: number) { this.s.i32[this.oi + I.shadowDiv] = v; }
  /** seq of the previous event that touched this pfn (coalescing: "no other event in between"). */
  get lastEvSeq(): number { return this.s.f64[this.of + F.lastEvSeq]; }
  set lastEvSeq(v: number) { this.s.f64[this.of + F.lastEvSeq] = v; }
  // ---- coalescing (pins.ts): the previous refcount change of this pfn, if it was the last event on it
  get grpPid(): number { return this.s.i32[this.oi + I.grpPid]; }
  set grpPid(v: number) { this.s.i32[this.oi + I.grpPid] = v; }
  get grpLastSeq(): number { return this.s.f64[this.of + F.grpLastSeq]; }
  set grpLastSeq(v: number) { this.s.f64[this.of + F.grpLastSeq] = v; }
  /** Its delta. */
  get grpPrev(): number { return this.s.i32[this.oi + I.grpPrev]; }
  set grpPrev(v: number) { this.s.i32[this.oi + I.grpPrev] = v; }
  get grpSeq(): number { return this.s.f64[this.of + F.grpSeq]; }
  set grpSeq(v: number) { this.s.f64[this.of + F.grpSeq] = v; }
  get grpTs(): number { return this.s.f64[this.of + F.grpTs]; }
  set grpTs(v: number) { this.s.f64[this.of + F.grpTs] = v; }
  get grpTgid(): number { return this.s.i32[this.oi + I.grpTgid]; }
  set grpTgid(v: number) { this.s.i32[this.oi + I.grpTgid] = v; }
  get grpComm(): number { return this.s.i32[this.oi + I.grpComm]; }
  set grpComm(v: number) { this.s.i32[this.oi + I.grpComm] = v; }
  get grpStack(): number { return this.s.i32[this.oi + I.grpStack]; }
  set grpStack(v: number) { this.s.i32[this.oi + I.grpStack] = v; }
  get grpCpu(): number { return this.s.i32[this.oi + I.grpCpu]; }
  set grpCpu(v: number) { this.s.i32[this.oi + I.grpCpu] = v; }
  get grpMt(): number { return this.s.i32[this.oi + I.grpMt]; }
  set grpMt(v: number) { this.s.i32[this.oi + I.grpMt] = v; }
  get grpFlags(): number { return this.s.f64[this.of + F.grpFlags]; }
  set grpFlags(v: number) { this.s.f64[this.of + F.grpFlags] = v; }
  get grpProbe(): boolean { return this.s.i32[this.oi + I.grpProbe] !== 0; }
  set grpProbe(v: boolean) { this.s.i32[this.oi + I.grpProbe] = v ? 1 : 0; }
  /** Refs of a held-back -1023k (possible first half of an unpin pair) not yet applied to holds, and its event. */
  get grpDefer(): number { return this.s.i32[this.oi + I.grpDefer]; }
  set grpDefer(v: number) { this.s.i32[this.oi + I.grpDefer] = v; }
  get defSeq(): number { return this.s.f64[this.of + F.defSeq]; }
  set defSeq(v: number) { this.s.f64[this.of + F.defSeq] = v; }
  get defTs(): number { return this.s.f64[this.of + F.defTs]; }
  set defTs(v: number) { this.s.f64[this.of + F.defTs] = v; }
  get defPid(): number { return this.s.i32[this.oi + I.defPid]; }
  set defPid(v: number) { this.s.i32[this.oi + I.defPid] = v; }
  get defComm(): number { return this.s.i32[this.oi + I.defComm]; }
  set defComm(v: number) { this.s.i32[this.oi + I.defComm] = v; }
  // ---- open pins (pins.ts) and plain references (holds.ts)
  get pinRefs(): number { return this.s.i32[this.oi + I.pinRefs]; }
  set pinRefs(v: number) { this.s.i32[this.oi + I.pinRefs] = v; }
  /** What the open pins add to the refcount (1024 per small-folio pin, refs on a large folio). */
  get pinCount(): number { return this.s.i32[this.oi + I.pinCount]; }
  set pinCount(v: number) { this.s.i32[this.oi + I.pinCount] = v; }
  get holdRefs(): number { return this.s.i32[this.oi + I.holdRefs]; }
  set holdRefs(v: number) { this.s.i32[this.oi + I.holdRefs] = v; }
  /** References of open holds taken through GUP (FOLL_GET). */
  get gupRefs(): number { return this.s.i32[this.oi + I.gupRefs]; }
  set gupRefs(v: number) { this.s.i32[this.oi + I.gupRefs] = v; }
  // ---- refcount baseline (baseline.ts)
  /** Page cache / swap cache (+1) and fs private (+1) references the flags and mapping of the last event show. */
  get owners(): number { return this.s.i32[this.oi + I.owners]; }
  set owners(v: number) { this.s.i32[this.oi + I.owners] = v; }
  /** Lowest unowned count of the lifetime; NO = not yet known. */
  get baseLow(): number { return this.s.i32[this.oi + I.baseLow]; }
  set baseLow(v: number) { this.s.i32[this.oi + I.baseLow] = v; }
  /** The event that last raised the unowned count above baseLow (-1: it is at the baseline). */
  get exSeq(): number { return this.s.f64[this.of + F.exSeq]; }
  set exSeq(v: number) { this.s.f64[this.of + F.exSeq] = v; }
  get exTs(): number { return this.s.f64[this.of + F.exTs]; }
  set exTs(v: number) { this.s.f64[this.of + F.exTs] = v; }
  get exPid(): number { return this.s.i32[this.oi + I.exPid]; }
  set exPid(v: number) { this.s.i32[this.oi + I.exPid] = v; }
  get exComm(): number { return this.s.i32[this.oi + I.exComm]; }
  set exComm(v: number) { this.s.i32[this.oi + I.exComm] = v; }
  get exStack(): number { return this.s.i32[this.oi + I.exStack]; }
  set exStack(v: number) { this.s.i32[this.oi + I.exStack] = v; }
}
