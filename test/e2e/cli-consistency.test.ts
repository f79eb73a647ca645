/**
 * The CLI's side of issue #21's consistency cases, where the command line itself is the subject: a report asked of
 * a database of several traces prints the list and how to pick (exit 2, no stack trace), and `check` names each
 * trace in its output. The rules themselves are tested in test/unit/cli-consistency.test.ts.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { replay } from '../../replay/replay.js';
import { runCli } from '../lib/cli.js';
import { ftraceLine } from '../lib/ftrace.js';

let dir: string;
let db: string;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-clicons-e2e-'));
  db = join(dir, 't.duckdb');
  const d = await Db.open(db);
  try {
    for (const [name, pfn] of [['a.txt', 0x1000], ['b.txt', 0x2000]] as const) {
      const line = ftraceLine('bash', 20, 20, 0, 1000, 'mm_page_alloc', `page=0x1 pfn=0x${pfn.toString(16)} order=0 migratetype=0 gfp_flags=GFP_KERNEL`);
      writeFileSync(join(dir, name), `# tracer: nop\n${line}\n`);
      await ingest(d, join(dir, name));
    }
    await replay(d, 1);
  } finally {
    d.close();
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('refscope CLI on a database of two traces', () => {
  it('report without --trace: the list of traces and how to pick, exit 2, nothing written', () => {
    const out = join(dir, 'rep');
    const r = runCli(['report', '--db', db, '--out', out, '--format', 'json']);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(
      r.stderr,
      `refscope: ${db} holds 2 traces; give --trace N (or --trace all: one folder per trace, ${join(out, 'trace-N')}):\n` +
        `  trace 1  ${join(dir, 'a.txt')}  1 events  replayed\n  trace 2  ${join(dir, 'b.txt')}  1 events  not replayed\n`,
    );
    assert.ok(!existsSync(out));
  });

  it('check --trace 1 names the trace it checked', () => {
    const r = runCli(['check', '--db', db, '--trace', '1']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^trace 1 \\(${join(dir, 'a.txt').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\): ok: no findings\\nleaks: 0 \\(max 0\\) ok\\n`));
  });
});
