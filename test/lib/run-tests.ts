/**
 * `npm run test:unit` / `test:e2e`: node's test runner over every *.test.ts of one directory, `--concurrency` files
 * at a time, the slowest files first. `node --test` starts files in name order, so a long file late in the
 * alphabet (report-all) ran alone at the end while the other slot stood idle; starting the long ones first lets
 * the short ones fill in beside them. The order changes nothing else: each file still runs in its own process.
 * Usage: node --import tsx test/lib/run-tests.ts <dir> [--concurrency N]
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
];

const args = process.argv.slice(2);
const at = args.indexOf('--concurrency');
const concurrency = at >= 0 ? Number(args.splice(at, 2)[1]) : 2;
const [dir] = args;
if (!dir || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('usage: node --import tsx test/lib/run-tests.ts <dir> [--concurrency N]');
  process.exit(2);
}
const rank = (f: string) => (SLOW_FIRST.includes(f) ? SLOW_FIRST.indexOf(f) : SLOW_FIRST.length);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.ts'))
  .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
  .map((f) => resolve(join(dir, f)));

const stream = run({ files, concurrency });
stream.on('test:fail', () => (process.exitCode = 1));
stream.compose(new spec()).pipe(process.stdout);
