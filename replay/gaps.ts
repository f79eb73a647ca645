/**
 * Untraced windows inferred from evidence (docs/model.md §16), beside the tracer's own loss markers that ingest
 * stores in `lost_events`. Replay writes them to its `gaps` table (replaced with the trace's other replay rows):
 *
 * - 'silence': an event whose timestamp exceeds every earlier event's by more than max(1 s, 1000 x the median
 *   inter-event gap) — tracing_on 0/1, `trace-cmd stop/start`, a paused reader — AND after which, before the next
 *   such silence, some page shows untraced events (page evidence below). A quiet system (a workload sleeping while
 *   only its page events are traced) shows long silences too, and its pages' histories then continue without a
 *   contradiction: a silence alone is not evidence. The replay runs once with silences as candidates; when page
 *   evidence corroborates one, it runs again with the corroborated silences as windows of every CPU (LostWindows
 *   treats them as markers of an unknown CPU, `inferred`): the pages' earlier frees become uncertain, the page
 *   evidence they explain is no longer its own gap.
 * - 'overwritten' (before the replay): entries-written > entries-in-buffer beyond what the markers account for —
 *   events lost before the first one printed (nothing earlier was seen, so no state crosses it).
 * - 'alive-on-free' (page evidence, pages.ts): a get/put on a pfn the model remembers free whose printed count shows
 *   the page alive before the op (printed - delta > 0): its allocation was not traced.
 * - 'double-free' (page evidence, driver kmem free): mm_page_free of a pfn already freed with no allocation between.
 * - 'count-jump' (page evidence, refcheck.ts): a count= divergence neither a window nor a concurrent op explains.
 *
 * Page evidence is a window of that page only (its epochs become GAP_EPOCH, lost.ts): its lifetime and everything
 * resting on it are uncertain; other pages keep their certainty. The pins and holds open on the page at that moment
 * (they carry epochs of their own, interval.ts) become uncertain with it (demoteOpen): the untraced events may have
 * taken or returned their references. Those opened after the evidence rest on observed events and stay certain.
 */
import type { Db } from '../db/duckdb.js';
import { RowWriter } from '../db/rows.js';
import { GAPS } from '../db/tables/replay.js';
import type { RefInterval } from './interval.js';
import { GAP_EPOCH, type LostMarker } from './lost.js';
import type { Page } from './page.js';

export type GapKind = 'silence' | 'overwritten' | 'alive-on-free' | 'double-free' | 'count-jump';

export interface Gap {
  /** First event after the window (the event that shows it for page evidence). */
  seq: number;
  /** events.ts_ns of that event: absolute (bigint) or relative to the output's tsBase (number). */
  ts: bigint | number | null;
  cpu: number | null;
  pfn: number | null;
  kind: GapKind;
  evidence: string;
}

/** Silence rule: a jump longer than this many median inter-event gaps, and at least SILENCE_MIN_NS. */
export const SILENCE_FACTOR = 1000;
export const SILENCE_MIN_NS = 1_000_000_000n;

/**
 * Whether a trace's clock and span allow silences at all: counter and relative clocks are not times, and a trace
 * no longer than SILENCE_MIN_NS has none.
 */
export async function silencesPossible(db: Db, traceId: number): Promise<boolean> {
  const t = await db.one<{ clock: string | null; first_ts_ns: bigint | null; last_ts_ns: bigint | null }>(
    'SELECT clock, first_ts_ns, last_ts_ns FROM traces WHERE trace_id = $1',
    [traceId],
  );
  if (!t || t.first_ts_ns === null || t.last_ts_ns === null) return false;
  if (t.clock === 'counter' || t.clock === 'relative-us') return false;
  return BigInt(t.last_ts_ns) - BigInt(t.first_ts_ns) > SILENCE_MIN_NS;
}

/**
 * Global silences of a trace (see the header), found while the stream passes every event in seq order (a window
 * query over the events cost a tenth of the replay). An event's jump is its timestamp minus the largest timestamp
 * of the earlier events (0 if below it, and for the first event), so a merge that is not in timestamp order never
 * looks like a silence; the median is the lower middle jump, as quantile_disc(jump, 0.5).
 */
export class SilenceScan {
  /**
   * The jumps, kept so that their exact median costs little memory whatever the trace's length: counts of each jump
   * below 2^16 ns, counts of each whole-microsecond jump below 2^16 us (text captures print microseconds), and the
   * others one by one (4 bytes each below 2^32 ns, rare above). A Uint32Array of every jump was 16 MB at 2.4 M events.
   */
  private readonly fine = new Uint32Array(1 << 16);
  private readonly micro = new Uint32Array(1 << 16);
  private rest = new Uint32Array(1024);
  private nRest = 0;
  private n = 0;
  private readonly huge: number[] = [];
  private first = true;
  private maxTs = 0;
  /** Jumps above SILENCE_MIN_NS: seq, ts, jump (the median decides at the end which are silences). */
  private readonly long: number[] = [];

  /** ts relative to the stream's tsBase (exact: below 2^53). */
  add(seq: number, ts: number): void {
    let jump = 0;
    if (this.first) {
      this.first = false;
      this.maxTs = ts;
    } else if (ts > this.maxTs) {
      jump = ts - this.maxTs;
      this.maxTs = ts;
      if (jump > MIN_NS) this.long.push(seq, ts, jump);
    }
    this.n++;
    if (jump < 65536) this.fine[jump]++;
    else if (jump < 65536000 && jump % 1000 === 0) this.micro[jump / 1000]++;
    else if (jump > 0xffffffff) this.huge.push(jump);
    else {
      if (this.nRest === this.rest.length) {
        const r = new Uint32Array(2 * this.nRest);
        r.set(this.rest);
        this.rest = r;
      }
      this.rest[this.nRest++] = jump;
    }
  }

  silences(tsBase: bigint): Gap[] {
    if (this.long.length === 0) return [];
    const median = this.kth((this.n - 1) >> 1);
    const min = Math.max(MIN_NS, SILENCE_FACTOR * median);
    const out: Gap[] = [];
    for (let i = 0; i < this.long.length; i += 3) {
      const [seq, ts, jump] = [this.long[i], this.long[i + 1], this.long[i + 2]];
      if (jump > min)
        out.push({ seq, ts: tsBase + BigInt(ts), cpu: null, pfn: null, kind: 'silence',
          evidence: `no event for ${(jump / 1e9).toFixed(3)} s (median gap ${fmtNs(median)}): tracing paused or a reader stopped` });
    }
    return out;
  }

  /** The k-th smallest jump (from 0), as quantile_disc's lower middle when k = (n - 1) >> 1. */
  private kth(k: number): number {
    // Every fine jump is below every other, every huge one above every other.
    for (let v = 0; v < 65536; v++) {
      if (k < this.fine[v]) return v;
      k -= this.fine[v];
    }
    const rest = this.rest.subarray(0, this.nRest).sort();
    // The micro counts and the sorted rest, merged in value order.
    let r = 0;
    for (let u = 66; u < 65536; u++) {
      const v = u * 1000;
      for (; r < rest.length && rest[r] < v; r++, k--) if (k === 0) return rest[r];
      if (k < this.micro[u]) return v;
      k -= this.micro[u];
    }
    if (k < rest.length - r) return rest[r + k];
    k -= rest.length - r;
    return select(Float64Array.from(this.huge), k);
  }
}
const MIN_NS = Number(SILENCE_MIN_NS);

/** The k-th smallest value of a (reordered in place): quickselect, no sort of the whole trace's jumps. */
function select(a: Uint32Array | Float64Array, k: number): number {
  let lo = 0, hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >> 1];
    let i = lo, j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i]; a[i] = a[j]; a[j] = t;
        i++; j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}

/**
 * Page evidence was established for p: every pin and hold open on it gets GAP_EPOCH (crossed() is then true for it,
 * so its row, the CMA blockers and the findings resting on it are uncertain). Returns the demoted intervals with
 * their previous epochs (flat pairs), for refcheck.ts to undo when the divergence turns out concurrent; null if none.
 */
export function demoteOpen(p: Page): (RefInterval | number)[] | null {
  let out: (RefInterval | number)[] | null = null;
  for (const xs of [p.pins, p.holds] as (RefInterval[] | null)[])
    if (xs)
      for (const x of xs) {
        (out ??= []).push(x, x.epoch);
        x.epoch = GAP_EPOCH;
      }
  return out;
}

/** Undo demoteOpen for the intervals still open on p and not demoted again since (a concurrent op after all). */
export function restoreOpen(p: Page, demoted: (RefInterval | number)[]): void {
  for (let i = 0; i < demoted.length; i += 2) {
    const x = demoted[i] as RefInterval;
    if (x.epoch !== GAP_EPOCH) continue;
    if ((p.pins as RefInterval[] | null)?.includes(x) || (p.holds as RefInterval[] | null)?.includes(x)) x.epoch = demoted[i + 1] as number;
  }
}

/** Page evidence kinds: a page's own events contradict its traced history. */
const PAGE_EVIDENCE = new Set<GapKind>(['alive-on-free', 'double-free', 'count-jump']);

/** The candidate silences that page evidence after them (and before the next candidate) corroborates. */
export function corroborated(silences: Gap[], inferred: Gap[]): Gap[] {
  const out: Gap[] = [];
  silences.forEach((s, i) => {
    const next = i + 1 < silences.length ? silences[i + 1]!.seq : Infinity;
    const n = inferred.filter((g) => PAGE_EVIDENCE.has(g.kind) && g.seq >= s.seq && g.seq < next).length;
    if (n > 0) out.push({ ...s, evidence: `${s.evidence}; ${n} page${n > 1 ? 's' : ''} after it show${n > 1 ? '' : 's'} untraced events` });
  });
  return out;
}

/** Thrown by a replay whose candidate silences are corroborated: replay again with them as windows. */
export class SilenceRetry extends Error {
  constructor(readonly silences: Gap[]) {
    super('replay again with the corroborated silences as untraced windows');
  }
}

/** The windows inferred before the replay, as markers of an unknown CPU for LostWindows. */
export function silenceMarkers(gaps: Gap[]): LostMarker[] {
  return gaps.filter((g) => g.kind === 'silence').map((g) => ({ seq: g.seq, cpu: null, lost: null, kind: 'silence', inferred: true }));
}

/** Every inferred window into `gaps` (inside the replay's transaction). */
export async function writeGaps(db: Db, traceId: number, tsBase: bigint, gaps: Gap[]): Promise<void> {
  if (gaps.length === 0) return;
  const w = await new RowWriter(db, GAPS).open();
  gaps.sort((a, b) => a.seq - b.seq);
  for (const g of gaps)
    w.add({
      trace_id: traceId,
      seq: g.seq,
      ts_ns: g.ts === null ? null : typeof g.ts === 'bigint' ? g.ts : tsBase === 0n ? g.ts : tsBase + BigInt(g.ts),
      cpu: g.cpu,
      pfn: g.pfn,
      kind: g.kind,
      evidence: g.evidence,
    });
  await w.close();
}

const fmtNs = (ns: number): string => (ns >= 1e6 ? `${(ns / 1e6).toFixed(1)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(1)} us` : `${ns} ns`);
