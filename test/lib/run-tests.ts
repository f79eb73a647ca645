/**
 * `npm test` (every tier in one run) and `npm run test:unit` / `test:diff` / `test:e2e`: node's test runner over
 * every *.test.ts of the given directories, `--concurrency` files at a time, the slowest files first. `node --test`
 * starts files in name order, so a long file late in the alphabet (report-all) ran alone at the end while the other
 * slot stood idle; starting the long ones first lets the short ones fill in beside them, and one run of all tiers
 * leaves no slot idle between them. The order changes nothing else: each file still runs in its own process.
 * Usage: node --import tsx test/lib/run-tests.ts <dir>... [--concurrency N]
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

/**
 * Files that take longest (CPU seconds of `npm test`, December 2026, after the suite's cuts), started first, in this
 * order, with the files that build databases of the fixture cache (test/lib/fixtures.ts) before those that read
 * them, so that the readers wait for a build (or find it done) instead of building it too: queries-scenarios builds
 * the scenario databases, replay the real captures' database (ingest, queries, report, story, charts read it), kmem
 * perf-kmem-a's; report-all reads all three kinds, so it starts after them (when replay ends).
 */
const SLOW_FIRST = [
  // e2e
  'queries-scenarios.test.ts', // 41
  'replay.test.ts', // 17
  'kmem.test.ts', // 6
  'report-all.test.ts', // 45
  'crash.test.ts', // 19
  'ingest.test.ts', // 14
  'report.test.ts', // 12
  'ingest-cli.test.ts', // 12
  'ingest-structured.test.ts', // 11
  'queries.test.ts', // 10
  // unit, diff
  'interleave.test.ts', // 15
  'generate.test.ts', // 12
  'binary-text-results.test.ts', // 10
  'tracedat.test.ts', // 7
  'replay-units.test.ts', // 7
  'perfdata.test.ts', // 6
  'diff.test.ts', // 9 (test/diff: the 21 cases side by side)
];

const args = process.argv.slice(2);
const at = args.indexOf('--concurrency');
const concurrency = at >= 0 ? Number(args.splice(at, 2)[1]) : 2;
const dirs = args;
if (dirs.length === 0 || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('usage: node --import tsx test/lib/run-tests.ts <dir>... [--concurrency N]');
  process.exit(2);
}
const rank = (f: string) => {
  const name = basename(f);
  return SLOW_FIRST.includes(name) ? SLOW_FIRST.indexOf(name) : SLOW_FIRST.length;
};
const files = dirs
  .flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.test.ts')).map((f) => resolve(join(dir, f))))
  .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));

// Each file's CPU seconds (test/lib/cpu-hook.mjs writes them at its exit), printed beside its wall time at the end:
// on a shared machine the wall time of a file depends on its neighbours, its CPU time much less.
const cpuDir = mkdtempSync(join(tmpdir(), 'refscope-test-cpu-'));
process.env.REFSCOPE_TEST_CPU_DIR = cpuDir;
const hook = new URL('./cpu-hook.mjs', import.meta.url).href;
process.env.NODE_OPTIONS = [process.env.NODE_OPTIONS, `--import=${hook}`].filter(Boolean).join(' ');

const stream = run({ files, concurrency });
stream.on('test:fail', () => (process.exitCode = 1));
stream.compose(new spec()).pipe(process.stdout);

// Seconds per file, from the runner dequeuing it to its completion, with its CPU seconds; slowest first.
const started = new Map<string, number>();
const took = new Map<string, number>();
const t0 = performance.now();
stream.on('test:dequeue', (d) => {
  if (d.file && d.name === d.file && !started.has(d.file)) started.set(d.file, performance.now());
});
stream.on('test:complete', (d) => {
  if (d.file && d.name === d.file && started.has(d.file)) took.set(d.file, (performance.now() - started.get(d.file)!) / 1000);
});
process.on('exit', () => {
  const cpu = new Map<string, number>();
  const log = join(cpuDir, 'cpu');
  if (existsSync(log))
    for (const l of readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
      const [f, s] = l.split('\t');
      cpu.set(resolve(f!), Number(s));
    }
  rmSync(cpuDir, { recursive: true, force: true });
  const rows = [...took].sort((a, b) => b[1] - a[1]);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const fmt = (s: number | undefined) => (s === undefined ? '     ?' : s.toFixed(1).padStart(6));
  const lines = rows.map(([f, s]) => `  ${fmt(s)} s ${fmt(cpu.get(f))} s CPU  ${basename(dirname(f))}/${basename(f)}`);
  const wall = ((performance.now() - t0) / 1000).toFixed(1);
  process.stdout.write(
    `\n# ${dirs.join(' ')}: seconds per file (wall, CPU)\n${lines.join('\n')}\n  wall ${wall} s; files ${sum(rows.map((r) => r[1])).toFixed(1)} s, CPU ${sum([...cpu.values()]).toFixed(1)} s\n`,
  );
});
