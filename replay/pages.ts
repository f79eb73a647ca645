/**
 * The lifetime tracker that owns the `pages` table, over the per-pfn page state every tracker shares (page.ts).
 *
 * A Page exists while its pfn has an open lifetime: from an allocation (mm_page_alloc, page_ref_set val>=1 on a
 * pfn that is not alive, zone_device_page_init) or from its first event when the capture started after the
 * allocation (start_edge), to its free (mm_page_free / mm_page_free_batched of the pfn or of a folio containing
 * it, or for ZONE_DEVICE pages the put that reaches 0 / free_zone_device_page). Then its row is written and the
 * entry is deleted, so memory follows live pages, not events. Page objects (and their store rows) are pooled.
 *
 * 6.1 prints page_ref_set just before mm_page_alloc: the pair is one allocation (the lifetime starts at the set,
 * the mm_page_alloc fills in order, gfp, migratetype). A page whose count reached 0 without an mm_page_free before
 * it is allocated again (or before the trace ends) is taken as freed at that put.
 *
 * Freed pfns are remembered in a paged bitmap (FreedSet) so a reference taken after a free can be told apart from
 * a window edge; a lost-event window demotes every remembered free to "uncertain". A get/put on a remembered free
 * whose printed count shows the page alive before it is an untraced allocation (gaps.ts 'alive-on-free'), not a bug.
 */
import type { Anomalies } from './anomalies.js';
import type { ReplayContext } from './context.js';
import { isRefCode, PR_FREEZE, PR_SET, PR_UNFREEZE, type Ev } from './event.js';
import { replayCode } from '../ingest/decode/catalogue.js';
import { demoteOpen } from './gaps.js';
import { cpuBit, GAP_EPOCH, type LostWindows } from './lost.js';
import { ptr, type ColumnWriter, type Output } from './output.js';
import { PfnMap } from './pfnmap.js';
import { PAGES } from '../db/tables/replay.js';
import { NO, nz, Page, PageStore } from './page.js';
import { MAX_ORDER as MAX_INGEST_ORDER } from '../ingest/decode/limits.js';

export const MAX_ORDER = 10;

export { NO, nz, Page } from './page.js';

/** Paged bitmaps of freed pfns: certain frees, and frees from before the last lost-event window. */
/** Bitmap page of a pfn (32768 pfns per page): integer ops while pfn < 2^32 so Map keys stay small integers. */
const chunkOf = (pfn: number): number => (pfn < 4294967296 ? pfn >>> 15 : Math.floor(pfn / 32768));

export class FreedSet {
  private certain = new Map<number, Uint32Array>();
  private uncertain = new Map<number, Uint32Array>();
  private hasUncertain = false;
  /** Frees of lifetimes that had page_ref events (their refcount was traced): a second free of one is evidence. */
  private readonly traced = new Map<number, Uint32Array>();

  set(pfn: number, traced = false): void {
    const key = chunkOf(pfn);
    let a = this.certain.get(key);
    if (!a) this.certain.set(key, (a = new Uint32Array(1024)));
    const off = pfn - key * 32768;
    a[off >>> 5] |= 1 << (off & 31);
    let t = this.traced.get(key);
    if (traced) {
      if (!t) this.traced.set(key, (t = new Uint32Array(1024)));
      t[off >>> 5] |= 1 << (off & 31);
    } else if (t) t[off >>> 5] &= ~(1 << (off & 31));
  }

  /** The last free of `pfn` ended a lifetime whose page_ref events were traced. */
  wasTraced(pfn: number): boolean {
    const key = chunkOf(pfn);
    const t = this.traced.get(key);
    const off = pfn - key * 32768;
    return t !== undefined && (t[off >>> 5] & (1 << (off & 31))) !== 0;
  }

  clear(pfn: number): void {
    const key = chunkOf(pfn);
    const off = pfn - key * 32768;
    const a = this.certain.get(key);
    if (a) a[off >>> 5] &= ~(1 << (off & 31));
    if (this.hasUncertain) {
      const u = this.uncertain.get(key);
      if (u) u[off >>> 5] &= ~(1 << (off & 31));
    }
  }

  /** 0 = not known freed, 1 = freed (certain), 2 = freed before a lost-event window. */
  state(pfn: number): number {
    const key = chunkOf(pfn);
    const off = pfn - key * 32768;
    const a = this.certain.get(key);
    if (a && (a[off >>> 5] & (1 << (off & 31))) !== 0) return 1;
    if (this.hasUncertain) {
      const u = this.uncertain.get(key);
      if (u && (u[off >>> 5] & (1 << (off & 31))) !== 0) return 2;
    }
    return 0;
  }

  /** A lost-event window: any remembered free may have been followed by an unseen allocation. */
  demote(): void {
    for (const [k, a] of this.certain) {
      const u = this.uncertain.get(k);
      if (!u) this.uncertain.set(k, a);
      else for (let i = 0; i < 1024; i++) u[i] |= a[i];
    }
    this.certain = new Map();
    this.hasUncertain = this.uncertain.size > 0;
  }
}

export class PageTable {
  readonly map = new PfnMap<Page>();
  readonly freed = new FreedSet();
  private readonly store = new PageStore();
  private readonly pool: Page[] = [];
  /** Column handles of the `pages` writer. */
  private readonly c: PageCols;
  /** Called before a page's state is dropped (free or abandoned) so pins/holds still open can be closed. */
  onRelease: ((p: Page) => void) | null = null;
  /** Live large folios (order > 0) by head pfn: lets a tail pfn find its head. */
  private readonly large = new PfnMap<Page>();
  private largeMaxOrder = 0;
  /** Ev.name -> 1 when the event is a page_ref_* / folio_ref_* put (a lifetime that ended at refcount 0 there). */
  private readonly refFree: Uint8Array;
  /**
   * Lifetimes written that could make a memory section device memory (pgmaps-infer.ts): ZONE_DEVICE with no pgmap,
   * or begun by page_ref_set and ended by a put. When none was written (and no stack has zone_device_page_init),
   * the inference has nothing to find and is not run.
   */
  deviceHints = 0;
  /** Rows written. */
  get rows(): number {
    return this.out.pages.count;
  }

  constructor(
    private readonly out: Output,
    private readonly ctx: ReplayContext,
    private readonly lost: LostWindows,
    private readonly anomalies: Anomalies,
    /** Event-name table (Ev.name -> name). */
    names: string[],
  ) {
    this.c = new PageCols(out.pages, out, names);
    this.refFree = Uint8Array.from(names, (n) => (isRefCode(replayCode(n)) ? 1 : 0));
  }

  get(pfn: number): Page | undefined {
    return this.map.get(pfn);
  }

  private create(pfn: number, ev: Ev): Page {
    const p = this.pool.pop() ?? new Page(this.store);
    p.reset(pfn);
    p.firstSeq = ev.seq;
    p.lastSeq = ev.seq;
    p.lifeEpoch = this.lost.epoch;
    p.chkEpoch = this.lost.epoch;
    p.cpus = cpuBit(ev.cpu);
    this.map.set(pfn, p);
    return p;
  }

  private startLifetime(p: Page, ev: Ev, allocEvent: string): void {
    p.startEdge = false;
    p.allocSeq = ev.seq;
    p.allocTs = ev.ts;
    p.allocEvent = allocEvent;
    p.allocPid = ev.pid;
    p.allocTgid = ev.tgid;
    p.allocComm = ev.comm;
    p.allocStack = ev.stack;
    this.freed.clear(p.pfn);
  }

  /** Live large folio containing `pfn` as a tail, if any. */
  findHead(pfn: number): Page | undefined {
    if (this.large.size === 0) return undefined;
    for (let o = 1, size = 2; o <= this.largeMaxOrder; o++, size *= 2) {
      const h = pfn - (pfn % size);
      if (h === pfn) continue;
      const p = this.large.get(h);
      if (p && p.order >= o) return p;
    }
    return undefined;
  }

  /**
   * The page a page_ref event refers to, creating it when the event shows a page in use; null when the event
   * changes nothing on a page that is not alive (a failed speculative get on a free page) or shows a reference
   * taken on a freed page (reported here).
   */
  forRef(ev: Ev, delta: number): Page | null {
    const pfn = ev.pfn;
    const existing = this.map.get(pfn);
    if (existing) return existing;
    const head = ev.code === PR_SET ? undefined : this.findHead(pfn);
    if (head) {
      // A tail of a live large folio gets its own refcount: the folio was split. Same allocation.
      const p = this.create(pfn, ev);
      p.allocSeq = head.allocSeq;
      p.allocTs = head.allocTs;
      p.allocEvent = 'split';
      p.allocPid = head.allocPid;
      p.allocTgid = head.allocTgid;
      p.allocComm = head.allocComm;
      p.allocStack = head.allocStack;
      p.gfp = head.gfp;
      p.migratetype = head.migratetype;
      p.startEdge = head.startEdge;
      p.order = 0;
      p.kmemAlloc = true;
      p.zoneDevice = head.zoneDevice;
      p.pgmap = head.pgmap;
      p.firstSeq = head.firstSeq;
      p.cpus |= head.cpus;
      return p;
    }
    const code = ev.code;
    const printed = ev.count;
    if (code === PR_SET) {
      if (!(ev.val > 0)) return null;
      const p = this.create(pfn, ev);
      this.startLifetime(p, ev, 'page_ref_set');
      return p;
    }
    const freed = this.freed.state(pfn);
    if (delta === 0) {
      // A failed speculative get (get_page_unless_zero on a free page), or a freeze that failed: nothing changed.
      if (printed === 0 || printed !== printed || freed !== 0) return null;
    } else if (freed !== 0) {
      // count= is the kernel's re-read after the op: printed - delta is the count before it. A page that was alive
      // before the op (prior > 0) was allocated again while its events were not traced: evidence of missed events,
      // never a use-after-free (docs/model.md §16). A free page (prior 0, or no count printed) is the real bug.
      const prior = printed === printed ? printed - delta : NaN;
      if (prior > 0) {
        const p = this.create(pfn, ev);
        p.startEdge = true;
        this.freed.clear(pfn);
        if (freed === 1) {
          // Nothing the tracer marked explains it: the page's history has an untraced piece (a window of its own).
          p.lifeEpoch = GAP_EPOCH;
          p.chkEpoch = GAP_EPOCH;
          // (A fresh page: the free closed its pins and holds, so nothing open is demoted; kept for the rule's sake.)
          demoteOpen(p);
          this.lost.inferred.push({
            seq: ev.seq, ts: ev.ts, cpu: ev.cpu >= 0 ? ev.cpu : null, pfn, kind: 'alive-on-free',
            evidence: `${delta > 0 ? 'get' : 'put'} on pfn ${hx(pfn)} printed count=${printed} (${prior} before it) after its free: an allocation was not traced`,
          });
        }
        return p;
      }
      const certain = freed === 1;
      if (delta > 0)
        this.anomalies.add('ref_after_free', certain, pfn, ev, `reference taken on pfn ${hx(pfn)} after it was freed, with no allocation in between`);
      // A put that prints a count below 0 is reported by the driver (the kernel's count went negative): once.
      else if (!(printed < 0)) this.anomalies.add('refcount_underflow', certain, pfn, ev, `put on pfn ${hx(pfn)} after it was freed`);
    }
    const p = this.create(pfn, ev);
    p.startEdge = true;
    this.freed.clear(pfn);
    return p;
  }

  /**
   * page_ref_set val>=1 on a page whose count reached 0 without an mm_page_free: it was freed at that put and is
   * allocated again now. Returns the page to use for this event.
   */
  reallocAfterZero(p: Page, ev: Ev): Page {
    const pfn = p.pfn;
    this.endAtZero(p);
    const n = this.create(pfn, ev);
    this.startLifetime(n, ev, 'page_ref_set');
    return n;
  }

  /** Lifetime bookkeeping of a page_ref event (after the refcount model took the printed count). */
  onRef(p: Page, ev: Ev, delta: number): void {
    const code = ev.code;
    if (code === PR_SET && p.deviceInit) p.deviceInit = false;
    p.refEvents++;
    p.lastSeq = ev.seq;
    const c = p.count;
    if (c > p.refMax) p.refMax = c;
    const mt = ev.mt;
    if (mt === mt) {
      p.lastMt = mt;
      if (!p.cmaSeen && this.ctx.isCma(mt, p.pfn)) p.cmaSeen = true;
    }
    if (code === PR_FREEZE) {
      if (ev.ret === 1) p.frozen = true;
    } else if (code === PR_UNFREEZE) p.frozen = false;
    if (c === 0 && delta < 0) {
      p.zeroSeq = ev.seq;
      p.zeroTs = ev.ts;
      p.zeroName = ev.name;
      p.zeroPid = ev.pid;
      p.zeroComm = ev.comm;
    } else if (c > 0) p.zeroSeq = -1;
  }

  /** mm_page_alloc: merges with the page_ref_set just before it, or starts a lifetime. */
  alloc(ev: Ev): Page {
    const pfn = ev.pfn;
    // Databases ingested before the order bound (ingest/decode/limits.ts) may hold any SMALLINT: 2^order below.
    const order = ev.order === ev.order && ev.order >= 0 && ev.order <= MAX_INGEST_ORDER ? ev.order : 0;
    let p = this.map.get(pfn);
    // The page_ref_set that 6.1 prints just before (nothing else on the pfn in between) is the same allocation.
    if (p && p.allocEvent === 'page_ref_set' && !p.kmemAlloc && p.zeroSeq < 0 && p.lastEvSeq === p.allocSeq) {
      p.allocEvent = 'mm_page_alloc';
      p.allocSeq = ev.seq;
      p.allocTs = ev.ts;
      if (ev.stack >= 0) p.allocStack = ev.stack;
    } else {
      if (p) {
        if (p.zeroSeq >= 0 && !p.frozen) this.endAtZero(p);
        else this.end(p, null, true);
      }
      p = this.create(pfn, ev);
      this.startLifetime(p, ev, 'mm_page_alloc');
    }
    p.kmemAlloc = true;
    p.cpus |= cpuBit(ev.cpu);
    p.lastSeq = ev.seq;
    p.order = order;
    if (order > 0) {
      this.large.set(pfn, p);
      if (order > this.largeMaxOrder) this.largeMaxOrder = order;
    }
    p.gfp = ev.gfp;
    p.migratetype = ev.mt === ev.mt ? ev.mt : NO;
    if (ev.mt === ev.mt && this.ctx.isCma(ev.mt, pfn)) p.cmaSeen = true;
    if (order > 0) {
      const n = 2 ** order;
      for (let i = 1; i < n; i++) {
        const s = this.map.get(pfn + i);
        if (s) this.end(s, null, true); // stale state inside the new folio
        this.freed.clear(pfn + i);
      }
    }
    return p;
  }

  /** zone_device_page_init: a device page handed out by its driver (its page_ref_set follows). */
  initDevice(ev: Ev, pgmap: string | null): Page {
    const pfn = ev.pfn;
    const old = this.map.get(pfn);
    if (old) {
      if (old.zeroSeq >= 0) this.endAtZero(old);
      else this.end(old, null, true);
    }
    const p = this.create(pfn, ev);
    this.startLifetime(p, ev, 'zone_device_page_init');
    p.zoneDevice = true;
    p.deviceInit = true;
    p.pgmap = pgmap;
    p.order = 0;
    p.count = 0;
    return p;
  }

  /** End the lifetime at the put that reached 0 (no mm_page_free seen). */
  endAtZero(p: Page): void {
    this.write(p, p.zeroSeq, p.zeroTs, p.zeroName, p.zeroPid, p.zeroComm, false, false);
    this.release(p);
  }

  /**
   * End a lifetime: at a free event `ev`, or with ev = null when the state is abandoned without a free
   * (a new allocation of the pfn showed the free was not seen: uncertain).
   */
  end(p: Page, ev: Ev | null, abandoned = false): void {
    if (ev) this.write(p, ev.seq, ev.ts, ev.name, ev.pid, ev.comm, false, false);
    else this.write(p, NaN, NaN, -1, -1, -1, !abandoned, abandoned);
    this.release(p);
  }

  /** mm_page_free of a pfn never seen alive: a lifetime that started before the capture. */
  unknownFree(ev: Ev, order: number): void {
    const w = this.out.pages;
    const c = this.c;
    w.row();
    this.common(ev.pfn, order, false, false, null);
    w.num(c.free_seq, ev.seq);
    w.ts(c.free_ts_ns, ev.ts);
    w.code(c.free_event, ev.name);
    if (ev.pid >= 0) w.num(c.free_pid, ev.pid);
    w.code(c.free_comm, ev.comm);
    w.num(c.first_seq, ev.seq);
    w.num(c.last_seq, ev.seq);
    w.bool(c.start_edge, true);
    w.bool(c.end_edge, false);
    w.num(c.pins_end, 0);
    w.num(c.holds_end, 0);
    w.num(c.ref_events, 0);
    w.bool(c.uncertain, false);
  }

  /** mm_page_free of `pfn` (a page of `ev`'s free) already freed with no allocation between: an untraced window. */
  doubleFree(ev: Ev, pfn: number): void {
    this.lost.inferred.push({
      seq: ev.seq, ts: ev.ts, cpu: ev.cpu >= 0 ? ev.cpu : null, pfn, kind: 'double-free',
      evidence: `pfn ${hx(pfn)} freed again with no allocation since its free: an allocation was not traced`,
    });
  }

  /** Pages still alive at the end of the trace: their rows (the table is not used afterwards). */
  finish(): void {
    this.map.forEach((p) => {
      if (p.zeroSeq >= 0 && !p.frozen) this.write(p, p.zeroSeq, p.zeroTs, p.zeroName, p.zeroPid, p.zeroComm, false, false);
      else this.write(p, NaN, NaN, -1, -1, -1, true, false);
    });
  }

  private release(p: Page): void {
    if (this.onRelease && (p.pinRefs > 0 || p.holdRefs > 0 || (p.pins && p.pins.length > 0) || (p.holds && p.holds.length > 0))) this.onRelease(p);
    if (p.order > 0 && this.large.get(p.pfn) === p) {
      this.large.delete(p.pfn);
      if (this.large.size === 0) this.largeMaxOrder = 0;
    }
    this.map.delete(p.pfn);
    // Every released Page is kept: it owns its rows in the store (memory follows the peak of live pages).
    this.pool.push(p);
  }

  /** Columns every row has: pfn, order, CMA / device facts. */
  private common(pfn: number, order: number, cmaSeen: boolean, zoneDevice: boolean, pgmap: string | null): void {
    const w = this.out.pages;
    const c = this.c;
    w.num(c.trace_id, this.out.traceId);
    w.num(c.pfn, pfn);
    if (order >= 0) w.num(c.order, order);
    w.bool(c.in_cma, cmaSeen || this.ctx.inCmaRange(pfn));
    w.bool(c.zone_device, zoneDevice);
    w.big(c.pgmap, ptr(pgmap));
  }

  /** freeName, freeComm: ids into the event-name and comm tables (-1 = NULL). */
  private write(p: Page, freeSeq: number, freeTs: number, freeName: number, freePid: number, freeComm: number, endEdge: boolean, abandoned: boolean): void {
    const w = this.out.pages;
    const c = this.c;
    w.row();
    this.common(p.pfn, p.order, p.cmaSeen, p.zoneDevice, p.pgmap);
    const start = p.startEdge || p.allocEvent === null;
    if ((p.zoneDevice && p.pgmap === null) || (!start && p.allocEvent === 'page_ref_set' && freeName >= 0 && this.refFree[freeName] === 1))
      this.deviceHints++;
    if (!start) {
      w.num(c.alloc_seq, nz(p.allocSeq));
      w.ts(c.alloc_ts_ns, p.allocTs);
      w.str(c.alloc_event, p.allocEvent);
      if (p.allocPid >= 0) w.num(c.alloc_pid, p.allocPid);
      if (p.allocTgid >= 0) w.num(c.alloc_tgid, p.allocTgid);
      w.code(c.alloc_comm, p.allocComm);
      if (p.allocStack >= 0) w.num(c.alloc_stack_id, p.allocStack);
    }
    w.code(c.gfp, p.gfp);
    w.num(c.migratetype, nz(p.migratetype));
    w.num(c.last_mt, nz(p.lastMt));
    w.num(c.free_seq, freeSeq);
    w.ts(c.free_ts_ns, freeTs);
    w.code(c.free_event, freeName);
    if (freePid >= 0) w.num(c.free_pid, freePid);
    w.code(c.free_comm, freeComm);
    w.num(c.first_seq, p.firstSeq);
    w.num(c.last_seq, freeSeq === freeSeq && freeSeq > p.lastSeq ? freeSeq : p.lastSeq);
    w.bool(c.start_edge, start);
    w.bool(c.end_edge, endEdge);
    w.num(c.refcount_end, nz(p.count));
    w.num(c.refcount_max, nz(p.refMax));
    w.num(c.mapcount_end, nz(p.mapcount));
    w.num(c.pins_end, p.pinRefs);
    w.num(c.holds_end, p.holdRefs);
    w.num(c.ref_events, p.refEvents);
    w.bool(c.uncertain, abandoned || this.lost.crossed(p.lifeEpoch, p.cpus));
  }
}

/** Column handles of `pages` as fixed fields (no lookups by name per row). */
class PageCols {
  readonly trace_id: number;
  readonly pfn: number;
  readonly order: number;
  readonly alloc_seq: number;
  readonly alloc_ts_ns: number;
  readonly free_seq: number;
  readonly free_ts_ns: number;
  readonly first_seq: number;
  readonly last_seq: number;
  readonly alloc_event: number;
  readonly free_event: number;
  readonly alloc_pid: number;
  readonly alloc_tgid: number;
  readonly alloc_comm: number;
  readonly alloc_stack_id: number;
  readonly free_pid: number;
  readonly free_comm: number;
  readonly gfp: number;
  readonly migratetype: number;
  readonly last_mt: number;
  readonly in_cma: number;
  readonly zone_device: number;
  readonly pgmap: number;
  readonly start_edge: number;
  readonly end_edge: number;
  readonly refcount_end: number;
  readonly refcount_max: number;
  readonly mapcount_end: number;
  readonly pins_end: number;
  readonly holds_end: number;
  readonly ref_events: number;
  readonly uncertain: number;

  constructor(w: ColumnWriter, out: Output, names: string[]) {
    this.trace_id = w.col('trace_id');
    this.pfn = w.col('pfn');
    this.order = w.col('order');
    this.alloc_seq = w.col('alloc_seq');
    this.alloc_ts_ns = w.tsCol('alloc_ts_ns');
    this.free_seq = w.col('free_seq');
    this.free_ts_ns = w.tsCol('free_ts_ns');
    this.first_seq = w.col('first_seq');
    this.last_seq = w.col('last_seq');
    this.alloc_event = w.col('alloc_event');
    this.free_event = w.coded('free_event', names);
    this.alloc_pid = w.col('alloc_pid');
    this.alloc_tgid = w.col('alloc_tgid');
    this.alloc_comm = w.coded('alloc_comm', out.comms);
    this.alloc_stack_id = w.col('alloc_stack_id');
    this.free_pid = w.col('free_pid');
    this.free_comm = w.coded('free_comm', out.comms);
    this.gfp = w.coded('gfp', out.gfps);
    this.migratetype = w.col('migratetype');
    this.last_mt = w.col('last_mt');
    this.in_cma = w.col('in_cma');
    this.zone_device = w.col('zone_device');
    this.pgmap = w.col('pgmap');
    this.start_edge = w.col('start_edge');
    this.end_edge = w.col('end_edge');
    this.refcount_end = w.col('refcount_end');
    this.refcount_max = w.col('refcount_max');
    this.mapcount_end = w.col('mapcount_end');
    this.pins_end = w.col('pins_end');
    this.holds_end = w.col('holds_end');
    this.ref_events = w.col('ref_events');
    this.uncertain = w.col('uncertain');
    // Every schema column must have a field here: a column added to PAGES without one would stay NULL.
    for (const c of PAGES.columns) if (!(c.name in this)) throw new Error(`pages.${c.name} has no column handle`);
  }
}

const hx = (pfn: number): string => '0x' + pfn.toString(16);
