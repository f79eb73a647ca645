import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';

/** How bench.ts, binary.ts and baseline.ts run a measured step (child.ts) in its own process. */

export type Metrics = Record<string, number | null>;
export type ChildResult = Record<string, unknown> & { seconds: number; maxRssMB: number };

/** `taskset -c 0` when this machine has it (Linux, util-linux): a child pinned to one core, as #3's target reads. */
const ONE_CORE = spawnSync('taskset', ['-c', '0', 'true']).status === 0 ? ['taskset', '-c', '0'] : null;

function runChild(prefix: string[], argv: string[]): ChildResult {
  const cmd = [...prefix, process.execPath, '--import', 'tsx', new URL('./child.ts', import.meta.url).pathname, ...argv];
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    // The error's own line (an InputError's file, offset and reason), not its stack.
    const why = /^\w*Error: .*$/m.exec(r.stderr)?.[0] ?? r.stderr.trim().split('\n').pop();
    throw new Error(`bench child ${argv[0]} failed: ${why}`);
  }
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

export const child = (...argv: string[]): ChildResult => runChild([], argv);

/** A step that may fail (the bench still prints what it could measure); the reason goes to stderr. */
export function tryChild(...argv: string[]): ChildResult | null {
  return tryPrefixed([], argv);
}

/** The same on one core; null without taskset. */
export function tryOneCore(...argv: string[]): ChildResult | null {
  return ONE_CORE ? tryPrefixed(ONE_CORE, argv) : null;
}

function tryPrefixed(prefix: string[], argv: string[]): ChildResult | null {
  try {
    return runChild(prefix, argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return null;
  }
}

export function freshDb(path: string): string {
  for (const p of [path, path + '.wal']) rmSync(p, { force: true });
  rmSync(path + '.tmp', { recursive: true, force: true });
  return path;
}

export const round = (x: number, digits: number): number => +x.toFixed(digits);
export const ratio = (a: number | null | undefined, b: number | null | undefined, digits = 2): number | null =>
  a == null || b == null || b === 0 ? null : round(a / b, digits);
export const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const [k, r] of rows.entries()) {
    console.log(r.map((c, i) => (i === 0 || i === r.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd());
    if (k === 0) console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  }
}

export const fmt = (v: number | null | undefined): string =>
  v == null ? '-' : Number.isInteger(v) && Math.abs(v) >= 10_000 ? v.toLocaleString('en-US') : String(v);
