/**
 * `refscope ingest` as a user runs it (child processes): bad inputs exit 2 with one line
 * `refscope: FILE...: reason` on stderr and leave the database as it was; a gzip that breaks half-way rolls the
 * whole trace back; the same content twice is refused unless --replace; kill -9 in the middle of a large ingest
 * leaves the database exactly as before; stdin gives the same events as the file.
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { copyFileSync, createReadStream, createWriteStream, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { assertSameEvents } from '../lib/tables.js';
import { CLI } from '../lib/cli.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const SAMPLE = join(ROOT, 'samples', 'real', 'b-vmsplice.trace.txt.gz');
const SAMPLE_D = join(ROOT, 'samples', 'real', 'd-pgmap-hmm.trace.txt.gz');

let dir: string;
let dbPath: string;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI in a child process (async, so independent runs can overlap: each costs a tsx startup). */
async function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const [status] = (await once(child, 'exit')) as [number | null];
  return { status, stdout, stderr };
}

/** Ingest in this process (setup steps that are not what a test is about). */
async function ingestHere(db: string, file: string): Promise<void> {
  const d = await Db.open(db);
  try {
    await ingest(d, file);
  } finally {
    d.close();
  }
}

/** What the database holds, read through a fresh connection after the child has exited. */
async function snapshot(path = dbPath): Promise<Record<string, number>> {
  const db = await Db.open(path);
  try {
    const out: Record<string, number> = {};
    for (const t of ['traces', 'events', 'stacks', 'lost_events', 'unparsed_lines'])
      out[t] = (await db.one<{ n: number }>(`SELECT count(*)::INTEGER AS n FROM ${t}`))!.n;
    out.max_trace = (await db.one<{ n: number | null }>('SELECT max(trace_id)::INTEGER AS n FROM traces'))!.n ?? 0;
    return out;
  } finally {
    db.close();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How far process `pid` has read into `file` (-1 when it has no descriptor open on it), from /proc/PID/fdinfo. */
function readOffset(pid: number, file: string): number {
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target = '';
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (target !== file) continue;
      const m = /^pos:\s*(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
      if (m) return Number(m[1]);
    }
  } catch {
    // process gone
  }
  return -1;
}

/** Exit 2, exactly one stderr line naming the file, no stack trace. */
function assertRefused(r: Run, file: string, reason: RegExp): void {
  assert.equal(r.status, 2, `exit status (stderr: ${r.stderr})`);
  const lines = r.stderr.split('\n').filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `one stderr line, got:\n${r.stderr}`);
  assert.ok(lines[0].startsWith(`refscope: ${file}`), lines[0]);
  assert.match(lines[0], reason);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-cli-test-'));
  dbPath = join(dir, 'refscope.duckdb');
  await ingestHere(dbPath, SAMPLE);
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('bad inputs: exit 2, one line on stderr, database unchanged', () => {
  it('binary, empty, trace.dat, nonexistent, directory, a gzip truncated half-way, a CSV without its columns', async () => {
    const before = await snapshot();
    assert.equal(before.traces, 1);
    const bin = join(dir, 'binary.bin');
    writeFileSync(bin, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)));
    const empty = join(dir, 'empty.txt');
    writeFileSync(empty, '');
    const dat = join(dir, 'trace.dat');
    writeFileSync(dat, Buffer.concat([Buffer.from([0x17, 0x08, 0x44]), Buffer.from('tracing6\0\0\0\0\x08\0\0\0'), Buffer.alloc(64)]));
    // 12.9 MB of text, cut at 60% of the gzip: many event batches are appended before the stream breaks
    const gz = readFileSync(SAMPLE_D);
    const cut = join(dir, 'truncated.txt.gz');
    writeFileSync(cut, gz.subarray(0, Math.floor(gz.length * 0.6)));
    const csv = join(dir, 'bad-header.csv');
    writeFileSync(csv, 'ts_ns,comm,payload\n1,a,b\n');
    const cases: [string[], string, RegExp, Record<string, string>?][] = [
      [[bin], bin, /: binary content, not trace text$/],
      [[empty], empty, /: empty input$/],
      // read natively since the trace.dat reader: this header's long size (0) is refused with its offset
      [[dat], dat, /: offset 13: long size 0 is neither 4 nor 8$/],
      [[join(dir, 'no-such-file.txt')], join(dir, 'no-such-file.txt'), /: cannot read: ENOENT$/],
      [[dir], dir, /: not a regular file$/],
      [[cut], cut, /: gzip stream is corrupt: unexpected end of file$/],
      // the same break met by the parse worker, which reads the file itself
      [[cut], cut, /: gzip stream is corrupt: unexpected end of file$/, { REFSCOPE_WORKER: '1' }],
      [['--format', 'csv', csv], csv, /: CSV header lacks required column event /],
    ];
    // Each case gets its own copy of the database, so the children can run side by side.
    const runs = await Promise.all(
      cases.map(async ([args, , , env], i) => {
        const copy = join(dir, `bad-${i}.duckdb`);
        copyFileSync(dbPath, copy);
        return { copy, r: await cli(['ingest', '--db', copy, ...args], env) };
      }),
    );
    for (const [i, { copy, r }] of runs.entries()) {
      assertRefused(r, cases[i][1], cases[i][2]);
      assert.deepEqual(await snapshot(copy), before, `database unchanged after ${cases[i][1]}`);
    }
  });
});

describe('the same content twice', () => {
  it('is refused (exit 2) unless --replace, which replaces the trace without doubling its events', async () => {
    const before = await snapshot();
    // same content under another name (uncompressed): the SHA-256 is of the content
    const plain = join(dir, 'b-vmsplice.txt');
    writeFileSync(plain, gunzipSync(readFileSync(SAMPLE)));
    assertRefused(await cli(['ingest', '--db', dbPath, plain]), plain, /already ingested as trace 1 .*use --replace/);
    assert.deepEqual(await snapshot(), before);
    const r = await cli(['ingest', '--db', dbPath, '--replace', '--json', plain]);
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.deepEqual(s.replaced, [1]);
    const after = await snapshot();
    assert.deepEqual({ ...after, max_trace: 0 }, { ...before, max_trace: 0 }, 'same row counts: replaced, not doubled');
    assert.equal(after.max_trace, s.trace_id);
    assert.ok(s.trace_id > 1);
  });
});

describe('kill -9 in the middle of a large ingest', () => {
  it('leaves the database exactly as it was, and usable', { timeout: 120_000 }, async () => {
    const big = join(dir, 'big.trace.txt');
    const out = createWriteStream(big);
    const N = 2_000_000;
    let chunk = '';
    for (let i = 0; i < N; i++) {
      const t = 100 + i / 1e6;
      chunk += `            bash-12621   [00${i & 1}] .....   ${t.toFixed(6)}: mm_page_free: page=000000002c49ac86 pfn=0x${(0x10000 + (i % 65536)).toString(16)} order=0\n`;
      if (chunk.length > 1 << 20) {
        if (!out.write(chunk)) await once(out, 'drain');
        chunk = '';
      }
    }
    out.end(chunk);
    await once(out, 'finish');
    const before = await snapshot();
    const child = spawn(process.execPath, [...CLI, 'ingest', '--db', dbPath, big], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = once(child, 'exit');
    // Kill about 1 s after the child has started reading the input (its read offset, from /proc), whatever the
    // tsx startup took.
    const t0 = Date.now();
    while (readOffset(child.pid!, big) <= 0 && child.exitCode === null && Date.now() - t0 < 60_000) await sleep(50);
    await sleep(1000);
    const offset = readOffset(child.pid!, big);
    assert.equal(child.exitCode, null, `the ingest was still running when killed (stderr: ${stderr})`);
    assert.ok(offset > 0 && offset < statSync(big).size, `killed in the middle of the input (read offset ${offset})`);
    child.kill('SIGKILL');
    const [code, signal] = await exited;
    assert.equal(code, null);
    assert.equal(signal, 'SIGKILL');
    assert.deepEqual(await snapshot(), before, 'nothing of the killed ingest is visible');
    // and the database still takes an ingest
    const small = join(dir, 'small.txt');
    writeFileSync(small, '            bash-12621   [001] .....   413.376144: mm_page_free: page=000000002c49ac86 pfn=0x18dbea order=0\n');
    await ingestHere(dbPath, small);
    const after = await snapshot();
    assert.equal(after.traces, before.traces + 1);
    assert.equal(after.events, before.events + 1);
    rmSync(big);
  });
});

describe('stdin', () => {
  it('`cat file | refscope ingest -` gives the same events as the file', async () => {
    const plain = join(dir, 'stdin-src.txt');
    writeFileSync(plain, gunzipSync(readFileSync(SAMPLE)));
    const fileDb = join(dir, 'file.duckdb');
    const stdinDb = join(dir, 'stdin.duckdb');
    await ingestHere(fileDb, plain);
    // a real pipe from a file, as `cat file |` gives
    const child = spawn(process.execPath, [...CLI, 'ingest', '--db', stdinDb, '--json', '-'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    createReadStream(plain).pipe(child.stdin);
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, stderr);
    const s = JSON.parse(stdout);
    assert.equal(s.source, '-');
    assert.equal(s.events, 4854);
    const db = await Db.open(':memory:');
    try {
      await db.run(`ATTACH '${fileDb}' AS f (READ_ONLY)`);
      await db.run(`ATTACH '${stdinDb}' AS s (READ_ONLY)`);
      await assertSameEvents(db, 'f', 's');
      const t = await db.all<{ source: string; sha256: string; events: bigint; size_bytes: bigint }>(
        'SELECT source, sha256, events, size_bytes FROM f.traces UNION ALL SELECT source, sha256, events, size_bytes FROM s.traces',
      );
      assert.equal(t[0].sha256, t[1].sha256);
      assert.equal(t[0].size_bytes, t[1].size_bytes);
      assert.equal(t[1].source, '-');
    } finally {
      db.close();
    }
  });
});
