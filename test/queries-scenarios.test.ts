/**
 * The query library on generated scenario traces (samples/generate): every scenario is generated (ftrace, seed 1),
 * ingested and replayed once, then each query must return exactly what the scenario's truth says: leaks, open pins,
 * CMA blockers, pgmap balances, use-after-free anomalies, long holds, lost events, and nothing it forbids.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../db/duckdb.js';
import { ingest } from '../ingest/ingest.js';
import { replay } from '../replay/replay.js';
import { runQuery, type ResultRow } from '../queries/runner.js';
import { generateToFile } from '../samples/generate/file.js';
import { SCENARIOS, type Format, type Scenario, type Truth } from '../samples/generate/index.js';

const UAF_KINDS = ['freed_while_mapped', 'freed_while_pinned', 'ref_after_free', 'refcount_underflow', 'device_page_zero_without_put'];

/** Every scenario as raw ftrace; the format-sensitive ones (lost markers, kprobe pointers) in the other layouts too. */
const CASES: { name: Scenario; format: Format }[] = [
  ...SCENARIOS.map(({ name }) => ({ name, format: 'ftrace' as Format })),
  ...(['lost-window', 'vmsplice-cma', 'dax-pgmap-leak'] as Scenario[]).flatMap((name) =>
    (['trace-cmd', 'perf'] as Format[]).map((format) => ({ name, format })),
  ),
];
const key = (c: { name: string; format: string }) => `${c.name} (${c.format})`;

let dir: string;
let db: Db;
const runs = new Map<string, { id: number; truth: Truth }>();

async function q(name: string, params: Record<string, unknown>): Promise<ResultRow[]> {
  return (await runQuery(db, name, params)).rows;
}

const n = (v: unknown): number => Number(v as bigint);
const sorted = <T>(xs: T[]): T[] => [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : JSON.stringify(a) > JSON.stringify(b) ? 1 : 0));

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-qscn-'));
  const path = join(dir, 'scn.duckdb');
  const rw = await Db.open(path);
  try {
    for (const c of CASES) {
      const file = join(dir, `${c.name}.${c.format}.txt`);
      const truth = await generateToFile(c.name, file, { seed: 1, scale: 1, format: c.format });
      const s = await ingest(rw, file);
      await replay(rw, s.trace_id, {});
      runs.set(key(c), { id: s.trace_id, truth });
    }
  } finally {
    rw.close();
  }
  db = await Db.open(path, { readOnly: true });
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('queries return the truth of every scenario', () => {
  for (const c of CASES) {
    it(key(c), async () => {
      const { id, truth } = runs.get(key(c))!;
      const ex = truth.expect;

      // leaks: the exact set of certain leaked pfns; none at all when forbidden.
      const leaks = await q('leaks', { trace_id: id, max_examples: 1_000_000 });
      const leaked = [...new Set(leaks.filter((r) => r.grouping === 'alloc').flatMap((r) => (r.example_pfns as bigint[]).map(Number)))].sort((a, b) => a - b);
      if (ex.leaks) assert.deepEqual(leaked, ex.leaks.map((l) => l.pfn).sort((a, b) => a - b), 'leaks');
      if (truth.forbid.includes('leak')) assert.deepEqual(await q('leaks', { trace_id: id, include_uncertain: true }), [], 'forbidden leak');

      // pin-leaks: the pins still open at the end, certain or not as the truth says.
      if (ex.pins) {
        const open = await q('pin-leaks', { trace_id: id, include_uncertain: true, max_examples: 1_000_000 });
        const got = sorted(open.flatMap((r) => (r.example_pfns as bigint[]).map((p) => [Number(p), r.certain, r.holder_pid])));
        const want = sorted(ex.pins.filter((p) => p.end_ts_ns === null).map((p) => [p.pfn, !p.uncertain, p.holder_pid]));
        assert.deepEqual(got, want, 'open pins');
      }

      // cma-blockers: distinct (pfn, holder kind, holder) of failed attempts.
      if (ex.cma_blockers) {
        const rows = (await q('cma-blockers', { trace_id: id, include_uncertain: true })).filter((r) => r.what === 'cma_blocker');
        const got = sorted([...new Set(rows.map((r) => JSON.stringify([n(r.pfn), r.holder_kind, r.holder_pid, r.holder_comm])))].map((s) => JSON.parse(s)));
        const want = sorted([...new Set(ex.cma_blockers.map((b) => JSON.stringify([b.pfn, b.holder_kind, b.holder_pid, b.holder_comm])))].map((s) => JSON.parse(s)));
        assert.deepEqual(got, want, 'cma blockers');
      }

      // pgmap-imbalance: balances of every pgmap; a problem row exactly when references were out at unmap.
      if (ex.pgmaps) {
        const all = await q('pgmap-imbalance', { trace_id: id, all: true });
        const got = sorted(all.filter((r) => r.pgmap !== null).map((r) => [r.pgmap, n(r.gets), n(r.puts), n(r.outstanding_end), r.outstanding_at_unmap === null ? null : n(r.outstanding_at_unmap)]));
        const want = sorted(ex.pgmaps.map((p) => [p.pgmap, p.gets, p.puts, p.outstanding_end, p.outstanding_at_unmap]));
        assert.deepEqual(got, want, 'pgmaps');
        const problems = (await q('pgmap-imbalance', { trace_id: id, include_uncertain: true })).map((r) => r.pgmap).sort();
        assert.deepEqual(problems, ex.pgmaps.filter((p) => (p.outstanding_at_unmap ?? 0) > 0).map((p) => p.pgmap).sort(), 'pgmap problems');
      }

      // use-after-free: the exact set of those anomaly kinds; forbidden kinds never.
      const uaf = await q('use-after-free', { trace_id: id, include_uncertain: true });
      if (ex.anomalies) {
        const got = sorted(uaf.map((r) => [r.kind, r.pfn === null ? null : n(r.pfn), r.certain]));
        const want = sorted(ex.anomalies.filter((a) => UAF_KINDS.includes(a.kind)).map((a) => [a.kind, a.pfn, a.certain]));
        assert.deepEqual(got, want, 'use-after-free');
      }
      for (const r of uaf) assert.ok(!truth.forbid.includes(r.kind as string), `forbidden ${String(r.kind)}`);

      // long-pins lists every hold the truth expects (holds are a must-contain set).
      if (ex.holds?.length) {
        const holds = await q('long-pins', { trace_id: id, min_duration_ns: 0, kind: 'hold' });
        for (const h of ex.holds)
          assert.ok(
            holds.some((r) => n(r.pfn) === h.pfn && r.holder_pid === h.holder_pid && r.holder_comm === h.holder_comm && (r.end_ts_ns === null) === (h.end_ts_ns === null)),
            `hold on 0x${h.pfn.toString(16)} by ${h.holder_comm}/${h.holder_pid}`,
          );
      }

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
        const open = ex.pins.filter((p) => p.end_ts_ns === null);
        assert.equal(n(s.pin_leaks), open.filter((p) => !p.uncertain).length, 'summary pin_leaks');
        assert.equal(n(s.pin_leaks_uncertain), open.filter((p) => p.uncertain).length, 'summary pin_leaks_uncertain');
      }
      if (ex.anomalies) assert.equal(n(s.use_after_free) + n(s.use_after_free_uncertain), uaf.length, 'summary use_after_free');
    });
  }
});
