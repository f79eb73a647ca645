/**
 * CLI consistency (issue #21): on a database of two small replayed traces,
 *  - report and export --perfetto refuse to guess a trace (the list and how to pick), `--trace all` where it means
 *    something (report: one folder per trace; export of a table: every trace);
 *  - check names each trace (id and source), in text and JSON;
 *  - table output prints pfns, pointers and flags in hex by the column's meaning (a count of pfns is a count);
 *  - one `certain` convention in the gated finding queries; counts named for what they count (top-callers'
 *    allocations, replay's cma_alloc calls apart from cma_release).
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { exportCommand } from '../../cli/commands/export.js';
import { report } from '../../cli/commands/report.js';
import { openReadOnly } from '../../cli/common.js';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { check, formatCheck, gatedQueries } from '../../queries/check.js';
import { formatTable } from '../../queries/format.js';
import { listQueries, runQuery, runSql } from '../../queries/runner.js';
import { formatSummary, replay, type ReplaySummary } from '../../replay/replay.js';
import { ftraceLine } from '../lib/ftrace.js';

let dir: string;
let dbPath: string;
let cmaSummary: ReplaySummary;

const alloc = (pfn: number, order = 0) => `page=0x1 pfn=0x${pfn.toString(16)} order=${order} migratetype=0 gfp_flags=GFP_KERNEL`;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-clicons-'));
  dbPath = join(dir, 't.duckdb');
  // a.txt: a cma_alloc call and a cma_release; b.txt: an order-2 and an order-0 allocation, alive at the end.
  writeFileSync(join(dir, 'a.txt'), ['# tracer: nop',
    ftraceLine('cma', 10, 10, 0, 1000, 'cma_alloc_start', 'name=reserved count=4 align=2'),
    ftraceLine('cma', 10, 10, 0, 2000, 'cma_alloc_finish', 'name=reserved pfn=0x7bc00 page=00000000deadbeef count=4 align=2 errorno=0'),
    ftraceLine('cma', 10, 10, 0, 3000, 'cma_release', 'name=reserved pfn=0x7bc00 page=00000000deadbeef count=4'),
  ].join('\n') + '\n');
  writeFileSync(join(dir, 'b.txt'), ['# tracer: nop',
    ftraceLine('bash', 20, 20, 0, 1000, 'mm_page_alloc', alloc(0x1000, 2)),
    ftraceLine('bash', 20, 20, 0, 2000, 'mm_page_alloc', alloc(0x2000)),
  ].join('\n') + '\n');
  const db = await Db.open(dbPath);
  try {
    await ingest(db, join(dir, 'a.txt'));
    await ingest(db, join(dir, 'b.txt'));
    cmaSummary = await replay(db, 1);
    await replay(db, 2);
    // A certain use-after-free in trace 2 only: check must say that trace 2 failed.
    await db.run(`INSERT INTO anomalies BY NAME SELECT 2 AS trace_id, 1 AS anomaly_id, 'ref_after_free' AS kind, 1 AS seq,
      1000 AS ts_ns, 4096 AS pfn, 'error' AS severity, true AS certain, 'test' AS detail`);
  } finally {
    db.close();
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** `refscope export ARGS` in this process. */
async function exportCli(...args: string[]): Promise<void> {
  const program = new Command().exitOverride();
  exportCommand(program);
  await program.parseAsync(['export', '--db', dbPath, ...args], { from: 'user' });
}

/** The end of the refusal: the traces, as a user picks them. */
const listing = () => `:\n  trace 1  ${join(dir, 'a.txt')}  3 events  replayed\n  trace 2  ${join(dir, 'b.txt')}  2 events  replayed`;

describe('a command that needs one trace does not guess', () => {
  it('report refuses a database of two traces with the list and how to pick; --trace all writes one folder each', async () => {
    const out = join(dir, 'rep');
    await assert.rejects(report({ db: dbPath, out, format: 'json' }), (e: Error) => {
      assert.equal(e.message, `${dbPath} holds 2 traces; give --trace N (or --trace all: one folder per trace, ${join(out, 'trace-N')})${listing()}`);
      return true;
    });
    assert.ok(!existsSync(out));
    await report({ db: dbPath, out, format: 'json', trace: 'all' });
    for (const id of [1, 2]) assert.ok(existsSync(join(out, `trace-${id}`, 'findings.json')), `trace-${id}`);
    await report({ db: dbPath, out: join(dir, 'one'), format: 'json', trace: '2' });
    assert.ok(existsSync(join(dir, 'one', 'findings.json')));
    await assert.rejects(report({ db: dbPath, out, format: 'json', trace: '7' }), /no trace 7; give --trace N/);
  });

  it('export --perfetto refuses to guess; a table export takes --trace all (every trace)', async () => {
    await assert.rejects(exportCli('--perfetto', join(dir, 'p.json')), (e: Error) => {
      assert.equal(e.message, `${dbPath} holds 2 traces; give --trace N${listing()}`);
      return true;
    });
    await assert.rejects(exportCli('--perfetto', join(dir, 'p.json'), '--trace', 'all'), /--trace all: not a trace id; give --trace N/);
    await exportCli('--perfetto', join(dir, 'p.json'), '--trace', '1');
    assert.ok(existsSync(join(dir, 'p.json')));
    await exportCli('--csv', join(dir, 'e.csv'), '--trace', 'all');
    assert.equal(readFileSync(join(dir, 'e.csv'), 'utf8').trim().split('\n').length, 1 + 3 + 2);
  });
});

describe('check names each trace', () => {
  it('in text and JSON: trace 2 (b.txt) failed, trace 1 (a.txt) did not', async () => {
    const db = await openReadOnly(dbPath);
    try {
      const rep = await check(db);
      assert.equal(rep.ok, false);
      assert.deepEqual(rep.traces.map((t) => [t.trace_id, t.source, t.ok]), [[1, join(dir, 'a.txt'), true], [2, join(dir, 'b.txt'), false]]);
      assert.equal(rep.traces[1]!.kinds.find((k) => k.kind === 'use-after-free')!.count, 1);
      const text = formatCheck(rep);
      assert.ok(text.startsWith(`trace 1 (${join(dir, 'a.txt')}): ok: no findings\ntrace 2 (${join(dir, 'b.txt')}): FAIL: use-after-free 1\n`), text);
      assert.match(text, /^use-after-free: 1 \(max 0\) FAIL$/m);
      // JSON as `check --json` prints it.
      const json = JSON.parse(JSON.stringify(rep)) as { traces: { trace_id: number; source: string; ok: boolean }[] };
      assert.deepEqual(json.traces.map((t) => `${t.trace_id}:${t.source}:${t.ok}`), [`1:${join(dir, 'a.txt')}:true`, `2:${join(dir, 'b.txt')}:false`]);
    } finally {
      db.close();
    }
  });
});

describe('hex by meaning in table output', () => {
  it('pfns, pointers and flags columns in hex when integers; counts and text as they are', async () => {
    const db = await openReadOnly(dbPath);
    try {
      const r = await runSql(
        db,
        `SELECT count(DISTINCT pfn) AS n0, count(DISTINCT pfn), max(pfn) AS pfn, max(pfn) - min(pfn) AS span,
                4660::UBIGINT AS pgmap, 255::UBIGINT AS gup_flags, 'GFP_KERNEL' AS gfp_flags, [4096, 8192]::BIGINT[] AS example_pfns,
                4096 AS folio_pfn, 4096 AS pfn_count, count(DISTINCT pfn) AS pfns
         FROM events WHERE trace_id = 2`,
      );
      const [head, , row] = formatTable(r).split('\n');
      const cells = row!.trim().split(/\s{2,}/);
      const names = head!.trim().split(/\s{2,}/);
      assert.deepEqual(Object.fromEntries(names.map((n, i) => [n, cells[i]])), {
        n0: '2', 'count(DISTINCT pfn)': '2', pfn: '0x2000', span: '4096', pgmap: '0x1234', gup_flags: '0xff',
        gfp_flags: 'GFP_KERNEL', example_pfns: '0x1000,0x2000', folio_pfn: '0x1000', pfn_count: '4096', pfns: '2',
      });
    } finally {
      db.close();
    }
  });
});

describe('one convention, counts named for what they count', () => {
  it('every finding query marks its rows `certain`; no query of the library has an `uncertain` column', () => {
    const all = listQueries();
    const findings = all.filter((q) => q.finding !== null);
    // Gated kinds and the ungated findings (long-pins) alike.
    assert.ok(gatedQueries().every((g) => findings.some((q) => q.name === g.name)));
    assert.ok(findings.some((q) => q.name === 'long-pins' && q.gate === null));
    for (const q of findings) assert.ok(q.columns.some((c) => c.name === 'certain'), `${q.name}: certain`);
    for (const q of all) {
      const cols = q.columns.map((c) => c.name);
      assert.ok(!cols.includes('uncertain'), `${q.name}: no uncertain column`);
      for (const which of ['html', 'md'] as const) assert.ok(!(q.show[which] ?? []).includes('uncertain'), `${q.name}: @columns ${which} shows uncertain`);
    }
  });

  it('top-callers counts allocations (an order-2 allocation is one) and their bytes', async () => {
    const db = await openReadOnly(dbPath);
    try {
      const rows = (await runQuery(db, 'top-callers', { trace_id: 2 })).rows;
      assert.equal(rows.length, 1);
      assert.deepEqual([rows[0]!.allocs, rows[0]!.allocs_alive_at_end, rows[0]!.bytes_alive_at_end], [2n, 2n, 20480n]);
    } finally {
      db.close();
    }
  });

  it('replay counts cma_alloc calls and says cma_release calls apart', () => {
    assert.equal(cmaSummary.cma_allocs, 1);
    assert.equal(cmaSummary.cma_releases, 1);
    assert.match(formatSummary(cmaSummary), /cma_alloc calls 1 \(0 blocker rows\), cma_release calls 1,/);
  });
});
