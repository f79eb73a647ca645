/**
 * FOLL_PIN intervals (docs/model.md §4, §13.3).
 *
 * Small folios: the halves of a two-event pin or unpin are matched by task and CPU, not by adjacency: each task
 * (pid on a CPU) has at most one pending half, its last +k (k < 1024) or -1023k, and the task's NEXT refcount change
 * completes it when it is on the same pfn, within PAIR_WINDOW_NS, and the sum is a multiple of 1024 of the same
 * sign: +k then +1023k opens a pin of k refs (GUP-fast try_grab_folio), -1023k then -k closes (put_page_refs). Any
 * number of other tasks' events (other CPUs, equal timestamps) may come between the halves in the merged output.
 * One event of +-1024k pins / unpins. A lone +1 or +1023 is never a pin. The +k is first applied as a get whose
 * hold is tentative (puts of other tasks take it last, holds.ts) and withdrawn if the pair completes; a -1023k is
 * held back until the task's next change shows what it was (then applied as a put if it was not half of an unpin).
 * Large folios: the pin is +refs on the head (plus the untraced _pincount): a try_grab_page/try_grab_folio probe
 * with FOLL_PIN just before +refs on the folio is a pin (one row per probe, pfn = the probe's subpage), closed by
 * gup_put_folio with FOLL_PIN followed by -refs on the head. Without probes, the event's stack must show the grab
 * (try_grab_*) under a pinning call: the pinning task's own lookups inside pin_user_pages* show the call but not
 * the grab, and stay gets. Unpins without probes: unpin frames on the stack.
 * FOLL_LONGTERM: the probe's flags, else the enclosing GUP call's flags, else __gup_longterm_locked /
 * pin_user_pages* frames; otherwise unknown. A pin that is not known to be non-longterm, opened after a
 * longterm_pin migration inside the same pinning call, is linked to it (migrate_seq, see gup.ts).
 */
import type { Anomalies } from './anomalies.js';
import type { ReplayContext } from './context.js';
import { FOLL_LONGTERM, FOLL_PIN, GUP_PIN_COUNTING_BIAS, hasFlag, type Ev } from './event.js';
import type { GupContext, TaskGup } from './gup.js';
import type { Hold } from './holds.js';
import type { LostWindows } from './lost.js';
import { RefInterval, writeInterval } from './interval.js';
import { id, type Output, type Row } from './output.js';
import type { Page } from './pages.js';
import type { PfnMap } from './pfnmap.js';
import { ST_GRAB, ST_GUP, ST_LONGTERM, ST_PIN, ST_UNPIN } from './stacks.js';
import type { Tasks } from './tasks.js';

export const SRC_REFCOUNT = 0;
export const SRC_PROBE = 1;
export const SRC_STACK = 2;
const SOURCES = ['refcount', 'probe', 'stack'];

/** What the driver does with a refcount change after classification. */
export const A_PIN = 0; // consumed by a pin open/close
export const A_GET = 1; // a plain get: open a hold
export const A_PUT = 2; // a plain put: close holds
export const A_CANCEL = 3; // a pin pair completed: withdraw the hold the group's first +k opened
export const A_DEFER = 4; // held back (first half of an unpin pair)

/** Pins open for less than this on CMA pages are the kernel checking pinnability (migrate and retry). */
const CMA_PIN_GRACE_NS = 10_000_000;

export class Pin extends RefInterval {
  id = 0;
  /** Head pfn of the folio; pfn is the subpage a probe named (else the same). */
  folioPfn = 0;
  large = false;
  /** 1 true, 0 false, -1 unknown. */
  longterm = -1;
  source = SRC_REFCOUNT;
  movable = false;
  /** The longterm_pin migration this pin retries after (events.seq), or -1. */
  migrateSeq = -1;
}

/** One half of a two-event operation, waiting for the same task's next refcount change (classify). */
export class Half {
  key = 0;
  page!: Page;
  pfn = 0;
  delta = 0;
  seq = 0;
  ts = 0;
  pid = -1;
  tgid = -1;
  comm = -1;
  mt = -1;
  stack = -1;
  probe = false;
  flags = -1;
  /** The tentative hold the +k opened. */
  hold: Hold | null = null;
  /** The refs of a held-back -1023k. */
  deferred = 0;
}

/** Halves of one operation are nanoseconds apart in the kernel: a longer wait means two operations. */
export const PAIR_WINDOW_NS = 1_000_000;

/** A task (pid) on a CPU: the halves of a GUP-fast pin run with interrupts off, on one CPU. */
const taskKey = (pid: number, cpu: number): number => pid * 4096 + (cpu >= 0 && cpu < 4095 ? cpu : 4095);

export class Pins {
  private nextId = 0;
  private readonly row: Row = {};
  opened = 0;
  /** Unpins (-1024k) with no open pin: pins taken before the capture. */
  unmatchedUnpins = 0;
  /** After A_CANCEL: the hold the pair's first +k opened, to withdraw (null: it is no longer open). */
  cancelled: Hold | null = null;
  /** Held-back puts to apply (on h.page, as h.deferred refs by h.seq/ts/pid/comm) before the action (see classify). */
  readonly flushes: Half[] = [];
  /** The pending first half of each task (taskKey), at most one: a task's halves are consecutive in its own stream. */
  private readonly pending = new Map<number, Half>();
  /** The first half the last A_GET started (attach). */
  private half: Half | null = null;
  /** Halves to reuse (one is taken for most gets: no allocation per event). */
  private readonly spare: Half[] = [];

  constructor(
    private readonly out: Output,
    private readonly ctx: ReplayContext,
    private readonly lost: LostWindows,
    private readonly anomalies: Anomalies,
    private readonly stackFlags: Int32Array,
    private readonly gup: GupContext,
  ) {
    this.row.trace_id = out.traceId;
  }

  get written(): number {
    return this.out.pins.count;
  }

  private sflags(stack: number): number {
    return stack >= 0 && stack < this.stackFlags.length ? this.stackFlags[stack] : 0;
  }

  /** Resolve every pending half (end of the trace): gets become plain gets, held-back puts are flushed. */
  resolveAll(): void {
    this.recycleFlushes();
    for (const h of this.pending.values()) this.settle(h);
    this.pending.clear();
  }

  /**
   * Classify refcount change `delta` (!= 0) of event ev on page p. `grab` is the task's FOLL_* grab probe for
   * this page (consumed by the caller), `unpin` its gup_put_folio for this folio. Before applying the returned
   * action the caller applies `flushes` (held-back puts that turned out not to be half of an unpin, each on its
   * own page). After an A_GET the caller hands the hold it opened to `attach` (the get may be a first half).
   */
  classify(p: Page, ev: Ev, delta: number, grab: TaskGup | null, unpin: TaskGup | null): number {
    this.recycleFlushes();
    this.half = null;
    const key = taskKey(ev.pid, ev.cpu);
    const prev = this.pending.get(key);
    if (prev) this.pending.delete(key);
    const large = p.order > 0 || ev.head;
    if (large) {
      const sf = this.sflags(ev.stack);
      // Without a probe a large-folio pin needs the grab on the stack, not only a pinning caller: the pinning
      // task's own lookups (+1/-1 on the head inside pin_user_pages*) show the caller too.
      if (delta > 0 && ((grab && hasFlag(grab.grabFlags, FOLL_PIN) && delta === grab.grabRefs) || (!grab && (sf & ST_PIN) !== 0 && (sf & ST_GRAB) !== 0 && delta < GUP_PIN_COUNTING_BIAS))) {
        if (prev) this.settle(prev);
        this.open(p, ev, delta, true, grab, ev.seq, ev.ts, ev.pid, ev.tgid, ev.comm, ev.stack, ev.mt);
        return A_PIN;
      }
      if (delta < 0 && this.hasLarge(p) && ((unpin && hasFlag(unpin.unpinFlags, FOLL_PIN) && -delta === unpin.unpinRefs) || (!unpin && (sf & ST_UNPIN) !== 0))) {
        if (prev) this.settle(prev);
        this.close(p, ev, -delta, true, unpin);
        return A_PIN;
      }
    }
    if (delta % GUP_PIN_COUNTING_BIAS === 0) {
      // One event: +1024k pins, -1024k unpins.
      if (prev) this.settle(prev);
      const k = delta / GUP_PIN_COUNTING_BIAS;
      if (k > 0) this.open(p, ev, k, false, grab, ev.seq, ev.ts, ev.pid, ev.tgid, ev.comm, ev.stack, ev.mt);
      else this.close(p, ev, -k, false, unpin);
      return A_PIN;
    }
    if (prev) {
      const pair = prev.delta + delta;
      this.done(prev);
      if (prev.page === p && prev.pfn === p.pfn && ev.ts - prev.ts <= PAIR_WINDOW_NS && pair !== 0 && pair % GUP_PIN_COUNTING_BIAS === 0 && prev.delta > 0 === delta > 0) {
        // The task's two halves: +k then +1023k (GUP-fast try_grab_folio), or -1023k then -k (put_page_refs).
        // Other tasks' events (other CPUs) may come between them in the merged output.
        const k = pair / GUP_PIN_COUNTING_BIAS;
        if (k > 0) {
          const task = prev.probe ? this.gup.peek(prev.pid) ?? null : grab;
          const x = this.open(p, ev, k, false, prev.probe ? null : grab, prev.seq, prev.ts, prev.pid, prev.tgid, prev.comm,
            prev.stack >= 0 ? prev.stack : ev.stack, prev.mt >= 0 ? prev.mt : ev.mt, prev.probe ? prev.flags : NaN, task);
          const h = prev.hold;
          this.cancelled = h && h.tentative && h.pfn === prev.pfn && h.startSeq === prev.seq ? h : null;
          // The pin began at the first half: a lost-event window or page evidence (gaps.ts) between the halves
          // touches it, so it takes the first half's epoch.
          if (this.cancelled) x.epoch = this.cancelled.epoch;
          if (h) h.tentative = false;
          return A_CANCEL;
        }
        p.grpDefer -= prev.deferred;
        this.close(p, ev, -k, false, unpin);
        return A_PIN;
      }
      this.settle(prev);
    }
    // Not a pin (yet): a +k or a -1023k may be the first half of the task's next change of this pfn.
    if (delta > 0 || -delta % GUP_PIN_COUNTING_BIAS === GUP_PIN_COUNTING_BIAS - 1) {
      const h = this.spare.pop() ?? new Half();
      h.hold = null;
      h.deferred = 0;
      h.key = key;
      h.page = p;
      h.pfn = p.pfn;
      h.delta = delta;
      h.seq = ev.seq;
      h.ts = ev.ts;
      h.pid = ev.pid;
      h.tgid = ev.tgid;
      h.comm = ev.comm;
      h.mt = ev.mt === ev.mt ? ev.mt : -1;
      h.probe = grab !== null && hasFlag(grab.grabFlags, FOLL_PIN);
      h.flags = grab && grab.grabFlags === grab.grabFlags ? grab.grabFlags : -1;
      h.stack = ev.stack >= 0 ? ev.stack : grab ? grab.grabStack : -1;
      this.pending.set(key, h);
      if (delta < 0) {
        h.deferred = -delta;
        p.grpDefer += -delta;
        return A_DEFER;
      }
      this.half = h;
      return A_GET;
    }
    return A_PUT;
  }

  /** The hold an A_GET opened: tentative while the get may still be the first half of a pin. */
  attach(hold: Hold | null): void {
    const h = this.half;
    this.half = null;
    if (!h || !hold) return;
    h.hold = hold;
    hold.tentative = true;
  }

  /** The caller has applied the flushes of the previous classify: their halves can be reused. */
  private recycleFlushes(): void {
    for (const h of this.flushes) this.spare.push(h);
    this.flushes.length = 0;
  }

  /** prev is no longer pending: reuse it after this classify (flushed halves wait for recycleFlushes). */
  private done(h: Half): void {
    if (h.deferred === 0 && this.spare.length < 64) this.spare.push(h);
  }

  /** A pending half that is not part of a pin after all: its get is a plain get, its held-back put is applied. */
  private settle(h: Half): void {
    if (h.hold && h.hold.pfn === h.pfn && h.hold.startSeq === h.seq) h.hold.tentative = false;
    h.hold = null;
    if (h.deferred !== 0 && h.page.pfn === h.pfn) {
      h.page.grpDefer -= h.deferred;
      this.flushes.push(h);
    }
  }

  private hasLarge(p: Page): boolean {
    const ps = p.pins;
    if (!ps) return false;
    for (const x of ps) if (x.large) return true;
    return false;
  }

  private open(
    p: Page,
    ev: Ev,
    refs: number,
    large: boolean,
    grab: TaskGup | null,
    seq: number,
    ts: number,
    pid: number,
    tgid: number,
    comm: number,
    stack: number,
    mt: number,
    groupFlags = NaN,
    task: TaskGup | null = null,
  ): Pin {
    const x = new Pin();
    x.id = this.nextId++;
    x.folioPfn = p.pfn;
    x.pfn = large && grab ? grab.grabPfn : p.pfn;
    x.large = large;
    x.refs = refs;
    x.left = refs;
    x.startSeq = seq;
    x.startTs = ts;
    x.pid = pid;
    x.tgid = tgid;
    x.comm = comm;
    x.epoch = this.lost.epoch;
    const probeFlags = grab && hasFlag(grab.grabFlags, FOLL_PIN) ? grab.grabFlags : groupFlags;
    if (stack < 0 && grab) stack = grab.grabStack;
    x.stack = stack;
    const sf = this.sflags(stack);
    const t = task ?? grab ?? this.gup.peek(pid) ?? null;
    const call = t ? t.callFlags : NaN;
    if (probeFlags === probeFlags) {
      x.source = SRC_PROBE;
      x.gupFlags = probeFlags;
      x.longterm = hasFlag(probeFlags, FOLL_LONGTERM) ? 1 : 0;
    } else {
      x.source = (sf & (ST_PIN | ST_GUP)) !== 0 ? SRC_STACK : SRC_REFCOUNT;
      if (call === call) {
        x.gupFlags = call;
        x.longterm = hasFlag(call, FOLL_LONGTERM) ? 1 : 0;
      } else if ((sf & ST_LONGTERM) !== 0) x.longterm = 1;
      else x.longterm = -1;
    }
    x.migrateSeq = x.longterm !== 0 ? this.gup.migrationBefore(pid, ts) : -1;
    x.mt = mt === mt ? mt : p.lastMt >= 0 ? p.lastMt : NaN;
    x.inCma = this.ctx.isCma(x.mt, x.pfn) || this.ctx.isCma(x.mt, p.pfn);
    x.movable = this.ctx.inMovable(x.pfn);
    (p.pins ??= []).push(x);
    p.pinRefs += refs;
    p.pinCount += large ? refs : refs * GUP_PIN_COUNTING_BIAS;
    this.opened++;
    void ev;
    return x;
  }

  /** Close `refs` pin references on p (large: a large-folio pin; prefers the subpage gup_put_folio named). */
  private close(p: Page, ev: Ev, refs: number, large: boolean, unpin: TaskGup | null): void {
    const ps = p.pins;
    if (!ps || ps.length === 0) {
      this.unmatchedUnpins++;
      return;
    }
    const relStack = ev.stack >= 0 ? ev.stack : unpin ? unpin.unpinStack : -1;
    while (refs > 0) {
      let i = -1;
      if (large && unpin) for (let j = 0; j < ps.length; j++) if (ps[j].large && ps[j].pfn === unpin.unpinSub) { i = j; break; }
      if (i < 0) for (let j = 0; j < ps.length; j++) if (ps[j].large === large) { i = j; break; }
      if (i < 0) i = 0;
      if (i >= ps.length) break;
      const x = ps[i];
      const take = x.left < refs ? x.left : refs;
      x.left -= take;
      refs -= take;
      p.pinRefs -= take;
      p.pinCount -= x.large ? take : take * GUP_PIN_COUNTING_BIAS;
      if (x.left === 0) {
        ps.splice(i, 1);
        this.write(x, p.cpus, ev.seq, ev.ts, ev.pid, ev.comm, relStack, ev.ts);
      }
      if (ps.length === 0) break;
    }
    if (refs > 0) this.unmatchedUnpins++;
  }

  /** The page is freed (or its state abandoned) with pins open. */
  closeAll(p: Page, seq: number, ts: number, pid: number, comm: number, stack: number, freed: Ev | null): void {
    const ps = p.pins;
    if (!ps || ps.length === 0) return;
    if (freed)
      this.anomalies.add('freed_while_pinned', !ps.some((x) => this.lost.crossed(x.epoch, p.cpus)), p.pfn, freed,
        `pfn 0x${p.pfn.toString(16)} freed with ${p.pinRefs} pin(s) open (pin ${ps[0].id}, taken by pid ${ps[0].pid})`, { pinId: ps[0].id });
    for (const x of ps) this.write(x, p.cpus, seq, ts, pid, comm, stack, ts);
    ps.length = 0;
    p.pinRefs = 0;
    p.pinCount = 0;
  }

  /**
   * Pins still open when the trace ends (docs/model.md §15): every one is a `pins` row with end_seq NULL (outstanding
   * at the end: information, see queries/outstanding.sql). Only a pin whose holder exited after taking it is an
   * anomaly, pin_never_released: certain when no lost window touches it, no task forked from the holder after the pin
   * is still alive (a child inherits the fd or mapping that owns it) and the last of those exits is older than the
   * exit grace.
   */
  /** Whether `fn` is true for the holder (pid, tgid, seq of the pin) of a pin still open: finish() asks Tasks about those. */
  holdersAtEnd(pages: PfnMap<Page>, fn: (pid: number, tgid: number, seq: number) => boolean): boolean {
    let any = false;
    pages.forEach((p) => {
      if (!any && p.pins) for (const x of p.pins) if (fn(x.pid, x.tgid, x.startSeq)) any = true;
    });
    return any;
  }

  finish(pages: PfnMap<Page>, endTs: number, tasks: Tasks): void {
    pages.forEach((p) => {
      const ps = p.pins;
      if (!ps) return;
      for (const x of ps) {
        this.write(x, p.cpus, NaN, NaN, -1, -1, -1, endTs);
        const rel = tasks.release(x.pid, x.tgid, x.startSeq);
        if (!rel) continue;
        const lost = this.lost.crossed(x.epoch, p.cpus);
        const child = rel.alive >= 0;
        const late = tasks.late(rel.last, endTs);
        this.anomalies.add('pin_never_released', !lost && !child && !late, x.pfn, { seq: x.startSeq, ts: x.startTs, pid: x.pid, comm: x.comm, stack: x.stack },
          `pin ${x.id} on pfn 0x${x.pfn.toString(16)} taken by pid ${x.pid} is still held when the trace ends, after its holder exited` +
            (lost ? ' (its release may be among lost events)'
              : child ? ` (pid ${rel.alive}, forked from it after the pin, did not exit: a child may still hold it)`
              : late ? ' (the exit is too recent: its teardown may still unpin)' : ''),
          { pinId: x.id, severity: 'error' });
      }
    });
  }

  /** `cpus`: the CPUs the page's events came from (lost.ts): a window of one of them makes the interval uncertain. */
  private write(x: Pin, cpus: number, endSeq: number, endTs: number, relPid: number, relComm: number, relStack: number, until: number): void {
    const r = this.row;
    const duration = Math.max(0, until - x.startTs);
    r.pin_id = x.id;
    writeInterval(r, x, this.out, endSeq, endTs, relPid, relComm, until);
    r.folio_pfn = x.folioPfn;
    r.large_folio = x.large;
    r.release_stack_id = id(relStack);
    r.longterm = x.longterm < 0 ? null : x.longterm === 1;
    r.source = SOURCES[x.source];
    r.movable_zone = x.movable;
    r.migrate_seq = id(x.migrateSeq);
    const uncertain = this.lost.crossed(x.epoch, cpus);
    r.uncertain = uncertain;
    this.out.pins.add(r);
    // FOLL_LONGTERM must migrate pages out of CMA and ZONE_MOVABLE before pinning (check_and_migrate_movable_pages).
    const where = x.inCma ? 'CMA' : x.movable ? 'ZONE_MOVABLE' : null;
    if (where && ((x.longterm === 1 && duration > CMA_PIN_GRACE_NS) || (x.longterm < 0 && duration >= this.ctx.longtermThresholdNs)))
      this.anomalies.add('longterm_pin_in_cma', !uncertain, x.pfn, { seq: x.startSeq, ts: x.startTs, pid: x.pid, comm: x.comm, stack: x.stack },
        `${x.longterm === 1 ? 'FOLL_LONGTERM' : 'long-held'} pin ${x.id} on ${where} pfn 0x${x.pfn.toString(16)} by pid ${x.pid} held ${(duration / 1e6).toFixed(1)} ms`,
        { pinId: x.id, severity: x.longterm === 1 ? 'error' : 'warning' });
  }
}
