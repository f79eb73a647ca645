/**
 * Plain references (gets that are not pins) and who holds them, per pfn, in the order taken.
 *
 * Every get (+k that is not part of a pin) opens a hold with the task, stack (of the event, or of the GUP probe
 * just before it: via 'gup' when a FOLL_GET probe or GUP frames say so) and migratetype. Puts close outstanding
 * holds last-in-first-out, except a put whose event shows the mapcount dropped since the previous event of the
 * pfn: that returns the mapping's reference (zap/munmap), not a get. A page whose count reaches 0 (or that is
 * freed) closes everything. A `holds` row is written for each get held at least the hold threshold, still held
 * at the end (when older than the threshold then), or alive during a failed CMA range on a pfn inside it.
 */
import type { ReplayContext } from './context.js';
import { hasFlag, FOLL_GET, type Ev } from './event.js';
import type { TaskGup } from './gup.js';
import type { LostWindows } from './lost.js';
import { RefInterval, writeInterval } from './interval.js';
import type { Output, Row } from './output.js';
import type { Page } from './pages.js';
import { PAIR_WINDOW_NS } from './pins.js';
import type { PfnMap } from './pfnmap.js';
import { ST_GUP } from './stacks.js';

export class Hold extends RefInterval {
  id = -1;
  /** Taken through GUP (FOLL_GET probe, or GUP frames on the stack). */
  viaGup = false;
  /** Held during a failed CMA range on its pfn: always written. */
  blocker = false;
  /** The get may still be the first half of a GUP-fast pin (+k then +1023k, pins.ts): puts take it last. */
  tentative = false;
}

export class Holds {
  private nextId = 0;
  private readonly pool: Hold[] = [];
  private readonly row: Row = {};
  /** Holds opened (gets that were not pins). */
  opened = 0;

  constructor(
    private readonly out: Output,
    private readonly ctx: ReplayContext,
    private readonly lost: LostWindows,
    private readonly stackFlags: Int32Array,
  ) {
    this.row.trace_id = out.traceId;
  }

  get written(): number {
    return this.out.holds.count;
  }

  /** A get of `refs` references on page p by event ev (gup: the FOLL_GET probe that caused it, if any). */
  get(p: Page, ev: Ev, refs: number, gup: TaskGup | null): Hold {
    const h = this.pool.pop() ?? new Hold();
    h.id = -1;
    h.pfn = p.pfn;
    h.refs = refs;
    h.left = refs;
    h.startSeq = ev.seq;
    h.startTs = ev.ts;
    h.pid = ev.pid;
    h.tgid = ev.tgid;
    h.comm = ev.comm;
    h.blocker = false;
    h.tentative = false;
    h.epoch = this.lost.epoch;
    h.mt = ev.mt === ev.mt ? ev.mt : p.lastMt >= 0 ? p.lastMt : NaN;
    h.inCma = this.ctx.isCma(h.mt, p.pfn);
    if (gup && hasFlag(gup.grabFlags, FOLL_GET)) {
      h.viaGup = true;
      h.gupFlags = gup.grabFlags;
      h.stack = ev.stack >= 0 ? ev.stack : gup.grabStack;
    } else {
      h.stack = ev.stack;
      h.viaGup = gup !== null || (ev.stack >= 0 && ev.stack < this.stackFlags.length && (this.stackFlags[ev.stack] & ST_GUP) !== 0);
      h.gupFlags = gup ? gup.grabFlags : NaN;
      if (gup && h.stack < 0) h.stack = gup.grabStack;
    }
    (p.holds ??= []).push(h);
    p.holdRefs += refs;
    if (h.viaGup) p.gupRefs += refs;
    this.opened++;
    return h;
  }

  /** A put of `refs` references (by the event seq/ts/pid/comm): closes outstanding holds last-in-first-out. */
  put(p: Page, seq: number, ts: number, pid: number, comm: number, refs: number): void {
    const hs = p.holds;
    if (!hs) return;
    while (refs > 0 && hs.length > 0) {
      // A get that may be the first half of another task's pin in progress is returned only when nothing else is.
      let i = hs.length - 1;
      while (i > 0 && this.pending(hs[i], ts)) i--;
      if (this.pending(hs[i], ts)) i = hs.length - 1;
      const h = hs[i];
      const take = h.left < refs ? h.left : refs;
      h.left -= take;
      refs -= take;
      p.holdRefs -= take;
      if (h.viaGup) p.gupRefs -= take;
      if (h.left === 0) {
        hs.splice(i, 1);
        this.close(h, p.cpus, seq, ts, pid, comm);
      }
    }
  }

  /** A get that may still be completed into a pin by its task's next change (within the pair window). */
  private pending(h: Hold, ts: number): boolean {
    return h.tentative && ts - h.startTs <= PAIR_WINDOW_NS;
  }

  /** Undo a get that turned out to be the first half of a pin (+k then +1023k). */
  cancel(p: Page, h: Hold): void {
    const hs = p.holds;
    if (!hs) return;
    const i = hs.lastIndexOf(h);
    if (i < 0) return;
    hs.splice(i, 1);
    h.tentative = false;
    p.holdRefs -= h.left;
    if (h.viaGup) p.gupRefs -= h.left;
    this.recycle(h);
  }

  /** The count reached 0 or the page was freed: every reference is gone. */
  closeAll(p: Page, seq: number, ts: number, pid: number, comm: number): void {
    const hs = p.holds;
    if (!hs || hs.length === 0) return;
    for (let i = hs.length - 1; i >= 0; i--) this.close(hs[i], p.cpus, seq, ts, pid, comm);
    hs.length = 0;
    p.holdRefs = 0;
    p.gupRefs = 0;
  }

  /** Identifier of a hold that must be written (CMA blocker evidence). */
  idOf(h: Hold): number {
    h.blocker = true;
    if (h.id < 0) h.id = this.nextId++;
    return h.id;
  }

  /** Holds still open when the trace ends. */
  finish(pages: PfnMap<Page>, endTs: number): void {
    pages.forEach((p) => {
      const hs = p.holds;
      if (!hs) return;
      for (const h of hs) if (h.blocker || endTs - h.startTs >= this.ctx.holdThresholdNs) this.write(h, p.cpus, NaN, NaN, -1, -1, endTs);
    });
  }

  private close(h: Hold, cpus: number, seq: number, ts: number, pid: number, comm: number): void {
    if (h.blocker || ts - h.startTs >= this.ctx.holdThresholdNs) this.write(h, cpus, seq, ts, pid, comm, ts);
    this.recycle(h);
  }

  private recycle(h: Hold): void {
    if (this.pool.length < 4096) this.pool.push(h);
  }

  /** `cpus`: the CPUs the page's events came from (lost.ts). */
  private write(h: Hold, cpus: number, endSeq: number, endTs: number, relPid: number, relComm: number, until: number): void {
    const r = this.row;
    if (h.id < 0) h.id = this.nextId++;
    r.hold_id = h.id;
    writeInterval(r, h, this.out, endSeq, endTs, relPid, relComm, until);
    r.via = h.viaGup ? 'gup' : 'get';
    r.uncertain = this.lost.crossed(h.epoch, cpus);
    this.out.holds.add(r);
  }
}
