import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { Db } from '../db/duckdb.js';
import { generateToFile } from '../samples/generate/file.js';

/**
 * `npm run bench [-- --lines N]`: generates the noise scenario at 1x and 4x N lines (cached in bench/out/),
 * then measures, in one run on this machine: ingest lines/s and MB/s with peak RSS (child processes), the
 * same file through `wc -l` and through DuckDB's own read_csv + regexp_extract, replay events/s with peak
 * RSS. Prints a table and writes bench/out/results.json. Not a test: nothing here fails for being slow.
 */

const args = process.argv.slice(2);
const linesArg = args.indexOf('--lines');
const baseLines = linesArg >= 0 ? Number(args[linesArg + 1]) : 5_000_000;
const outDir = new URL('./out/', import.meta.url).pathname;
mkdirSync(outDir, { recursive: true });

interface Row {
  size: string;
  file_mb: number;
  lines: number;
  ingest_s: number;
  ingest_lines_per_s: number;
  ingest_mb_per_s: number;
  ingest_peak_rss_mb: number;
  wc_s: number;
  ratio_vs_wc: number;
  duckdb_regex_s: number | null;
  speedup_vs_duckdb_regex: number | null;
  replay_s: number | null;
  replay_events_per_s: number | null;
  replay_peak_rss_mb: number | null;
}

async function traceFile(lines: number): Promise<string> {
  const scale = Math.max(1, Math.round(lines / 50_000));
  const file = join(outDir, `noise-x${scale}.trace`);
  if (!existsSync(file)) {
    process.stderr.write(`generating ${file} (${scale * 50_000} lines)...\n`);
    await generateToFile('noise', file, { scale, seed: 1, format: 'ftrace' });
  }
  return file;
}

function child(...argv: string[]): Record<string, number> {
  const r = spawnSync(process.execPath, ['--import', 'tsx', new URL('./child.ts', import.meta.url).pathname, ...argv], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`bench child ${argv[0]} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

/** The power user's way: DuckDB reads the text itself and pulls fields out with regexes. */
async function duckdbRegex(file: string): Promise<number> {
  const db = await Db.open(':memory:');
  const t0 = performance.now();
  await db.run(
    `CREATE TABLE ev AS
     SELECT regexp_extract(line, '^\\s*(.*?)-(\\d+)', 1) AS comm,
            regexp_extract(line, '^\\s*.*?-(\\d+)', 1)::INTEGER AS pid,
            regexp_extract(line, '\\[(\\d+)\\]', 1)::INTEGER AS cpu,
            regexp_extract(line, ' (\\d+\\.\\d+): ', 1)::DOUBLE AS ts,
            regexp_extract(line, ': ([a-z_]+): ', 1) AS event,
            TRY_CAST(regexp_extract(line, ' pfn=0x([0-9a-f]+)', 1) AS VARCHAR) AS pfn_hex,
            TRY_CAST(regexp_extract(line, ' count=(-?\\d+)', 1) AS INTEGER) AS count,
            TRY_CAST(regexp_extract(line, ' val=(-?\\d+)', 1) AS INTEGER) AS val
     FROM read_csv($file, columns = {'line': 'VARCHAR'}, delim = '\\x01', quote = '', escape = '', header = false,
                   auto_detect = false, strict_mode = false)
     WHERE line NOT LIKE '#%' AND line NOT LIKE ' =>%'`,
    { file },
  );
  const s = (performance.now() - t0) / 1000;
  db.close();
  return s;
}

async function measure(size: string, lines: number): Promise<Row> {
  const file = await traceFile(lines);
  const mb = statSync(file).size / 1e6;
  const db = join(outDir, `bench-${size}.duckdb`);
  rmSync(db, { force: true });
  rmSync(db + '.wal', { force: true });
  const ing = child('ingest', file, db);
  const wc = time(() => execFileSync('wc', ['-l', file]));
  let regex: number | null = null;
  try {
    regex = await duckdbRegex(file);
  } catch (e) {
    process.stderr.write(`duckdb regex baseline failed: ${(e as Error).message}\n`);
  }
  let rep: Record<string, number> | null = null;
  try {
    rep = child('replay', db);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
  }
  return {
    size,
    file_mb: +mb.toFixed(1),
    lines: ing.lines,
    ingest_s: +ing.seconds.toFixed(2),
    ingest_lines_per_s: Math.round(ing.lines / ing.seconds),
    ingest_mb_per_s: +(mb / ing.seconds).toFixed(1),
    ingest_peak_rss_mb: Math.round(ing.maxRssMB),
    wc_s: +wc.toFixed(3),
    ratio_vs_wc: +(ing.seconds / wc).toFixed(1),
    duckdb_regex_s: regex === null ? null : +regex.toFixed(2),
    speedup_vs_duckdb_regex: regex === null ? null : +(regex / ing.seconds).toFixed(2),
    replay_s: rep ? +rep.seconds.toFixed(2) : null,
    replay_events_per_s: rep ? Math.round(rep.events / rep.seconds) : null,
    replay_peak_rss_mb: rep ? Math.round(rep.maxRssMB) : null,
  };
}

const rows = [await measure('1x', baseLines), await measure('4x', baseLines * 4)];
const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
console.log(`refscope bench on ${machine}`);
console.table(rows);
writeFileSync(join(outDir, 'results.json'), JSON.stringify({ machine, date: new Date().toISOString(), rows }, null, 2) + '\n');
console.log(`results: ${join(outDir, 'results.json')}`);
