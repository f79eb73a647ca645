/**
 * The page-allocator story of kmem-only traces (docs/kmem.md), against `perf kmem --page stat`:
 *  - on samples/real/perf-kmem-a.script.txt.gz (perf script of perf-kmem-a.data, a 6.18 kernel without page_ref
 *    events) kmem-summary and kmem-orders equal the figures perf kmem 6.1 printed for the same perf.data
 *    (samples/real/perf-kmem-stat.txt), with perf's mislabelled migratetype columns named right;
 *  - where refscope and perf differ by design: a free printed only as mm_page_free_batched is a free to refscope,
 *    not to perf (free_batched_only); an allocation of a live pfn is evidence that a free was not traced;
 *  - the report's HTML has the Allocator section with its tables filled, leading on a kmem-only trace;
 *  - allocations on live pfns are counted on a real capture that has them (perf-task: a capture of some tasks).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Db, type Row } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { replay } from '../../replay/replay.js';
import { runQuery } from '../../queries/runner.js';
import { writeReport } from '../../reports/report.js';
import { ALL_REAL, openFixture, realIds, replayedDb } from '../lib/fixtures.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const REAL = join(ROOT, 'samples', 'real');

/** The SUMMARY and order x migratetype table perf kmem printed for one perf.data (samples/real/perf-kmem-stat.txt). */
function perfFigures(name: string): { totals: Map<string, [number, number]>; orders: Map<number, number[]> } {
  const text = readFileSync(join(REAL, 'perf-kmem-stat.txt'), 'utf8');
  const part = text.split(/^## /m).find((p) => p.startsWith(name));
  assert.ok(part, `${name} in perf-kmem-stat.txt`);
  const totals = new Map<string, [number, number]>();
  for (const m of part.matchAll(/^Total (.+?)\s+:\s+(\d+)\s+\[\s*(\d+) KB \]/gm)) totals.set(m[1]!.trim(), [Number(m[2]), Number(m[3])]);
  const orders = new Map<number, number[]>();
  for (const m of part.matchAll(/^\s+(\d+)((?:\s+(?:\d+|\.)){5})\s*$/gm))
    orders.set(Number(m[1]), m[2]!.trim().split(/\s+/).map((x) => (x === '.' ? 0 : Number(x))));
  return { totals, orders };
}

async function rows(db: Db, name: string, params: Record<string, unknown> = {}): Promise<Row[]> {
  return (await runQuery(db, name, { trace_id: 1, ...params } as never)).rows as Row[];
}

const num = (v: unknown) => Number(v);

describe('kmem: perf-kmem-a against perf kmem --page stat', () => {
  let dir: string;
  let db: Db;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-kmem-'));
    // Ingested and replayed here in any case (fresh), and left in test/lib/fixtures.ts's cache for report-all.
    db = await openFixture(await replayedDb([{ file: join(REAL, 'perf-kmem-a.script.txt.gz') }], { fresh: true }));
  });
  after(() => {
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('SUMMARY: requests, alloc+freed, alloc-only, free-only (counts and KB) equal perf kmem', async () => {
    const perf = perfFigures('perf-kmem-a.data');
    const [s] = await rows(db, 'kmem-summary');
    assert.ok(s);
    const pairs: [string, string, string][] = [
      ['allocation requests', 'alloc_requests', 'alloc_kb'],
      // perf counts mm_page_free only; this capture has no free printed only as mm_page_free_batched.
      ['free requests', 'free_requests', 'free_kb'],
      ['alloc+freed requests', 'alloc_freed', 'alloc_freed_kb'],
      ['alloc-only requests', 'alloc_only', 'alloc_only_kb'],
      ['free-only requests', 'free_only', 'free_only_kb'],
    ];
    for (const [label, n, kb] of pairs) assert.deepEqual([num(s[n]), num(s[kb])], perf.totals.get(label), label);
    assert.equal(num(s.free_batched_only), 0);
    assert.equal(num(s.perf_free_requests), perf.totals.get('free requests')![0]);
    assert.equal(num(s.live_pfn_allocs), 0);
    assert.equal(num(s.alive_at_end) + num(s.live_pfn_allocs), num(s.alloc_only));
  });

  it('order x migratetype equals perf kmem, its columns named right (its "Reclaimable" is MOVABLE, its "Movable" RECLAIMABLE)', async () => {
    const perf = perfFigures('perf-kmem-a.data');
    const got = await rows(db, 'kmem-orders');
    assert.ok(got.length > 3);
    for (const [order, [unmovable, perfReclaimable, perfMovable, reserved, cmaIsolated]] of perf.orders) {
      const r = got.find((x) => num(x.order) === order);
      const mine = r ? [num(r.unmovable), num(r.movable), num(r.reclaimable), num(r.highatomic), num(r.cma) + num(r.isolate)] : [0, 0, 0, 0, 0];
      assert.deepEqual(mine, [unmovable, perfReclaimable, perfMovable, reserved, cmaIsolated], `order ${order}`);
    }
    // The gfp flags say which is which: GFP_HIGHUSER_MOVABLE allocations are MOVABLE.
    const byMt = await rows(db, 'kmem-allocs', { by: 'gfp' });
    const movable = byMt.find((r) => r.key === 'GFP_HIGHUSER_MOVABLE|__GFP_WRITE|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP');
    assert.ok(movable && num(movable.allocs) > 0);
  });

  it('every grouping accounts for every allocation and free', async () => {
    const [s] = await rows(db, 'kmem-summary');
    for (const by of ['gfp', 'order', 'migratetype', 'callsite', 'comm']) {
      const rs = await rows(db, 'kmem-allocs', { by });
      assert.equal(rs.reduce((a, r) => a + num(r.allocs), 0), num(s!.alloc_requests), by);
      assert.equal(rs.reduce((a, r) => a + num(r.frees), 0), num(s!.free_requests), by);
      assert.equal(rs.reduce((a, r) => a + num(r.alive_at_end), 0), num(s!.alive_at_end), by);
    }
    const alive = await rows(db, 'kmem-alive');
    assert.equal(alive.filter((r) => r.edge === 'alive at the end').reduce((a, r) => a + num(r.allocs), 0), num(s!.alive_at_end));
    assert.equal(alive.filter((r) => r.edge === 'allocated before the capture').reduce((a, r) => a + num(r.allocs), 0), num(s!.free_only));
  });

  it('the report leads with the Allocator section, its tables filled and the lifetime chart drawn', async () => {
    const out = join(dir, 'report');
    const r = await writeReport(db, { traceId: 1, outDir: out, formats: ['html'], chartFiles: false });
    assert.ok(r.charts.find((c) => c.id === 'kmem-lifetimes')?.drawn, 'kmem-lifetimes drawn');
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    const main = html.slice(html.indexOf('<main>'), html.indexOf('</main>'));
    const at = (id: string) => main.indexOf(`id="${id}"`);
    assert.ok(at('allocator') > 0 && at('allocator') < at('summary'), 'Allocator section before the trace facts');
    assert.match(main, /Page-allocator events only \(no page_ref events\)/);
    const section = (id: string) => {
      const i = at(id);
      assert.ok(i > 0, id);
      return main.slice(i, main.indexOf('</section>', i));
    };
    for (const id of ['q-kmem-summary', 'q-kmem-allocs', 'kmem-by-gfp', 'kmem-by-order', 'kmem-by-migratetype', 'kmem-by-comm', 'q-kmem-orders', 'q-kmem-alive'])
      assert.ok((section(id).match(/<tr class/g) ?? []).length > 0, `${id} has rows`);
    assert.match(section('q-kmem-live-pfn'), /None\./);
    assert.ok(at('fig-kmem-lifetimes') > at('allocator') && at('fig-kmem-lifetimes') < at('summary'), 'lifetime chart in the Allocator section');
  });
});

describe('kmem: where refscope and perf kmem differ', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-kmem-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a free printed only as mm_page_free_batched is a free (perf ignores it); a second allocation of a live pfn is evidence of a lost free', async () => {
    const line = (ts: string, ev: string, payload: string) =>
      `            wl  100 [000]  ${ts}:                        kmem:${ev}: ${payload}`;
    const text = [
      line('10.000001', 'mm_page_alloc', 'page=0x1000 pfn=0x1000 order=0 migratetype=0 gfp_flags=GFP_KERNEL'),
      line('10.000002', 'mm_page_alloc', 'page=0x2000 pfn=0x2000 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE'),
      line('10.000003', 'mm_page_free', 'page=0x1000 pfn=0x1000 order=0'),
      line('10.000004', 'mm_page_free_batched', 'page=0x1000 pfn=0x1000'),
      line('10.000005', 'mm_page_free_batched', 'page=0x2000 pfn=0x2000'),
      line('10.000006', 'mm_page_alloc', 'page=0x3000 pfn=0x3000 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE'),
      line('10.000007', 'mm_page_alloc', 'page=0x3000 pfn=0x3000 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE'),
      '',
    ].join('\n');
    const file = join(dir, 'batched.script.txt');
    writeFileSync(file, text);
    const db = await Db.open(join(dir, 'b.duckdb'));
    try {
      const s = await ingest(db, file);
      await replay(db, s.trace_id, {});
      const [k] = await rows(db, 'kmem-summary');
      assert.ok(k);
      // pfn 0x1000: mm_page_free then its mm_page_free_batched companion, one free; pfn 0x2000: the batched one alone.
      assert.deepEqual(
        [num(k.alloc_requests), num(k.free_requests), num(k.perf_free_requests), num(k.free_batched_only), num(k.alloc_freed), num(k.freed_batched_with_alloc)],
        [4, 2, 1, 1, 2, 1],
      );
      // pfn 0x3000 allocated twice with no free between: one lost free, the second allocation alive at the end.
      assert.deepEqual([num(k.live_pfn_allocs), num(k.alive_at_end), num(k.alloc_only)], [1, 1, 2]);
      const live = await rows(db, 'kmem-live-pfn');
      assert.equal(live.length, 1);
      assert.deepEqual([num(live[0]!.pfn), num(live[0]!.next_alloc_seq) > num(live[0]!.alloc_seq), live[0]!.lost_between], [0x3000, true, false]);
    } finally {
      db.close();
    }
  });

  it('allocations on live pfns are counted on a real capture that has them (perf-task: some tasks only)', async () => {
    // perf-task in the database of every real capture, ingested and replayed once for the suite (replay.test builds
    // it; test/lib/fixtures.ts).
    const all = await replayedDb(ALL_REAL);
    const db = await openFixture(all);
    try {
      const trace_id = realIds(all).perf;
      const [k] = await rows(db, 'kmem-summary', { trace_id });
      const live = await rows(db, 'kmem-live-pfn', { trace_id });
      assert.equal(num(k!.live_pfn_allocs), 248);
      assert.equal(live.length, 248);
      assert.ok(live.every((r) => r.lost_between === false && num(r.next_alloc_seq) > num(r.alloc_seq)));
    } finally {
      db.close();
    }
  });
});
