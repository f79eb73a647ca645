/**
 * Tasks that exited (docs/model.md §15), from sched:sched_process_exit. do_exit() fires it in the exiting task
 * itself, so the event's pid/tgid are the task that exits. A reference's holder is its thread group when the
 * trace records TGIDs (the exit of the group leader, pid == tgid), else its pid: the same rule as the queries'
 * `_exits` view. A pid can be reused, so an exit counts for a reference only when it comes after the reference
 * was taken.
 *
 * Forks (sched:sched_process_fork, fired in the parent; child_pid= the new task) matter because a child inherits
 * the parent's files and mappings: an io_uring ring fd or a driver mapping whose pages the parent pinned keeps them
 * pinned until its last holder goes. So a reference whose holder exited is released for certain only when every
 * task forked from the holder's thread group after the get (and, recursively, every task those forked) also
 * exited: `release()` answers with the last of those exits, or says a descendant is still alive at the end.
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

/** One fork: the child's pid (NaN until childrenFrom() read it), events.seq of the fork. */
interface Fork {
  child: number;
  seq: number;
}

/** child_pid= of a sched_process_fork payload, or null. */
export function childPid(payload: string): number | null {
  const m = /(?:^|\s)child_pid=(\d+)/.exec(payload);
  return m ? Number(m[1]) : null;
}

/** What the exits say about a reference whose holder exited (`Tasks.release`). */
export interface Release {
  /** The holder's exit. */
  exit: Exit;
  /** The last exit among the holder and the tasks forked from it after the get (the one the exit grace applies to). */
  last: Exit;
  /** A task forked from the holder after the get (or its descendant) with no exit seen: it may still hold it. */
  alive: number;
}

export class Tasks {
  /** pid -> its exits in trace order. */
  private readonly exits = new Map<number, Exit[]>();
  /** Parent (its thread group when tgid >= 0, else its pid) -> its forks in trace order. */
  private readonly forks = new Map<number, Fork[]>();
  count = 0;

  /** endTs: the trace's last timestamp (any event, as the queries' end of trace; replay-relative), NaN unknown. */
  constructor(private readonly endTs = NaN) {}

  /** The exit is younger than the exit grace at the end of the trace (`fallbackEnd` when the end is unknown). */
  late(exit: Exit, fallbackEnd: number): boolean {
    return (this.endTs === this.endTs ? this.endTs : fallbackEnd) - exit.ts < EXIT_GRACE_NS;
  }

  exit(ev: Ev): void {
    if (ev.pid < 0) return;
    // A task's first exit makes its list (sized 1: a push onto [] reserves 17 slots, kept for the whole replay).
    const l = this.exits.get(ev.pid);
    if (l) l.push({ seq: ev.seq, ts: ev.ts });
    else this.exits.set(ev.pid, [{ seq: ev.seq, ts: ev.ts }]);
    this.count++;
  }

  /**
   * sched_process_fork: the current task (the parent) forked child_pid=. The child is in the payload, the largest
   * column of `events`: it is read after the stream (childrenFrom), and only when a release() will look at forks.
   */
  fork(ev: Ev): void {
    const key = ev.tgid >= 0 ? ev.tgid : ev.pid;
    if (key < 0) return;
    const l = this.forks.get(key);
    if (l) l.push({ child: NaN, seq: ev.seq });
    else this.forks.set(key, [{ child: NaN, seq: ev.seq }]);
    this.unresolved++;
  }

  /** Forks whose child is not read yet. */
  private unresolved = 0;

  /**
   * Whether release(pid, tgid, seq) would look at a fork whose child is not read yet: the holder exited after `seq`
   * and its thread group forked between the two.
   */
  needsChildren(pid: number, tgid: number, seq: number): boolean {
    if (this.unresolved === 0) return false;
    const exit = this.exitAfter(pid, tgid, seq);
    if (!exit) return false;
    const l = this.forks.get(tgid >= 0 ? tgid : pid);
    return l !== undefined && l.some((f) => f.seq > seq && f.seq <= exit.seq);
  }

  /**
   * The forks' children from their payloads (seq -> payload of every sched_process_fork of the trace); a fork whose
   * payload has no child_pid= is dropped, as if never seen.
   */
  childrenFrom(payloads: Map<number, string>): void {
    for (const [key, l] of this.forks) {
      const kept = l.filter((f) => {
        if (f.child === f.child) return true;
        const child = childPid(payloads.get(f.seq) ?? '');
        if (child === null) return false;
        f.child = child;
        return true;
      });
      if (kept.length === 0) this.forks.delete(key);
      else this.forks.set(key, kept);
    }
    this.unresolved = 0;
  }

  /**
   * The holder (pid / tgid as exitAfter) of a reference taken at event `seq` exited: null when it did not. Else
   * its exit, the last exit of the tasks forked from it after `seq` until its exit (recursively), and the pid of
   * one of those with no exit seen (-1: all exited). The kernel drops a pin or pgmap reference an fd or mapping owns
   * when its last holder goes, so the leak is certain only when none of them is alive.
   */
  release(pid: number, tgid: number, seq: number): Release | null {
    const exit = this.exitAfter(pid, tgid, seq);
    if (!exit) return null;
    let last = exit;
    let alive = -1;
    // (task, forked at, until: forks by it after this seq no longer come from the same task: its exit)
    const todo: { key: number; from: number; until: number }[] = [{ key: tgid >= 0 ? tgid : pid, from: seq, until: exit.seq }];
    for (let n = 0; n < todo.length && n < 100_000; n++) {
      const t = todo[n];
      for (const f of this.forks.get(t.key) ?? []) {
        if (f.seq <= t.from || f.seq > t.until) continue;
        const x = this.exitAfter(f.child, -1, f.seq);
        if (!x) {
          if (alive < 0) alive = f.child;
          todo.push({ key: f.child, from: f.seq, until: Infinity });
          continue;
        }
        if (x.seq > last.seq) last = x;
        todo.push({ key: f.child, from: f.seq, until: x.seq });
      }
    }
    return { exit, last, alive };
  }

  /** The first exit of the holder (its thread group when tgid >= 0, else pid) after event `seq`, or null. */
  exitAfter(pid: number, tgid: number, seq: number): Exit | null {
    const l = this.exits.get(tgid >= 0 ? tgid : pid);
    if (!l) return null;
    for (const x of l) if (x.seq > seq) return x;
    return null;
  }
}
