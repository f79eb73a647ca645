/**
 * Per-task GUP probe context: what the GUP kprobes of a task said just before its next page_ref event.
 *
 * - grab: the last try_grab_page / try_grab_folio (page=, refs=, flags=) not yet matched to a refcount change.
 *   The next +refs (large folio) / +1024*refs (small) / +1 (FOLL_GET) page_ref event of the same task on that page
 *   (or on the head of the folio containing it) is the reference it took.
 * - unpin: the last gup_put_folio (folio=, refs=, flags=) and unpin_user_page (page=, the subpage).
 * - call: gup_flags of the nearest enclosing GUP call (pin_user_pages*, __gup_longterm_locked, get_user_pages*,
 *   internal_get_user_pages_fast, ...), cleared at its kretprobe.
 * - migrate: the task's last mm_migrate_pages reason=longterm_pin: __gup_longterm_locked moved the pages it could
 *   not pin long-term (CMA, ZONE_MOVABLE) and pins again. Pins the task opens after it, until its GUP call returns
 *   (kretprobe) or at most MIGRATE_LINK_NS later when no kretprobe is traced, are linked to it (pins.migrate_seq).
 * Tasks are few; entries live for the whole replay.
 */
import type { Ev } from './event.js';

export class TaskGup {
  grabSeq = -1;
  grabPfn = NaN;
  grabFlags = NaN;
  grabRefs = 1;
  grabStack = -1;
  unpinSeq = -1;
  unpinFolio = NaN;
  unpinFlags = NaN;
  unpinRefs = 1;
  unpinStack = -1;
  unpinSub = NaN;
  unpinSubStack = -1;
  callFlags = NaN;
  migrateSeq = -1;
  migrateTs = 0;
}

/** How long after a longterm_pin migration a pin of the same task is still its retry (without kretprobes). */
export const MIGRATE_LINK_NS = 1_000_000_000;

export class GupContext {
  private readonly tasks = new Map<number, TaskGup>();

  task(pid: number): TaskGup {
    let t = this.tasks.get(pid);
    if (!t) this.tasks.set(pid, (t = new TaskGup()));
    return t;
  }

  peek(pid: number): TaskGup | undefined {
    return this.tasks.get(pid);
  }

  grab(ev: Ev): void {
    const t = this.task(ev.pid);
    t.grabSeq = ev.seq;
    t.grabPfn = ev.pfn;
    t.grabFlags = ev.gupFlags;
    t.grabRefs = ev.refs === ev.refs && ev.refs > 0 ? ev.refs : 1;
    t.grabStack = ev.stack;
  }

  putFolio(ev: Ev): void {
    const t = this.task(ev.pid);
    t.unpinSeq = ev.seq;
    t.unpinFolio = ev.pfn;
    t.unpinFlags = ev.gupFlags;
    t.unpinRefs = ev.refs === ev.refs && ev.refs > 0 ? ev.refs : 1;
    t.unpinStack = ev.stack >= 0 ? ev.stack : t.unpinSubStack;
  }

  unpinPage(ev: Ev): void {
    const t = this.task(ev.pid);
    t.unpinSub = ev.pfn;
    t.unpinSubStack = ev.stack;
  }

  call(ev: Ev): void {
    if (ev.gupFlags === ev.gupFlags) this.task(ev.pid).callFlags = ev.gupFlags;
  }

  callRet(ev: Ev): void {
    const t = this.tasks.get(ev.pid);
    if (t) {
      t.callFlags = NaN;
      t.migrateSeq = -1;
    }
  }

  /** mm_migrate_pages: remember a longterm_pin migration (reason 7 when printed as a number, 6.1 numbering). */
  migrated(ev: Ev): void {
    const reason = ev.side?.name;
    if (reason !== 'longterm_pin' && reason !== '7') return;
    const t = this.task(ev.pid);
    t.migrateSeq = ev.seq;
    t.migrateTs = ev.ts;
  }

  /** The longterm_pin migration a pin opened by `pid` at `ts` retries after, or -1. */
  migrationBefore(pid: number, ts: number): number {
    const t = this.tasks.get(pid);
    return t && t.migrateSeq >= 0 && ts - t.migrateTs <= MIGRATE_LINK_NS ? t.migrateSeq : -1;
  }

  /**
   * The pending grab probe of this task if it concerns the page at `pfn` (order `order`: the probe may name a
   * subpage of the folio whose head takes the reference). Consumed.
   */
  takeGrab(pid: number, pfn: number, order: number): TaskGup | null {
    const t = this.tasks.get(pid);
    if (!t || t.grabSeq < 0) return null;
    const g = t.grabPfn;
    if (g !== pfn && !(order > 0 && g > pfn && g < pfn + 2 ** order)) return null;
    t.grabSeq = -1;
    return t;
  }

  /** The pending gup_put_folio of this task if it concerns the folio at `pfn`. Consumed. */
  takeUnpin(pid: number, pfn: number): TaskGup | null {
    const t = this.tasks.get(pid);
    if (!t || t.unpinSeq < 0 || t.unpinFolio !== pfn) return null;
    t.unpinSeq = -1;
    return t;
  }
}
