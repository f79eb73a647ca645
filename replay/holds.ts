/**
 * Plain references (gets that are not pins) and who holds them, per pfn, in the order taken (docs/model.md §13.5).
 *
 * Every get (+k that is not part of a pin) opens a hold with the task, stack (of the event, or of the GUP probe
 * just before it: via 'gup' when a FOLL_GET probe or GUP frames say so), migratetype and what the kernel took it
 * for (kind): a GUP get, an isolation reference of migration / compaction / CMA (isolation frames, an isolated
 * pageblock, kcompactd, or a task inside its own cma_alloc), an LRU batch reference (taken while the page lacked
 * `lru`: folio_add_lru frames, or the putback of a page its task had isolated), or another get. The get that maps
 * a fresh anonymous page while it lacks `lru` (do_anonymous_page: the allocation's reference becomes the
 * mapping's, folio_add_lru_vma's +1 is the LRU batch's) opens a silent LRU hold: never written, only there so that
 * the drain's put finds it.
 *
 * A put returns the reference it most plausibly belongs to, by what the kernel does (pick()):
 *   - an LRU batch reference, when the put shows `lru` (lru_add_drain sets PG_lru, then drops the batch's
 *     references) or LRU drain frames; never by a put that shows the page still off the LRU;
 *   - a reference of the putting task itself (get/put pairs, isolation putback);
 *   - a GUP get when the stack releases a pipe buffer (vmsplice); a kworker's put with no flags: the LRU batch;
 *   - a reference of the putting task's thread group;
 *   - otherwise the most recent one (last-in-first-out);
 *   - a get that may still be the first half of a GUP-fast pin in progress (tentative, pins.ts) only when nothing
 *     else is.
 * A choice between holds of different tasks made by the second group of rules marks them 'inferred'; one left to
 * last-in-first-out marks every tied hold 'ambiguous' with the other tasks as candidates. A put whose event shows
 * the mapcount dropped since the previous event of the pfn returns the mapping's reference (zap/munmap), not a get
 * (driver.ts). A page whose count reaches 0 (or that is freed) closes everything. A `holds` row is written for
 * each get held at least the hold threshold, still held at the end (when older than the threshold then), or alive
 * during a failed CMA range on a pfn inside it.
 */
import type { ReplayContext } from './context.js';
import { hasFlag, FOLL_GET, type Ev } from './event.js';
import type { TaskGup } from './gup.js';
import type { LostWindows } from './lost.js';
import { RefInterval, writeInterval } from './interval.js';
import type { Output, Row } from './output.js';
import type { Page } from './pages.js';
import type { PfnMap } from './pfnmap.js';
import { PAIR_WINDOW_NS } from './pins.js';
import { ST_GUP, ST_ISOLATE, ST_LRU_ADD, ST_LRU_DRAIN, ST_PIPE_RELEASE } from './stacks.js';

/** What a hold's get was taken for. */
export const K_GET = 0;
export const K_GUP = 1;
export const K_LRU = 2;
export const K_ISOLATE = 3;

/** How the hold's holder is known: no other task's reference could have been returned in its place; chosen by a kernel rule; a guess. */
export const AT_EXACT = 0;
export const AT_INFERRED = 1;
export const AT_AMBIGUOUS = 2;
export const ATTRIBUTION = ['exact', 'inferred', 'ambiguous'] as const;

// pick() scores: LIFO among the best; >= EXACT_LEVEL decides without doubt, >= INFERRED_LEVEL by a kernel rule.
// It (and the other scans of a page's holds) weighs the latest PICK_WINDOW holds of the page only (a page with
// thousands of open gets stays linear).
const PICK_WINDOW = 64;
const EXACT_LEVEL = 80;
const INFERRED_LEVEL = 40;

export class Hold extends RefInterval {
  id = -1;
  /** Taken through GUP (FOLL_GET probe, or GUP frames on the stack). */
  viaGup = false;
  /** Held during a failed CMA range on its pfn: always written. */
  blocker = false;
  /** The get may still be the first half of a GUP-fast pin (+k then +1023k, pins.ts): puts take it last. */
  tentative = false;
  kind = K_GET;
  /** The LRU batch reference of a fresh mapping: never written nor a blocker. */
  silent = false;
  /** An LRU hold that saw the page on the LRU already (its drain was not seen): no longer matched by flags. */
  stale = false;
  attr = AT_EXACT;
  /** Other possible holders, pairs (pid, comm id). */
  cands: number[] | null = null;
}

export class Holds {
  private nextId = 0;
  private readonly pool: Hold[] = [];
  private readonly row: Row = {};
  private readonly commKind = new Map<number, number>();
  /** Holds opened (gets that were not pins). */
  opened = 0;
  /** cma.ts: the seq at which `pid`'s open cma_alloc began, or -1 (its gets meanwhile are its migration's). */
  attemptSeq: (pid: number) => number = () => -1;

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

  private sf(stack: number): number {
    return stack >= 0 && stack < this.stackFlags.length ? this.stackFlags[stack] : 0;
  }

  /** 1 = kworker, 2 = kcompactd, 0 = other (by comm id, cached). */
  private commClass(comm: number): number {
    if (comm < 0) return 0;
    let k = this.commKind.get(comm);
    if (k === undefined) {
      const s = this.out.comm(comm) ?? '';
      k = s.startsWith('kworker') ? 1 : s.startsWith('kcompactd') ? 2 : 0;
      this.commKind.set(comm, k);
    }
    return k;
  }

  private take(p: Page, ev: Ev, refs: number): Hold {
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
    h.silent = false;
    h.stale = false;
    h.attr = AT_EXACT;
    h.cands = null;
    h.kind = K_GET;
    h.epoch = this.lost.epoch;
    h.mt = ev.mt === ev.mt ? ev.mt : p.lastMt >= 0 ? p.lastMt : NaN;
    h.inCma = this.ctx.isCma(h.mt, p.pfn);
    return h;
  }

  /** The page shows `lru`: an LRU hold opened before without its drain seen can no longer be matched by the flag. */
  private sawLru(p: Page): void {
    const hs = p.holds;
    if (hs) for (let i = hs.length > PICK_WINDOW ? hs.length - PICK_WINDOW : 0; i < hs.length; i++) if (hs[i].kind === K_LRU) hs[i].stale = true;
  }

  /** A get of `refs` references on page p by event ev (gup: the FOLL_GET probe that caused it, if any). */
  get(p: Page, ev: Ev, refs: number, gup: TaskGup | null): Hold {
    if (ev.lru === 1) this.sawLru(p);
    const h = this.take(p, ev, refs);
    const sf = this.sf(ev.stack);
    if (gup && hasFlag(gup.grabFlags, FOLL_GET)) {
      h.viaGup = true;
      h.gupFlags = gup.grabFlags;
      h.stack = ev.stack >= 0 ? ev.stack : gup.grabStack;
    } else {
      h.stack = ev.stack;
      h.viaGup = gup !== null || (sf & ST_GUP) !== 0;
      h.gupFlags = gup ? gup.grabFlags : NaN;
      if (gup && h.stack < 0) h.stack = gup.grabStack;
    }
    if (h.viaGup) h.kind = K_GUP;
    else if ((sf & ST_ISOLATE) !== 0 || (ev.mt === this.ctx.mtIsolate && ev.mt >= 0) || this.commClass(ev.comm) === 2 || this.attemptSeq(ev.pid) >= 0)
      h.kind = K_ISOLATE;
    if (ev.lru === 0 && ((sf & ST_LRU_ADD) !== 0 || (h.kind !== K_GUP && this.isolatedBy(p, ev.pid)))) h.kind = K_LRU;
    (p.holds ??= []).push(h);
    p.holdRefs += refs;
    if (h.viaGup) p.gupRefs += refs;
    this.opened++;
    return h;
  }

  /** `pid` holds an isolation reference on p: its get while the page is off the LRU is folio_putback_lru's batch reference. */
  private isolatedBy(p: Page, pid: number): boolean {
    const hs = p.holds;
    if (hs) for (let i = hs.length > PICK_WINDOW ? hs.length - PICK_WINDOW : 0; i < hs.length; i++) if (hs[i].kind === K_ISOLATE && hs[i].pid === pid) return true;
    return false;
  }

  /**
   * A get that maps a page (the mapping's reference, not a hold): when the page is still off the LRU it is a fresh
   * fault, whose +1 is the LRU batch's reference (folio_add_lru_vma) until a drain drops it.
   */
  mapped(p: Page, ev: Ev): void {
    if (ev.lru !== 0) {
      if (ev.lru === 1) this.sawLru(p);
      return;
    }
    const hs = p.holds;
    if (hs) for (let i = hs.length > PICK_WINDOW ? hs.length - PICK_WINDOW : 0; i < hs.length; i++) if (hs[i].silent && !hs[i].stale) return;
    const h = this.take(p, ev, 1);
    h.stack = ev.stack;
    h.viaGup = false;
    h.gupFlags = NaN;
    h.kind = K_LRU;
    h.silent = true;
    (p.holds ??= []).push(h);
  }

  /**
   * A put whose event shows the mapcount risen since the previous event of the pfn, with no get showing it: the
   * latest plain get was that mapping's reference (fork's copy_present_pte: folio_get, then the rmap), not a hold.
   */
  mapRose(p: Page): void {
    const hs = p.holds;
    if (!hs) return;
    for (let i = hs.length - 1; i >= (hs.length > PICK_WINDOW ? hs.length - PICK_WINDOW : 0); i--) {
      const h = hs[i];
      if (h.silent || h.kind !== K_GET || h.left !== h.refs || h.blocker || h.tentative) continue;
      hs.splice(i, 1);
      p.holdRefs -= h.left;
      this.recycle(h);
      return;
    }
  }

  /** How well hold h fits a put by (pid, tgid, comm) with lru / stack flags sf; < 0: it cannot be this put's. */
  private score(h: Hold, pid: number, tgid: number, cls: number, lru: number, sf: number, ts: number): number {
    if (this.pending(h, ts)) return 0;
    if (h.kind === K_LRU) {
      if (!h.stale && (lru === 1 || (sf & ST_LRU_DRAIN) !== 0)) return 100;
      if (h.silent) return lru === -1 && cls === 1 && !h.stale ? 60 : -1;
      if (lru === 0) return 1;
      if (cls === 1) return 60;
    } else if ((sf & ST_PIPE_RELEASE) !== 0 && h.kind === K_GUP && h.pid !== pid) return 70;
    if (h.pid === pid && pid >= 0) return 90;
    if (h.tgid === tgid && tgid >= 0) return 50;
    return h.kind === K_LRU ? 1 : 10;
  }

  /**
   * A put of `refs` references (by the event seq/ts/pid/comm; ev when it is the put's own event: its flags and
   * stack): each reference returns the hold pick() finds most plausible.
   */
  put(p: Page, seq: number, ts: number, pid: number, comm: number, refs: number, ev: Ev | null = null): void {
    const hs = p.holds;
    if (!hs) return;
    const lru = ev ? ev.lru : -1;
    const sf = ev ? this.sf(ev.stack) : 0;
    const tgid = ev ? ev.tgid : -1;
    const cls = this.commClass(comm);
    while (refs > 0 && hs.length > 0) {
      const i = this.pick(hs, pid, tgid, cls, lru, sf, ts);
      if (i < 0) break;
      const h = hs[i];
      const take = h.left < refs ? h.left : refs;
      h.left -= take;
      refs -= take;
      if (!h.silent) {
        p.holdRefs -= take;
        if (h.viaGup) p.gupRefs -= take;
      }
      if (h.left === 0) {
        hs.splice(i, 1);
        this.close(h, p.cpus, seq, ts, pid, comm);
      }
    }
    if (lru === 1) this.sawLru(p);
  }

  /** Index of the hold a put returns (latest among the best scores), marking the attribution of the holds it chose between. */
  private pick(hs: Hold[], pid: number, tgid: number, cls: number, lru: number, sf: number, ts: number): number {
    let best = -1;
    let top = -1;
    const lo = hs.length > PICK_WINDOW ? hs.length - PICK_WINDOW : 0;
    for (let i = hs.length - 1; i >= lo; i--) {
      const s = this.score(hs[i], pid, tgid, cls, lru, sf, ts);
      if (s > top) {
        top = s;
        best = i;
      }
    }
    if (best < 0 || hs.length === 1 || top >= EXACT_LEVEL || top <= 0) return best;
    const chosen = hs[best];
    const level = top >= INFERRED_LEVEL ? AT_INFERRED : AT_AMBIGUOUS;
    let other = false;
    for (let i = lo; i < hs.length; i++) {
      const h = hs[i];
      if (h === chosen || h.silent || h.pid === chosen.pid) continue;
      const s = this.score(h, pid, tgid, cls, lru, sf, ts);
      if (s <= 0 || (level === AT_AMBIGUOUS && s < top)) continue;
      other = true;
      if (h.attr < level) h.attr = level;
      if (level === AT_AMBIGUOUS) {
        addCand(h, chosen.pid, chosen.comm);
        addCand(chosen, h.pid, h.comm);
      }
    }
    if (other && chosen.attr < level) chosen.attr = level;
    return best;
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

  /** The candidates of a hold as text: 'pid:comm' list, or null. */
  candidates(h: Hold): string | null {
    const c = h.cands;
    if (!c || c.length === 0) return null;
    const parts: string[] = [];
    for (let i = 0; i < c.length; i += 2) parts.push(`${c[i]}:${this.out.comm(c[i + 1]) ?? ''}`);
    return parts.join(',');
  }

  /** Holds still open when the trace ends. */
  finish(pages: PfnMap<Page>, endTs: number): void {
    pages.forEach((p) => {
      const hs = p.holds;
      if (!hs) return;
      for (const h of hs) if (!h.silent && (h.blocker || endTs - h.startTs >= this.ctx.holdThresholdNs)) this.write(h, p.cpus, NaN, NaN, -1, -1, endTs);
    });
  }

  private close(h: Hold, cpus: number, seq: number, ts: number, pid: number, comm: number): void {
    if (!h.silent && (h.blocker || ts - h.startTs >= this.ctx.holdThresholdNs)) this.write(h, cpus, seq, ts, pid, comm, ts);
    this.recycle(h);
  }

  private recycle(h: Hold): void {
    h.cands = null;
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
    r.attribution = ATTRIBUTION[h.attr];
    r.candidates = this.candidates(h);
    this.out.holds.add(r);
  }
}

/** Adds (pid, comm) to h's candidates once (at most 8 distinct). */
function addCand(h: Hold, pid: number, comm: number): void {
  const c = (h.cands ??= []);
  for (let i = 0; i < c.length; i += 2) if (c[i] === pid) return;
  if (c.length < 16) c.push(pid, comm);
}
