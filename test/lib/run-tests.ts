/**
 * `npm test` / `test:unit` / `test:e2e`: node's test runner over every *.test.ts of the directories given (`npm test`:
 * the three tiers in one pool, so that no core idles at the tail of a tier), `--concurrency` files at a time, the
 * slowest files first. `node --test` starts files in name order, so a long file late in the
 * alphabet (report-all) ran alone at the end while the other slot stood idle; starting the long ones first lets
 * the short ones fill in beside them. The order changes nothing else: each file still runs in its own process.
 * Usage: node --import tsx test/lib/run-tests.ts <dir>... [--concurrency N]
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { run } from 'node:test';
import { spec } from 'node:test/reporters';

/** Files that take longest (seconds on 2 cores, `npm test` of December 2026), started first, in this order. */
const SLOW_FIRST = [
  'report-all.test.ts', // 49
  'queries-scenarios.test.ts', // 45
  'ingest.test.ts', // 20
  'queries.test.ts', // 20
  'replay.test.ts', // 14
  'generate.test.ts', // 13
  'interleave.test.ts', // 10
  'ingest-structured.test.ts', // 10
  'crash.test.ts', // 9
  'diff.test.ts', // 7
  'readonly.test.ts', // 6
];

const args = process.argv.slice(2);
const at = args.indexOf('--concurrency');
const concurrency = at >= 0 ? Number(args.splice(at, 2)[1]) : 2;
if (!args.length || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('usage: node --import tsx test/lib/run-tests.ts <dir>... [--concurrency N]');
  process.exit(2);
}
const rank = (f: string) => (SLOW_FIRST.includes(f) ? SLOW_FIRST.indexOf(f) : SLOW_FIRST.length);
const files = args
  .flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.test.ts')).map((f) => ({ f, path: resolve(join(dir, f)) })))
  .sort((a, b) => rank(a.f) - rank(b.f) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  .map((x) => x.path);

const stream = run({ files, concurrency });
stream.on('test:fail', () => (process.exitCode = 1));
stream.compose(new spec()).pipe(process.stdout);
