/**
 * refcount_not_baseline: references nobody accounts for that were taken and never returned.
 *
 * After every page_ref event of a page, the references its owners explain are subtracted from the printed count:
 * its mappings (mapcount), the page cache or swap cache (+1: a file/shmem mapping, or the swapcache flag), fs
 * private data (+1: the private flag), open pins (1024 per small-folio pin, refs on a large folio) and GUP
 * references still held (FOLL_GET holds: a pipe, direct I/O: a known holder). What is left is the page's unowned
 * count. Its baseline is the lowest unowned count of the lifetime, from its first page_ref event on
 * (page_ref_set and unfreeze set a new baseline; frozen states are skipped). A page still alive when the trace ends
 * whose unowned count is above its baseline, and has been for at least the hold threshold, is reported, with the
 * get that raised it above the baseline for the last time (its task and stack). A get whose reference the mapping
 * later drops (vmsplice, then munmap) stays counted; a reference in flight at the very end is not reported.
 */
import type { Anomalies } from './anomalies.js';
import type { ReplayContext } from './context.js';
import { PR_FREEZE, PR_SET, PR_UNFREEZE, type Ev } from './event.js';
import type { LostWindows } from './lost.js';
import { NO, type Page } from './pages.js';
import type { PfnMap } from './pfnmap.js';

export class Baseline {
  constructor(
    private readonly ctx: ReplayContext,
    private readonly lost: LostWindows,
    private readonly anomalies: Anomalies,
  ) {}

  /** The page's references no owner explains (NaN when its count is unknown). */
  unowned(p: Page): number {
    if (p.count === NO) return NaN;
    // A held-back -1023k (first half of an unpin pair) has left the count but not yet closed its pin.
    return p.count + p.grpDefer - this.ctx.mappings(p.mapcount) - p.owners - p.pinCount - p.gupRefs;
  }

  /** After the trackers handled page_ref event ev of page p. */
  update(p: Page, ev: Ev): void {
    if (p.frozen || (ev.code === PR_FREEZE && ev.ret === 1)) return;
    const u = this.unowned(p);
    if (u !== u) return;
    if (p.baseLow === NO || ev.code === PR_SET || ev.code === PR_UNFREEZE) {
      p.baseLow = u;
      p.exSeq = -1;
    } else if (u <= p.baseLow) {
      p.baseLow = u;
      p.exSeq = -1;
    } else if (p.exSeq < 0) {
      p.exSeq = ev.seq;
      p.exTs = ev.ts;
      p.exPid = ev.pid;
      p.exComm = ev.comm;
      p.exStack = ev.stack;
    }
  }

  /** Pages still alive at the end of the trace (endTs). */
  finish(pages: PfnMap<Page>, endTs: number): void {
    pages.forEach((p) => {
      if (p.exSeq < 0 || p.frozen || p.zeroSeq >= 0 || endTs - p.exTs < this.ctx.holdThresholdNs) return;
      const u = this.unowned(p);
      if (!(u > p.baseLow)) return;
      const certain = !this.lost.crossed(p.lifeEpoch, p.cpus);
      this.anomalies.add('refcount_not_baseline', certain, p.pfn, { seq: p.exSeq, ts: p.exTs, pid: p.exPid, comm: p.exComm, stack: p.exStack },
        `refcount of pfn 0x${p.pfn.toString(16)} ends at ${p.count}: ${u - p.baseLow} reference(s) above its baseline since event ${p.exSeq}, ` +
          'not explained by a mapping, the page cache, fs private data, a pin or a GUP reference');
    });
  }
}
