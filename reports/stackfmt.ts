import { frameFunction, shownFrames } from '../ingest/stack.js';

/**
 * Stack frames as people read them: the tracing machinery a probe or tracepoint adds on top (kprobe handlers,
 * trace_event_raw_event_*, unsymbolized trampolines) is dropped from the innermost end by the rule that makes
 * `stacks.frames_shown` (ingest/stack.ts), the syscall entry from the outermost end, and `+0xoff/0xsize` suffixes
 * are removed for the one-line form.
 */

const ENTRY_FRAME = /^(do_syscall_64|entry_SYSCALL_64\w*|do_syscall_x64|x64_sys_call|ret_from_fork\w*|__x64_sys_\w+|__ia32_sys_\w+)(\+.*)?$/;

export const frameName = frameFunction;

/** Frames without the tracing machinery on top (innermost first), as `stacks.frames_shown`; all if nothing is left. */
export const meaningfulFrames = shownFrames;

/** One-line stack `inner <- ... <- outer` without tracing and syscall-entry frames, at most `max` frames shown. */
export function shortStack(frames: string[], max = 6): string[] {
  let f = meaningfulFrames(frames).map(frameName);
  let j = f.length;
  while (j > 1 && ENTRY_FRAME.test(f[j - 1]!)) j--;
  f = f.slice(0, j);
  if (f.length <= max) return f;
  return [...f.slice(0, max - 2), '...', ...f.slice(-2)];
}

/** The system call a stack was made from (`__do_sys_vmsplice` -> `vmsplice`), if any frame says. */
export function syscallOf(frames: string[]): string | null {
  for (let i = frames.length - 1; i >= 0; i--) {
    const m = /^(?:__do_sys_|__se_sys_|__x64_sys_|__ia32_sys_|ksys_|__sys_)(\w+)$/.exec(frameName(frames[i]!));
    if (m) return m[1]!;
  }
  return null;
}

export function splitFrames(frames: unknown): string[] {
  return typeof frames === 'string' && frames.length ? frames.split('\n') : [];
}
