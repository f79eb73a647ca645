/**
 * A stopped stream keeps what it read (issue #21): `... | refscope ingest -` stopped by SIGINT commits the complete
 * lines read so far as a trace marked truncated, says so, and replays it; a second SIGINT during that commit rolls
 * it back (REFSCOPE_PAUSE, db/failpoint.ts, holds the commit open). Runs the built CLI (`npm run build` first).
 */
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { Db } from '../../db/duckdb.js';
import { assertSameEvents, countsByTrace } from '../lib/tables.js';
import { ROOT } from '../lib/cli.js';

const MAIN = join(ROOT, 'dist', 'cli', 'main.js');
const SAMPLE = join(ROOT, 'samples', 'real', 'b-vmsplice.trace.txt.gz');
/** Lines fed before the signal (~320 KB). */
const FED = 4000;

let dir: string;
let lines: string[];
let stoppedDb: string;
/** The last child's exit status and signal, for failure messages. */
let exited = '';

interface Child {
  code: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  feed(text: string): Promise<void>;
  kill(sig: NodeJS.Signals): void;
}

/** Start `ingest -`; resolves once it reads stdin (its handlers are then in place), the first `head` lines fed. */
async function ingestStdin(db: string, head: string, pause = ''): Promise<Child> {
  const child = spawn(process.execPath, [MAIN, 'ingest', '--db', db, '--json', '-'], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, REFSCOPE_PAUSE: `ingest-id-committed:0${pause}` },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.on('error', () => undefined); // the CLI closes its end when stopped
  const c: Child = {
    code: once(child, 'exit').then(([c, sig]) => {
      exited = `${c} ${sig}`;
      return c as number | null;
    }),
    stdout: () => stdout,
    stderr: () => stderr,
    // Slowly, in 16 KB pieces, as trace_pipe gives them; resolves once the last piece is in the pipe.
    async feed(text: string) {
      const b = Buffer.from(text, 'latin1');
      for (let at = 0; at < b.length; at += 16384) {
        await new Promise<void>((r) => child.stdin.write(b.subarray(at, at + 16384), () => r()));
        await sleep(5);
      }
    },
    kill: (sig) => child.kill(sig),
  };
  await c.feed(head);
  await until(() => stderr.includes('pausing 0 ms at ingest-id-committed'), () => `the first block read; exited ${exited} stderr: ${stderr}`);
  return c;
}

async function until(what: () => boolean, label: () => string): Promise<void> {
  for (let i = 0; i < 400 && !what(); i++) await sleep(10);
  assert.ok(what(), `timed out waiting for ${label()}`);
}

/** Row count per trace of every ingest and replay table. */
async function counts(path: string): Promise<Record<string, string>> {
  const db = await Db.open(path, { readOnly: true });
  try {
    return await countsByTrace(db);
  } finally {
    db.close();
  }
}

before(() => {
  assert.ok(existsSync(MAIN), `${MAIN} is missing: run npm run build first`);
  dir = mkdtempSync(join(tmpdir(), 'refscope-stop-'));
  lines = gunzipSync(readFileSync(SAMPLE)).toString('latin1').split('\n');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ingest - stopped by SIGINT', () => {
  it('keeps the complete lines read as a truncated trace, replays it, and check/report work on it', async () => {
    stoppedDb = join(dir, 'stopped.duckdb');
    const child = await ingestStdin(stoppedDb, lines.slice(0, 100).join('\n') + '\n');
    // The lines, then half of the next one: its newline never comes.
    const next = lines[FED];
    await child.feed(lines.slice(100, FED).join('\n') + '\n' + next.slice(0, next.length >> 1));
    await sleep(400); // the last 64 KB drained from the pipe
    child.kill('SIGINT');
    const code = await child.code;
    assert.equal(code, 0, child.stderr());
    assert.match(child.stderr(), /^trace 1: stopped by SIGINT after 4000 lines: kept as a truncated trace$/m);
    const s = JSON.parse(child.stdout());
    assert.equal(s.truncated, 'SIGINT');
    assert.equal(s.lines, FED);
    assert.ok(s.replay, 'replayed');

    // The same lines as a file: the same events, row for row.
    const file = join(dir, 'fed.txt');
    writeFileSync(file, lines.slice(0, FED).join('\n') + '\n', 'latin1');
    const fileDb = join(dir, 'file.duckdb');
    const r = spawnSync(process.execPath, [MAIN, 'ingest', '--db', fileDb, '--no-replay', file], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const db = await Db.open(':memory:');
    try {
      await db.run(`ATTACH '${fileDb}' AS f (READ_ONLY)`);
      await db.run(`ATTACH '${stoppedDb}' AS s (READ_ONLY)`);
      const t = await db.all<{ truncated: boolean; lines: bigint; events: bigint }>(
        'SELECT truncated, lines, events FROM f.traces UNION ALL SELECT truncated, lines, events FROM s.traces',
      );
      assert.deepEqual(
        t.map((x) => [x.truncated, Number(x.lines)]),
        [
          [false, FED],
          [true, FED],
        ],
      );
      assert.equal(t[1].events, t[0].events);
      await assertSameEvents(db, 'f', 's');
    } finally {
      db.close();
    }

    const check = spawnSync(process.execPath, [MAIN, 'check', '--db', stoppedDb], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stdout, /^trace 1 \(-\): ok/m);
    const out = join(dir, 'report');
    const report = spawnSync(process.execPath, [MAIN, 'report', '--db', stoppedDb, '--out', out, '--format', 'json'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(report.status, 0, report.stderr);
    assert.ok(existsSync(join(out, 'findings.json')));
  });

  it('a second SIGINT during the commit rolls it back: the database is unchanged, exit 130', async () => {
    const path = join(dir, 'aborted.duckdb');
    copyFileSync(stoppedDb, path);
    const before = await counts(path);
    // Other lines than the first test's: not a duplicate of trace 1.
    const child = await ingestStdin(path, lines.slice(FED, FED + 100).join('\n') + '\n', ',ingest-before-commit:5000');
    await child.feed(lines.slice(FED + 100, 2 * FED).join('\n') + '\n');
    await sleep(400);
    child.kill('SIGINT');
    await until(() => child.stderr().includes('pausing 5000 ms at ingest-before-commit'), () => `the commit; exited ${exited} stderr: ${child.stderr()}`);
    child.kill('SIGINT');
    const code = await child.code;
    assert.equal(code, 130, child.stderr());
    assert.match(child.stderr(), /^refscope: -: ingest aborted by SIGINT; the database is unchanged$/m);
    assert.doesNotMatch(child.stderr(), /kept as a truncated trace/);
    assert.deepEqual(await counts(path), before);
  });
});
