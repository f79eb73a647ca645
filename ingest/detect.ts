import { isContextLine } from './readers/ftrace.js';
import { isPerfSample } from './readers/perf.js';

/** Which reader fits the input, decided from its first block. */

export type Format = 'ftrace' | 'trace-cmd' | 'perf' | 'csv' | 'arrow';
export const FORMATS: Format[] = ['ftrace', 'trace-cmd', 'perf', 'csv', 'arrow'];

const TRACE_DAT_MAGIC = Buffer.from([0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67]);

export function isArrowIpc(head: Buffer): boolean {
  return head.subarray(0, 6).toString('latin1') === 'ARROW1' || (head.length >= 8 && head.readUInt32LE(0) === 0xffffffff);
}

/** The format, or a reason why the input is not a trace refscope reads. */
export function detectFormat(head: Buffer): Format | { refuse: string } {
  if (head.length === 0) return { refuse: 'empty input' };
  if (isArrowIpc(head)) return 'arrow';
  if (head.subarray(0, TRACE_DAT_MAGIC.length).equals(TRACE_DAT_MAGIC))
    return { refuse: 'this is a binary trace-cmd trace.dat: convert it with `trace-cmd report FILE > FILE.txt` first' };
  if (head.subarray(0, 4).toString('latin1') === 'PERF')
    return { refuse: 'this is a binary perf.data: convert it with `perf script > FILE.txt` first' };
  const probe = head.subarray(0, 65536);
  // Text never holds NUL; control bytes it may (a comm is any byte but NUL: escapes, `\r`), so only a
  // high share of them says binary.
  let ctrl = 0;
  for (const b of probe) {
    if (b === 0) return { refuse: 'binary content, not trace text' };
    if (b < 9 || (b > 13 && b < 32) || b === 127) ctrl++;
  }
  if (ctrl > probe.length / 4) return { refuse: 'binary content, not trace text' };
  const lines = probe.toString('utf8').split('\n').slice(0, 200);
  // Bounded: the CSV header test below backtracks.
  const first = (lines.find((l) => l.trim().length > 0) ?? '').slice(0, 4096);
  if (/^(cpus=\d+|version = \d+)/.test(first)) return 'trace-cmd';
  if (/^\s*(ts_ns|seq|trace_id)?.*\bevent\b.*,/.test(first) && first.split(',').length >= 3 && /ts/.test(first)) return 'csv';
  let ftrace = 0;
  let perf = 0;
  let kernelStack = 0;
  for (const l of lines) {
    if (l.startsWith('# tracer:') || l.includes('entries-in-buffer/entries-written')) ftrace += 5;
    if (isPerfSample(l)) perf++;
    else if (isContextLine(l)) ftrace++;
    if (/\]\s+[\d.]+:\s+kernel_stack:/.test(l) || /EVENTS DROPPED\]/.test(l)) kernelStack++;
  }
  if (ftrace === 0 && perf === 0) return { refuse: 'no line looks like ftrace, trace-cmd report or perf script output' };
  if (perf > ftrace) return 'perf';
  return kernelStack > 0 ? 'trace-cmd' : 'ftrace';
}
