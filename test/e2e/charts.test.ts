/**
 * Charts that answer one question each, on the real captures (issue #21):
 *  - a-iouring-longterm: the sessions timeline has one bar per session of the sessions table, on its holder's lane,
 *    with its releaser (the ring torn down by kworker/u4:0 via io_ring_exit_work) and the sessions still held at
 *    the end drawn to the trace end; the lifetime histogram has log-scaled bins from 1 us to 1000 s and more than
 *    one of them filled;
 *  - d-pgmap-hmm: dev_pagemaps named by their pfn range in the chart and in the pgmap-imbalance table, lifecycle
 *    events labelled in rows above the line, not as points on it;
 *  - c-cma-blocked: the CMA chart has one lane per holder (cma_block/pid), the report counts cma_alloc and
 *    cma_release calls apart.
 * Every spec renders to SVG. ~5 s.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { runQuery } from '../../queries/runner.js';
import { buildCharts, BINS_PER_DECADE, renderSvg, type Chart } from '../../reports/charts.js';
import { replayFacts } from '../../reports/data.js';
import { ALL_REAL, openFixture, realIds, replayedDb } from '../lib/fixtures.js';

let dir: string;
let db: Db;
const ids: Record<'a' | 'c' | 'd', number> = { a: 0, c: 0, d: 0 };
const charts: Record<string, Chart[]> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-charts-'));
  // The real captures ingested and replayed (by replay.test.ts; test/lib/fixtures.ts keeps the database).
  const all = await replayedDb(ALL_REAL);
  db = await openFixture(all);
  for (const k of ['a', 'c', 'd'] as const) {
    ids[k] = realIds(all)[k];
    charts[k] = await buildCharts(db, ids[k], []);
  }
});

after(() => {
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

const chart = (k: string, id: string): Chart => {
  const c = charts[k]!.find((x) => x.id === id);
  assert.ok(c?.spec, `${k}: chart ${id} drawn (${c?.note ?? 'missing'})`);
  return c;
};
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const values = (c: Chart): any[] => (c.spec as any).data.values;

describe('charts: one question each, on the real captures', () => {
  it('a-iouring: one bar per session on its holder lane, with the releaser; held-at-end sessions reach the trace end', async () => {
    const c = chart('a', 'pin-timeline');
    const sessions = (await runQuery(db, 'sessions', { trace_id: ids.a })).rows;
    const bars = values(c);
    assert.equal(bars.length, sessions.length);
    assert.ok(sessions.length >= 4, `${sessions.length} sessions`);
    for (const b of bars) assert.ok('releaser' in b && /^.+\/\d+$/.test(b.lane), JSON.stringify(b));
    const ring = bars.filter((b) => b.class === 'FOLL_LONGTERM pin' && b.releaser === 'kworker/u4:0/9 via io_ring_exit_work');
    assert.equal(ring.length, 1, 'the ring torn down by the kworker');
    assert.equal(ring[0].lane, 'iouring_pin/234');
    assert.match(ring[0].label, /released by kworker\/u4:0\/9 via io_ring_exit_work/);
    const open = bars.filter((b) => b.open);
    assert.ok(open.length > 0 && open.every((b) => b.releaser === null && b.end_s === Math.max(...bars.map((x) => x.end_s))));
    // The held-at-end ones have a mark of their own (dashed), the released ones another.
    const layers = (c.spec as { layer: { transform?: { filter: string }[]; mark: { strokeDash?: number[] } }[] }).layer;
    assert.ok(layers.some((l) => l.transform?.[0]?.filter === 'datum.open' && l.mark.strokeDash));
  });

  it('a-iouring: the lifetime histogram has log-scaled bins from 1 us to 1000 s, more than one filled', () => {
    for (const id of ['pin-lifetimes', 'kmem-lifetimes']) {
      const bins = values(chart('a', id));
      const filled = bins.filter((b) => b.n > 0);
      assert.ok(filled.length > 1, `${id}: ${filled.length} bins filled`);
      const one = bins.filter((b) => b.class === bins[0].class);
      assert.ok(Math.abs(one[0].lo_s - 1e-6) < 1e-12 && Math.abs(one[one.length - 1].hi_s - 1e3) < 1e-6, `${id}: 1 us .. 1000 s`);
      for (const b of one) assert.ok(Math.abs(Math.log10(b.hi_s / b.lo_s) - 1 / BINS_PER_DECADE) < 1e-9, `${id}: log-scaled bin ${b.lo_s}..${b.hi_s}`);
    }
    const pins = values(chart('a', 'pin-lifetimes'));
    assert.ok(new Set(pins.filter((b) => b.n > 0).map((b) => b.class)).size === 2, 'pins and long holds');
  });

  it('d-pgmap: pgmaps named by their pfn range, lifecycle events as labels above the line', async () => {
    const c = chart('d', 'pgmap-refs');
    const spec = c.spec as unknown as { datasets: { series: { pgmap: string }[]; labels: { label: string; row: number }[] } };
    const names = [...new Set(spec.datasets.series.map((p) => p.pgmap))];
    assert.ok(names.includes('pfns 0xfcf0000-0xfcfffff'), names.join(', '));
    assert.ok(names.every((n) => !/^0xff/.test(n)), `no bare pointer: ${names.join(', ')}`);
    // The two pgmaps' unmaps, 40 ms apart, are one label; each kind has its own row.
    const labels = spec.datasets.labels;
    assert.ok(labels.some((l) => l.label === 'memunmap_pages ×2'), JSON.stringify(labels));
    assert.equal(new Set(labels.map((l) => l.row)).size, 4);
    const rows = (await runQuery(db, 'pgmap-imbalance', { trace_id: ids.d, all: true })).rows;
    assert.deepEqual(rows.map((r) => r.name).sort(), ['pfns 0xfce0000..', 'pfns 0xfcf0000-0xfcfffff']);
  });

  it('c-cma: the CMA chart has a lane per holder naming cma_block; cma_alloc and cma_release calls counted apart', async () => {
    const c = chart('c', 'cma-attempts');
    const spec = c.spec as unknown as { datasets: { bars: { lane: string }[]; attempts: unknown[]; failures: { lane: string }[] } };
    const lanes = new Set([...spec.datasets.bars, ...spec.datasets.failures].map((b) => b.lane));
    assert.deepEqual([...lanes], ['cma_block/352']);
    assert.equal(spec.datasets.attempts.length, 2, 'two cma_alloc calls, the cma_release not among them');
    const r = await replayFacts(db, ids.c);
    assert.deepEqual([r?.cma_allocs, r?.cma_alloc_failed, r?.cma_releases].map(Number), [2, 1, 1]);
    assert.equal(chart('a', 'pin-timeline').id, 'pin-timeline');
    assert.equal(charts.a!.find((x) => x.id === 'cma-attempts')!.spec, null, 'no CMA chart without cma_alloc');
  });

  it('every drawn chart renders to SVG with marks', async () => {
    for (const k of ['a', 'c', 'd'])
      for (const c of charts[k]!.filter((x) => x.spec)) {
        const svg = await renderSvg(c.spec!);
        assert.ok(svg.length > 2000 && /<path|<line/.test(svg), `${k} ${c.id}`);
      }
  });
});
