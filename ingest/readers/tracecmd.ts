import { FtraceReader } from './ftrace.js';

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
const STACK_EVENTS: Record<string, 'kernel' | 'user'> = { kernel_stack: 'kernel', user_stack: 'user' };

export class TraceCmdReader extends FtraceReader {
  private lastWasPrint = false;

  override line(text: string, lineNo: number): void {
    const m = PREAMBLE_RE.exec(text);
    if (m) return this.sink.header(m[1] === 'cpus' ? 'cpus' : 'file_version', m[2]);
    if (EMPTY_CPU_RE.test(text)) return;
    super.line(text, lineNo);
  }

  protected override rest(lineNo: number, rest: string, text: string): void {
    const colon = rest.indexOf(':');
    const name = colon > 0 ? rest.slice(0, colon) : '';
    const kind = STACK_EVENTS[name];
    if (kind) {
      this.lastWasPrint = false;
      return this.sink.stackStart(kind, this.ctx.cpu);
    }
    this.lastWasPrint = name === 'print' || name === 'bprint' || name === 'bputs';
    super.rest(lineNo, rest, text);
  }

  protected override special(text: string, lineNo: number): boolean {
    const m = DROPPED_RE.exec(text);
    if (m) {
      this.sink.lost(lineNo, Number(m[1]), m[2] === undefined ? null : Number(m[2]), 'dropped');
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
