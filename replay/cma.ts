/**
 * CMA allocations and what blocked them (docs/model.md §8).
 *
 * An attempt runs from cma_alloc_start to cma_alloc_finish in one task (or starts at its first busy retry /
 * alloc_contig_range when the start was not captured); cma_release is an attempt of kind 'release'. Inside it,
 * each alloc_contig_range call is a range (from the probe, else from test_pages_isolated, refined by
 * cma_alloc_busy_retry [pfn, pfn+count)). A range fails on test_pages_isolated ret=fail, alloc_contig_range_ret < 0
 * or a busy retry; at its first failure every open pin and plain hold on a pfn inside it is recorded as a blocker
 * (with holder, stack and since), plus the isolation's fin_pfn ('unknown' when nothing is known to hold it).
 * mm_migrate_pages reason=contig_range in the task adds to migrated / migrate_failed. cma_alloc_finish prints no
 * errorno in ≈6.1: page=NULL means failure.
 */
import type { Ev } from './event.js';
import { ATTRIBUTION, AT_AMBIGUOUS, type Hold } from './holds.js';
import type { LostWindows } from './lost.js';
import { id, num, type Output, type Row } from './output.js';
import { nz, type Page } from './pages.js';
import type { PfnMap } from './pfnmap.js';

interface Blocker {
  pfn: number;
  fin: boolean;
  kind: string;
  holderId: number;
  refs: number;
  pid: number;
  tgid: number;
  comm: number;
  stack: number;
  since: number;
  longterm: boolean | null;
  refcount: number;
  uncertain: boolean;
  /** holds.ts attribution of a plain hold ('exact' for pins), null for 'unknown'. */
  attribution: string | null;
  candidates: string | null;
}

interface RangeState {
  start: number;
  end: number;
  /** 0 test_pages_isolated, 1 alloc_contig_range probe, 2 busy retry. */
  rank: number;
  failed: boolean;
  seq: number;
  ts: number;
  blockers: Blocker[];
}

class Attempt {
  id = 0;
  kind = 'alloc';
  name: string | null = null;
  pid = -1;
  comm = -1;
  startSeq = 0;
  startTs = 0;
  endSeq = NaN;
  endTs = NaN;
  requestCount = NaN;
  align = NaN;
  pfn = NaN;
  busy = 0;
  rangesTried = 0;
  failedRanges = 0;
  migrated = NaN;
  migrateFailed = NaN;
  errorno = NaN;
  succeeded: boolean | null = null;
  blockers = 0;
  range: RangeState | null = null;
}

export class CmaTracker {
  private readonly open = new Map<number, Attempt>();
  /** Finished attempts waiting for one of a lower id: rows are written in id order, each as soon as it can be. */
  private readonly waiting = new Map<number, Attempt>();
  private nextWrite = 0;
  private nextId = 0;
  private readonly row: Row = {};
  private readonly brow: Row = {};
  blockerRows = 0;
  /** cma_release rows written (the other cma_attempts rows are cma_alloc calls). */
  releases = 0;

  constructor(
    private readonly out: Output,
    private readonly lost: LostWindows,
    private readonly pages: PfnMap<Page>,
    /** Marks a hold as CMA evidence (always written) and returns its hold_id. */
    private readonly holdId: (h: Hold) => number,
    /** A hold's other possible holders as text (holds.ts). */
    private readonly candidates: (h: Hold) => string | null = () => null,
  ) {
    this.row.trace_id = out.traceId;
    this.brow.trace_id = out.traceId;
  }

  get attempts(): number {
    return this.nextId;
  }

  /** The seq at which `pid`'s open cma_alloc began, or -1: its gets meanwhile are its own migration's (holds.ts). */
  attemptSeq(pid: number): number {
    const a = this.open.size > 0 ? this.open.get(pid) : undefined;
    return a && a.kind === 'alloc' ? a.startSeq : -1;
  }

  private attempt(ev: Ev, implicit: boolean): Attempt | null {
    let a = this.open.get(ev.pid);
    if (!a && implicit) {
      a = this.newAttempt(ev, 'alloc');
      this.open.set(ev.pid, a);
    }
    return a ?? null;
  }

  private newAttempt(ev: Ev, kind: string): Attempt {
    const a = new Attempt();
    a.id = this.nextId++;
    a.kind = kind;
    a.pid = ev.pid;
    a.comm = ev.comm;
    a.startSeq = ev.seq;
    a.startTs = ev.ts;
    a.name = ev.side?.name ?? null;
    return a;
  }

  start(ev: Ev): void {
    const old = this.open.get(ev.pid);
    if (old) this.finishAttempt(old);
    const a = this.newAttempt(ev, 'alloc');
    a.requestCount = ev.side ? ev.side.nrPages : NaN;
    a.align = alignOf(ev);
    this.open.set(ev.pid, a);
  }

  /** alloc_contig_range probe: a new range. */
  contigRange(ev: Ev): void {
    const a = this.attempt(ev, true)!;
    this.endRange(a);
    a.range = { start: ev.pfn, end: ev.side ? ev.side.pfnEnd : NaN, rank: 1, failed: false, seq: ev.seq, ts: ev.ts, blockers: [] };
    a.rangesTried++;
  }

  contigRangeRet(ev: Ev): void {
    const a = this.attempt(ev, false);
    if (!a || !a.range) return;
    // A failed range stays open: cma_alloc_busy_retry (if any) follows and names it exactly.
    if (ev.ret < 0) this.fail(a, ev, NaN);
    else this.endRange(a);
  }

  testIsolated(ev: Ev): void {
    const a = this.attempt(ev, false);
    if (!a) return;
    if (!a.range) {
      a.range = { start: ev.pfn, end: ev.side ? ev.side.pfnEnd : NaN, rank: 0, failed: false, seq: ev.seq, ts: ev.ts, blockers: [] };
      a.rangesTried++;
    }
    if (ev.ret === 1) this.fail(a, ev, ev.side ? ev.side.finPfn : NaN);
  }

  busyRetry(ev: Ev): void {
    const a = this.attempt(ev, true)!;
    a.busy++;
    if (ev.pfn >= 0) a.pfn = ev.pfn;
    if (a.name === null) a.name = ev.side?.name ?? null;
    const end = ev.side ? ev.side.pfnEnd : NaN;
    if (!a.range) {
      a.range = { start: ev.pfn, end, rank: 2, failed: false, seq: ev.seq, ts: ev.ts, blockers: [] };
      a.rangesTried++;
    } else if (a.range.rank < 2 && ev.pfn >= 0) {
      a.range.start = ev.pfn;
      a.range.end = end;
      a.range.rank = 2;
    }
    this.fail(a, ev, NaN);
    this.endRange(a);
  }

  migrated(ev: Ev): void {
    const name = ev.side?.name;
    if (name !== 'contig_range' && name !== 'cma' && name !== '6') return;
    const a = this.open.get(ev.pid);
    if (!a) return;
    const s = ev.side!;
    if (s.nrSucceeded === s.nrSucceeded) a.migrated = (a.migrated === a.migrated ? a.migrated : 0) + s.nrSucceeded;
    if (s.nrFailed === s.nrFailed) a.migrateFailed = (a.migrateFailed === a.migrateFailed ? a.migrateFailed : 0) + s.nrFailed;
  }

  finish(ev: Ev): void {
    const a = this.attempt(ev, true)!;
    a.endSeq = ev.seq;
    a.endTs = ev.ts;
    if (ev.pfn >= 0) a.pfn = ev.pfn;
    if (a.name === null) a.name = ev.side?.name ?? null;
    if (a.requestCount !== a.requestCount && ev.side) a.requestCount = ev.side.nrPages;
    if (a.align !== a.align) a.align = alignOf(ev);
    if (ev.ret === ev.ret) {
      a.errorno = ev.ret;
      a.succeeded = ev.ret === 0;
    } else if (ev.side && ev.side.page >= 0) a.succeeded = ev.side.page === 1;
    else {
      const page = ev.side ? /\bpage=(\S+)/.exec(ev.side.payload)?.[1] : undefined;
      if (page !== undefined) a.succeeded = !/^(0+|0x0+|\(null\)|\(nil\))$/.test(page);
    }
    if (a.range && !a.range.failed && a.succeeded === false) this.fail(a, ev, NaN);
    this.open.delete(ev.pid);
    this.finishAttempt(a);
  }

  release(ev: Ev): void {
    const a = this.newAttempt(ev, 'release');
    a.endSeq = ev.seq;
    a.endTs = ev.ts;
    if (ev.pfn >= 0) a.pfn = ev.pfn;
    a.requestCount = ev.side ? ev.side.nrPages : NaN;
    this.finishAttempt(a);
  }

  /** Attempts still open at the end. */
  end(): void {
    for (const a of this.open.values()) this.finishAttempt(a);
    this.open.clear();
  }

  /** A range failed: snapshot every pin and hold on its pfns (once per range). */
  private fail(a: Attempt, ev: Ev, finPfn: number): void {
    const r = a.range ?? (a.range = { start: ev.pfn, end: ev.side ? ev.side.pfnEnd : NaN, rank: 0, failed: false, seq: ev.seq, ts: ev.ts, blockers: [] });
    if (r.failed) {
      if (finPfn === finPfn && !r.blockers.some((b) => b.fin)) this.addFin(r, finPfn);
      return;
    }
    r.failed = true;
    r.seq = ev.seq;
    r.ts = ev.ts;
    a.failedRanges++;
    const start = r.start;
    const end = r.end === r.end ? r.end : start + 1;
    const visit = (p: Page): void => {
      if (p.pfn < start || p.pfn >= end) return;
      if (p.pins)
        for (const x of p.pins)
          r.blockers.push({
            pfn: x.pfn, fin: false, kind: 'pin', holderId: x.id, refs: x.left, pid: x.pid, tgid: x.tgid, comm: x.comm, stack: x.stack,
            since: x.startTs, longterm: x.longterm < 0 ? null : x.longterm === 1, refcount: nz(p.count), uncertain: this.lost.crossed(x.epoch, p.cpus),
            attribution: 'exact', candidates: null,
          });
      if (p.holds)
        for (const h of p.holds) {
          // The LRU batch reference of a fresh fault is not a holder; the requester's own references taken during
          // this attempt are its migration's (isolation, putback to an LRU batch), never what blocked it.
          if (h.silent || (h.pid === a.pid && h.pid >= 0 && h.startSeq >= a.startSeq)) continue;
          r.blockers.push({
            pfn: h.pfn, fin: false, kind: 'hold', holderId: this.holdId(h), refs: h.left, pid: h.pid, tgid: h.tgid, comm: h.comm, stack: h.stack,
            since: h.startTs, longterm: null, refcount: nz(p.count),
            // A guessed holder (holds.ts could not tell it from another task's reference) is not certain.
            uncertain: this.lost.crossed(h.epoch, p.cpus) || h.attr === AT_AMBIGUOUS,
            attribution: ATTRIBUTION[h.attr], candidates: this.candidates(h),
          });
        }
    };
    if (end - start < this.pages.size) {
      for (let pfn = start; pfn < end; pfn++) {
        const p = this.pages.get(pfn);
        if (p && (p.pins?.length || p.holds?.length)) visit(p);
      }
    } else for (const p of this.pages.values()) if (p.pins?.length || p.holds?.length) visit(p);
    if (finPfn === finPfn) this.addFin(r, finPfn);
  }

  private addFin(r: RangeState, finPfn: number): void {
    let any = false;
    for (const b of r.blockers)
      if (b.pfn === finPfn) {
        b.fin = true;
        any = true;
      }
    if (!any) {
      const p = this.pages.get(finPfn);
      r.blockers.push({
        pfn: finPfn, fin: true, kind: 'unknown', holderId: -1, refs: NaN, pid: -1, tgid: -1, comm: -1, stack: -1, since: NaN,
        longterm: null, refcount: p ? nz(p.count) : NaN, uncertain: p ? this.lost.crossed(p.lifeEpoch, p.cpus) : this.lost.epoch > 0,
        attribution: null, candidates: null,
      });
    }
  }

  private endRange(a: Attempt): void {
    const r = a.range;
    if (!r) return;
    a.range = null;
    if (!r.failed) return;
    const b = this.brow;
    for (const x of r.blockers) {
      if (!x.fin && r.end === r.end && (x.pfn < r.start || x.pfn >= r.end)) continue;
      b.attempt_id = a.id;
      b.range_seq = r.seq;
      b.range_ts_ns = this.out.ts(r.ts);
      b.range_start = num(r.start);
      b.range_end = num(r.end);
      b.pfn = x.pfn;
      b.is_fin_pfn = x.fin;
      b.holder_kind = x.kind;
      b.holder_id = id(x.holderId);
      b.refs = num(x.refs);
      b.holder_pid = id(x.pid);
      b.holder_tgid = id(x.tgid);
      b.holder_comm = this.out.comm(x.comm);
      b.stack_id = id(x.stack);
      b.since_ts_ns = this.out.ts(x.since);
      b.longterm = x.longterm;
      b.refcount = num(x.refcount);
      b.uncertain = x.uncertain;
      b.attribution = x.attribution;
      b.candidates = x.candidates;
      this.out.cmaBlockers.add(b);
      a.blockers++;
      this.blockerRows++;
    }
  }

  private finishAttempt(a: Attempt): void {
    this.endRange(a);
    this.waiting.set(a.id, a);
    for (let w = this.waiting.get(this.nextWrite); w; w = this.waiting.get(this.nextWrite)) {
      this.waiting.delete(this.nextWrite++);
      this.write(w);
    }
  }

  private write(a: Attempt): void {
    if (a.kind === 'release') this.releases++;
    const r = this.row;
    r.attempt_id = a.id;
    r.kind = a.kind;
    r.cma_name = a.name;
    r.pid = id(a.pid);
    r.comm = this.out.comm(a.comm);
    r.start_seq = a.startSeq;
    r.start_ts_ns = this.out.ts(a.startTs);
    r.end_seq = num(a.endSeq);
    r.end_ts_ns = this.out.ts(a.endTs);
    r.request_count = num(a.requestCount);
    r.align = num(a.align);
    r.pfn = num(a.pfn);
    r.busy_retries = a.busy;
    r.ranges_tried = a.rangesTried;
    r.failed_ranges = a.failedRanges;
    r.migrated = num(a.migrated);
    r.migrate_failed = num(a.migrateFailed);
    r.errorno = num(a.errorno);
    r.succeeded = a.kind === 'release' ? null : a.succeeded;
    r.blockers = a.blockers;
    this.out.cmaAttempts.add(r);
  }
}

/** align= of a cma event: decoded into `order` (a database from before that: from the payload). */
function alignOf(ev: Ev): number {
  if (ev.order === ev.order) return ev.order;
  const m = ev.side ? /\balign=(\d+)/.exec(ev.side.payload) : null;
  return m ? Number(m[1]) : NaN;
}
