/**
 * The query library on generated scenario traces (samples/generate): every scenario is generated (ftrace, seed 1),
 * ingested and replayed once, then each query must return exactly what the scenario's truth says: leaks, open pins,
 * CMA blockers, pgmap balances, use-after-free anomalies, long holds, lost events, and nothing it forbids.
 * Each case has a database of its own (queries over one trace run ~1.5x faster than over a file of 37 traces, and
 * the cases can run side by side: each database works on its own DuckDB threads). The cases and their generator
 * options are test/lib/scenario-cases.ts's: report-all.test.ts reports from the same databases.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { replay } from '../../replay/replay.js';
import { check, gatedQueries } from '../../queries/check.js';
import { loadReportData } from '../../reports/data.js';
import { verdictLines } from '../../reports/model.js';
import { runQuery, type ResultRow } from '../../queries/runner.js';
import { generateToFile } from '../../samples/generate/file.js';
import { openFixture, replayedDb } from '../lib/fixtures.js';
import { compareWithTruth } from '../lib/replay-truth.js';
import { caseKey, SCENARIO_CASES, scenarioInput } from '../lib/scenario-cases.js';
import type { Scenario, Truth } from '../../samples/generate/index.js';

const UAF_KINDS = ['freed_while_mapped', 'freed_while_pinned', 'ref_after_free', 'refcount_underflow', 'device_page_zero_without_put'];

const CASES = SCENARIO_CASES;
const key = caseKey;

let dir: string;
/** Each case's trace: its own database (read-only once built), trace id and truth. */
interface Run {
  db: Db;
  id: number;
  truth: Truth;
}
const runs = new Map<string, Run>();
let migrateFailed: Run;
/** Cases built, and tests run, at once (two: one per core of CI, DuckDB's work is off the JS thread). */
const CONCURRENCY = 2;

async function query(db: Db, name: string, params: Record<string, unknown>): Promise<ResultRow[]> {
  return (await runQuery(db, name, params)).rows;
}
/** query() on one case's database; a query asked again with the same parameters (the database is read-only)
 * answers with the rows of its first run. */
const on = (db: Db) => {
  const seen = new Map<string, Promise<ResultRow[]>>();
  return (name: string, params: Record<string, unknown>): Promise<ResultRow[]> => {
    const k = JSON.stringify([name, params]);
    if (!seen.has(k)) seen.set(k, query(db, name, params));
    return seen.get(k)!;
  };
};

/** Run `work` over `items`, `limit` at a time. */
async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: limit }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
  }));
}

/** Ingest and replay `file` into a database of its own at `path`, then open that read-only. */
async function build(file: string, path: string): Promise<{ db: Db; id: number }> {
  const rw = await Db.open(path);
  let id: number;
  try {
    const s = await ingest(rw, file);
    await replay(rw, s.trace_id, {});
    id = s.trace_id;
  } finally {
    rw.close();
  }
  return { db: await Db.open(path, { readOnly: true }), id };
}

const n = (v: unknown): number => Number(v as bigint);
const sorted = <T>(xs: T[]): T[] => [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-qscn-'));
  // Generated, ingested and replayed here (fresh: every scenario against its truth is this file's subject), each
  // into a database of test/lib/fixtures.ts's cache, which readme-queries.test.ts then reads.
  await pool(CASES, CONCURRENCY, async (c) => {
    const fx = await replayedDb([scenarioInput(c)], { fresh: true });
    runs.set(key(c), { db: await openFixture(fx), id: fx.ids[0]!, truth: fx.truths[0]! });
  });
  // iouring-longterm with its longterm_pin migration failing for one page (the kernel then fails the pin).
  await generateToFile('iouring-longterm', join(dir, 'iouring-longterm.ftrace.txt'), { seed: 1, scale: 1, format: 'ftrace' });
  const text = readFileSync(join(dir, 'iouring-longterm.ftrace.txt'), 'utf8');
  const edited = text.replace(/mm_migrate_pages: nr_succeeded=4 nr_failed=0 (.*reason=longterm_pin)/, 'mm_migrate_pages: nr_succeeded=3 nr_failed=1 $1');
  assert.notEqual(edited, text);
  writeFileSync(join(dir, 'migrate-failed.txt'), edited);
  migrateFailed = { ...(await build(join(dir, 'migrate-failed.txt'), join(dir, 'migrate-failed.duckdb'))), truth: runs.get(key({ name: 'iouring-longterm', format: 'ftrace' }))!.truth };
});

after(() => {
  for (const r of [...runs.values(), migrateFailed]) r?.db.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// The replay tables against the truth (pins, holds, pages, anomalies ...: test/lib/replay-truth.ts), on the same
// databases the queries read: every scenario, every format and seed of CASES.
describe('replay: scenario generators against their truth', () => {
  it('every case replays to its truth', async () => {
    const failures: string[] = [];
    for (const c of CASES) {
      const { db, id, truth } = runs.get(key(c))!;
      for (const d of await compareWithTruth(db, id, truth)) failures.push(`${key(c)}: ${d}`);
    }
    assert.deepEqual(failures, []);
  });
});

describe('queries return the truth of every scenario', { concurrency: CONCURRENCY }, () => {
  for (const c of CASES) {
    it(key(c), async () => {
      const { db, id, truth } = runs.get(key(c))!;
      const q = on(db);
      const ex = truth.expect;
      const inCmaTruth = (ex.anomalies ?? []).filter((a) => a.kind === 'longterm_pin_in_cma').map((a) => Number(a.pfn)).sort((a, b) => a - b);

      // leaks: the exact set of certain leaked pfns; none at all when forbidden.
      const leaks = await q('leaks', { trace_id: id, max_examples: 1_000_000 });
      const leaked = [...new Set(leaks.filter((r) => r.grouping === 'alloc').flatMap((r) => (r.example_pfns as bigint[]).map(Number)))].sort((a, b) => a - b);
      if (ex.leaks) assert.deepEqual(leaked, ex.leaks.map((l) => l.pfn).sort((a, b) => a - b), 'leaks');
      if (truth.forbid.includes('leak')) assert.deepEqual(await q('leaks', { trace_id: id, include_uncertain: true }), [], 'forbidden leak');

      // outstanding: the pins still open at the end, touched by a lost window or not as the truth says.
      if (ex.pins) {
        const open = await q('outstanding', { trace_id: id, kind: 'pin', max_examples: 1_000_000 });
        const got = sorted(open.flatMap((r) => (r.example_pfns as bigint[]).map((p) => [Number(p), !r.lost, r.holder_pid])));
        const want = sorted(ex.pins.filter((p) => p.end_ts_ns === null).map((p) => [p.pfn, !p.uncertain, p.holder_pid]));
        assert.deepEqual(got, want, 'open pins');
      }
      // outstanding: the exact pins and pgmap references held at the end, their holder's state and leak certainty.
      if (ex.outstanding) {
        const rows = (await q('outstanding', { trace_id: id, max_examples: 1_000_000 })).filter((r) => r.kind !== 'hold');
        const got = sorted(rows.flatMap((r) => (r.example_pfns as bigint[]).map((p) => [r.kind, Number(p), r.holder_pid, r.holder_state === 'exited', r.certain])));
        const want = sorted(ex.outstanding.map((o) => [o.kind, o.pfn, o.holder_pid, o.holder_exited, o.certain]));
        assert.deepEqual(got, want, 'outstanding pins and pgmap references');
      }

      // cma-blockers: distinct (pfn, holder kind, holder) of failed attempts.
      if (ex.cma_blockers) {
        const rows = (await q('cma-blockers', { trace_id: id, include_uncertain: true })).filter((r) => r.what === 'cma_blocker');
        const got = sorted([...new Set(rows.map((r) => JSON.stringify([n(r.pfn), r.holder_kind, r.holder_pid, r.holder_comm])))].map((s) => JSON.parse(s)));
        const want = sorted([...new Set(ex.cma_blockers.map((b) => JSON.stringify([b.pfn, b.holder_kind, b.holder_pid, b.holder_comm])))].map((s) => JSON.parse(s)));
        assert.deepEqual(got, want, 'cma blockers');
      }

      // cma-blockers: the FOLL_LONGTERM pins kept on CMA pages, and nothing else of that kind.
      const ltRows = (await q('cma-blockers', { trace_id: id, include_uncertain: true })).filter((r) => r.what === 'longterm_pin_in_cma');
      assert.deepEqual(ltRows.map((r) => n(r.pfn)).sort((a, b) => a - b), inCmaTruth, 'cma-blockers: longterm_pin_in_cma');
      for (const r of ltRows) assert.deepEqual([r.holder_kind, r.ref_type, r.longterm], ['pin', 'longterm pin', true]);

      // pgmap-imbalance: balances of every pgmap; a problem row exactly when references were out at unmap.
      if (ex.pgmaps) {
        const all = await q('pgmap-imbalance', { trace_id: id, all: true });
        const got = sorted(all.filter((r) => r.pgmap !== null).map((r) => [r.pgmap, n(r.gets), n(r.puts), n(r.outstanding_end), r.outstanding_at_unmap === null ? null : n(r.outstanding_at_unmap)]));
        const want = sorted(ex.pgmaps.map((p) => [p.pgmap, p.gets, p.puts, p.outstanding_end, p.outstanding_at_unmap]));
        assert.deepEqual(got, want, 'pgmaps');
        const problems = (await q('pgmap-imbalance', { trace_id: id, include_uncertain: true })).map((r) => r.pgmap).sort();
        // ... or when a device page kept a reference its holder's process left behind (refs_of_exited_holder).
        const leakedPgmaps = new Set((ex.anomalies ?? []).filter((a) => a.kind === 'pgmap_ref_never_released').map((a) => a.pgmap));
        assert.deepEqual(problems, ex.pgmaps.filter((p) => (p.outstanding_at_unmap ?? 0) > 0 || leakedPgmaps.has(p.pgmap)).map((p) => p.pgmap).sort(), 'pgmap problems');
      }

      // use-after-free: the exact set of those anomaly kinds; forbidden kinds never.
      const uaf = await q('use-after-free', { trace_id: id, include_uncertain: true });
      if (ex.anomalies) {
        const got = sorted(uaf.map((r) => [r.kind, r.pfn === null ? null : n(r.pfn), r.certain]));
        const want = sorted(ex.anomalies.filter((a) => UAF_KINDS.includes(a.kind)).map((a) => [a.kind, a.pfn, a.certain]));
        assert.deepEqual(got, want, 'use-after-free');
      }
      for (const r of uaf) assert.ok(!truth.forbid.includes(r.kind as string), `forbidden ${String(r.kind)}`);

      // long-pins: every pin interval exactly (threshold 0); FOLL_LONGTERM pins kept on CMA flagged and ranked 2.
      if (ex.pins) {
        const rows = await q('long-pins', { trace_id: id, min_duration_ns: 0, kind: 'pin' });
        const got = sorted(rows.map((r) => [n(r.pfn), n(r.start_ts_ns), r.end_ts_ns === null ? null : n(r.end_ts_ns), r.holder_pid, r.holder_comm, r.in_cma, !r.certain]));
        const want = sorted(ex.pins.map((p) => [p.pfn, p.start_ts_ns, p.end_ts_ns, p.holder_pid, p.holder_comm, p.in_cma, p.uncertain ?? false]));
        assert.deepEqual(got, want, 'long-pins: pins');
        for (const p of ex.pins.filter((p) => p.longterm !== null)) {
          const r = rows.find((r) => n(r.pfn) === p.pfn && n(r.start_ts_ns) === p.start_ts_ns)!;
          assert.equal(r.longterm, p.longterm, `long-pins: longterm of 0x${p.pfn.toString(16)}`);
        }
      }
      const flagged = (await q('long-pins', { trace_id: id, min_duration_ns: 0 })).filter((r) => r.longterm_in_cma === true);
      assert.deepEqual(flagged.map((r) => n(r.pfn)).sort((a, b) => a - b), inCmaTruth, 'long-pins: longterm_in_cma');
      for (const r of flagged) assert.equal(r.priority, 2);

      // long-pins lists every hold the truth expects (holds are a must-contain set).
      if (ex.holds?.length) {
        const holds = await q('long-pins', { trace_id: id, min_duration_ns: 0, kind: 'hold' });
        for (const h of ex.holds)
          assert.ok(
            holds.some((r) => n(r.pfn) === h.pfn && r.holder_pid === h.holder_pid && r.holder_comm === h.holder_comm && (r.end_ts_ns === null) === (h.end_ts_ns === null)),
            `hold on 0x${h.pfn.toString(16)} by ${h.holder_comm}/${h.holder_pid}`,
          );
      }

      // top-callers: its pin counts add up to the truth's pins, open ones apart.
      if (ex.pins) {
        const tc = await q('top-callers', { trace_id: id });
        assert.equal(tc.reduce((a, r) => a + n(r.pins), 0), ex.pins.length, 'top-callers: pins');
        assert.equal(tc.reduce((a, r) => a + n(r.pins_open), 0), ex.pins.filter((p) => p.end_ts_ns === null).length, 'top-callers: pins_open');
      }

      // divergence: the model never disagrees with count= without an explanation (the generator is consistent).
      assert.deepEqual(await q('divergence', { trace_id: id, explanation: 'unknown' }), [], 'unexplained divergences');

      // divergence: the untraced windows replay inferred, exactly (kind, pfn); none on a scenario that has none.
      const gapRows = await q('divergence', { trace_id: id, what: 'gap' });
      assert.deepEqual(sorted(gapRows.map((r) => [r.explanation, r.pfn === null ? null : n(r.pfn)])), sorted((ex.gaps ?? []).map((g) => [g.kind, g.pfn])), 'inferred gaps');

      // divergence: the lost-event markers add up to the truth's lost events.
      if (ex.lost_events !== undefined) {
        const lost = await q('divergence', { trace_id: id, what: 'lost' });
        assert.equal(lost.reduce((a, r) => a + n(r.lost ?? 0n), 0), ex.lost_events, 'lost events');
      }

      // summary agrees with the lists.
      const s = (await q('summary', { trace_id: id }))[0]!;
      assert.equal(s.replayed, true);
      if (ex.leaks) assert.equal(n(s.leaks), ex.leaks.length, 'summary leaks');
      if (ex.pins) {
        // Pins open at the end are outstanding (information); those of exited holders are pin-leaks, certain
        // outside lost windows and the exit grace. summary and pin-leaks count the same pins.
        const open = ex.pins.filter((p) => p.end_ts_ns === null);
        assert.equal(n(s.outstanding_pins), open.length, 'summary outstanding_pins');
        const all = await q('pin-leaks', { trace_id: id, include_uncertain: true, include_live_holders: true });
        const pl = await q('pin-leaks', { trace_id: id, include_uncertain: true });
        const sum = (rows: typeof pl) => rows.reduce((a, r) => a + n(r.pins), 0);
        assert.equal(sum(all), open.length, 'pin-leaks with live holders lists every open pin');
        assert.ok(pl.every((r) => r.holder_exited === true), 'pin-leaks lists exited holders only by default');
        assert.ok(all.every((r) => r.holder_exited === true || r.certain === false), 'a live holder is never a certain leak');
        assert.equal(n(s.pin_leaks), sum(pl.filter((r) => r.certain === true)), 'summary pin_leaks');
        assert.equal(n(s.pin_leaks_uncertain), sum(pl.filter((r) => r.certain !== true)), 'summary pin_leaks_uncertain');
        if (c.name === 'pin-leak') assert.equal(n(s.pin_leaks), open.length, 'pin_leaker exits still pinning: every pin is a certain leak');
        if (c.name === 'lost-window') assert.equal(n(s.pin_leaks) + n(s.pin_leaks_uncertain), 0, 'pins still held by a live holder when the capture stops are no leak');
      }
      if (ex.anomalies) assert.equal(n(s.use_after_free) + n(s.use_after_free_uncertain), uaf.length, 'summary use_after_free');
      const cma = await q('cma-blockers', { trace_id: id, include_uncertain: true });
      assert.equal(n(s.cma_blockers) + n(s.cma_blockers_uncertain), cma.length, 'summary cma_blockers');
    });
  }
});

const ft = (name: Scenario) => runs.get(key({ name, format: 'ftrace' }))!;

describe('one certainty convention: check, the queries and the report count the same certain findings', { concurrency: CONCURRENCY }, () => {
  // What one certain finding is in each query's rows: leaked pages ('alloc' rows), pins, else one row.
  const unit: Record<string, (r: ResultRow) => number> = {
    leaks: (r) => (r.grouping === 'alloc' ? n(r.pages) : 0),
    'pin-leaks': (r) => n(r.pins),
  };
  // The scenarios with certain and uncertain findings of every gated kind, as ftrace (exit-with-pins in its three
  // seeds: certain, a child that outlives the leaker, an exit just after it); lost-window in every layout too, the
  // lost markers (with and without a count) that make findings uncertain differing by layout. The counting is SQL
  // over the replay tables: the other layouts of the other scenarios add rows of the same kinds, not other kinds
  // (their rows are checked against the truth above).
  const CERTAINTY = CASES.filter((c) => ['pin-leak', 'exit-with-pins', 'lost-window', 'dax-pgmap-leak', 'iouring-longterm-cma', 'vmalloc-uaf'].includes(c.name) && (c.format === 'ftrace' || c.name === 'lost-window'));
  for (const c of CERTAINTY) {
    it(key(c), async () => {
      const { db, id } = runs.get(key(c))!;
      const rep = await check(db, { traceId: id });
      const data = await loadReportData(db, id);
      const verdict = verdictLines(data);
      for (const q of gatedQueries()) {
        assert.ok(q.columns.some((col) => col.name === 'certain'), `${q.name} has a certain column`);
        assert.ok(!q.columns.some((col) => col.name === 'uncertain'), `${q.name} has no uncertain column`);
        const rows = await query(db, q.name, { trace_id: id, include_uncertain: true });
        const u = unit[q.name] ?? (() => 1);
        const certain = rows.filter((r) => r.certain === true).reduce((a, r) => a + u(r), 0);
        const uncertain = rows.filter((r) => r.certain !== true).reduce((a, r) => a + u(r), 0);
        const line = rep.lines.find((l) => l.kind === q.name)!;
        assert.equal(line.count, certain, `${q.name}: check's certain count = the query's certain rows`);
        assert.equal(line.uncertain, uncertain, `${q.name}: check's uncertain count = the query's other rows`);
        const v = verdict.find((l) => l.query === q.name)!;
        assert.equal(v.count, certain, `${q.name}: the report's verdict counts the same certain findings`);
        const shown = data.queries.find((x) => x.name === q.name)!.rows;
        assert.equal(shown.filter((r) => r.certain === true).reduce((a, r) => a + u(r as ResultRow), 0), certain, `${q.name}: the report's certain rows`);
      }
    });
  }
});
const hex = (v: unknown) => '0x' + BigInt(v as bigint).toString(16);

describe('longterm pins on CMA', () => {
  it('iouring-longterm-cma: the 4 CMA pins rank first in long-pins, are cma-blockers and fail the check', async () => {
    const { db, id, truth } = ft('iouring-longterm-cma');
    const q = on(db);
    const cmaPins = truth.expect.pins!.filter((p) => p.in_cma);
    assert.equal(cmaPins.length, 4);
    const rows = await q('long-pins', { trace_id: id });
    assert.deepEqual(
      rows.slice(0, 4).map((r) => [r.priority, r.kind, n(r.pfn), r.longterm, r.in_cma, r.longterm_in_cma, r.mt_name, r.holder_comm]).sort(),
      cmaPins.map((p) => [2, 'pin', p.pfn, true, true, true, 'CMA', p.holder_comm]).sort(),
    );
    assert.ok(rows.slice(4).every((r) => r.longterm_in_cma === false && (r.priority as number) > 2));
    const cma = await q('cma-blockers', { trace_id: id });
    assert.deepEqual(
      cma.map((r) => [r.what, n(r.pfn), r.holder_pid, r.holder_comm, n(r.since_ts_ns), n(r.released_ts_ns), r.certain]).sort(),
      cmaPins.map((p) => ['longterm_pin_in_cma', p.pfn, p.holder_pid, p.holder_comm, p.start_ts_ns, p.end_ts_ns, true]).sort(),
    );
    const rep = await check(db, { traceId: id });
    assert.equal(rep.ok, false);
    assert.deepEqual(rep.lines.filter((l) => !l.ok).map((l) => [l.kind, l.count]), [['cma-blockers', 4]]);
  });

  it('iouring-longterm: the CMA pages were migrated before the long-term pin, so nothing is flagged', async () => {
    const { db, id, truth } = ft('iouring-longterm');
    const q = on(db);
    const transient = truth.expect.pins!.filter((p) => p.in_cma);
    assert.equal(transient.length, 4);
    // Held ~1 s: only the 16 pins on the migrated pages, none in CMA.
    const rows = await q('long-pins', { trace_id: id, min_duration_ns: '500ms' });
    assert.equal(rows.length, 16);
    assert.ok(rows.every((r) => r.in_cma === false && r.longterm_in_cma === false && r.priority === 5));
    // Each says which longterm_pin migration moved its page first (the truth's `migrated` pins).
    const migrated = truth.expect.pins!.filter((p) => p.migrated).map((p) => p.pfn).sort();
    assert.deepEqual(rows.filter((r) => r.migrate_seq !== null).map((r) => n(r.pfn)).sort(), migrated);
    assert.equal(migrated.length, 16);
    // With no threshold, the first round's CMA pins show as what they were: microseconds on CMA, priority 3.
    const all = await q('long-pins', { trace_id: id, min_duration_ns: 0, kind: 'pin' });
    assert.deepEqual(
      all.filter((r) => r.in_cma).map((r) => [n(r.pfn), r.priority, r.longterm_in_cma]).sort(),
      transient.map((p) => [p.pfn, 3, false]).sort(),
    );
    assert.deepEqual(await q('cma-blockers', { trace_id: id, include_uncertain: true }), []);
    assert.equal((await check(db, { traceId: id })).ok, true);
  });

  it('a failed longterm_pin migration is a cma-blockers row and counts in the check', async () => {
    const { db, id } = migrateFailed;
    const rows = await on(db)('cma-blockers', { trace_id: id });
    assert.deepEqual(rows.map((r) => [r.what, r.attempt_comm, n(r.nr_succeeded), n(r.nr_failed), r.longterm]), [
      ['longterm_migrate_failed', 'iouring_pin', 3, 1, true],
    ]);
    const rep = await check(db, { traceId: id, failOn: ['cma-blockers'] });
    assert.deepEqual([rep.ok, rep.lines.find((l) => l.kind === 'cma-blockers')!.count], [false, 1]);
  });
});

describe('exact rows of the other queries', () => {
  it('dax-pgmap-leak: leaks lists the device page under its allocation and under the snapshot get', async () => {
    const { db, id, truth } = ft('dax-pgmap-leak');
    const q = on(db);
    const [leak] = truth.expect.leaks!;
    const [h] = truth.expect.holds!;
    const rows = await q('leaks', { trace_id: id });
    assert.deepEqual(
      rows.map((r) => [r.grouping, r.callsite, n(r.pages), n(r.bytes), n(r.refs_outstanding), r.holders, (r.example_pfns as bigint[]).map(Number), r.certain]),
      [
        ['alloc', 'zone_device_page_init', 1, 4096, 1, [`${h!.holder_comm}/${h!.holder_pid}`], [leak!.pfn], true],
        ['get', 'dmirror_snapshot_pte', 1, 4096, 1, [`${h!.holder_comm}/${h!.holder_pid}`], [leak!.pfn], true],
      ],
    );
  });

  it('pin-leak: pin-leaks and top-callers name the pinning driver', async () => {
    const { db, id, truth } = ft('pin-leak');
    const q = on(db);
    const pins = truth.expect.pins!;
    const pl = await q('pin-leaks', { trace_id: id, max_examples: 100 });
    assert.deepEqual(
      pl.map((r) => [r.holder_comm, r.holder_pid, r.callsite, n(r.pins), n(r.pages), n(r.longterm_pins), r.holder_exited, r.certain, (r.example_pfns as bigint[]).map(hex)]),
      [[pins[0]!.holder_comm, pins[0]!.holder_pid, 'pinleak_register', 8, 8, 8, true, true, pins.map((p) => hex(BigInt(p.pfn))).sort()]],
    );
    const tc = (await q('top-callers', { trace_id: id })).find((r) => r.callsite === 'pinleak_register')!;
    assert.deepEqual([n(tc.pins), n(tc.pins_open), n(tc.pin_refs_outstanding), n(tc.stacks)], [8, 8, 8, 1]);
  });

  it('lost-window: divergence lists the one lost-event marker of CPU 1', async () => {
    const { db, id, truth } = ft('lost-window');
    const q = on(db);
    const rows = await q('divergence', { trace_id: id });
    assert.deepEqual(rows.map((r) => [r.what, r.cpu, n(r.lost), r.explanation]), [['lost', 1, truth.expect.lost_events, 'lost']]);
  });
});
