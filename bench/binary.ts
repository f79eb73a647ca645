import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { child, freshDb, median, ratio, round, type Metrics } from './run.js';

/**
 * The binary readers against the text route of the same capture (issue #20): each trace.dat / perf.data capture
 * found in samples/ (first) or ../shared/traces/binary-6.18/, decompressed once into bench/out/binary/ (untimed),
 * then, median of RUNS each: refscope's ingest of the binary; the tool rendering it as text (`perf script
 * --show-lost-events`, `trace-cmd report`) into a file; refscope's ingest of that text. A row whose binary is
 * refused (no reader yet) or whose tool is missing says why instead of a figure.
 */

const RUNS = 3;
const CAPTURE = /^(.+\.(?:dat|data))(?:\.(gz|xz|zst))?$/;
const UNPACK: Record<string, string> = { gz: 'gzip', xz: 'xz', zst: 'zstd' };

export interface BinaryRow {
  capture: string;
  reader: 'perf.data' | 'trace.dat';
  source: string;
  m: Metrics;
  /** Why a figure is missing ('' when none is). */
  note: string;
}

/** Captures by name (compression suffix dropped), samples/ before ../shared. */
function findCaptures(): Map<string, string> {
  const repo = new URL('..', import.meta.url).pathname;
  const found = new Map<string, string>();
  for (const dir of [join(repo, 'samples'), join(repo, '../shared/traces/binary-6.18')]) {
    if (!existsSync(dir)) continue;
    for (const f of (readdirSync(dir, { recursive: true }) as string[]).sort()) {
      const m = CAPTURE.exec(basename(f));
      if (m && !found.has(m[1]!)) found.set(m[1]!, join(dir, f));
    }
  }
  return found;
}

/** `file` as a plain file under `dir` (decompressed by gzip/xz/zstd when it is wrapped). */
function unpacked(file: string, dir: string): string {
  const m = CAPTURE.exec(basename(file))!;
  const out = join(dir, m[1]!);
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(file).mtimeMs) return out;
  const fd = openSync(out, 'w');
  const r = m[2] ? spawnSync(UNPACK[m[2]]!, ['-dc', file], { stdio: ['ignore', fd, 'pipe'] }) : spawnSync('cp', [file, out]);
  closeSync(fd);
  if (r.status !== 0) throw new Error(`${file}: ${m[2] ? UNPACK[m[2]] : 'cp'} failed: ${r.stderr}`);
  return out;
}

const hasTool = (cmd: string): boolean => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).error === undefined;

/** Wall seconds of `cmd args` writing its stdout into `out`, median of RUNS. */
function render(cmd: string, args: string[], out: string): number {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const fd = openSync(out, 'w');
    const t = performance.now();
    const r = spawnSync(cmd, args, { stdio: ['ignore', fd, 'pipe'] });
    times.push((performance.now() - t) / 1000);
    closeSync(fd);
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr.toString().trim().split('\n').pop()}`);
  }
  return median(times);
}

function attempt<T>(f: () => T): T | string {
  try {
    return f();
  } catch (e) {
    return (e as Error).message.replace(/^bench child \S+ failed: /, '');
  }
}

export function measureBinary(outDir: string): BinaryRow[] {
  const dir = join(outDir, 'binary');
  mkdirSync(dir, { recursive: true });
  const rows: BinaryRow[] = [];
  for (const [capture, source] of findCaptures()) {
    process.stderr.write(`[binary] ${capture}...\n`);
    const perf = capture.endsWith('.data');
    const file = unpacked(source, dir);
    const db = join(dir, 'bench.duckdb');
    const notes: string[] = [];
    const bin = attempt(() => child('ingest', file, db, String(RUNS)));
    if (typeof bin === 'string') notes.push(`binary refused: ${bin.replace(/^\w*Error: /, '').replaceAll(`${file}: `, '')}`);
    const [tool, args] = perf ? ['perf', ['script', '-f', '--show-lost-events', '-i', file]] : ['trace-cmd', ['report', '-i', file]];
    const text = `${file}.txt`;
    let rendered: number | string = `${tool} not installed`;
    if (hasTool(tool)) rendered = attempt(() => render(tool, args as string[], text));
    if (typeof rendered === 'string') notes.push(`text: ${rendered}`);
    const txt = typeof rendered === 'number' ? attempt(() => child('ingest', text, db, String(RUNS))) : null;
    if (typeof txt === 'string') notes.push(`text ingest: ${txt}`);
    const b = typeof bin === 'string' ? null : bin;
    const t = typeof txt === 'string' ? null : txt;
    const r = typeof rendered === 'number' ? rendered : null;
    const route = t && r !== null ? r + t.seconds : null;
    if (b && t && b.events !== t.events) notes.push(`events differ: binary ${b.events}, text ${t.events}`);
    rows.push({
      capture,
      reader: perf ? 'perf.data' : 'trace.dat',
      source,
      note: notes.join('; '),
      m: {
        binary_mb: round(statSync(file).size / 1e6, 1),
        binary_events: b ? (b.events as number) : null,
        binary_ingest_s: b ? round(b.seconds, 3) : null,
        binary_events_per_s: b ? Math.round((b.events as number) / b.seconds) : null,
        binary_peak_rss_mb: b ? Math.round(b.maxRssMB) : null,
        render_s: r === null ? null : round(r, 3),
        text_events: t ? (t.events as number) : null,
        text_ingest_s: t ? round(t.seconds, 3) : null,
        text_route_s: route === null ? null : round(route, 3),
        binary_vs_text_route: b ? ratio(route, b.seconds) : null,
      },
    });
  }
  freshDb(join(dir, 'bench.duckdb'));
  return rows;
}
