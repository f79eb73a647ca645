/**
 * Tasks that exited (docs/model.md §15), from sched:sched_process_exit. do_exit() fires it in the exiting task
 * itself, so the event's pid/tgid are the task that exits. A reference's holder is its thread group when the
 * trace records TGIDs (the exit of the group leader, pid == tgid), else its pid: the same rule as the queries'
 * `_exits` view. A pid can be reused, so an exit counts for a reference only when it comes after the reference
 * was taken.
 */
import type { Ev } from './event.js';

/** One exit: events.seq and its ts (replay-relative). */
export interface Exit {
  seq: number;
  ts: number;
}

/**
 * sched_process_exit fires before exit_files()/exit_mm(): references owned by the process's files and rings
 * (io_uring buffers, pipes) are returned after it, some in a kworker. An exit younger than this at the end of the
 * trace does not make a leak certain (the queries' $exit_grace_ns default, queries/leaks.sql).
 */
export const EXIT_GRACE_NS = 100_000_000;

export class Tasks {
  /** pid -> its exits in trace order. */
  private readonly exits = new Map<number, Exit[]>();
  count = 0;

  /** endTs: the trace's last timestamp (any event, as the queries' end of trace; replay-relative), NaN unknown. */
  constructor(private readonly endTs = NaN) {}

  /** The exit is younger than the exit grace at the end of the trace (`fallbackEnd` when the end is unknown). */
  late(exit: Exit, fallbackEnd: number): boolean {
    return (this.endTs === this.endTs ? this.endTs : fallbackEnd) - exit.ts < EXIT_GRACE_NS;
  }

  exit(ev: Ev): void {
    if (ev.pid < 0) return;
    let l = this.exits.get(ev.pid);
    if (!l) this.exits.set(ev.pid, (l = []));
    l.push({ seq: ev.seq, ts: ev.ts });
    this.count++;
  }

  /** The first exit of the holder (its thread group when tgid >= 0, else pid) after event `seq`, or null. */
  exitAfter(pid: number, tgid: number, seq: number): Exit | null {
    const l = this.exits.get(tgid >= 0 ? tgid : pid);
    if (!l) return null;
    for (const x of l) if (x.seq > seq) return x;
    return null;
  }
}
