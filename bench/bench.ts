import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { Db } from '../db/duckdb.js';
import { generateToFile } from '../samples/generate/file.js';
import { baselineTree, DEFAULT_BASELINE } from './baseline.js';
import { measureBinary } from './binary.js';
import { compareWithRefscope, type Comparison } from './compare.js';
import { BINARY, METRICS, QUERIES_AFTER, STARTUP } from './metrics.js';
import { fmt, freshDb, median, printTable, ratio, round, tryChild, tryOneCore, type ChildResult, type Metrics } from './run.js';

/**
 * `npm run bench [-- --lines N] [--runs R] [--baseline REV|none]` (default 5 M lines, 1 run, baseline.ts
 * DEFAULT_BASELINE):
 * generates the noise scenario at 1x and 4x N lines (cached in bench/out/ per generator version), then measures
 * on this machine, in one run, each step in its own child process (child.ts) so each peak RSS is its own:
 * refscope's ingest, `wc -l`, DuckDB reading the text as one column, DuckDB parsing the same text itself with
 * read_csv + regexp_extract (the complete baseline, checked against refscope's rows at 1x, and the old narrow
 * one), `refscope ingest` as the CLI runs it by default (replay included), the same two for the baseline
 * commit, replay, every library query, the report. Prints one table (metrics x sizes, with the 4x/1x ratio and
 * the issues' targets), then the binary readers against the text route of the same captures (binary.ts), then
 * the start-up of the built CLI (dist/: `npm run bench` builds it first) on trivial commands, and writes
 * bench/out/results.json. docs/benchmark.md § Metrics describes every metric. Not a test: nothing here fails
 * for being slow.
 */

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const baseLines = Number(flag('--lines') ?? 5_000_000);
if (!(baseLines >= 50_000)) throw new Error('--lines: at least 50000');
const outDir = new URL('./out/', import.meta.url).pathname;
mkdirSync(outDir, { recursive: true });
/** Runs of refscope's (and the baseline's) ingest and ingest+replay, alternating, median taken: a shared machine is noisy. */
const runs = flag('--runs') ?? '1';
if (!(Number(runs) >= 1)) throw new Error('--runs: at least 1');
const baselineRev = flag('--baseline') ?? DEFAULT_BASELINE;
const baseline = baselineRev === 'none' ? null : baselineTree(baselineRev, outDir);
if (baseline && 'error' in baseline) process.stderr.write(`baseline: ${baseline.error}\n`);
const oldTree = baseline && !('error' in baseline) ? baseline : null;
const repoRoot = new URL('..', import.meta.url).pathname;

/** Hash of the generator's sources: a cached trace from another version of the generator is not reused. */
function generatorVersion(): string {
  const dir = new URL('../samples/generate/', import.meta.url).pathname;
  const h = createHash('sha256');
  for (const f of (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).sort()) {
    h.update(f).update(readFileSync(join(dir, f)));
  }
  return h.digest('hex').slice(0, 10);
}

async function traceFile(lines: number, version: string): Promise<string> {
  const scale = Math.max(1, Math.round(lines / 50_000));
  const file = join(outDir, `noise-x${scale}-${version}.trace`);
  if (!existsSync(file + '.truth.json')) {
    process.stderr.write(`generating ${file} (~${scale * 50_000} lines)...\n`);
    const t0 = performance.now();
    const truth = await generateToFile('noise', file, { scale, seed: 1, format: 'ftrace' });
    const s = (performance.now() - t0) / 1000;
    process.stderr.write(`  ${truth.lines} lines in ${s.toFixed(1)} s (${Math.round(truth.lines / s)} lines/s)\n`);
  }
  return file;
}

/** Traces of other generator versions are stale (several GB at the default size). */
function dropStaleTraces(version: string): void {
  for (const f of readdirSync(outDir)) {
    if (/^noise-x\d+(-[0-9a-f]+)?\.trace/.test(f) && !f.includes(`-${version}.trace`)) rmSync(join(outDir, f), { force: true });
  }
}

/**
 * Each step of `pairs` once per run, runs one after the other (new, old, new, old...), one process each, so that a
 * load that changes during the bench weighs on both sides alike. Per step: the run of median seconds, with the
 * median CPU and the largest peak RSS; null if any run failed. The database is new for each run.
 */
function alternating(pairs: (string[] | null)[]): (ChildResult | null)[] {
  const got: (ChildResult | null)[][] = pairs.map(() => []);
  for (let i = 0; i < Number(runs); i++) {
    pairs.forEach((argv, k) => got[k]!.push(argv ? tryChild(...argv) : null));
  }
  return got.map((rs) => {
    if (rs.some((r) => r === null)) return null;
    const ok = rs as ChildResult[];
    const mid = [...ok].sort((a, b) => a.seconds - b.seconds)[ok.length >> 1]!;
    return { ...mid, cpuSeconds: median(ok.map((r) => r.cpuSeconds as number)), maxRssMB: Math.max(...ok.map((r) => r.maxRssMB)) };
  });
}

async function measure(size: string, lines: number, version: string, check: boolean): Promise<{ m: Metrics; query_rows: Record<string, number>; check: Comparison | null }> {
  const file = await traceFile(lines, version);
  const mb = statSync(file).size / 1e6;
  const db = freshDb(join(outDir, `bench-${size}.duckdb`));
  const cliDb = join(outDir, `cli-${size}.duckdb`);
  process.stderr.write(`[${size}] ingest (and the baseline's)...\n`);
  const [ing, old] = alternating([['ingest', file, db], oldTree ? ['ingest', file, cliDb, '1', oldTree.root] : null]);
  if (!ing) throw new Error(`bench: refscope ingest of ${file} failed`);
  const t = performance.now();
  execFileSync('wc', ['-l', file]);
  const wc = (performance.now() - t) / 1000;
  const readCsv = tryChild('duckdb-read-csv', file);
  process.stderr.write(`[${size}] duckdb regex baselines...\n`);
  const baselineDb = freshDb(join(outDir, `duckdb-regex-${size}.duckdb`));
  const full = tryChild('duckdb-regex', file, baselineDb);
  const narrow = tryChild('duckdb-regex-8cols', file);
  const copy = tryChild('duckdb-copy', db, freshDb(join(outDir, `duckdb-copy-${size}.duckdb`)));
  process.stderr.write(`[${size}] refscope ingest (the CLI's default, replay included), and the baseline's...\n`);
  const [both, oldBoth] = alternating([['cli-ingest', repoRoot, file, cliDb, '1'], oldTree ? ['cli-ingest', oldTree.root, file, cliDb, '1'] : null]);
  if (both && !both.replayed) process.stderr.write(`[${size}] note: refscope ingest did not replay\n`);
  if (oldBoth && !oldBoth.replayed) process.stderr.write(`[${size}] note: the baseline's ingest did not replay\n`);
  freshDb(cliDb);
  process.stderr.write(`[${size}] replay, queries, report...\n`);
  const rep = tryChild('replay', db);
  const stream = tryChild('duckdb-stream', db);
  process.stderr.write(`[${size}] replay and its DuckDB floors on one core...\n`);
  const rep1 = tryOneCore('replay', db);
  const stream1 = tryOneCore('duckdb-stream', db);
  const store1 = rep1 ? tryOneCore('duckdb-store', db, freshDb(join(outDir, `duckdb-store-${size}.duckdb`))) : null;
  const qs = rep ? tryChild('queries', db) : null;
  const reportDir = join(outDir, `report-${size}`);
  rmSync(reportDir, { recursive: true, force: true });
  const report = rep ? tryChild('report', db, reportDir) : null;

  const ingLines = ing.lines as number;
  const m: Metrics = {
    lines: ingLines,
    file_mb: round(mb, 1),
    events: ing.events as number,
    ingest_s: round(ing.seconds, 2),
    ingest_lines_per_s: Math.round(ingLines / ing.seconds),
    ingest_mb_per_s: round(mb / ing.seconds, 1),
    ingest_peak_rss_mb: Math.round(ing.maxRssMB),
    wc_l_s: round(wc, 3),
    ingest_vs_wc_l: ratio(ing.seconds, wc, 1),
    duckdb_read_csv_s: readCsv ? round(readCsv.seconds, 2) : null,
    ingest_vs_duckdb_read_csv: ratio(ing.seconds, readCsv?.seconds, 1),
    duckdb_regex_s: full ? round(full.seconds, 2) : null,
    duckdb_regex_peak_rss_mb: full ? Math.round(full.maxRssMB) : null,
    speedup_vs_duckdb_regex: ratio(full?.seconds, ing.seconds),
    duckdb_regex_8cols_s: narrow ? round(narrow.seconds, 2) : null,
    speedup_vs_duckdb_regex_8cols: ratio(narrow?.seconds, ing.seconds),
    duckdb_copy_s: copy ? round(copy.seconds, 2) : null,
    ingest_vs_duckdb_copy: ratio(ing.seconds, copy?.seconds),
    ingest_replay_s: both ? round(both.seconds, 2) : null,
    ingest_replay_lines_per_s: both ? Math.round(ingLines / both.seconds) : null,
    ingest_replay_cpu_s: both ? round(both.cpuSeconds as number, 2) : null,
    ingest_replay_peak_rss_mb: both ? Math.round(both.maxRssMB) : null,
    ingest_replay_vs_duckdb_regex_8cols: ratio(narrow?.seconds, both?.seconds),
    baseline_ingest_s: old ? round(old.seconds, 2) : null,
    baseline_ingest_peak_rss_mb: old ? Math.round(old.maxRssMB) : null,
    old_new_ingest: ratio(old?.seconds, ing.seconds),
    baseline_ingest_replay_s: oldBoth ? round(oldBoth.seconds, 2) : null,
    baseline_ingest_replay_lines_per_s: oldBoth ? Math.round(ingLines / oldBoth.seconds) : null,
    baseline_ingest_replay_cpu_s: oldBoth ? round(oldBoth.cpuSeconds as number, 2) : null,
    baseline_ingest_replay_peak_rss_mb: oldBoth ? Math.round(oldBoth.maxRssMB) : null,
    old_new_ingest_replay: ratio(oldBoth?.seconds, both?.seconds),
    old_new_ingest_replay_cpu: ratio(oldBoth?.cpuSeconds as number | undefined, both?.cpuSeconds as number | undefined),
    replay_s: rep ? round(rep.seconds, 2) : null,
    replay_events_per_s: rep ? Math.round((rep.events as number) / rep.seconds) : null,
    replay_cpu_s: rep ? round(rep.cpuSeconds as number, 2) : null,
    replay_main_cpu_s: rep && rep.mainCpuSeconds !== null ? round(rep.mainCpuSeconds as number, 2) : null,
    replay_events_per_main_cpu_s: rep && rep.mainCpuSeconds ? Math.round((rep.events as number) / (rep.mainCpuSeconds as number)) : null,
    replay_peak_rss_mb: rep ? Math.round(rep.maxRssMB) : null,
    duckdb_stream_s: stream ? round(stream.seconds, 2) : null,
    duckdb_stream_events_per_s: stream ? Math.round((stream.events as number) / stream.seconds) : null,
    replay_vs_duckdb_stream: ratio(rep?.seconds, stream?.seconds),
    replay_one_core_s: rep1 ? round(rep1.seconds, 2) : null,
    replay_one_core_events_per_s: rep1 ? Math.round((rep1.events as number) / rep1.seconds) : null,
    duckdb_stream_one_core_s: stream1 ? round(stream1.seconds, 2) : null,
    duckdb_store_one_core_s: store1 ? round(store1.seconds, 2) : null,
    duckdb_floor_one_core_events_per_s:
      rep1 && stream1 && store1 ? Math.round((rep1.events as number) / (stream1.seconds + store1.seconds)) : null,
  };
  const query_rows: Record<string, number> = {};
  if (qs) {
    const per = qs.queries as Record<string, { seconds: number; rows: number }>;
    for (const [name, q] of Object.entries(per)) {
      m[`query_${name}_s`] = round(q.seconds, 3);
      query_rows[name] = q.rows;
    }
    m.queries_total_s = round(qs.seconds, 2);
    m.queries_peak_rss_mb = Math.round(qs.maxRssMB);
  }
  m.report_s = report ? round(report.seconds, 2) : null;
  m.report_peak_rss_mb = report ? Math.round(report.maxRssMB) : null;
  const cmp = check && full ? await compareWithRefscope(db, baselineDb) : null;
  return { m, query_rows, check: cmp };
}

/** The built CLI as installed (bin/refscope.js runs dist/cli/main.js); null when dist/ is not built. */
const BIN = new URL('../bin/refscope.js', import.meta.url).pathname;
const built = existsSync(new URL('../dist/cli/main.js', import.meta.url));

/** A small database for the trivial query of the start-up rows: one real capture ingested and replayed. */
function tinyDb(): string | null {
  const db = freshDb(join(outDir, 'startup.duckdb'));
  const r = spawnSync(process.execPath, [BIN, 'ingest', new URL('../samples/real/b-vmsplice.trace.txt.gz', import.meta.url).pathname, '--db', db], { encoding: 'utf8' });
  if (r.status === 0) return db;
  process.stderr.write(`start-up: no database for the query row: ${r.stderr}`);
  return null;
}

/** The built CLI's start-up: wall seconds of a trivial command, median of `runs` after one warm-up run. */
function startup(args: string[], runs = 5): number | null {
  if (!built) return null;
  const once = (): number => {
    const t = performance.now();
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`refscope ${args.join(' ')} failed: ${r.stderr}`);
    return (performance.now() - t) / 1000;
  };
  once();
  const s = Array.from({ length: runs }, once).sort((a, b) => a - b);
  return round(s[runs >> 1]!, 3);
}

async function duckdbVersion(): Promise<string> {
  const db = await Db.open(':memory:');
  const v = (await db.one<{ v: string }>('SELECT version() AS v'))!.v;
  db.close();
  return v;
}

function git(...a: string[]): string | null {
  try {
    return execFileSync('git', a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

const version = generatorVersion();
dropStaleTraces(version);
const machine = {
  cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`,
  memory_gib: Math.round(totalmem() / 2 ** 30),
  os: `${process.platform} ${release()}`,
  node: process.version,
  duckdb: await duckdbVersion(),
  duckdb_memory_limit: process.env.REFSCOPE_MEMORY_LIMIT ?? '2GB',
  load_average_at_start: loadavg().map((x) => round(x, 2)),
};
const started = new Date().toISOString();
/** Files changed or added since the commit when the run starts (other work in the same checkout runs with it). */
const dirty = (git('status', '--porcelain') ?? '') !== '';
process.stderr.write('start-up of the built CLI (dist/)...\n');
const tiny = built ? tinyDb() : null;
const startupRows: Metrics = Object.fromEntries(
  STARTUP.map((x) => [x.name, x.args.includes('$TINY_DB') && !tiny ? null : startup(x.args.map((a) => (a === '$TINY_DB' ? tiny! : a)))]),
);
const one = await measure('1x', baseLines, version, true);
const four = await measure('4x', baseLines * 4, version, false);
// Table order: METRICS, with the per-query rows after QUERIES_AFTER.
const queryKeys = [...new Set([...Object.keys(one.m), ...Object.keys(four.m)])].filter((k) => /^query_.*_s$/.test(k));
const keys = METRICS.flatMap((x) => (x.name === QUERIES_AFTER ? [x.name, ...queryKeys] : [x.name]));
for (const k of [...Object.keys(one.m), ...Object.keys(four.m)]) if (!keys.includes(k)) throw new Error(`bench: metric ${k} missing in bench/metrics.ts`);
const targets = Object.fromEntries(METRICS.filter((x) => x.target).map((x) => [x.name, x.target!]));
const ratios: Metrics = Object.fromEntries(keys.map((k) => [k, ratio(four.m[k], one.m[k])]));
const ordered = (m: Metrics): Metrics => Object.fromEntries(keys.map((k) => [k, m[k] ?? null]));

console.log(`refscope bench, ${started}`);
console.log(`machine: ${machine.cpus}, ${machine.memory_gib} GiB, ${machine.os}, node ${machine.node}, DuckDB ${machine.duckdb} (memory_limit ${machine.duckdb_memory_limit}), load average at start ${machine.load_average_at_start.join(' ')}`);
console.log(`input: noise scenario, ftrace, seed 1 (generator ${version}); commit ${git('rev-parse', '--short', 'HEAD') ?? '?'}${dirty ? ' + uncommitted changes at start' : ''}`);
const noBaseline = baseline && 'error' in baseline ? `none (${baseline.error})` : 'none (--baseline none)';
console.log(`baseline (old): ${oldTree ? `${oldTree.rev} = ${oldTree.commit.slice(0, 10)}, ${git('log', '-1', '--format=%ad %s', '--date=short', oldTree.commit) ?? '?'}` : noBaseline}`);
printTable([
  ['metric', '1x', '4x', '4x/1x', 'target'],
  ...keys.map((k) => [k, fmt(one.m[k]), fmt(four.m[k]), fmt(ratios[k]), targets[k] ?? '']),
]);
const binary = measureBinary(outDir);
console.log(`binary readers against the text route of the same capture (median of 3 runs each):`);
printTable([
  ['capture', ...BINARY.map((x) => x.name), 'note'],
  ...binary.map((r) => [r.capture, ...BINARY.map((x) => fmt(r.m[x.name])), r.note]),
  ['target', ...BINARY.map((x) => x.target ?? ''), ''],
]);
console.log(`start-up of the built CLI (node bin/refscope.js, median of 5 runs):`);
printTable([['metric', 'seconds', 'target'], ...STARTUP.map((x) => [x.name, fmt(startupRows[x.name]), x.target ?? ''])]);
const c = one.check;
if (c) {
  console.log(
    c.same
      ? `duckdb_regex holds the same information as refscope's events at 1x: ${c.baseline_rows} rows, every column equal`
      : `duckdb_regex DIFFERS from refscope's events at 1x: ${JSON.stringify(c)}`,
  );
}
// The fuzzer of `npm test` (test/unit/fuzz.test.ts) with a longer budget: not a speed metric, a pass/fail row.
const FUZZ_BUDGET_MS = 60_000;
process.stderr.write(`fuzz (${FUZZ_BUDGET_MS / 1000} s budget)...\n`);
const fuzzRun = spawnSync(process.execPath, ['--import', 'tsx', '--test', new URL('../test/unit/fuzz.test.ts', import.meta.url).pathname], {
  env: { ...process.env, REFSCOPE_FUZZ_BUDGET_MS: String(FUZZ_BUDGET_MS) },
  encoding: 'utf8',
});
// A failure's reason: the first assertion message of node:test's TAP output (its stack follows it; the tail is the summary).
const failure = fuzzRun.status === 0 ? null : (/^ +error: \|-\n +(.*)$/m.exec(fuzzRun.stdout)?.[1] ?? /^ +error: '(.*)'$/m.exec(fuzzRun.stdout)?.[1] ?? 'see test/unit/fuzz.test.ts');
const fuzz = { budget_ms: FUZZ_BUDGET_MS, passed: failure === null, done: /fuzz: (.*)/.exec(fuzzRun.stdout)?.[1] ?? null, failure };
console.log(`fuzz: ${fuzz.passed ? 'passed' : 'FAILED'}, ${fuzz.done ?? 'no count'}${failure ? `: ${failure}` : ''}`);
const results = {
  date: started,
  fuzz,
  machine,
  commit: git('rev-parse', 'HEAD'),
  dirty,
  input: { scenario: 'noise', format: 'ftrace', seed: 1, generator: version, lines_arg: baseLines },
  results: { '1x': ordered(one.m), '4x': ordered(four.m) },
  ratio_4x_1x: ratios,
  startup: startupRows,
  baseline: oldTree ? { rev: oldTree.rev, commit: oldTree.commit } : null,
  binary: binary.map((r) => ({ capture: r.capture, reader: r.reader, source: r.source, ...r.m, note: r.note })),
  query_rows: { '1x': one.query_rows, '4x': four.query_rows },
  duckdb_regex_check_1x: one.check,
  targets,
};
writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
console.log(`results: ${join(outDir, 'results.json')}`);
