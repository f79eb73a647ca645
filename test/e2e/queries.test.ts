/**
 * The query library and `refscope query` / `refscope check` on REAL captures (samples/real/*.gz): each capture is
 * ingested and replayed once, then the queries must say what a correct analysis of the capture concludes (its notes,
 * summarised in samples/real/README.md).
 */
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { runQuery, type ResultRow } from '../../queries/runner.js';
import { CAPTURES, REAL, type Cap } from '../lib/captures.js';
import { CLI, runCliInProcess } from '../lib/cli.js';
import { ALL_REAL, privateCopy, realIds, replayedDb } from '../lib/fixtures.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let dir: string;
let dbPath: string;
let bareDbPath: string;
let db: Db;
let ids = {} as Record<Cap, number>;

async function q(name: string, params: Record<string, unknown> = {}): Promise<ResultRow[]> {
  return (await runQuery(db, name, params)).rows;
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI in a child process (the exit code is part of what is tested). */
function cli(...args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Several CLI runs at once (each costs ~0.4 s CPU to start). */
const clis = (...runs: string[][]): Promise<Run[]> => Promise.all(runs.map((a) => cli(...a)));
/** The same runs in this process (test/lib/cli.ts runCliInProcess: the command's parsing, action and exit code). */
const inProcess = (...runs: string[][]): Promise<Run[]> => Promise.all(runs.map((a) => runCliInProcess(a)));

const hex = (n: unknown) => '0x' + (n as bigint).toString(16);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-queries-'));
  for (const f of Object.values(CAPTURES)) assert.ok(existsSync(join(REAL, f)), `missing ${join(REAL, f)}`);
  // Every capture ingested and replayed (replay.test.ts does it; test/lib/fixtures.ts keeps the database), copied:
  // the CLI runs below try to write.
  const all = await replayedDb(ALL_REAL);
  ids = realIds(all);
  dbPath = privateCopy(all, join(dir, 'real.duckdb'));
  const bare = await replayedDb([{ file: join(REAL, CAPTURES.perf) }], { replay: false }); // ingested, never replayed
  bareDbPath = privateCopy(bare, join(dir, 'bare.duckdb'));
  db = await Db.open(dbPath, { readOnly: true });
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('queries on the real captures', () => {
  it('summary: one row per trace, all replayed, no lost events', async () => {
    const rows = await q('summary');
    assert.deepEqual(rows.map((r) => r.trace_id).sort(), Object.values(ids).sort());
    for (const r of rows) {
      assert.equal(r.replayed, true);
      assert.equal(r.lost_events, 0n);
    }
    const one = await q('summary', { trace_id: ids.c });
    assert.equal(one.length, 1);
    assert.equal(one[0]!.trace_id, ids.c);
  });

  it('leaks: none on any capture (window edges and holds are not leaks)', async () => {
    assert.deepEqual(await q('leaks'), []);
    assert.deepEqual(await q('leaks', { include_uncertain: true }), []);
    for (const r of await q('summary')) assert.equal(r.leaks, 0n, `trace ${r.trace_id}`);
  });

  it('c-cma-blocked: the failed cma_alloc was blocked by plain refs of cma_block on the five pfns', async () => {
    const rows = (await q('cma-blockers', { trace_id: ids.c })).filter((r) => r.what === 'cma_blocker');
    assert.ok(rows.length > 0);
    const failed = rows.filter((r) => r.succeeded === false);
    const held = failed.filter((r) => r.holder_kind !== 'unknown');
    assert.deepEqual([...new Set(held.map((r) => hex(r.pfn)))].sort(), ['0x7dc00', '0x7e000', '0x7e800', '0x7f000', '0x7f800']);
    for (const r of held) {
      assert.equal(r.holder_kind, 'hold', `${hex(r.pfn)} is a plain reference, not a pin`);
      assert.match(r.ref_type as string, /^plain ref/);
      assert.equal(r.holder_pid, 352);
      assert.equal(r.holder_comm, 'cma_block');
      assert.notEqual(r.longterm, true);
      assert.equal(r.cma_name, 'reserved');
      assert.equal(r.attempt_comm, 'cma_block');
    }
    // 0x7dc00 carries 4 vmsplice references (one hold of 4 refs, or 4 holds).
    const refs7dc00 = held.filter((r) => r.pfn === 0x7dc00n).reduce((a, r) => a + Number(r.refs ?? 1), 0);
    assert.equal(refs7dc00, 4);
    assert.ok(failed.some((r) => r.pfn === 0x7dc00n && r.is_fin_pfn === true), 'fin_pfn 0x7dc00');
    // The successful second cma_alloc (no retry) is not listed.
    assert.ok(rows.every((r) => r.succeeded === false || (r.busy_retries as number) > 0));
  });

  it('b-vmsplice: 256 vmsplice (FOLL_GET) plain-reference holds of pid 261 over 0.5 s, no pins', async () => {
    const rows = await q('long-pins', { trace_id: ids.b, min_duration_ns: '0.5s', pid: 261 });
    assert.equal(rows.filter((r) => r.kind === 'pin').length, 0);
    const gup = rows.filter((r) => r.kind === 'hold' && r.foll_get === true);
    assert.equal(gup.length, 256);
    assert.equal(new Set(gup.map((r) => r.pfn)).size, 256);
    for (const r of gup) {
      assert.equal(r.holder_comm, 'vmsplice_hold');
      assert.equal(r.callsite, '__do_sys_vmsplice');
      assert.equal(r.held_to_end, false);
      assert.equal(r.gup_flags, '0x4');
      assert.ok((r.duration_ns as bigint) > 500_000_000n && (r.duration_ns as bigint) < 1_200_000_000n);
      assert.ok((r.start_ts_ns as bigint) >= 12_909_000_000n && (r.end_ts_ns as bigint) <= 13_961_000_000n);
    }
    assert.deepEqual(await q('pin-leaks', { trace_id: ids.b, include_uncertain: true }), []);
  });

  it('a-iouring: 2048 + 1024 FOLL_LONGTERM pins over 0.5 s, all released, no pin leak', async () => {
    const rows = (await q('long-pins', { trace_id: ids.a, min_duration_ns: '0.5s', kind: 'pin' })).filter((r) => r.longterm === true);
    const small = rows.filter((r) => r.large_folio === false);
    const large = rows.filter((r) => r.large_folio === true);
    assert.equal(small.reduce((a, r) => a + Number(r.refs), 0), 2048);
    assert.equal(large.reduce((a, r) => a + Number(r.refs), 0), 1024);
    assert.deepEqual([...new Set(large.map((r) => hex(r.folio_pfn)))].sort(), ['0x8600', '0x8800']);
    assert.ok(rows.every((r) => r.held_to_end === false && r.in_cma === false));
    // ring2's unpins ran in kworker/u4:0 (pid 9), ring1's in the process.
    assert.ok(small.some((r) => r.release_pid === 9) && small.some((r) => r.release_pid === 234));
    assert.deepEqual(await q('pin-leaks', { trace_id: ids.a, include_uncertain: true }), []);
  });

  it('a-iouring: no CMA page pinned, so no longterm pin on CMA anywhere (long-pins, cma-blockers, check)', async () => {
    const pins = await q('long-pins', { trace_id: ids.a, min_duration_ns: 0, kind: 'pin' });
    assert.equal(pins.reduce((a, r) => a + Number(r.refs), 0), 3072);
    assert.ok(pins.every((r) => r.in_cma === false && r.longterm_in_cma === false && r.priority === 5));
    assert.deepEqual(await q('cma-blockers', { trace_id: ids.a, include_uncertain: true }), []);
    const s = (await q('summary', { trace_id: ids.a }))[0]!;
    assert.deepEqual([s.cma_blockers, s.cma_blockers_uncertain], [0n, 0n]);
  });

  it('a-iouring: top-callers puts the 2048 small-page pins and the 1024 THP subpage pins under io_pin_pages, none open', async () => {
    const tc = await q('top-callers', { trace_id: ids.a });
    const io = tc.find((r) => r.callsite === 'io_pin_pages')!;
    // One call site for both page walks (follow_page_pte, follow_trans_huge_pmd): docs/formats.md §1.9.
    assert.deepEqual([io.pins, io.pins_open, io.pin_refs_outstanding, io.stacks], [3072n, 0n, 0n, 2n]);
    assert.equal(tc.reduce((a, r) => a + Number(r.pins), 0), 3072);
    assert.equal(tc.reduce((a, r) => a + Number(r.pins_open), 0), 0);
    // ~1 s per pin: pin-seconds of io_pin_pages between 3072 x 1.04 and 3072 x 1.08.
    assert.ok((io.pin_seconds as number) > 3072 * 1.04 && (io.pin_seconds as number) < 3072 * 1.08, String(io.pin_seconds));
  });

  it('divergence: no capture lost events, and no count= disagreement is unexplained', async () => {
    assert.deepEqual(await q('divergence', { what: 'lost' }), []);
    assert.deepEqual(await q('divergence', { explanation: 'unknown' }), []);
    assert.ok((await q('divergence')).every((r) => r.in_lost_window === false));
  });

  it('d-pgmap-hmm: no pgmap imbalance; all=true shows 128 gets / 128 puts', async () => {
    assert.deepEqual(await q('pgmap-imbalance', { trace_id: ids.d }), []);
    const all = await q('pgmap-imbalance', { trace_id: ids.d, all: true });
    const a = all.find((r) => r.pgmap === '0xff11000003c2f9c0');
    assert.ok(a, 'pgmap A listed');
    assert.equal(a.gets, 128n);
    assert.equal(a.puts, 128n);
    assert.equal(a.outstanding_end, 0n);
    assert.equal(a.problems, '');
    assert.ok(all.every((r) => r.problems === ''));
  });

  it('no use-after-free, pgmap or CMA finding where the NOTES say there is none', async () => {
    for (const cap of ['a', 'b', 'd', 'e', 'perf', 'stack', 'tcmd'] as Cap[]) assert.deepEqual(await q('cma-blockers', { trace_id: ids[cap] }), [], cap);
    assert.deepEqual(await q('use-after-free', { include_uncertain: true }), []);
    assert.deepEqual(await q('pgmap-imbalance', { include_uncertain: true }), []);
  });

  it('kmem-only live captures: pages alive at the end are reported by top-callers, never as leaks', async () => {
    for (const cap of ['perf', 'stack', 'tcmd'] as Cap[]) {
      const tc = await q('top-callers', { trace_id: ids[cap] });
      assert.ok(tc.some((r) => (r.allocs_alive_at_end as bigint) > 0n), cap);
      assert.deepEqual(await q('leaks', { trace_id: ids[cap], include_live_holders: true, include_uncertain: true }), [], cap);
      const s = (await q('summary', { trace_id: ids[cap] }))[0]!;
      assert.deepEqual([s.leaks, s.pin_leaks, s.cma_blockers, s.pgmap_imbalance, s.use_after_free], [0n, 0n, 0n, 0n, 0n], cap);
    }
    // The stack-trace capture names its callsites.
    const tc = await q('top-callers', { trace_id: ids.stack });
    assert.ok(tc.some((r) => r.callsite !== '(no stack)' && (r.allocs as bigint) > 0n));
  });
});

describe('e-mixed', () => {
  it('the 7 pages allocated in the window and not freed are window edges: top-callers counts them, leaks does not', async () => {
    const tc = await q('top-callers', { trace_id: ids.e });
    assert.equal(tc.reduce((a, r) => a + Number(r.allocs_alive_at_end), 0), 7);
    assert.deepEqual(await q('leaks', { trace_id: ids.e, include_live_holders: true, include_uncertain: true }), []);
    assert.deepEqual(await q('pin-leaks', { trace_id: ids.e, include_uncertain: true }), []);
  });
});

// A child process for one run of each exit path (a library query, a refused --sql write, a usage error, a data error,
// a closed pipe; check's exit 1 and its data error), the other option combinations in this process.
describe('refscope query (CLI)', () => {
  it('--list, json, table, csv, --sql, --columns', async () => {
    const [[j, write], [list, t, c, sql, cols]] = await Promise.all([
      clis(['query', 'cma-blockers', '--db', dbPath, '--trace', String(ids.c), '--format', 'json'], ['query', '--db', dbPath, '--sql', 'DELETE FROM pages']),
      inProcess(
        ['query', '--list'],
        ['query', 'cma-blockers', '--db', dbPath, '--trace', String(ids.c), '--limit', '3'],
        ['query', 'summary', '--db', dbPath, '--format', 'csv'],
        ['query', '--db', dbPath, '--sql', 'SELECT count(*) AS n FROM traces', '--format', 'json'],
        ['query', 'cma-blockers', '--db', dbPath, '--trace', String(ids.c), '--columns', 'holder_comm,pfn', '--format', 'json', '--limit', '1'],
      ),
    ]);
    assert.equal(cols!.status, 0, cols!.stderr);
    assert.deepEqual(JSON.parse(cols!.stdout), [{ holder_comm: 'cma_block', pfn: 0x7dc00 }]);
    assert.equal(list!.status, 0, list!.stderr);
    assert.match(list!.stdout, /^leaks\n {2}\S.*\n/m);
    assert.match(list!.stdout, /--param min_duration_ns=1000000000 {2}\(BIGINT\)/);

    assert.equal(j!.status, 0, j!.stderr);
    const rows = JSON.parse(j!.stdout) as Record<string, unknown>[];
    assert.ok(Array.isArray(rows) && rows.length > 0);
    assert.ok(rows.some((r) => r.pfn === 0x7dc00 && r.holder_pid === 352));

    assert.equal(t!.status, 0, t!.stderr);
    assert.match(t!.stdout, /0x7dc00/);
    assert.match(t!.stdout, / 69\.\d{6} /);
    assert.match(t!.stdout, /\(3 rows, limited: more rows exist\)/);

    assert.equal(c!.status, 0, c!.stderr);
    assert.match(c!.stdout, /^trace_id,source,format,/);
    assert.equal(c!.stdout.trimEnd().split('\r\n').length, 1 + Object.keys(ids).length);

    assert.equal(sql!.status, 0, sql!.stderr);
    assert.deepEqual(JSON.parse(sql!.stdout), [{ n: Object.keys(ids).length }]);
    assert.equal(write!.status, 2);
    assert.match(write!.stderr, /read-only/i);
  });

  it('hostile parameters are values, never SQL', async () => {
    const count = async () => (await db.one<{ n: bigint }>('SELECT count(*) AS n FROM pages'))!.n;
    const n0 = await count();
    assert.ok(n0 > 0n);
    const [a, b, c] = await inProcess(
      ['query', 'long-pins', '--db', dbPath, '--param', "comm=x'; DROP TABLE pages; --", '--format', 'json'],
      ['query', 'long-pins', '--db', dbPath, '--trace', '1; DROP TABLE pages'],
      ['query', 'pin-leaks', '--db', dbPath, '--param', 'trace_id=1; DROP TABLE pages'],
    );
    assert.equal(a!.status, 0, a!.stderr);
    assert.deepEqual(JSON.parse(a!.stdout), []);
    assert.equal(b!.status, 2);
    assert.equal(b!.stderr.trim().split('\n').length, 1, b!.stderr);
    assert.match(b!.stderr, /bad --trace/);
    assert.equal(c!.status, 2);
    assert.match(c!.stderr, /bad value for parameter trace_id/);
    db.close();
    db = await Db.open(dbPath, { readOnly: true });
    assert.equal(await count(), n0);
    assert.ok(await db.tableExists('pages'));
  });

  it('unknown query, unknown parameter, bad value: one-line error, exit 2', async () => {
    // In a child: a missing database (data error) and a bad --format (commander's refusal); the rest in this process.
    const child = [
      ['query', 'leaks', '--db', join(dir, 'missing.duckdb')],
      ['query', 'leaks', '--db', dbPath, '--format', 'xml'],
    ];
    const here = [
      ['query', 'nope', '--db', dbPath],
      ['query', 'leaks', '--db', dbPath, '--param', 'bogus=1'],
      ['query', 'long-pins', '--db', dbPath, '--param', 'min_duration_ns=soon'],
      ['query', 'leaks', '--db', dbPath, '--trace', '999'],
      ['query', 'leaks', '--db', dbPath, '--columns', 'pages,bogus'],
    ];
    const cases = [...child, ...here];
    const runs = (await Promise.all([clis(...child), inProcess(...here)])).flat();
    runs.forEach((r, i) => {
      assert.equal(r.status, 2, cases[i]!.join(' '));
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /^refscope: /);
    });
  });

  it('output into a pipe closed early (`| head -1`) ends quietly, exit 0', async () => {
    const child = spawn(process.execPath, [...CLI, 'query', '--db', dbPath, '--sql', 'SELECT * FROM range(200000)'], { cwd: ROOT });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(status, 0, stderr);
    assert.equal(stderr, '');
  });
});

describe('refscope check (CLI)', () => {
  it('exit 1 when a gated kind is over its limit, 0 otherwise', async () => {
    const [[fail], [ok, others, plain]] = await Promise.all([
      clis(['check', '--db', dbPath, '--trace', String(ids.c), '--fail-on', 'cma-blockers']),
      inProcess(
        ['check', '--db', dbPath, '--trace', String(ids.c), '--fail-on', 'cma-blockers', '--max', 'cma-blockers=100'],
        ['check', '--db', dbPath, '--fail-on', 'leaks,pin-leaks,pgmap-imbalance,use-after-free', '--json'],
        ['check', '--db', dbPath, '--trace', String(ids.a)],
      ),
    ]);
    assert.equal(fail!.status, 1, fail!.stdout + fail!.stderr);
    assert.match(fail!.stdout, /^cma-blockers: [1-9]\d* \(max 0\) FAIL$/m);
    assert.match(fail!.stdout, /^leaks: 0 \(max 0\) not checked$/m);
    assert.equal(ok!.status, 0, ok!.stdout + ok!.stderr);
    assert.match(ok!.stdout, /^cma-blockers: \d+ \(max 100\) ok$/m);
    // Every capture, every kind but the CMA blockers c-cma-blocked really has.
    assert.equal(others!.status, 0, others!.stdout + others!.stderr);
    const rep = JSON.parse(others!.stdout) as { ok: boolean; traces: number[]; lines: { kind: string; count: number }[] };
    assert.equal(rep.ok, true);
    assert.equal(rep.traces.length, Object.keys(ids).length);
    assert.deepEqual(rep.lines.map((l) => [l.kind, l.count]), [['leaks', 0], ['pin-leaks', 0], ['cma-blockers', rep.lines[2]!.count], ['pgmap-imbalance', 0], ['use-after-free', 0]]);
    assert.equal(plain!.status, 0, plain!.stdout + plain!.stderr);
    // One line naming the trace, then one line per gated kind.
    const [named, ...kinds] = plain!.stdout.split('\n');
    assert.match(named!, new RegExp(`^trace ${ids.a} \\(.*a-iouring.*\\): ok: `));
    assert.equal(kinds.join('\n'), ['leaks', 'pin-leaks', 'cma-blockers', 'pgmap-imbalance', 'use-after-free'].map((k) => `${k}: 0 (max 0) ok\n`).join(''));
    assert.match(fail!.stdout, new RegExp(`^trace ${ids.c} \\(.*c-cma-blocked.*\\): FAIL: `, 'm'));
  });

  it('exit 2 on usage and data errors', async () => {
    // In a child: a database never replayed (data error); the rest in this process.
    const cases = [
      ['check', '--db', join(dir, 'missing.duckdb')],
      ['check', '--db', dbPath, '--fail-on', 'leaks,bogus'],
      ['check', '--db', dbPath, '--max', 'leaks'],
      ['check', '--db', dbPath, '--trace', '999'],
      ['check', '--db', bareDbPath],
    ];
    const runs = [...(await inProcess(...cases.slice(0, 4))), ...(await clis(cases[4]!))];
    runs.forEach((r, i) => {
      assert.equal(r.status, 2, cases[i]!.join(' ') + ': ' + r.stdout + r.stderr);
      assert.match(r.stderr, /^refscope: /);
    });
    assert.match(runs[4]!.stderr, /not replayed/);
  });
});
