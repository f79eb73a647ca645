/**
 * The replay driver: takes each event of the stream (source.ts) and dispatches it to the trackers that care.
 */
import type { Anomalies } from './anomalies.js';
import type { Baseline } from './baseline.js';
import type { CmaTracker } from './cma.js';
import type { ReplayContext } from './context.js';
import {
  ACR,
  ACR_RET,
  CMA_BUSY,
  CMA_FINISH,
  CMA_RELEASE,
  CMA_START,
  Ev,
  GUP_CALL,
  GUP_CALL_RET,
  GUP_GRAB,
  GUP_PUT_FOLIO,
  GUP_UNPIN_PAGE,
  KM_ALLOC,
  KM_FREE,
  KM_FREE_BATCHED,
  MIGRATE,
  PGM_GET_RET,
  PGM_RELEASE,
  PGM_REMAP,
  PGM_REMAP_RET,
  PGM_UNMAP,
  PGM_UNMAP_RET,
  PR_SET,
  PR_UNFREEZE,
  RAW_MAP,
  RAW_ZAP,
  SYS_MUNMAP,
  TASK_EXIT,
  TASK_FORK,
  TPI,
  ZD_FREE,
  ZD_INIT,
} from './event.js';
import type { GupContext } from './gup.js';
import type { Holds } from './holds.js';
import type { Output } from './output.js';
import { cpuBit, type LostWindows } from './lost.js';
import { NO, type Page, type PageTable } from './pages.js';
import type { PgmapTracker } from './pgmaps.js';
import { A_CANCEL, A_GET, A_PUT, type Pins } from './pins.js';
import type { RawMaps } from './rawmaps.js';
import type { Tasks } from './tasks.js';
import type { EventSink, EventStream } from './source.js';
import { refDelta, type RefCheck } from './refcheck.js';

/** Result rows queued for insertion (TableFeed) beyond which the replay waits for DuckDB. */
const MAX_BACKLOG_ROWS = 64 * 2048;

export interface Trackers {
  ctx: ReplayContext;
  lost: LostWindows;
  pages: PageTable;
  refcheck: RefCheck;
  gup: GupContext;
  pins: Pins;
  holds: Holds;
  cma: CmaTracker;
  pgmaps: PgmapTracker;
  rawmaps: RawMaps;
  tasks: Tasks;
  anomalies: Anomalies;
  baseline: Baseline;
}

export class Driver implements EventSink {
  private demotedAt = 0;

  constructor(
    private readonly stream: EventStream,
    private readonly out: Output,
    private readonly t: Trackers,
  ) {
    t.pages.onRelease = (p) => this.abandon(p);
  }

  get events(): number {
    return this.stream.events;
  }

  get lastTs(): number {
    return this.stream.lastTs;
  }

  async run(ordered: boolean): Promise<void> {
    await this.stream.run(ordered, this);
    await this.finish();
  }

  advance(seq: number): void {
    const lost = this.t.lost;
    lost.advance(seq);
    if (lost.epoch !== this.demotedAt) {
      this.demotedAt = lost.epoch;
      this.t.pages.freed.demote();
    }
  }

  beforeChunk(): Promise<void> | undefined {
    // Rows wait in memory until DuckDB's thread inserts them: keep that bounded.
    return this.out.backlog > MAX_BACKLOG_ROWS ? this.out.drain() : undefined;
  }

  event(ev: Ev): void {
    this.dispatch(ev);
  }

  private dispatch(ev: Ev): void {
    const t = this.t;
    switch (ev.code) {
      case TASK_EXIT:
        t.tasks.exit(ev);
        return;
      case TASK_FORK:
        t.tasks.fork(ev);
        return;
      case KM_ALLOC:
        if (ev.pfn > 0) t.pages.alloc(ev).lastEvSeq = ev.seq;
        return;
      case KM_FREE:
      case KM_FREE_BATCHED:
        if (ev.pfn > 0) this.kmemFree(ev);
        return;
      case GUP_GRAB:
        t.gup.grab(ev);
        this.touch(ev);
        return;
      case GUP_PUT_FOLIO:
        t.gup.putFolio(ev);
        this.touch(ev);
        return;
      case GUP_UNPIN_PAGE:
        t.gup.unpinPage(ev);
        this.touch(ev);
        return;
      case GUP_CALL:
        t.gup.call(ev);
        return;
      case GUP_CALL_RET:
        t.gup.callRet(ev);
        return;
      case RAW_MAP:
        t.rawmaps.map(ev, t.lost.epoch);
        return;
      case RAW_ZAP:
        t.rawmaps.unmap(ev, false);
        return;
      case SYS_MUNMAP:
        t.rawmaps.unmap(ev, true);
        return;
      case CMA_START:
        t.cma.start(ev);
        return;
      case CMA_BUSY:
        t.cma.busyRetry(ev);
        return;
      case CMA_FINISH:
        t.cma.finish(ev);
        return;
      case CMA_RELEASE:
        t.cma.release(ev);
        return;
      case ACR:
        t.cma.contigRange(ev);
        return;
      case ACR_RET:
        t.cma.contigRangeRet(ev);
        return;
      case TPI:
        t.cma.testIsolated(ev);
        return;
      case MIGRATE:
        t.cma.migrated(ev);
        t.gup.migrated(ev);
        return;
      case PGM_REMAP:
        t.pgmaps.remap(ev);
        return;
      case PGM_REMAP_RET:
        t.pgmaps.remapRet(ev);
        return;
      case PGM_UNMAP:
        t.pgmaps.unmap(ev);
        return;
      case PGM_UNMAP_RET:
        t.pgmaps.unmapRet(ev);
        return;
      case PGM_GET_RET:
        t.pgmaps.getDevPagemapRet(ev);
        return;
      case PGM_RELEASE:
        t.pgmaps.release(ev);
        return;
      case ZD_INIT:
        if (ev.pfn >= 0) t.pages.initDevice(ev, t.pgmaps.init(ev)).lastEvSeq = ev.seq;
        return;
      case ZD_FREE:
        if (ev.pfn >= 0) this.deviceFree(ev);
        return;
      default:
        if (ev.code <= PR_UNFREEZE) {
          if (ev.pfn >= 0) this.pageRef(ev);
        }
    }
  }

  private touch(ev: Ev): void {
    if (ev.pfn < 0) return;
    const p = this.t.pages.get(ev.pfn);
    if (p) {
      p.lastEvSeq = ev.seq;
      p.cpus |= cpuBit(ev.cpu);
    }
  }

  private pageRef(ev: Ev): void {
    const t = this.t;
    const delta = refDelta(ev);
    let p = t.pages.forRef(ev, delta);
    if (p === null) return;
    if (ev.code === PR_SET && ev.val > 0 && p.zeroSeq >= 0 && !p.frozen) p = t.pages.reallocAfterZero(p, ev);
    if (p.refEvents === 0 && !p.zoneDevice && t.pgmaps.hasRanges) {
      const owner = t.pgmaps.ownerOf(p.pfn);
      if (owner !== null) {
        p.zoneDevice = true;
        p.pgmap = owner;
      }
    }
    p.cpus |= cpuBit(ev.cpu);
    const prevMap = p.mapcount;
    const prevCount = p.count;
    const steady = !t.lost.crossed(p.chkEpoch, p.cpus);
    t.refcheck.check(p, ev);
    if (p.count !== NO && p.count < 0 && !(prevCount !== NO && prevCount < 0))
      t.anomalies.add('refcount_underflow', steady && !t.lost.crossed(p.lifeEpoch, p.cpus), p.pfn, ev,
        `refcount of pfn 0x${p.pfn.toString(16)} went below 0 (${p.count})`);
    t.pages.onRef(p, ev, delta);
    if (ev.mapcount === ev.mapcount) p.mapcount = ev.mapcount;
    if (ev.owners >= 0) p.owners = ev.owners;
    if (delta !== 0) {
      const pins = t.pins;
      const holds = t.holds;
      const grab = delta > 0 ? t.gup.takeGrab(ev.pid, p.pfn, p.order) : null;
      const unpin = delta < 0 ? t.gup.takeUnpin(ev.pid, p.pfn) : null;
      const act = pins.classify(p, ev, delta, grab, unpin);
      for (const f of pins.flushes) holds.put(f.page, f.seq, f.ts, f.pid, f.comm, f.deferred);
      const mc = ev.mapcount;
      if (act === A_GET) {
        // A get whose event shows the page newly mapped is the mapping's own reference, not a hold.
        // (A fresh fault's +1 while the page is off the LRU is the LRU batch's: holds.mapped notes it for the drain.)
        const fresh = prevMap !== NO && mc > prevMap;
        if (fresh) holds.mapped(p, ev);
        pins.attach(!fresh ? holds.get(p, ev, delta, grab) : null);
      } else if (act === A_PUT) {
        // A put whose event shows the mapcount dropped returns the mapping's reference (zap/munmap).
        // One whose event shows it risen, with no get that showed it: the latest plain get was that mapping's (fork).
        if (prevMap !== NO && mc > prevMap) holds.mapRose(p);
        if (!(mc < prevMap)) holds.put(p, ev.seq, ev.ts, ev.pid, ev.comm, -delta, ev);
      } else if (act === A_CANCEL) {
        const h = pins.cancelled;
        if (h) holds.cancel(p, h);
        pins.cancelled = null;
      }
      if (delta < 0 && p.count === 0) {
        // The last reference went: everything held is returned.
        holds.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm);
        if (p.pinRefs > 0) pins.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm, ev.stack, null);
        if (p.zoneDevice) {
          t.pgmaps.zero(ev, p.pfn, p.pgmap);
          this.freeChecks(p, ev);
          t.pages.end(p, ev);
          t.pages.freed.set(ev.pfn);
          t.rawmaps.forget(ev.pfn);
          return;
        }
      }
    }
    t.baseline.update(p, ev);
    p.lastEvSeq = ev.seq;
  }

  /** Anomalies a free can show; then the pins and holds still open end with it. */
  private freeChecks(p: Page, ev: Ev): void {
    const t = this.t;
    const raw = t.rawmaps.size > 0 ? t.rawmaps.mapped(p.pfn) : undefined;
    if (raw)
      t.anomalies.add('freed_while_mapped', !t.lost.crossedAny(raw.epoch), p.pfn, ev,
        `pfn 0x${p.pfn.toString(16)} freed while a raw PFN mapping (event ${raw.seq}, address 0x${raw.addr.toString(16)}) still maps it`);
    else if ((p.zeroSeq >= 0 || p.count === 0) && t.ctx.mapped(p.mapcount))
      // Only when the put that freed it was seen: with a count still > 0 the page_ref history is incomplete
      // (events disabled, filtered or lost) and the last mapcount printed is stale.
      t.anomalies.add('freed_while_mapped', !t.lost.crossed(p.chkEpoch, p.cpus), p.pfn, ev,
        `pfn 0x${p.pfn.toString(16)} freed while its last event showed mapcount=${p.mapcount}`);
    if (p.pinRefs > 0) t.pins.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm, ev.stack, ev);
    t.holds.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm);
  }

  private kmemFree(ev: Ev): void {
    const t = this.t;
    const order = ev.order === ev.order && ev.order > 0 && ev.order <= 20 ? ev.order : 0;
    const n = 2 ** order;
    let doubled = false;
    for (let i = 0; i < n; i++) {
      const pfn = ev.pfn + i;
      const p = t.pages.get(pfn);
      // mm_page_free_batched follows the mm_page_free that free_pages_prepare() printed for the same free
      // (free_unref_page_list / free_unref_folios print both): on a pfn already freed it is not another free.
      if (!p && ev.code === KM_FREE_BATCHED && t.pages.freed.state(pfn) !== 0) continue;
      if (p) {
        if (i === 0 && p.order < 0) p.order = order;
        p.cpus |= cpuBit(ev.cpu);
        this.freeChecks(p, ev);
        t.pages.end(p, ev);
      } else {
        if (i === 0) t.pages.unknownFree(ev, order);
        // A free of a pfn already freed, no allocation between: the allocation was not traced (gaps.ts). Only when the
        // freed lifetime's page_ref events were traced: kmem-only captures free pages whose allocation has no
        // mm_page_alloc (the bulk allocator) without any gap in the tracing.
        if (!doubled && ev.code === KM_FREE && t.pages.freed.state(pfn) === 1 && t.pages.freed.wasTraced(pfn)) {
          doubled = true;
          t.pages.doubleFree(ev, pfn);
        }
        const raw = t.rawmaps.size > 0 ? t.rawmaps.mapped(pfn) : undefined;
        if (raw)
          t.anomalies.add('freed_while_mapped', !t.lost.crossedAny(raw.epoch), pfn, ev,
            `pfn 0x${pfn.toString(16)} freed while a raw PFN mapping (event ${raw.seq}) still maps it`);
      }
      t.pages.freed.set(pfn, p !== undefined && p.refEvents > 0);
      if (t.rawmaps.size > 0) t.rawmaps.forget(pfn);
    }
  }

  /** free_zone_device_page: the pgmap reference goes; ends the device page's lifetime if still open. */
  private deviceFree(ev: Ev): void {
    const t = this.t;
    t.pgmaps.free(ev);
    const p = t.pages.get(ev.pfn);
    if (p && (p.zoneDevice || p.count === NO || p.count === 0)) {
      p.cpus |= cpuBit(ev.cpu);
      this.freeChecks(p, ev);
      t.pages.end(p, ev);
      t.pages.freed.set(ev.pfn);
    }
  }

  /** A page's state is dropped without a free (a new allocation of its pfn): close what it still holds. */
  private abandon(p: Page): void {
    const ev = this.stream.ev;
    if (p.pinRefs > 0 || (p.pins && p.pins.length)) this.t.pins.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm, ev.stack, null);
    if (p.holds && p.holds.length) this.t.holds.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm);
  }

  private async finish(): Promise<void> {
    const t = this.t;
    t.lost.finish();
    const end = this.lastTs;
    t.pins.resolveAll();
    for (const f of t.pins.flushes) t.holds.put(f.page, f.seq, f.ts, f.pid, f.comm, f.deferred);
    // Pins still open and pgmap references still held ask the tasks who forked from their holder (Tasks.release).
    const tasks = t.tasks;
    if (t.pins.holdersAtEnd(t.pages.map, (pid, tgid, seq) => tasks.needsChildren(pid, tgid, seq)) ||
      t.pgmaps.holdersAtEnd((pid, tgid, seq) => tasks.needsChildren(pid, tgid, seq)))
      tasks.childrenFrom(await this.stream.forkPayloads());
    t.pins.finish(t.pages.map, end, t.tasks);
    t.baseline.finish(t.pages.map, end);
    t.holds.finish(t.pages.map, end);
    t.pages.onRelease = null;
    t.pages.finish();
    t.cma.end();
    t.pgmaps.end(end, t.tasks);
    t.refcheck.write();
  }
}
