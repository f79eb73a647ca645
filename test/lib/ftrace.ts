/**
 * One raw ftrace line of a hand-written test trace (tracefs `trace` with record-tgid, 6.1 layout, 5-char irq flags):
 * `comm-pid (tgid) [cpu] ..... secs.usecs: event: payload`. The unit tests that build small traces share it.
 */
export function ftraceLine(comm: string, pid: number, tgid: number, cpu: number, us: number, event: string, payload: string): string {
  const ts = `${Math.floor(us / 1e6)}.${String(us % 1e6).padStart(6, '0')}`;
  return `${`${comm}-${pid}`.padStart(22)} (${String(tgid).padStart(7)}) [${String(cpu).padStart(3, '0')}] ..... ${ts.padStart(12)}: ${event}: ${payload}`;
}

/**
 * A whole `trace` file of such lines: the header of a 2-CPU tracefs trace (`entries-in-buffer/entries-written`,
 * written - in buffer = the events overwritten) and the lines, newline-terminated.
 */
export function ftraceFile(lines: string[], inBuffer = lines.length, written = inBuffer): string {
  return [
    '# tracer: nop',
    '#',
    `# entries-in-buffer/entries-written: ${inBuffer}/${written}   #P:2`,
    '#',
    '#           TASK-PID       TGID    CPU#  |||||  TIMESTAMP  FUNCTION',
    '#              | |           |       |   |||||     |         |',
    ...lines,
    '',
  ].join('\n');
}
