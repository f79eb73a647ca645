/**
 * The built package (dist/, written by `npm run build`, the first step of `npm test`): bin/refscope.js runs the
 * compiled CLI without tsx, from any directory, with the SQL files and the bundled capture it needs.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, runCli } from '../lib/cli.js';

const BIN = join(ROOT, 'bin', 'refscope.js');
const DIST = join(ROOT, 'dist');

/** The built CLI, run from `cwd` (a directory outside the repository unless given). */
const refscope = (args: string[], cwd: string, env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } });

const walk = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));

describe('the built package', () => {
  let cwd: string;
  before(() => {
    assert.ok(existsSync(join(DIST, 'cli', 'main.js')), 'dist/ is not built: run npm run build');
    cwd = mkdtempSync(join(tmpdir(), 'refscope-package-'));
  });
  after(() => rmSync(cwd, { recursive: true, force: true }));

  it('--version prints the version of package.json', () => {
    const r = refscope(['--version'], cwd);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version);
  });

  it('query --list from another directory prints what the CLI run from source prints', () => {
    const built = refscope(['query', '--list'], cwd);
    assert.equal(built.status, 0, built.stderr);
    const source = runCli(['query', '--list']);
    assert.equal(source.status, 0, source.stderr);
    assert.match(built.stdout, /^cma-blockers\n/m);
    assert.equal(built.stdout, source.stdout);
  });

  it('dist/queries holds every SQL file of queries/, unchanged', () => {
    const sql = walk(join(ROOT, 'queries')).filter((f) => f.endsWith('.sql'));
    assert.ok(sql.length >= 10, `${sql.length} SQL files`);
    for (const f of sql) {
      const built = join(DIST, relative(ROOT, f));
      assert.ok(existsSync(built), `${relative(ROOT, built)} missing (run npm run build)`);
      assert.equal(readFileSync(built, 'utf8'), readFileSync(f, 'utf8'), relative(ROOT, f));
    }
  });

  it('runs without tsx: nothing built imports it', () => {
    const js = [BIN, ...walk(DIST).filter((f) => f.endsWith('.js'))];
    assert.ok(js.some((f) => f.endsWith(join('ingest', 'parse-worker.js'))), 'the built parse worker');
    for (const f of js) assert.doesNotMatch(readFileSync(f, 'utf8'), /(?:from|import\()\s*['"]tsx/, relative(ROOT, f));
  });

  it('ingest parses on the built worker thread as on the main thread', () => {
    const sample = join(ROOT, 'samples', 'real', 'b-vmsplice.trace.txt.gz');
    const run = (worker: string) => {
      const r = refscope(['ingest', '--db', join(cwd, `worker-${worker}.duckdb`), '--no-replay', '--json', sample], cwd, { REFSCOPE_WORKER: worker });
      assert.equal(r.status, 0, r.stderr);
      const s = JSON.parse(r.stdout) as { lines: number; events: number; event_counts: Record<string, number> };
      return { lines: s.lines, events: s.events, event_counts: s.event_counts };
    };
    const inWorker = run('1');
    assert.ok(inWorker.events > 1000, `${inWorker.events} events`);
    assert.deepEqual(inWorker, run('0'));
  });

  it('demo runs from an empty directory (the bundled capture is found beside the package)', () => {
    const empty = mkdtempSync(join(cwd, 'empty-'));
    const r = refscope(['demo'], empty);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^trace 2 c-cma-blocked\.trace\.txt\.gz: /m);
    assert.match(r.stdout, /cma-blockers: [1-9]\d*  <-- look here/);
    assert.ok(existsSync(join(empty, 'refscope-demo', 'report', 'index.html')));
  });
});
