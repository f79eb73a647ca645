import { FtraceReader } from './ftrace.js';
import { MAX_CPUS } from '../decode/limits.js';
import { matchTask, parseTimestamp, taskComm, type StackKind } from './sink.js';

/**
 * `trace-cmd report` text (trace-cmd Documentation/trace-cmd-report.1.txt): a preamble (`version = 6`, `cpus=N`,
 * `CPU n is empty`), lines `<comm>-<pid> [<cpu>] <ts>: <event>: <payload>` with padded event names, no irq flags
 * unless `-l` (then glued after the cpu), ns timestamps with `-t`, `(+delta)` with `--ts-diff`,
 * `CPU:N [M EVENTS DROPPED]`, stacks as a `kernel_stack:` event followed by `=> func (addr)` lines, and print
 * payloads that continue on following lines.
 */
const DROPPED_RE = /^CPU:(\d+) \[(?:(\d+) )?EVENTS DROPPED\]\s*$/;
const PREAMBLE_RE = /^(version|cpus)\s*=\s*(\S+)\s*$/;
const EMPTY_CPU_RE = /^CPU \d+ is empty\s*$/;
// `report -l` in trace-cmd's own documentation: latency flags glued to a bare cpu number,
// `<idle>-0       0d.h1. 106467.859747: function: ...`.
// From the `-` before the pid to the event (the comm may be anything: sink.ts matchTask).
const LAT_FLAGS_TAIL = /-(\d+)[ \t]+(\d+)([a-zA-Z.][a-zA-Z0-9.]{3,5})[ \t]+(\d+)(?:\.(\d+))?:\s/y;
const STACK_EVENTS: Record<string, 'kernel' | 'user'> = { kernel_stack: 'kernel', user_stack: 'user' };

export class TraceCmdReader extends FtraceReader {
  private lastWasPrint = false;

  override line(text: string, lineNo: number): void {
    const m = PREAMBLE_RE.exec(text);
    if (m) {
      if (m[1] !== 'cpus') return this.sink.header('file_version', m[2]);
      if (/^\d+$/.test(m[2]) && Number(m[2]) <= MAX_CPUS) return this.sink.header('cpus', m[2]);
      return this.sink.unparsed(lineNo, text, `cpus ${m[2].slice(0, 24)} beyond ${MAX_CPUS}`);
    }
    if (EMPTY_CPU_RE.test(text)) return this.sink.skip?.(lineNo, 'header');
    super.line(text, lineNo);
  }

  protected override rest(lineNo: number, rest: string, text: string): void {
    const colon = rest.indexOf(':');
    const kind = this.named(colon > 0 ? rest.slice(0, colon) : '');
    if (kind) return this.sink.stackStart(kind, this.ctx.cpu);
    super.rest(lineNo, rest, text);
  }

  /** Stacks are events of their own (`kernel_stack:`); a print's payload may continue on the lines after it. */
  protected override named(name: string): StackKind | null {
    const kind = Object.hasOwn(STACK_EVENTS, name) ? STACK_EVENTS[name] : null;
    this.lastWasPrint = kind === null && (name === 'print' || name === 'bprint' || name === 'bputs');
    return kind;
  }

  protected override special(text: string, lineNo: number): boolean {
    const m = DROPPED_RE.exec(text);
    if (m) {
      this.sink.lost(lineNo, Number(m[1]), m[2] === undefined ? null : Number(m[2]), 'dropped', text);
      return true;
    }
    const l = matchTask(text, LAT_FLAGS_TAIL, false);
    if (l) {
      const ctx = this.ctx;
      ctx.comm = taskComm;
      ctx.pid = Number(l[1]);
      ctx.tgid = -1;
      ctx.cpu = Number(l[2]);
      ctx.irq = l[3];
      this.setClock(parseTimestamp(ctx, l[4], l[5]));
      this.rest(lineNo, text.slice(l.index + l[0].length), text);
      return true;
    }
    if (super.special(text, lineNo)) return true;
    // A print payload with embedded newlines continues on lines of its own.
    if (this.lastWasPrint) {
      this.sink.continuation(lineNo, text);
      return true;
    }
    return false;
  }
}
