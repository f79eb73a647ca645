/**
 * Lost-event windows, per CPU. Each `lost_events` row marks a point (the seq of the first event after the marker)
 * before which one CPU's events were dropped (`cpu` NULL: unknown, counts for every CPU). An epoch counter
 * increases at every marker the replay passes; state records the epoch when it starts and the CPUs its events came
 * from (a bitmask, see cpuBit). It is uncertain when a window of one of those CPUs was passed since it started:
 * the lost events of a CPU can only have touched pages that CPU works on, and a page's events name the CPUs that
 * do. A page first seen on the lost CPU after the window still counts (its mask grows, the window is in its span).
 * Totals over every CPU (pgmap balances, remembered frees, raw PFN mappings) use crossedAny.
 *
 * Windows inferred before the replay (a global silence, gaps.ts) are markers with `inferred` set: they act exactly
 * like the tracer's own, but a divergence they explain is a 'gap', not 'lost', and they are not counted as markers.
 * Windows inferred during the replay from one page's evidence (gaps.ts) do not move the epoch: the page's own
 * epochs are set to -1 (crossed() is then true for it) so only that page's lifetime and findings become uncertain,
 * with the pins and holds open on it at that moment (their epochs too: gaps.ts demoteOpen).
 */
import type { Gap } from './gaps.js';

export interface LostMarker {
  seq: number;
  cpu: number | null;
  lost: number | null;
  kind: string;
  /** An untraced window inferred from evidence (gaps.ts), not a marker the tracer printed. */
  inferred?: boolean;
}

/** A page epoch meaning "its history has an untraced piece": crossed() is true for it whatever the windows. */
export const GAP_EPOCH = -1;

/** Bitmask bit of a CPU: CPUs 0..30 have their own bit, higher CPUs share bit 31, an unknown CPU (-1) is every CPU. */
export const cpuBit = (cpu: number): number => (cpu < 0 ? -1 : cpu < 31 ? 1 << cpu : 1 << 31);

export class LostWindows {
  /** Markers passed so far (all CPUs). */
  epoch = 0;
  private next = 0;
  private nextSeq: number;
  /** Per cpuBit index: the epoch right after the latest marker of that CPU (0 = none yet). */
  private readonly lastOn = new Int32Array(32);
  /** The epoch right after the latest marker of an unknown CPU. */
  private lastAll = 0;
  /** The same, for the tracer's own markers only (not inferred windows). */
  private readonly lastOnMarker = new Int32Array(32);
  private lastAllMarker = 0;
  /** Untraced windows inferred from evidence during the replay (page evidence, count jumps): gaps.ts writes them. */
  readonly inferred: Gap[] = [];

  constructor(
    private readonly markers: LostMarker[],
    /** entries-written > entries-in-buffer beyond what the markers account for: events lost before the first one. */
    readonly lostAtStart: number,
  ) {
    this.markers.sort((a, b) => a.seq - b.seq);
    this.nextSeq = this.markers.length ? this.markers[0].seq : Infinity;
  }

  /** The tracer's own markers (inferred windows not counted). */
  get count(): number {
    return this.markers.reduce((n, m) => n + (m.inferred ? 0 : 1), 0);
  }

  /** Call before handling the event with this seq. */
  advance(seq: number): void {
    while (seq >= this.nextSeq && this.next < this.markers.length) {
      const m = this.markers[this.next];
      const cpu = m.cpu;
      this.next++;
      this.epoch++;
      if (cpu === null || cpu < 0) {
        this.lastAll = this.epoch;
        if (!m.inferred) this.lastAllMarker = this.epoch;
      } else {
        this.lastOn[cpu < 31 ? cpu : 31] = this.epoch;
        if (!m.inferred) this.lastOnMarker[cpu < 31 ? cpu : 31] = this.epoch;
      }
      this.nextSeq = this.next < this.markers.length ? this.markers[this.next].seq : Infinity;
    }
  }

  /** Markers after the last event (loss at the very end) still make open state uncertain. */
  finish(): void {
    this.advance(Infinity);
  }

  /** A window of one of the CPUs in `cpus` (a cpuBit mask), or of an unknown CPU, was passed since `startEpoch`. */
  crossed(startEpoch: number, cpus: number): boolean {
    if (this.epoch === startEpoch) return false;
    if (this.lastAll > startEpoch) return true;
    for (let m = cpus, i = 0; m !== 0; i++, m >>>= 1) if ((m & 1) !== 0 && this.lastOn[i] > startEpoch) return true;
    return false;
  }

  /**
   * What explains state that crossed() a window since `startEpoch`: 'lost' when one of the tracer's markers is
   * among the windows, 'gap' when only inferred windows (or the page's own evidence, GAP_EPOCH) are.
   */
  windowKind(startEpoch: number, cpus: number): 'lost' | 'gap' {
    if (startEpoch < 0) return 'gap';
    if (this.lastAllMarker > startEpoch) return 'lost';
    for (let m = cpus, i = 0; m !== 0; i++, m >>>= 1) if ((m & 1) !== 0 && this.lastOnMarker[i] > startEpoch) return 'lost';
    return 'gap';
  }

  /** A window of any CPU was passed since `startEpoch`. */
  crossedAny(startEpoch: number): boolean {
    return this.epoch !== startEpoch;
  }
}
