/**
 * Lost-event windows. Each `lost_events` row marks a point (the seq of the first event after the marker) before
 * which some CPU's events were dropped. We keep an epoch counter that increases at every marker the replay
 * passes: any state that records the epoch when it starts and sees a different epoch when it ends has crossed a
 * window and is uncertain. For simplicity every CPU's marker counts for every page (a lost event of one CPU can
 * touch any page).
 */
export interface LostMarker {
  seq: number;
  cpu: number | null;
  lost: number | null;
  kind: string;
}

export class LostWindows {
  /** Markers passed so far (all CPUs). */
  epoch = 0;
  private next = 0;
  private nextSeq: number;

  constructor(
    private readonly markers: LostMarker[],
    /** entries-written > entries-in-buffer beyond what the markers account for: events lost before the first one. */
    readonly lostAtStart: number,
  ) {
    this.markers.sort((a, b) => a.seq - b.seq);
    this.nextSeq = this.markers.length ? this.markers[0].seq : Infinity;
  }

  get count(): number {
    return this.markers.length;
  }

  /** Call before handling the event with this seq. */
  advance(seq: number): void {
    while (seq >= this.nextSeq && this.next < this.markers.length) {
      this.next++;
      this.epoch++;
      this.nextSeq = this.next < this.markers.length ? this.markers[this.next].seq : Infinity;
    }
  }

  /** Markers after the last event (loss at the very end) still make open state uncertain. */
  finish(): void {
    this.advance(Infinity);
  }

  /** State that started at `startEpoch` and is still (or was last) seen now crossed a window. */
  crossed(startEpoch: number): boolean {
    return this.epoch !== startEpoch;
  }
}
