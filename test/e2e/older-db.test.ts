/**
 * A database written by an older refscope and opened read-only (query, check, report, export) has not been updated
 * by ensureSchema: where a table or column this version reads is missing, each command refuses with one line naming
 * what is missing and what to run, instead of DuckDB's binder error; `query --sql` still reads the tables it has;
 * `refscope replay` brings the database up to date, after which the commands work. The older database is made
 * from a current one by dropping what an older version lacked: a traces column added since, a replay column.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { replay } from '../../replay/replay.js';
import { runCli } from '../lib/cli.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-older-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function olderDb(name: string, drop: string): Promise<string> {
  const path = join(dir, name);
  const db = await Db.open(path);
  try {
    const { trace_id } = await ingest(db, new URL('../../samples/real/b-vmsplice.trace.txt.gz', import.meta.url).pathname, { progress: false });
    await replay(db, trace_id, {});
    await db.run(drop);
  } finally {
    db.close();
  }
  return path;
}

describe('a database of an older refscope', () => {
  // Every reading command on the first; the library query alone on the second.
  for (const [name, drop, missing, commands] of [
    ['traces.duckdb', 'ALTER TABLE traces DROP COLUMN callsite_skip', 'no column traces.callsite_skip', [['query', 'summary'], ['check'], ['report', '--out', join(tmpdir(), 'refscope-older-never')], ['export', '--csv', join(tmpdir(), 'refscope-older-never.csv')]]],
    ['replay.duckdb', 'ALTER TABLE cma_blockers DROP COLUMN attribution', 'no column cma_blockers.attribution', [['query', 'summary']]],
  ] as const) {
    it(`${missing}: refused in one line saying what to run; --sql reads it; replay updates it`, async () => {
      const db = await olderDb(name, drop);
      const line = `${db}: written by an older refscope (${missing}): run \`refscope replay --db ${db}\` once to bring it up to date\n`;
      for (const args of commands) {
        const r = runCli([...args, '--db', db]);
        assert.equal(r.status, 2, `${args[0]}: ${r.stderr}`);
        assert.equal(r.stderr, `refscope: ${line}`, args[0]);
      }
      const sql = runCli(['query', '--db', db, '--sql', 'SELECT count(*) AS n FROM events', '--format', 'json']);
      assert.equal(sql.status, 0, sql.stderr);
      assert.match(sql.stdout, /4854/);
      const up = runCli(['replay', '--db', db]);
      assert.equal(up.status, 0, up.stderr);
      const r = runCli(['query', 'summary', '--db', db]);
      assert.equal(r.status, 0, r.stderr);
    });
  }
});
