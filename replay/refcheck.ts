/**
 * The refcount model against the kernel's own count= (a post-operation re-read). For each page_ref event on a
 * page whose previous count is known, the model predicts the count: previous + val (mod, mod_and_test,
 * mod_and_return, mod_unless with ret=1), previous (mod_unless ret=0, failed freeze), val (set, unfreeze), 0
 * (successful freeze). A mismatch is a `divergences` row and the model resyncs to the printed count.
 *
 * count= is re-read after the atomic op, so another CPU's op in between shows up in it (docs/model.md §3). When the
 * next event of the same pfn comes from another CPU and agrees with the un-resynced arithmetic (the two ops
 * together explain both printed counts), that event agrees and the divergence is explained as 'concurrent'.
 * A pfn that crossed a lost-event window of a CPU it was seen on since its last event is checked "inside" a window
 * ('lost', or 'gap' when the window is one replay inferred, gaps.ts); so is a disagreement after a window of any
 * other CPU (the count shows the lost events touched it). A divergence nothing explains ('unknown') is itself
 * evidence of untraced events on that page: its lifetime gets GAP_EPOCH (findings resting on it are uncertain) and
 * a `gaps` row 'count-jump' records it, unless the next event shows it was a concurrent op after all. The pins and
 * holds open on the page then become uncertain too (gaps.ts demoteOpen), restored with the lifetime if it turns
 * concurrent.
 */
import {
  PR_FREEZE,
  PR_MOD,
  PR_MOD_AND_RETURN,
  PR_MOD_AND_TEST,
  PR_MOD_UNLESS,
  PR_SET,
  PR_UNFREEZE,
  type Ev,
} from './event.js';
import { demoteOpen, restoreOpen } from './gaps.js';
import type { RefInterval } from './interval.js';
import { GAP_EPOCH, type LostWindows } from './lost.js';
import type { Output } from './output.js';
import { NO, type Page } from './pages.js';

interface Divergence {
  seq: number;
  ts: number;
  pfn: number;
  name: number;
  expected: number;
  printed: number;
  inLost: boolean;
  explanation: string;
  cpu: number;
  /** lifeEpoch of the page before an 'unknown' divergence set it to GAP_EPOCH (restored if it turns concurrent). */
  life: number;
  page: Page | null;
  /** Pins and holds open on the page that the 'unknown' divergence demoted (gaps.ts demoteOpen), to restore. */
  demoted: (RefInterval | number)[] | null;
}

/** Count after `ev` predicted from `prev` (NaN when it cannot be predicted). */
export function predict(ev: Ev, prev: number): number {
  switch (ev.code) {
    case PR_SET:
    case PR_UNFREEZE:
      return ev.val;
    case PR_MOD:
    case PR_MOD_AND_TEST:
    case PR_MOD_AND_RETURN:
      return prev + ev.val;
    case PR_MOD_UNLESS:
      return ev.ret === 1 ? prev + ev.val : ev.ret === 0 ? prev : ev.count === prev ? prev : prev + ev.val;
    case PR_FREEZE:
      return ev.ret === 1 ? 0 : prev;
    default:
      return NaN;
  }
}

/** Refcount change a get/put makes (0 for set/freeze/unfreeze: they are not references taken or dropped). */
export function refDelta(ev: Ev): number {
  switch (ev.code) {
    case PR_MOD:
    case PR_MOD_AND_TEST:
    case PR_MOD_AND_RETURN:
      return ev.val === ev.val ? ev.val : 0;
    case PR_MOD_UNLESS:
      return ev.ret === 1 && ev.val === ev.val ? ev.val : 0;
    default:
      return 0;
  }
}

export class RefCheck {
  checked = 0;
  agreed = 0;
  checkedOutside = 0;
  agreedOutside = 0;
  private readonly divs: Divergence[] = [];

  constructor(
    private readonly out: Output,
    private readonly lost: LostWindows,
    private readonly names: string[],
  ) {}

  get divergences(): number {
    return this.divs.length;
  }

  get concurrent(): number {
    return this.divs.filter((d) => d.explanation === 'concurrent').length;
  }

  /** Check `ev` against the model of `p`, then take the printed count (or the prediction when none is printed). */
  check(p: Page, ev: Ev): void {
    const prev = p.count === NO ? NaN : p.count;
    const printed = ev.count;
    const expected = predict(ev, prev);
    let outside = !this.lost.crossed(p.chkEpoch, p.cpus);
    if (prev === prev && printed === printed && expected === expected) {
      this.checked++;
      if (expected === printed) {
        this.agreed++;
        if (outside) {
          this.checkedOutside++;
          this.agreedOutside++;
        }
        p.shadow = NO;
      } else {
        const shadowed = p.shadow !== NO ? predict(ev, p.shadow) : NaN;
        if (shadowed === printed && ev.cpu !== p.shadowCpu && outside) {
          // The previous event's re-read saw this op (or this one's saw the previous): both agree together.
          this.agreed++;
          this.checkedOutside++;
          this.agreedOutside++;
          const d = this.divs[p.shadowDiv];
          if (d) {
            if (d.explanation === 'unknown' && d.page === p && p.lifeEpoch === GAP_EPOCH) p.lifeEpoch = d.life;
            if (d.explanation === 'unknown' && d.page === p && d.demoted) restoreOpen(p, d.demoted);
            d.explanation = 'concurrent';
            d.page = null;
            d.demoted = null;
          }
          p.shadow = NO;
        } else {
          if (outside && this.lost.crossedAny(p.chkEpoch)) {
            // A window of a CPU this page was not seen on, and the count moved: the lost events touched it. From
            // now on every window counts for this page.
            outside = false;
            p.cpus = -1;
          }
          if (outside) this.checkedOutside++;
          p.shadowDiv = this.divs.length;
          const life = p.lifeEpoch;
          const explanation = outside ? 'unknown' : this.lost.windowKind(p.chkEpoch, p.cpus);
          if (outside) p.lifeEpoch = GAP_EPOCH;
          this.divs.push({
            seq: ev.seq,
            ts: ev.ts,
            pfn: p.pfn,
            name: ev.name,
            expected,
            printed,
            inLost: !outside,
            explanation,
            cpu: ev.cpu,
            life,
            page: outside ? p : null,
            // Demoted at once (the next event may still show a concurrent op, then restored): an interval closed
            // in between (a free before the page's next page_ref event) keeps its uncertain row (docs/model.md §16).
            demoted: outside ? demoteOpen(p) : null,
          });
          p.shadow = expected;
          p.shadowCpu = ev.cpu;
        }
      }
    } else p.shadow = NO;
    p.count = printed === printed ? printed : expected === expected ? expected : NO;
    p.chkEpoch = this.lost.epoch;
  }

  write(): void {
    for (const d of this.divs) {
      d.page = null;
      d.demoted = null;
      if (d.explanation === 'unknown')
        this.lost.inferred.push({
          seq: d.seq, ts: d.ts, cpu: d.cpu >= 0 ? d.cpu : null, pfn: d.pfn, kind: 'count-jump',
          evidence: `count=${d.printed} where the history gives ${d.expected}: events on pfn 0x${d.pfn.toString(16)} were not traced`,
        });
    }
    const r: Record<string, string | number | boolean | null | bigint> = { trace_id: this.out.traceId };
    for (const d of this.divs) {
      r.seq = d.seq;
      r.ts_ns = this.out.ts(d.ts);
      r.pfn = d.pfn;
      r.event = this.names[d.name] ?? '?';
      r.expected = d.expected;
      r.printed = d.printed;
      r.in_lost_window = d.inLost;
      r.explanation = d.explanation;
      this.out.divergences.add(r);
    }
  }
}
