/**
 * Read-only means read-only (issue #22): `query --sql` refuses every write path (ATTACH of the same file through a
 * hard link, ATTACH of another file, DELETE, DROP, COPY TO, EXPORT DATABASE, SET, CHECKPOINT, INSTALL/LOAD, file
 * reads) and the database is byte for byte unchanged; `--allow-file-reads` lets read_csv in and still refuses
 * writes; library queries, check, report and export still work on the locked connection. Output: the CLI prints
 * trace text escaped and CSV neutralised; a database held by another process is one sentence, exit 2.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Command } from 'commander';
import { exportCommand } from '../../cli/commands/export.js';
import { queryOutput, type QueryCommandOptions } from '../../cli/commands/query.js';
import { report } from '../../cli/commands/report.js';
import { openDb, openReadOnly } from '../../cli/common.js';
import { check, findingKinds } from '../../queries/check.js';
import { CLI, runCli } from '../lib/cli.js';
import { ftraceLine } from '../lib/ftrace.js';

const ESC = '\x1b';
const HOSTILE = `garbage ${ESC}]0;pwned\x07 ${ESC}[2J end`;
const FORMULA = "=cmd|' /C calc'!A0";
/** Control characters that would drive the terminal (newline aside). */
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f]/;

let dir: string;
let db: string;
const hash = () => createHash('sha256').update(readFileSync(db)).digest('hex');
const q = (o: Partial<QueryCommandOptions>, name?: string) => queryOutput(name, { db, ...o });

/** `refscope export ARGS` in this process (each CLI start costs a second). */
async function exportCli(...args: string[]): Promise<void> {
  const program = new Command().exitOverride();
  exportCommand(program);
  await program.parseAsync(['export', '--db', db, ...args], { from: 'user' });
}

/** The CLI in a child process, without blocking (the two ingests of before() run at once). */
function cliAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const p = spawn(process.execPath, [...CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d) => (stdout += d));
  p.stderr.on('data', (d) => (stderr += d));
  return once(p, 'close').then(([status]) => ({ status: status as number | null, stdout, stderr }));
}

/** `refscope ingest --format csv` of a binary file: its stderr. */
let binaryIngest: Promise<{ status: number | null; stderr: string }>;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-readonly-'));
  const bin = join(dir, 'bin.csv');
  writeFileSync(bin, Buffer.concat([Buffer.from(`\x7fELF${ESC}]0;x\x07${ESC}[2J\x00\x01,`), Buffer.alloc(20000, 0x1b)]));
  binaryIngest = cliAsync(['ingest', '--db', join(dir, 'bin.duckdb'), '--format', 'csv', bin]);
  db = join(dir, 't.duckdb');
  const alloc = (pfn: number) => `page=0x1 pfn=0x${pfn.toString(16)} order=0 migratetype=0 gfp_flags=GFP_KERNEL`;
  const trace = ['# tracer: nop', ftraceLine('bash', 100, 100, 0, 1000, 'mm_page_alloc', alloc(0x1000)),
    ftraceLine(FORMULA, 101, 101, 0, 2000, 'mm_page_alloc', alloc(0x2000)), HOSTILE];
  writeFileSync(join(dir, 't.txt'), trace.join('\n') + '\n');
  const r = await cliAsync(['ingest', '--db', db, join(dir, 't.txt')]);
  assert.equal(r.status, 0, r.stderr);
  // The ingest summary echoes the unparsed line escaped.
  assert.doesNotMatch(r.stdout, RAW);
  assert.ok(r.stdout.includes('garbage \\x1b]0;pwned\\x07 \\x1b[2J end'), r.stdout);
  writeFileSync(join(dir, 'x.csv'), 'a,b\n1,2\n');
  linkSync(db, join(dir, 'link.duckdb'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('query --sql is read-only', () => {
  const writes = (d: string) => [
    `ATTACH '${d}/link.duckdb' AS s (READ_WRITE); DELETE FROM s.event_rows`,
    `ATTACH '${d}/other.duckdb' AS o; CREATE TABLE o.t (x INTEGER)`,
    'DELETE FROM event_rows',
    'DROP TABLE event_rows',
    `COPY events TO '${d}/out.csv'`,
    `EXPORT DATABASE '${d}/dump'`,
    'SET threads = 1',
    'RESET memory_limit',
    'CHECKPOINT',
    'FORCE CHECKPOINT',
    'INSTALL httpfs',
    'LOAD json',
    'SELECT 1; DELETE FROM event_rows',
  ];

  it('refuses every write path with one line and leaves the database unchanged', async () => {
    const before = hash();
    for (const sql of [...writes(dir), `SELECT * FROM read_csv('${dir}/x.csv')`, `SELECT * FROM read_text('/etc/passwd')`])
      await assert.rejects(q({ sql }), (e: Error) => {
        assert.match(e.message, /^--sql is read-only: /, sql);
        assert.equal(e.message.split('\n').length, 1, sql);
        return true;
      });
    // DuckDB accepts the checkpoint() table function on a read-only file: it writes nothing.
    await q({ sql: 'SELECT * FROM checkpoint()' });
    assert.equal(hash(), before);
    for (const f of ['other.duckdb', 'out.csv', 'dump']) assert.ok(!existsSync(join(dir, f)), f);
    assert.match(await q({ sql: 'SELECT count(*) AS n FROM events' }), /\n\s*2\n/);
  });

  it('--allow-file-reads: read_csv works, writes are still refused', async () => {
    const before = hash();
    assert.match(await q({ sql: `SELECT a + b AS s FROM read_csv('${dir}/x.csv')`, allowFileReads: true }), /\n\s*3\n/);
    for (const sql of writes(dir)) await assert.rejects(q({ sql, allowFileReads: true }), /--sql is read-only: /, sql);
    assert.equal(hash(), before);
    for (const f of ['other.duckdb', 'out.csv', 'dump']) assert.ok(!existsSync(join(dir, f)), f);
    await assert.rejects(q({ allowFileReads: true }, 'summary'), /--allow-file-reads applies to --sql only/);
  });

  it('library queries, check, report and export still work on the locked connection', async () => {
    const before = hash();
    assert.match(await q({}, 'summary'), /rows?\)/);
    const locked = await openReadOnly(db); // what `refscope check` opens
    try {
      assert.equal((await check(locked, { failOn: findingKinds(), max: {} })).ok, true);
    } finally {
      locked.close();
    }
    await report({ db, out: join(dir, 'report'), format: 'json' });
    assert.ok(existsSync(join(dir, 'report', 'findings.json')));
    // csv and parquet: DuckDB's COPY writes into the target's directory only.
    for (const [flag, target] of [['--csv', 'sub/e.csv'], ['--parquet', 'pq'], ['--arrow', 'e.arrow'], ['--perfetto', 'p.json']])
      await exportCli(flag!, join(dir, target!));
    assert.ok(existsSync(join(dir, 'sub', 'e.csv')) && existsSync(join(dir, 'pq', 'events.parquet')));
    assert.equal(hash(), before);
  });
});

describe('output channels', () => {
  it('query table output escapes what the trace holds', async () => {
    const out = await q({ sql: 'SELECT text FROM unparsed_lines' });
    assert.doesNotMatch(out, RAW);
    assert.ok(out.includes('garbage \\x1b]0;pwned\\x07 \\x1b[2J end'), out);
  });

  it('CSV neutralises formulas, keeps negative numbers, and --csv-raw leaves both', async () => {
    const sql = "SELECT DISTINCT comm, '-5' AS n FROM events WHERE comm <> 'bash'";
    assert.equal(await q({ sql, format: 'csv' }), `comm,n\r\n'${FORMULA},-5\r\n`);
    assert.equal(await q({ sql, format: 'csv', csvRaw: true }), `comm,n\r\n${FORMULA},-5\r\n`);
    assert.equal(await q({ sql: 'SELECT text FROM unparsed_lines', format: 'csv' }), 'text\r\ngarbage \\x1b]0;pwned\\x07 \\x1b[2J end\r\n');
    const row = (f: string) => readFileSync(join(dir, f), 'utf8').split('\n').find((l) => l.includes('calc'));
    await exportCli('--csv', join(dir, 'safe.csv'));
    assert.ok(row('safe.csv')!.includes(`,'${FORMULA},`), row('safe.csv'));
    await exportCli('--csv', join(dir, 'raw.csv'), '--csv-raw');
    assert.ok(row('raw.csv')!.includes(`,${FORMULA},`), row('raw.csv'));
  });

  it('an error quoting input (a binary file read as CSV) prints it escaped, on one bounded line', async () => {
    const r = await binaryIngest;
    assert.equal(r.status, 2);
    assert.doesNotMatch(r.stderr, RAW);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.ok(r.stderr.length < 500, r.stderr);
  });
});

describe('a database in use by another process', () => {
  it('one refscope sentence naming the process, exit 2, no stack trace', async () => {
    // Another process holds the database writable (DuckDB's lock is per process: this one can then not open it).
    const holder = spawn(process.execPath, ['--input-type=module', '-e',
      `import { DuckDBInstance } from '@duckdb/node-api'; await DuckDBInstance.create(process.argv[1]); console.log('held'); setInterval(() => {}, 1000);`,
      db], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await once(holder.stdout!, 'data');
      const sentence =
        `${db} is in use by another process (PID ${holder.pid}, node: e.g. a running refscope ingest or replay); wait for it to finish or use another --db`;
      await assert.rejects(q({ sql: 'SELECT 1' }), (e: Error) => e.message === sentence);
      await assert.rejects(openDb(db), (e: Error) => e.message === sentence); // ingest, replay
      await assert.rejects(report({ db, out: join(dir, 'r2'), format: 'md' }), (e: Error) => e.message === sentence);
      await assert.rejects(exportCli('--arrow', join(dir, 'r2.arrow')), (e: Error) => e.message === sentence);
      const r = runCli(['query', '--sql', 'SELECT 1', '--db', db]);
      assert.equal(r.status, 2); // like every error of refscope but check's 'over the limit' (1)
      assert.equal(r.stderr, `refscope: ${sentence}\n`);
    } finally {
      holder.kill();
    }
  });
});
