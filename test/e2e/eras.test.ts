/**
 * Kernel eras end to end (issue #18 item 6): scenarios generated with `--era 5.15 / 6.1 / 6.18` (samples/generate:
 * 6.18 prints mapcount= as the raw _mapcount, -1 = unmapped, 0 = mapped once) are ingested with no --kernel, so
 * ingest must tell the raw form by its values, and replayed; every era must give the scenario's truth: pins, holds,
 * anomalies, CMA attempts and blockers, pgmaps (test/lib/replay-truth.ts), the leaks / use-after-free / outstanding /
 * pin-leaks / cma-blockers queries, and count= agreement 100% (no divergence at all: these scenarios lose nothing).
 * A scenario that does not imitate eras in its operations must also give the very same findings in 6.18 as in 6.1
 * (its 5.15 trace is its 6.1 trace: nothing else in it changed between those kernels).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { runQuery, type ResultRow } from '../../queries/runner.js';
import { replay } from '../../replay/replay.js';
import { generateToFile } from '../../samples/generate/file.js';
import type { Scenario, Truth } from '../../samples/generate/index.js';
import type { Era } from '../../samples/generate/types.js';
import { compareWithTruth } from '../lib/replay-truth.js';

const ERAS: Era[] = ['5.15', '6.1', '6.18'];
/** Scenarios whose operations take the era's shape (the others differ between eras only in mapcount=). */
const ERA_SHAPED = new Set<Scenario>(['gup-interleaved', 'cma-lru-drain', 'tracing-gap', 'exit-with-pins']);
/** Mapped pages freed (vmalloc-uaf), CMA blockers (with the LRU batch's mapped pages), pins, exits, pgmaps, migration. */
const CASES: { scenario: Scenario; seed: number }[] = [
  { scenario: 'vmalloc-uaf', seed: 1 },
  { scenario: 'vmsplice-cma', seed: 1 },
  { scenario: 'cma-lru-drain', seed: 2 },
  { scenario: 'pin-leak', seed: 3 },
  { scenario: 'exit-with-pins', seed: 4 },
  { scenario: 'dax-pgmap-leak', seed: 1 },
  { scenario: 'migrate-interleaved', seed: 1 },
];
const UAF_KINDS = ['freed_while_mapped', 'freed_while_pinned', 'ref_after_free', 'refcount_underflow', 'device_page_zero_without_put'];

type R = Record<string, unknown>;
const n = (v: unknown): number => Number(v as bigint);
const sorted = <T>(xs: T[]): T[] => xs.map((x) => JSON.stringify(x)).sort().map((s) => JSON.parse(s) as T);

let dir: string;
let db: Db;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-eras-'));
  db = await Db.open(join(dir, 'eras.duckdb'));
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function q(name: string, params: Record<string, unknown>): Promise<ResultRow[]> {
  return (await runQuery(db, name, params)).rows;
}

/** Generate, ingest (no --kernel), replay; the differences from the truth and the findings as sorted lines. */
async function run(scenario: Scenario, seed: number, era: Era): Promise<{ diffs: string[]; findings: string[] }> {
  const file = join(dir, `${scenario}.${seed}.${era}.txt`);
  const truth: Truth = await generateToFile(scenario, file, { seed, era, scale: 0.25 });
  const text = readFileSync(file, 'utf8');
  const raw = era === '6.18';
  assert.equal(/ mapcount=-1 /.test(text), raw, `${era}: mapcount=-1 printed exactly in the raw era`);
  assert.match(truth.kernel, new RegExp(`^${era.replace('.', '\\.')}\\.`), 'the truth names the era\'s kernel');
  const { trace_id: id } = await ingest(db, file, {});
  const [tr] = await db.all<R>('SELECT mapcount_semantics FROM traces WHERE trace_id = $1', [id]);
  assert.equal(tr!.mapcount_semantics, raw ? 'raw' : 'page_mapcount', 'ingest reads mapcount= as the era prints it');
  await replay(db, id, {});

  const ex = truth.expect;
  const diffs = await compareWithTruth(db, id, truth);
  const check = (what: string, got: unknown, want: unknown) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) diffs.push(`${what}: got ${JSON.stringify(got)}, truth ${JSON.stringify(want)}`);
  };
  if (ex.leaks) {
    const rows = await q('leaks', { trace_id: id, max_examples: 1_000_000 });
    const got = [...new Set(rows.filter((r) => r.grouping === 'alloc').flatMap((r) => (r.example_pfns as bigint[]).map(Number)))].sort((a, b) => a - b);
    check('leaks', got, ex.leaks.map((l) => l.pfn).sort((a, b) => a - b));
  }
  if (truth.forbid.includes('leak')) check('forbidden leaks', (await q('leaks', { trace_id: id, include_uncertain: true })).length, 0);
  const uaf = await q('use-after-free', { trace_id: id, include_uncertain: true });
  if (ex.anomalies)
    check('use-after-free', sorted(uaf.map((r) => [r.kind, r.pfn === null ? null : n(r.pfn), r.certain])), sorted(ex.anomalies.filter((a) => UAF_KINDS.includes(a.kind)).map((a) => [a.kind, a.pfn, a.certain])));
  if (ex.outstanding) {
    const rows = (await q('outstanding', { trace_id: id, max_examples: 1_000_000 })).filter((r) => r.kind !== 'hold');
    const got = rows.flatMap((r) => (r.example_pfns as bigint[]).map((p) => [r.kind, Number(p), r.holder_pid, r.holder_state === 'exited', r.certain]));
    check('outstanding', sorted(got), sorted(ex.outstanding.map((o) => [o.kind, o.pfn, o.holder_pid, o.holder_exited, o.certain])));
  }
  if (ex.pins) {
    const open = ex.pins.filter((p) => p.end_ts_ns === null);
    const rows = await q('outstanding', { trace_id: id, kind: 'pin', max_examples: 1_000_000 });
    check('open pins', sorted(rows.flatMap((r) => (r.example_pfns as bigint[]).map((p) => [Number(p), r.holder_pid]))), sorted(open.map((p) => [p.pfn, p.holder_pid])));
    const pl = await q('pin-leaks', { trace_id: id, include_uncertain: true, include_live_holders: true });
    check('pin-leaks pins', pl.reduce((a, r) => a + n(r.pins), 0), open.length);
  }
  if (ex.cma_blockers) {
    const rows = (await q('cma-blockers', { trace_id: id, include_uncertain: true })).filter((r) => r.what === 'cma_blocker');
    const got = [...new Set(rows.map((r) => JSON.stringify([n(r.pfn), r.holder_kind, r.holder_pid, r.holder_comm])))];
    check('cma-blockers', got.sort(), [...new Set(ex.cma_blockers.map((b) => JSON.stringify([b.pfn, b.holder_kind, b.holder_pid, b.holder_comm])))].sort());
  }
  // count=: the model predicts every printed count (the raw mapcount's mapping references included).
  const [rr] = await db.all<R>('SELECT checked, agreed FROM replay_runs WHERE trace_id = $1', [id]);
  check('count= agreement', n(rr!.agreed), n(rr!.checked));
  for (const r of await db.all<R>('SELECT pfn, event, expected, printed, explanation FROM divergences WHERE trace_id = $1 LIMIT 5', [id]))
    diffs.push(`divergence: pfn ${n(r.pfn)} ${String(r.event)} expected ${String(r.expected)} printed ${String(r.printed)} (${String(r.explanation)})`);

  const findings = [
    ...(await db.all<R>('SELECT kind, pfn, certain FROM anomalies WHERE trace_id = $1', [id])).map((r) => `anomaly ${String(r.kind)} ${String(r.pfn)} ${String(r.certain)}`),
    ...(await db.all<R>('SELECT pfn, holder_pid, refs, start_ts_ns, end_ts_ns FROM pins WHERE trace_id = $1', [id])).map((r) => `pin ${String(r.pfn)} ${String(r.holder_pid)} x${String(r.refs)} ${String(r.start_ts_ns)}..${String(r.end_ts_ns)}`),
    ...(await db.all<R>('SELECT pfn, holder_pid, refs, end_ts_ns, attribution FROM holds WHERE trace_id = $1', [id])).map((r) => `hold ${String(r.pfn)} ${String(r.holder_pid)} x${String(r.refs)} ..${String(r.end_ts_ns)} ${String(r.attribution)}`),
    ...(await db.all<R>('SELECT pfn, holder_kind, holder_pid FROM cma_blockers WHERE trace_id = $1', [id])).map((r) => `blocker ${String(r.pfn)} ${String(r.holder_kind)} ${String(r.holder_pid)}`),
  ].sort();
  return { diffs, findings };
}

describe('every era gives the scenario\'s truth (raw mapcount understood end to end)', () => {
  for (const c of CASES) {
    it(`${c.scenario} seed ${c.seed}`, async () => {
      const byEra = new Map<Era, string[]>();
      // A scenario without era-shaped operations prints the same 5.15 trace as 6.1 (test/unit/generate.test.ts).
      for (const era of ERA_SHAPED.has(c.scenario) ? ERAS : ERAS.filter((e) => e !== '5.15')) {
        const { diffs, findings } = await run(c.scenario, c.seed, era);
        assert.deepEqual(diffs, [], `era ${era}`);
        byEra.set(era, findings);
      }
      if (!ERA_SHAPED.has(c.scenario)) assert.deepEqual(byEra.get('6.18'), byEra.get('6.1'), 'the same findings in 6.18 (raw mapcount) as in 6.1');
    });
  }
});
