/**
 * `refscope diff A B` on two real captures: b-vmsplice (references held by a pipe) against c-cma-blocked (the
 * same kind of references blocking cma_alloc), a capture against itself, and a hand-written trace whose comm is
 * markup, in a second database (--db-b), for the page's escaping. Expected counts come from the traces' own
 * query results (cma-blockers, long-pins, top-callers), run here on each trace. The comparison runs in this
 * process on one connection; the CLI runs only for what it adds (exit codes, --db-b, the page, errors).
 */
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { CALLSITE_COUNTS, diffTraces, type Counts, type DiffResult, type FindingDiff } from '../../queries/diff.js';
import { runQuery, type ResultRow } from '../../queries/runner.js';
import { replay } from '../../replay/replay.js';
import { renderDiffText } from '../../reports/diff.js';
import { CAPTURES, REAL } from '../lib/captures.js';
import { CLI, ROOT } from '../lib/cli.js';
import { replayedDb } from '../lib/fixtures.js';
import { ftraceLine } from '../lib/ftrace.js';

const run = promisify(execFile);

/** The CLI from source; resolves with the exit code whatever it is. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(process.execPath, [...CLI, ...args], { cwd: ROOT, timeout: 60_000, maxBuffer: 1 << 26 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout: string; stderr: string };
    if (typeof x.code !== 'number') throw e;
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

const HOSTILE = '<img src=x onerror=alert(1)>';

/** One page taken by vmsplice (GUP FOLL_GET) by the hostile task and held to the end, 2 s later: a long hold. */
function hostileTrace(): string {
  const pfn = 0x1000;
  const kmem = (p: number) => `page=0x${(0xffd4000000000000n + BigInt(p) * 64n).toString(16)} pfn=0x${p.toString(16)} order=0`;
  const ref = (count: number) => `pfn=0x${pfn.toString(16)} flags=uptodate count=${count} mapcount=0 mapping=0000000000000000 mt=1 val=1`;
  const gup = ['try_grab_folio', 'internal_get_user_pages_fast', 'get_user_pages_fast', 'iov_iter_get_pages2', '__do_sys_vmsplice', 'do_syscall_64'];
  const lines = [
    ftraceLine(HOSTILE, 500, 500, 0, 10_000_000, 'page_ref_set', ref(1)),
    ftraceLine(HOSTILE, 500, 500, 0, 10_000_010, 'mm_page_alloc', `${kmem(pfn)} migratetype=1 gfp_flags=GFP_KERNEL`),
    ftraceLine(HOSTILE, 500, 500, 0, 10_020_000, 'page_ref_mod', ref(2)),
    ftraceLine(HOSTILE, 500, 500, 0, 10_020_000, '<stack trace>', '').replace(/: $/, ''),
    ...['trace_event_raw_event_page_ref_mod', '__page_ref_mod', ...gup].map((f) => ` => ${f}`),
    ftraceLine('other', 600, 600, 1, 12_000_000, 'mm_page_alloc', `${kmem(0x2000)} migratetype=1 gfp_flags=GFP_KERNEL`),
  ];
  return ['# tracer: nop', '#', '# entries-in-buffer/entries-written: 4/4   #P:2', '#', ...lines, ''].join('\n');
}

/** What `refscope diff --json` prints: the DiffResult, through JSON. */
type Finding = FindingDiff;
type Diff = DiffResult;

let dir: string;
let dbFile: string;
let db: Db;
type Run = { code: number; stdout: string; stderr: string };
let cliRuns: Promise<Run[]>;
const computed = new Map<string, Promise<DiffResult>>();
/** In-process diff of traces a and b of the database (each pair computed once). */
const result = (a: number, b: number): Promise<DiffResult> => {
  const k = `${a}-${b}`;
  if (!computed.has(k)) computed.set(k, diffTraces(db, dbFile, a, db, dbFile, b));
  return computed.get(k)!;
};
/** The same as JSON would carry it. */
const diff = async (a: number, b: number): Promise<Diff> => JSON.parse(JSON.stringify(await result(a, b))) as Diff;
/** Query rows of trace 1 (b-vmsplice) and 2 (c-cma-blocked), run here. */
const rows: Record<string, ResultRow[][]> = {};

const count = (rs: ResultRow[], pred: (r: ResultRow) => boolean) => rs.filter(pred).length;
const num = (v: unknown) => Number(v ?? 0);

describe('refscope diff', () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-diff-'));
    // b and c in one database, ingested and replayed once for every run of the suite (test/lib/fixtures.ts).
    dbFile = (await replayedDb([{ file: join(REAL, CAPTURES.b) }, { file: join(REAL, CAPTURES.c) }])).path;
    writeFileSync(join(dir, 'h.trace'), hostileTrace());
    for (const [file, traces] of [[join(dir, 'h.duckdb'), [join(dir, 'h.trace')]]] as const) {
      const w = await Db.open(file);
      try {
        for (const t of traces) await replay(w, (await ingest(w, t)).trace_id);
      } finally {
        w.close();
      }
    }
    db = await Db.open(dbFile, { readOnly: true });
    for (const q of ['cma-blockers', 'long-pins', 'top-callers']) {
      rows[q] = [];
      for (const t of [1, 2]) rows[q][t] = (await runQuery(db, q, { trace_id: t })).rows;
    }
    // The CLI's runs, at once (each opens the databases read-only, as this process does).
    cliRuns = Promise.all([
      cli(['diff', '1', '2', '--db', join(dir, 'h.duckdb'), '--db-b', dbFile, '--format', 'json', '--fail-on-new', '--out', join(dir, 'page')]),
      cli(['diff', '2', '1', '--db', dbFile, '--fail-on-new']),
      cli(['diff', '1', '9', '--db', dbFile]),
    ]);
    await cliRuns;
  });
  after(() => {
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('b-vmsplice -> c-cma-blocked: the CMA blockers are new, the vmsplice holds of b fixed; per call site deltas', async () => {
    const d = await diff(1, 2);
    const reverse = (await cliRuns)[1]!;
    // --fail-on-new: b has long holds that c lacks, not of a kind `check` gates (the other way: the next test).
    assert.equal(reverse.code, 0, reverse.stderr);

    const lp = rows['long-pins']!;
    const cb = rows['cma-blockers']!;
    const vms = '__do_sys_vmsplice';
    const expected: Finding[] = [
      { status: 'new', kind: 'cma-blockers', sub: 'cma_blocker', comm: 'cma_block', callsite: vms, certain: true, gated: true, count_a: 0, count_b: count(cb[2]!, (r) => r.callsite === vms) },
      { status: 'new', kind: 'long-pins', sub: 'hold', comm: 'cma_block', callsite: vms, certain: true, gated: false, count_a: 0, count_b: count(lp[2]!, (r) => r.callsite === vms) },
      { status: 'fixed', kind: 'long-pins', sub: 'hold', comm: 'vmsplice_hold', callsite: vms, certain: true, gated: false, count_a: count(lp[1]!, (r) => r.callsite === vms), count_b: 0 },
      { status: 'fixed', kind: 'long-pins', sub: 'hold', comm: 'vmsplice_hold', callsite: null, certain: true, gated: false, count_a: count(lp[1]!, (r) => r.callsite === null), count_b: 0 },
    ];
    assert.deepEqual(
      d.findings.map((f) => ({ status: f.status, kind: f.kind, sub: f.sub, comm: f.comm, callsite: f.callsite, certain: f.certain, gated: f.gated, count_a: f.count_a, count_b: f.count_b })),
      expected,
    );
    assert.ok(expected.every((f) => f.count_a + f.count_b > 0));
    assert.equal(d.new_certain, 1);
    // Those are all the rows of those queries (the other finding queries have none on these traces).
    assert.equal(cb[1]!.length + lp[1]!.length + cb[2]!.length + lp[2]!.length, expected.reduce((s, f) => s + f.count_a + f.count_b, 0));

    // Per call site: top-callers' pins / holds and the CMA blocker rows of each trace, subtracted.
    const tc = rows['top-callers']!;
    for (const site of [vms, '(no stack)']) {
      const c = d.callsites.find((x) => x.callsite === site);
      assert.ok(c, site);
      const [ta, tb] = [1, 2].map((t) => tc[t]!.find((r) => r.callsite === site));
      const cmaSite = site === vms ? vms : null;
      const want = (t: number, r: ResultRow | undefined) => ({
        pins: num(r?.pins), holds: num(r?.holds), holds_open: num(r?.holds_open), pins_open: num(r?.pins_open),
        cma_blocks: count(cb[t]!, (x) => x.callsite === cmaSite),
      });
      const got = (x: Counts) => ({ pins: x.pins, holds: x.holds, holds_open: x.holds_open, pins_open: x.pins_open, cma_blocks: x.cma_blocks });
      assert.deepEqual(got(c.a), want(1, ta), `${site} A`);
      assert.deepEqual(got(c.b), want(2, tb), `${site} B`);
      for (const k of CALLSITE_COUNTS) assert.equal(c.delta[k], c.b[k]! - c.a[k]!, `${site} ${k}`);
    }
    const v = d.callsites.find((x) => x.callsite === vms)!;
    assert.ok(v.delta.holds! < 0 && v.delta.cma_blocks! > 0, JSON.stringify(v.delta));

    // The text names the same rows; the reverse diff swaps new and fixed.
    const text = renderDiffText(await result(1, 2));
    assert.match(text, /^Findings: 2 new, 2 fixed, 0 unchanged \(1 new certain of a gated kind\)$/m);
    assert.match(text, new RegExp(`^new +cma-blockers cma_blocker +cma_block +__do_sys_vmsplice +certain +0 +${expected[0]!.count_b}$`, 'm'));
    assert.match(text, new RegExp(`^__do_sys_vmsplice +${v.a.holds}->${v.b.holds} \\(${v.delta.holds}\\)`, 'm'));
    assert.match(reverse!.stdout, /^Findings: 2 new, 2 fixed, 0 unchanged \(0 new certain of a gated kind\)$/m);
    const r = await diff(2, 1);
    assert.deepEqual(
      r.findings.map((f) => [f.status, f.kind, f.comm, f.callsite, f.count_a, f.count_b]).sort(),
      expected.map((f) => [f.status === 'new' ? 'fixed' : 'new', f.kind, f.comm, f.callsite, f.count_b, f.count_a]).sort(),
    );
    assert.equal(r.new_certain, 0);
  });

  it('a capture against itself: nothing new or fixed, no call site changed', async () => {
    for (const t of [1, 2]) {
      const d = await diff(t, t);
      assert.ok(d.findings.length >= 2);
      for (const f of d.findings) {
        assert.equal(f.status, 'unchanged');
        assert.equal(f.count_a, f.count_b);
      }
      assert.ok(d.callsites.length >= 1);
      for (const c of d.callsites) assert.ok(Object.values(c.delta).every((x) => x === 0), c.callsite);
      assert.equal(d.new_certain, 0);
    }
    const text = renderDiffText(await result(2, 2));
    assert.match(text, /^Findings: 0 new, 0 fixed, 2 unchanged \(0 new certain of a gated kind\)$/m);
    assert.match(text, /^Call sites: 0 changed, \d+ unchanged$/m);
  });

  it('--db-b, JSON, --fail-on-new and --out: the page escapes a hostile comm', async () => {
    const r = (await cliRuns)[0]!;
    // B (c-cma-blocked) has certain CMA blockers, a kind `check` gates, that A lacks.
    assert.equal(r.code, 1, r.stderr);
    const d = JSON.parse(r.stdout) as Diff;
    assert.deepEqual(Object.keys(d), ['a', 'b', 'findings', 'callsites', 'new_certain']);
    assert.deepEqual(d.a, { db: join(dir, 'h.duckdb'), trace_id: 1, source: join(dir, 'h.trace') });
    assert.deepEqual(d.b, { db: dbFile, trace_id: 2, source: join(REAL, CAPTURES.c) });
    assert.deepEqual(Object.keys(d.findings[0]!), ['kind', 'sub', 'comm', 'callsite', 'certain', 'gated', 'count_a', 'count_b', 'status']);
    assert.deepEqual(Object.keys(d.callsites[0]!), ['callsite', 'a', 'b', 'delta']);
    assert.equal(d.new_certain, 1);
    assert.deepEqual(
      d.findings.filter((f) => f.status === 'fixed').map((f) => [f.kind, f.sub, f.comm, f.callsite, f.certain, f.count_a, f.count_b]),
      [['long-pins', 'hold', HOSTILE, '__do_sys_vmsplice', true, 1, 0]],
    );
    const page = readFileSync(join(dir, 'page', 'diff.html'), 'utf8');
    assert.ok(page.includes('<td class="mono">&lt;img src=x onerror=alert(1)&gt;</td>'), 'escaped comm on the page');
    assert.ok(!page.includes('<img'), 'no markup from the trace');
    assert.ok(!/<script/i.test(page));
    // The text escapes what could drive a terminal (a comm may hold any byte but NUL).
    const text = renderDiffText({ ...d, findings: [{ ...d.findings[0]!, comm: 'a\x1b]0;owned\x07\u202eb' }] } as unknown as DiffResult);
    assert.ok(text.includes('a\\x1b]0;owned\\x07\\u202eb'), text);
    assert.ok(!/[\x1b\x07\u202e]/.test(text));
  });

  it('an unknown trace is one line, exit 2', async () => {
    const r = (await cliRuns)[2]!;
    assert.equal(r.code, 2);
    assert.equal(r.stderr, `refscope: no trace 9 in ${dbFile}\n`);
  });
});
