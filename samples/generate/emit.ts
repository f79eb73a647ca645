/**
 * The trace writer: scenarios describe events format-neutrally (time, cpu, task, irq flags, system, event,
 * payload, optional stack) and this module prints them in one of the three layouts refscope reads, copied
 * from real captures:
 *
 * - ftrace (tracefs `trace` with record-tgid, samples/real/[a-e]-*.trace.txt.gz, real 6.1.192 captures):
 *   `%16s-%-7d (%7d) [%03d] %5s %5lu.%06lu: event: payload` (trace_print_context()), `<stack trace>` entries
 *   followed by ` => func` lines, `CPU:N [LOST M EVENTS]` before the first event of a CPU after a gap,
 *   syscalls as `sys_munmap(addr: 7f.., len: 400000)` / `sys_munmap -> 0x0`.
 * - trace-cmd (`trace-cmd report`, live-6.18/trace-cmd-extract.report.txt): `cpus=2`, then
 *   `%16s-%-5d [%03d] %5lu.%06lu: ` + event name and ':' padded to 21 + ' ' + payload, stacks as a
 *   `kernel_stack:         <stack trace>` event followed by `=> func (addr)` lines (trace-cmd's
 *   trace_stack_handler prints them without a leading space), markers as `print:` events, drops as
 *   `CPU:N [M EVENTS DROPPED]`.
 * - perf (`perf script` of `perf record -g`, live-6.18/perf-task-callgraph.script.txt):
 *   `comm %5d [%03d] %5lu.%06lu: sys:event: payload`, callchain lines `\t<addr> func+0xoff ([kernel.kallsyms])`
 *   and a blank line. perf cannot record trace_marker writes and prints no lost records by default, so
 *   markers and lost lines are omitted.
 *
 * Output is built in ~64 KiB strings; `pump()` writes them and waits for 'drain' (backpressure). With a null
 * stream nothing is formatted: that is the counting pass that tells the ftrace header how many entries follow
 * (generate() to a stream; generateToFile writes the header last instead). The header block is headerLines().
 * Speed matters (the benchmark writes 25 M lines): each task's padded prefix and each stack's lines are
 * formatted once and reused.
 */
import { addrPlus, frameOff, symAddr } from './kallsyms.js';

export type Format = 'ftrace' | 'trace-cmd' | 'perf';
export const FORMATS: readonly Format[] = ['ftrace', 'trace-cmd', 'perf'];

export interface Task {
  comm: string;
  pid: number;
  /** Thread-group id; null prints as `(-------)` (idle / unknown). */
  tgid: number | null;
  cpu: number;
}

/** How the event is produced: decides the stack plumbing frames and the syscall/marker layouts. */
export type Kind = 'tp' | 'kprobe' | 'kretprobe' | 'sys_enter' | 'sys_exit' | 'marker';
export type Payload = (f: Format) => string;

export interface EvOpts {
  kind?: Kind;
  /** ftrace irq-info column, 5 chars (`.....`, `...1.`, `d..2.`, `..s1.`). */
  irq?: string;
  /** Kernel frames innermost first, starting at the function that fired the event (probed function for kprobes). */
  stack?: readonly string[];
  cpu?: number;
}

/** Tracepoint classes (trace_event_raw_event_<class> is the first frame of a tracepoint stacktrace trigger). */
const TP_CLASS: Record<string, string> = {
  page_ref_set: 'page_ref_mod_template',
  page_ref_mod: 'page_ref_mod_template',
  page_ref_unfreeze: 'page_ref_mod_template',
  page_ref_mod_and_test: 'page_ref_mod_and_test_template',
  page_ref_mod_and_return: 'page_ref_mod_and_test_template',
  page_ref_mod_unless: 'page_ref_mod_and_test_template',
  page_ref_freeze: 'page_ref_mod_and_test_template',
  cma_alloc_busy_retry: 'cma_alloc_class',
  cma_alloc_finish: 'cma_alloc_class',
  mm_page_free_batched: 'mm_page_free_batched',
  mm_filemap_add_to_page_cache: 'mm_filemap_op_page_cache',
  mm_filemap_delete_from_page_cache: 'mm_filemap_op_page_cache',
};

/** Probed functions that also carry a kretprobe: their kprobe stacks show aggr_pre_handler (qemu-6.1). */
const AGGR = new Set([
  'pin_user_pages', 'pin_user_pages_fast', 'get_user_pages_fast', 'try_grab_folio', 'memremap_pages',
  'memunmap_pages', 'get_dev_pagemap', 'alloc_contig_range',
]);

/** The ftrace-based kprobe trampoline (module text), unsymbolized in every qemu-6.1 kprobe stack. */
const KPROBE_TRAMPOLINE = '0xffffffffc00000c8';
const CHUNK = 64 * 1024;

const FTRACE_LEGEND = [
  '#',
  '#                                          _-----=> irqs-off/BH-disabled',
  '#                                         / _----=> need-resched',
  '#                                        | / _---=> hardirq/softirq',
  '#                                        || / _--=> preempt-depth',
  '#                                        ||| / _-=> migrate-disable',
  '#                                        |||| /     delay',
  '#           TASK-PID       TGID    CPU#  |||||  TIMESTAMP  FUNCTION',
  '#              | |           |       |   |||||     |         |',
];

/** The header block before the first event; ftrace's states the entries that follow (`written` > `entries`: events were lost). */
export function headerLines(format: Format, entries: number, written: number): string[] {
  if (format === 'ftrace') return ['# tracer: nop', '#', `# entries-in-buffer/entries-written: ${entries}/${written}   #P:2`, ...FTRACE_LEGEND];
  return format === 'trace-cmd' ? ['cpus=2'] : [];
}

export class Emitter {
  /** Current time in microseconds: the printed clock is secs.usecs, so truth timestamps are now * 1000. */
  now = 0;
  lines = 0;
  /** ftrace ring-buffer entries written to the file (event lines + `<stack trace>` entries). */
  entries = 0;
  /** Events declared lost (`CPU:N [LOST M EVENTS]`). */
  lost = 0;
  readonly counts = new Map<string, number>();
  private buf = '';
  private needDrain = false;
  private readonly dropping = new Set<number>();
  private readonly pendingLost = new Map<number, number>();
  private readonly pendingStarted = new Set<number>();
  private readonly heads = new WeakMap<Task, { comm: string; pid: number; tgid: number | null; text: string }>();
  private readonly stacks = new WeakMap<readonly string[], Map<string, { text: string; lines: number }>>();
  private sec = -1;
  private secText = '';

  constructor(
    readonly format: Format,
    private readonly out: NodeJS.WritableStream | null,
  ) {}

  get counting(): boolean {
    return this.out === null;
  }

  adv(us: number): void {
    this.now += Math.max(0, Math.round(us));
  }

  /** Events of `cpu` from now on are lost (not written; the scenario's model still advances). */
  startDrop(cpu: number): void {
    this.dropping.add(cpu);
  }

  /** End a gap of `n` lost events on `cpu`: the marker prints before that CPU's next written event. */
  endDrop(cpu: number, n: number): void {
    this.dropping.delete(cpu);
    this.pendingLost.set(cpu, (this.pendingLost.get(cpu) ?? 0) + n);
    this.lost += n;
  }

  /** End a gap on `cpu` with nothing in the output saying so (tracing_on 0/1, a trace_pipe reader that restarted). */
  resume(cpu: number): void {
    this.dropping.delete(cpu);
  }

  /**
   * End a gap on `cpu` that was its ring buffer wrapping (overwrite mode, the `annotate` option): ftrace prints
   * `##### CPU N buffer started ####` before that CPU's next written event, trace-cmd `CPU:N [EVENTS DROPPED]`
   * (count unknown), perf nothing.
   */
  endWrap(cpu: number): void {
    this.dropping.delete(cpu);
    this.pendingStarted.add(cpu);
  }

  isDropping(cpu: number): boolean {
    return this.dropping.has(cpu);
  }

  /** One event line, with its stack after it; `kind` defaults to `o.kind` (a separate argument spares tp() a copy of `o`). */
  ev(task: Task, sys: string, name: string, payload: Payload | string, o: EvOpts = {}, kind: Kind = o.kind ?? 'tp'): void {
    const cpu = o.cpu ?? task.cpu;
    if (this.dropping.has(cpu)) return;
    if (kind === 'marker' && this.format === 'perf') return;
    const lost = this.pendingLost.get(cpu);
    if (lost !== undefined) {
      this.pendingLost.delete(cpu);
      if (this.format !== 'perf') this.line(this.format === 'ftrace' ? `CPU:${cpu} [LOST ${lost} EVENTS]` : `CPU:${cpu} [${lost} EVENTS DROPPED]`);
    }
    if (this.pendingStarted.size > 0 && this.pendingStarted.delete(cpu) && this.format !== 'perf')
      this.line(this.format === 'ftrace' ? `##### CPU ${cpu} buffer started ####` : `CPU:${cpu} [EVENTS DROPPED]`);
    this.counts.set(name, (this.counts.get(name) ?? 0) + 1);
    this.entries++;
    const stack = o.stack && o.stack.length > 0 ? this.stackText(kind, name, o.stack) : null;
    if (stack) this.entries++;
    if (this.out === null) {
      this.lines += 1 + (stack ? stack.lines + 1 : 0);
      return;
    }
    const f = this.format;
    const pre = this.prefix(task, cpu, o.irq ?? '.....');
    this.line(pre + this.body(sys, name, kind, typeof payload === 'string' ? payload : payload(f)));
    if (!stack) return;
    if (f === 'ftrace') this.line(pre + '<stack trace>');
    else if (f === 'trace-cmd') this.line(pre + 'kernel_stack:         <stack trace>');
    this.buf += stack.text;
    this.lines += stack.lines;
    if (this.buf.length >= CHUNK) this.flush();
  }

  /**
   * The lines of a stack as this format prints them after the event, formatted once per (stack, kind, event): stacks
   * are a few constant call chains (stacks.ts) on ~5% of the events but half of the lines of a trace.
   */
  private stackText(kind: Kind, name: string, stack: readonly string[]): { text: string; lines: number } {
    let byEvent = this.stacks.get(stack);
    if (!byEvent) this.stacks.set(stack, (byEvent = new Map()));
    const key = kind + ' ' + name;
    let st = byEvent.get(key);
    if (!st) {
      const frames = this.frames(kind, name, stack);
      let lines: string[];
      if (this.format === 'ftrace') lines = frames.map((fn) => ' => ' + fn);
      else if (this.format === 'trace-cmd') {
        lines = frames.map((fn, i) => (fn.startsWith('0x') ? `=> ${symAddr(fn)}` : `=> ${fn} (${addrPlus(fn, frameOff(fn, frames[i - 1] ?? name))})`));
      } else {
        lines = frames.map((fn, i) => {
          const off = i === 0 && kind === 'kprobe' ? 5 : frameOff(fn, frames[i - 1] ?? name);
          return `\t${addrPlus(fn, off)} ${fn}+0x${off.toString(16)} ([kernel.kallsyms])`;
        });
        lines.push('');
      }
      st = { text: lines.map((l) => l + '\n').join(''), lines: lines.length };
      byEvent.set(key, st);
    }
    return st;
  }

  /** Frames as each format shows them: ftrace/trace-cmd stacks start in the tracing code, perf at the caller. */
  private frames(kind: Kind, name: string, stack: readonly string[]): readonly string[] {
    if (this.format === 'perf') return stack;
    if (kind === 'kprobe') {
      const plumbing = ['kprobe_trace_func', 'kprobe_dispatcher'];
      if (AGGR.has(stack[0] ?? '')) plumbing.push('aggr_pre_handler');
      plumbing.push('kprobe_ftrace_handler', KPROBE_TRAMPOLINE);
      return [...plumbing, ...stack];
    }
    if (kind === 'tp') return [`trace_event_raw_event_${TP_CLASS[name] ?? name}`, ...stack];
    return stack;
  }

  /** `comm-pid (tgid) [cpu] irq secs.usecs: ` and the other formats' equivalents. */
  private prefix(t: Task, cpu: number, irq: string): string {
    const c = cpu < 10 ? '00' + cpu : String(cpu).padStart(3, '0');
    const head = this.head(t);
    return this.format === 'ftrace' ? `${head}${c}] ${irq} ${this.stamp()}: ` : `${head}${c}] ${this.stamp()}: `;
  }

  /** The part of the prefix before the CPU number, the same on every line of a task: formatted once per task. */
  private head(t: Task): string {
    const h = this.heads.get(t);
    if (h && h.comm === t.comm && h.pid === t.pid && h.tgid === t.tgid) return h.text;
    let text: string;
    if (this.format === 'ftrace') {
      const tgid = t.tgid === null ? '-------' : String(t.tgid).padStart(7);
      text = `${t.comm.padStart(16)}-${String(t.pid).padEnd(7)} (${tgid}) [`;
    } else if (this.format === 'trace-cmd') text = `${t.comm.padStart(16)}-${String(t.pid).padEnd(5)} [`;
    else text = `${t.comm === '<idle>' ? 'swapper' : t.comm} ${String(t.pid).padStart(5)} [`;
    this.heads.set(t, { comm: t.comm, pid: t.pid, tgid: t.tgid, text });
    return text;
  }

  /** `secs.usecs` of now (`%5lu.%06lu`); the seconds part changes rarely. */
  private stamp(): string {
    const s = Math.floor(this.now / 1e6);
    if (s !== this.sec) {
      this.sec = s;
      this.secText = String(s).padStart(5) + '.';
    }
    return this.secText + String(this.now - s * 1e6).padStart(6, '0');
  }

  private body(sys: string, name: string, kind: Kind, p: string): string {
    if (this.format === 'ftrace') {
      if (kind === 'sys_enter') return `sys_${name.slice('sys_enter_'.length)}(${p})`;
      if (kind === 'sys_exit') return `sys_${name.slice('sys_exit_'.length)} -> ${p}`;
      return `${name}: ${p}`;
    }
    if (this.format === 'trace-cmd') {
      if (kind === 'marker') return `print:                tracing_mark_write: ${p}`;
      return `${(name + ':').padEnd(21)} ${p}`;
    }
    return `${sys}:${name}: ${p}`;
  }

  private line(s: string): void {
    this.lines++;
    if (this.out === null) return;
    this.buf += s + '\n';
    if (this.buf.length >= CHUNK) this.flush();
  }

  private flush(): void {
    if (this.out === null || this.buf.length === 0) return;
    if (!this.out.write(this.buf)) this.needDrain = true;
    this.buf = '';
  }

  /** Let the stream catch up: call from loops so memory stays bounded whatever the scale. */
  async pump(): Promise<void> {
    if (!this.needDrain || this.out === null) return;
    this.needDrain = false;
    const out = this.out;
    if ((out as { writableNeedDrain?: boolean }).writableNeedDrain === false) return;
    await new Promise<void>((resolve) => out.once('drain', resolve));
  }

  async end(): Promise<void> {
    this.flush();
    await this.pump();
  }
}
