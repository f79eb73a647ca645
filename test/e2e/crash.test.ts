/**
 * Crash safety (issue #22): `kill -9` of ingest or replay at named points of their commit protocol
 * (REFSCOPE_FAILPOINT, db/failpoint.ts) and at the moment the WAL first grows leaves a database that opens, holds
 * exactly the traces committed before, never gives an id twice, and replays and checks the next trace; a killed
 * report leaves the old folder whole; a killed ingest's blocks are given back; a disk short of headroom refuses an
 * ingest with one line.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ensureSchema } from '../../db/setup.js';
import { ingest } from '../../ingest/ingest.js';
import { replay } from '../../replay/replay.js';
import { writeReport } from '../../reports/report.js';
import { generateToFile } from '../../samples/generate/file.js';
import { INGEST_TABLES } from '../../db/tables/ingest.js';
import { REPLAY_TABLES } from '../../db/tables/replay.js';
import { CLI, ROOT } from '../lib/cli.js';
import { countsByTrace } from '../lib/tables.js';

let dir: string;
/** A database holding trace 1, ingested and replayed. */
let base: string;
let first: string;
let second: string;
let third: string;

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}, watch?: (stop: () => void) => void): Promise<Run> {
  const child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  watch?.(() => child.kill('SIGKILL'));
  return once(child, 'exit').then(([status, signal]) => ({ status, signal, stderr }) as Run);
}

/** Row count per trace of every ingest and replay table. */
async function counts(path: string): Promise<Record<string, string>> {
  const db = await Db.open(path);
  try {
    await ensureSchema(db); // what the next writable command does first: recovery
    return await countsByTrace(db);
  } finally {
    db.close();
  }
}

async function idsEverGiven(path: string): Promise<number[]> {
  const db = await Db.open(path, { readOnly: true });
  try {
    return (await db.all<{ id: number }>('SELECT trace_id AS id FROM trace_loads ORDER BY 1')).map((r) => r.id);
  } finally {
    db.close();
  }
}

async function inProcess<T>(path: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await Db.open(path);
  try {
    return await fn(db);
  } finally {
    db.close();
  }
}

function fresh(name: string): string {
  const p = join(dir, `${name}.duckdb`);
  copyFileSync(base, p);
  return p;
}

/** The next ingest (in this process) gets an id never given before, and replay works on it. */
async function nextIngestWorks(path: string, used: number[]): Promise<number> {
  const db = await Db.open(path);
  try {
    const s = await ingest(db, third, {});
    assert.ok(s.trace_id > Math.max(...used), `fresh id ${s.trace_id} (ids given before: ${used.join(',')})`);
    const r = await replay(db, s.trace_id, {});
    assert.ok(r.pins > 0, 'the pin-leak scenario replays');
    return s.trace_id;
  } finally {
    db.close();
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-crash-'));
  first = join(dir, 'first.trace');
  second = join(dir, 'second.trace');
  third = join(dir, 'third.trace');
  base = join(dir, 'base.duckdb');
  await generateToFile('noise', first, { seed: 1, scale: 0.1, format: 'ftrace' });
  await generateToFile('noise', second, { seed: 2, scale: 0.3, format: 'ftrace' });
  await generateToFile('pin-leak', third, { seed: 3, scale: 1, format: 'ftrace' });
  const db = await Db.open(base);
  try {
    await replay(db, (await ingest(db, first, {})).trace_id, {});
  } finally {
    db.close();
  }
});

after(() => rmSync(dir, { recursive: true, force: true }));

describe('kill -9 of an ingest', { concurrency: true }, () => {
  for (const point of ['ingest-id-committed', 'ingest-events-written', 'ingest-before-commit']) {
    it(`at ${point}: the database holds exactly the earlier trace; the id is never given again`, async () => {
      const db = fresh(point);
      const want = await counts(db);
      const r = await cli(['ingest', '--db', db, second], { REFSCOPE_FAILPOINT: point });
      assert.equal(r.signal, 'SIGKILL', r.stderr);
      assert.deepEqual(await counts(db), want);
      const used = await idsEverGiven(db);
      assert.deepEqual(used, [1, 2]);
      await nextIngestWorks(db, used);
    });
  }

  it('at ingest-after-commit: the trace is complete', async () => {
    const db = fresh('after-commit');
    const r = await cli(['ingest', '--db', db, second], { REFSCOPE_FAILPOINT: 'ingest-after-commit' });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    const c = await counts(db);
    assert.match(c.event_rows, /^1:\d+ 2:\d+$/);
    assert.match(c.traces, /^1:1 2:1$/);
    const id = await nextIngestWorks(db, [1, 2]);
    const check = await cli(['check', '--db', db, '--trace', String(id)]);
    assert.equal(check.status, 1, `check runs and finds the scenario's pin leaks: ${check.stderr}`);
  });

  it('when the WAL first grows: no half trace, and the next id is fresh', async () => {
    const db = fresh('wal');
    const want = await counts(db);
    const wal = db + '.wal';
    const size = () => (existsSync(wal) ? statSync(wal).size : 0);
    const s0 = size();
    let grew = false;
    const r = await cli(['ingest', '--no-replay', '--db', db, second], {}, (stop) => {
      const t = setInterval(() => {
        if (size() > s0) {
          grew = true;
          stop();
          clearInterval(t);
        }
      }, 2);
      setTimeout(() => clearInterval(t), 30_000).unref();
    });
    assert.ok(grew && r.signal === 'SIGKILL', `killed at the WAL's growth (${r.stderr})`);
    const c = await counts(db);
    // Either the trace committed whole or nothing of it is left.
    if (c.traces === want.traces) assert.deepEqual(c, want);
    else assert.match(c.traces, /^1:1 2:1$/);
    await nextIngestWorks(db, await idsEverGiven(db));
  });
});

describe('space', () => {
  it("a killed ingest's blocks are given back at the next open", async () => {
    const db = fresh('bloat');
    const want = await counts(db);
    const size0 = statSync(db).size;
    // An ingest's protocol in plain DuckDB, killed before COMMIT: with the buffer pool capped as ingest caps it, the
    // insert's row groups are already written into the file.
    const script = `
      import { DuckDBInstance } from '@duckdb/node-api';
      const i = await DuckDBInstance.create(process.argv[1], { memory_limit: '64MB', threads: '1' });
      const c = await i.connect();
      await c.run("INSERT INTO trace_loads VALUES (2, 'killed', now()::TIMESTAMP, 'loading')");
      await c.run('BEGIN');
      await c.run("INSERT INTO event_rows (trace_id, seq, line_no, ts_ns, event, payload_text) SELECT 2, i, i + 1, i, 'mm_page_free', md5(i::VARCHAR) FROM range(500000) t(i)");
      process.kill(process.pid, 'SIGKILL');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, db], { cwd: ROOT, stdio: 'ignore' });
    const [, signal] = await once(child, 'exit');
    assert.equal(signal, 'SIGKILL');
    const bloated = statSync(db).size;
    assert.ok(bloated > size0 + 6 * 2 ** 20, `the killed insert grew the file (${size0} -> ${bloated})`);
    assert.deepEqual(await counts(db), want);
    const size1 = statSync(db).size;
    assert.ok(size1 < size0 + 2 ** 20, `back to about ${size0} bytes: ${size1} (was ${bloated})`);
    await nextIngestWorks(db, [1, 2]);
  });
});

describe('kill -9 of a replay', { concurrency: true }, () => {
  for (const point of ['replay-started', 'replay-rows-written']) {
    it(`at ${point}: the trace's replay rows go; replaying again gives the same rows`, async () => {
      const db = fresh(point);
      const want = await counts(db);
      const r = await cli(['replay', '--db', db, '--trace', '1'], { REFSCOPE_FAILPOINT: point });
      assert.equal(r.signal, 'SIGKILL', r.stderr);
      const c = await counts(db);
      for (const t of INGEST_TABLES) if (t.name in want) assert.equal(c[t.name], want[t.name], t.name);
      for (const t of REPLAY_TABLES) assert.equal(c[t.name], '', `no ${t.name} rows of a killed replay`);
      const h = await Db.open(db);
      try {
        await replay(h, 1, {});
      } finally {
        h.close();
      }
      assert.deepEqual(await counts(db), want);
    });
  }
});

describe('kill -9 of a report', () => {
  it('leaves the old folder whole, never a mix of two reports', async () => {
    const db = fresh('report');
    const id = await nextIngestWorks(db, [1]);
    const out = join(dir, 'rep');
    await inProcess(db, (h) => writeReport(h, { traceId: 1, outDir: out, formats: ['json'] }));
    const old = listing(out);
    // Kill at the first sign of the new report: a file of the folder changed, or anything new beside it.
    const beside = () => readdirSync(dir).filter((e) => e.startsWith('.rep')).length;
    let killed = false;
    const r2 = await cli(['report', '--db', db, '--trace', String(id), '--out', out, '--format', 'json'], {}, (stop) => {
      const t = setInterval(() => {
        if (beside() > 0 || JSON.stringify(listing(out)) !== JSON.stringify(old)) {
          killed = true;
          stop();
          clearInterval(t);
        }
      }, 1);
      setTimeout(() => clearInterval(t), 30_000).unref();
    });
    assert.ok(killed && r2.signal === 'SIGKILL', `killed while writing (${r2.stderr})`);
    assert.deepEqual(listing(out), old, 'the old report, whole');
    await inProcess(db, (h) => writeReport(h, { traceId: id, outDir: out, formats: ['json'] }));
    assert.equal(JSON.parse(readFileSync(join(out, 'findings.json'), 'utf8')).trace.trace_id, id);
    assert.deepEqual(readdirSync(dir).filter((e) => e.startsWith('.rep')), [], 'no staging leftovers');
  });
});

describe('disk headroom', () => {
  it('an ingest that would leave less than the headroom free is refused with one line, the database unchanged', async () => {
    const db = fresh('full');
    const want = await counts(db);
    process.env.REFSCOPE_MIN_FREE_BYTES = String(2 ** 60);
    try {
      await assert.rejects(
        inProcess(db, (h) => ingest(h, second, {})),
        (e: Error) => {
          assert.match(e.message, /full\.duckdb: only [\d.]+ MB free on its filesystem; ingesting .*second\.trace needs about [\d.]+ MB plus \d+ MB headroom/);
          assert.doesNotMatch(e.message, /\n/);
          return true;
        },
      );
    } finally {
      delete process.env.REFSCOPE_MIN_FREE_BYTES;
    }
    assert.deepEqual(await counts(db), want);
  });
});

/** Every file under `d` with its size and content hash stand-in (size + first bytes). */
function listing(d: string): string[] {
  if (!existsSync(d)) return [];
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    for (const e of readdirSync(p, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(p, e.name), `${rel}${e.name}/`);
      else {
        const f = join(p, e.name);
        const st = statSync(f);
        out.push(`${rel}${e.name} ${st.size} ${st.mtimeMs}`);
      }
    }
  };
  walk(d, '');
  return out.sort();
}
