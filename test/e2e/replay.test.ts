/**
 * Replay on the real captures (samples/real; ground truth in their capture notes, samples/real/README.md): pins of
 * io_uring FOLL_LONGTERM buffers (small and THP), vmsplice references held by a pipe, the CMA allocation they
 * block, dev_pagemap balance, the count= model, kmem-only lifetimes; then every scenario generator's truth.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { formatSummary, parseDuration, parsePfnRange, replay, type ReplaySummary } from '../../replay/replay.js';
import { CAPTURES as ALL_CAPTURES, REAL } from '../lib/captures.js';
import { ALL_REAL, privateCopy, realIds, replayedDb } from '../lib/fixtures.js';

// Every real capture is ingested and replayed (here, always: this file's subject, and left in test/lib/fixtures.ts's
// cache for the files that query them); the checks skip two that add nothing to the model: one pid's stacks (stack)
// and perf callchains (callgraph).
const { stack: _stack, callgraph: _callgraph, ...CAPTURES } = ALL_CAPTURES;
type Cap = keyof typeof CAPTURES;

type Row = Record<string, unknown>;
const num = (v: unknown): number => Number(v);

let dir: string;
let db: Db;
const ids = {} as Record<Cap, number>;
const sums = {} as Record<Cap, ReplaySummary>;

const rows = (sql: string, cap: Cap): Promise<Row[]> => db.all<Row>(sql, [ids[cap]]);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-replay-'));
  const fx = await replayedDb(ALL_REAL, { fresh: true });
  // A copy: the tests below replay again and add traces.
  db = await Db.open(privateCopy(fx, join(dir, 'real.duckdb')));
  const all = realIds(fx);
  for (const cap of Object.keys(CAPTURES) as Cap[]) {
    ids[cap] = all[cap];
    sums[cap] = fx.replayed[fx.ids.indexOf(all[cap])]!;
  }
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('replay: real captures', () => {
  it('no capture shows a certain anomaly; the count= model agrees on every check except one concurrent re-read', () => {
    for (const cap of Object.keys(CAPTURES) as Cap[]) {
      const s = sums[cap];
      assert.equal(s.anomalies_certain, 0, `${cap}: ${formatSummary(s)}`);
      assert.equal(s.lost_markers, 0);
      if (cap === 'perf' || cap === 'tcmd' || cap === 'raw') {
        assert.equal(s.checked, 0, 'kmem-only: nothing to check');
        continue;
      }
      assert.ok(s.checked > 2000, `${cap}: ${s.checked} checked`);
      if (cap === 'e') {
        // One page_ref_mod_and_test re-read count= after another CPU's get on the same page (docs/model.md §3: count= is re-read).
        assert.equal(s.checked - s.agreed, 1, 'the re-read diverges; the next event of the page agrees with the pair');
        assert.equal(s.divergences, 1);
        assert.equal(s.divergences_concurrent, 1);
      } else {
        assert.equal(s.agreed, s.checked, `${cap}: ${formatSummary(s)}`);
        assert.equal(s.divergences, 0);
      }
      assert.equal(s.agreed_outside_lost, s.agreed);
    }
  });

  it('e-mixed: the divergence is a concurrent re-read (pfn 0x794d7, expected 2, printed 3)', async () => {
    const d = await rows('SELECT * FROM divergences WHERE trace_id = $1', 'e');
    assert.equal(d.length, 1);
    assert.deepEqual([num(d[0].pfn), d[0].event, d[0].expected, d[0].printed, d[0].explanation, d[0].in_lost_window],
      [0x794d7, 'page_ref_mod_and_test', 2, 3, 'concurrent', false]);
  });

  it('a-iouring-longterm: 2048 small-page FOLL_LONGTERM pins (ring 2 released by kworker/u4:0) and 1024 THP subpage pins', async () => {
    const p = await rows('SELECT * FROM pins WHERE trace_id = $1 ORDER BY start_seq', 'a');
    assert.equal(p.length, 3072, 'the 6 try_grab_page flags=0x2007 of execve are not pins');
    for (const x of p) {
      assert.equal(x.holder_pid, 234);
      assert.equal(x.holder_comm, 'iouring_pin');
      assert.equal(x.longterm, true);
      assert.equal(x.in_cma, false);
      assert.equal(x.uncertain, false);
      assert.equal(x.migrate_seq, null, 'no page of the buffer was in CMA: no longterm_pin migration');
      assert.equal(num(x.refs), 1);
      assert.ok(x.end_seq !== null, 'released');
      const s = num(x.duration_ns) / 1e9;
      assert.ok(s > 1.03 && s < 1.08, `held ${s} s`);
    }
    const small = p.filter((x) => x.large_folio === false);
    const large = p.filter((x) => x.large_folio === true);
    assert.equal(small.length, 2048);
    assert.equal(small.filter((x) => x.release_pid === 234).length, 1024, 'ring 1: unregistered by the process');
    const ring2 = small.filter((x) => x.release_pid === 9);
    assert.equal(ring2.length, 1024, 'ring 2: unpinned by io_ring_exit_work');
    assert.ok(ring2.every((x) => x.release_comm === 'kworker/u4:0'));
    assert.equal(new Set(small.slice(0, 1024).map((x) => num(x.pfn))).size, 1024);
    assert.deepEqual(new Set(small.slice(0, 1024).map((x) => num(x.pfn))), new Set(small.slice(1024).map((x) => num(x.pfn))));
    assert.ok(small.every((x) => x.source === 'probe' && num(x.gup_flags) === 0x50001));
    assert.equal(large.length, 1024);
    const heads = new Map<number, number>();
    for (const x of large) heads.set(num(x.folio_pfn), (heads.get(num(x.folio_pfn)) ?? 0) + 1);
    assert.deepEqual([...heads].sort(), [[0x8600, 512], [0x8800, 512]]);
    // Every buffer page is freed after munmap: no leak among the pinned pages.
    const lifetimes = await rows(
      `SELECT count(DISTINCT p.pin_id) AS pins, count(DISTINCT p.pin_id) FILTER (WHERE g.free_seq IS NOT NULL AND NOT g.end_edge) AS freed
       FROM pins p JOIN pages g ON g.trace_id = p.trace_id AND g.pfn = p.folio_pfn AND g.first_seq <= p.start_seq AND g.last_seq >= p.end_seq
       WHERE p.trace_id = $1`, 'a');
    assert.deepEqual([num(lifetimes[0].pins), num(lifetimes[0].freed)], [3072, 3072], 'every pinned page is freed after its pins');
    const thp = await rows(`SELECT pfn, "order", free_event FROM pages WHERE trace_id = $1 AND pfn IN (${0x8600}, ${0x8800}) AND "order" = 9`, 'a');
    assert.equal(thp.length, 2);
    assert.equal(sums.a.cma_attempts, 0);
  });

  it('b-vmsplice: 256 plain references by vmsplice_hold via GUP, held ~1 s past munmap, all dropped at the pipe drain', async () => {
    assert.equal(sums.b.pins, 0);
    const h = await rows(`SELECT * FROM holds WHERE trace_id = $1 AND via = 'gup'`, 'b');
    assert.equal(h.length, 256);
    assert.equal(new Set(h.map((x) => num(x.pfn))).size, 256);
    for (const x of h) {
      assert.equal(x.holder_pid, 261);
      assert.equal(x.holder_comm, 'vmsplice_hold');
      assert.equal(num(x.gup_flags), 0x4, 'FOLL_GET');
      assert.equal(num(x.refs), 1);
      assert.ok(x.end_seq !== null);
      assert.equal(x.release_pid, 261);
      const s = num(x.duration_ns) / 1e9;
      assert.ok(s > 0.95 && s < 1.1, `held ${s} s`);
    }
    const freed = await rows(
      `SELECT count(*) AS n FROM holds h JOIN pages g ON g.trace_id = h.trace_id AND g.pfn = h.pfn AND g.free_seq > h.start_seq
         AND g.free_ts_ns - h.end_ts_ns < 1000000 WHERE h.trace_id = $1 AND h.via = 'gup'`, 'b');
    assert.equal(num(freed[0].n), 256, 'each page is freed by the put that returned the last reference');
  });

  it('c-cma-blocked: cma_alloc of 16380 pages fails after 5 busy retries, blocked by the vmsplice holds of cma_block', async () => {
    const a = await rows('SELECT * FROM cma_attempts WHERE trace_id = $1 ORDER BY attempt_id', 'c');
    assert.deepEqual(a.map((x) => [x.kind, x.cma_name, num(x.request_count), num(x.busy_retries), x.succeeded]), [
      ['alloc', 'reserved', 16380, 5, false],
      ['alloc', 'reserved', 16380, 0, true],
      ['release', 'reserved', 16380, 0, null],
    ]);
    assert.equal(num(a[0].failed_ranges), 5);
    assert.equal(num(a[0].ranges_tried), 5);
    assert.equal(num(a[0].migrated), 14);
    assert.equal(num(a[1].migrated), 5);
    assert.equal(num(a[1].blockers), 0);
    const b = await rows('SELECT * FROM cma_blockers WHERE trace_id = $1 ORDER BY range_seq, pfn', 'c');
    assert.equal(num(a[0].blockers), b.length);
    assert.deepEqual([...new Set(b.map((x) => num(x.pfn)))].sort(), [0x7dc00, 0x7e000, 0x7e800, 0x7f000, 0x7f800]);
    for (const x of b) {
      assert.equal(x.holder_kind, 'hold');
      assert.equal(x.holder_pid, 352);
      assert.equal(x.holder_comm, 'cma_block');
      assert.equal(x.longterm, null);
      assert.equal(x.is_fin_pfn, num(x.pfn) === 0x7dc00);
    }
    const ranges = new Map<number, Row[]>();
    for (const x of b) ranges.set(num(x.range_seq), [...(ranges.get(num(x.range_seq)) ?? []), x]);
    assert.equal(ranges.size, 5);
    for (const [, rs] of ranges) {
      const refs = rs.filter((x) => num(x.pfn) === 0x7dc00).reduce((n, x) => n + num(x.refs), 0);
      assert.equal(refs, 4, '0x7dc00 carries 4 references');
      assert.equal(rs.length, 8);
      assert.equal(num(rs.find((x) => num(x.pfn) === 0x7dc00)!.refcount), 5);
    }
    const h = await rows(`SELECT * FROM holds WHERE trace_id = $1 AND holder_pid = 352`, 'c');
    assert.equal(h.length, 8);
    assert.ok(h.every((x) => x.via === 'gup' && x.in_cma === true && x.end_seq !== null));
    assert.equal(sums.c.pins, 0);
  });

  it('d-pgmap-hmm: pgmap A balances 128 gets with 128 puts and is released before memunmap_pages returns; B is unused', async () => {
    const p = await rows('SELECT * FROM pgmaps WHERE trace_id = $1 ORDER BY pgmap', 'd');
    assert.equal(p.length, 2);
    const A = p.find((x) => BigInt(x.pgmap as bigint) === 0xff11000003c2f9c0n)!;
    const B = p.find((x) => BigInt(x.pgmap as bigint) === 0xff11000003cbb000n)!;
    assert.deepEqual([num(A.gets), num(A.puts), num(A.outstanding_end), num(A.outstanding_at_unmap), num(A.puts_without_get), num(A.freed_without_put)],
      [128, 128, 0, 0, 0, 0]);
    assert.equal(num(A.pfn_start), 0xfcf0000);
    assert.ok(BigInt(A.released_ts_ns as bigint) < BigInt(A.unmap_ret_ts_ns as bigint));
    assert.ok(BigInt(A.unmap_ts_ns as bigint) < BigInt(A.released_ts_ns as bigint));
    assert.deepEqual([num(B.gets), num(B.puts), num(B.outstanding_end), num(B.outstanding_at_unmap)], [0, 0, 0, 0]);
    assert.equal(num(B.pfn_start), 0xfce0000);
    assert.equal(sums.d.anomalies, 0);
    const dev = await rows(`SELECT * FROM pages WHERE trace_id = $1 AND zone_device`, 'd');
    assert.equal(dev.length, 128);
    assert.ok(dev.every((x) => x.alloc_event === 'zone_device_page_init' && x.free_seq !== null && num(x.refcount_end) === 0));
    assert.equal(new Set(dev.map((x) => num(x.pfn))).size, 64);
    const refs = await rows(`SELECT what, count(*) AS n FROM pgmap_refs WHERE trace_id = $1 GROUP BY what ORDER BY what`, 'd');
    assert.deepEqual(refs.map((x) => [x.what, num(x.n)]), [['get', 128], ['put', 128], ['release', 2], ['remap', 2], ['unmap', 2], ['unmap_ret', 2]]);
  });

  it('d-pgmap-hmm without its pgmap probes: the device pages still give one inferred pgmap, balanced; no other capture gets one', async () => {
    const other = await Db.open(join(dir, 'noprobe.duckdb'));
    try {
      const s = await ingest(other, join(REAL, CAPTURES.d), {});
      await other.run("DELETE FROM event_rows WHERE trace_id = $1 AND system IN ('pgmap', 'kprobe')", [s.trace_id]);
      const sum = await replay(other, s.trace_id, {});
      assert.equal(sum.pgmaps, 1);
      const p = await other.all<Row>('SELECT * FROM pgmaps WHERE trace_id = $1', [s.trace_id]);
      assert.deepEqual(p.map((x) => [x.pgmap, num(x.pfn_start), num(x.pfn_end), num(x.gets), num(x.puts), num(x.outstanding_end), x.source]), [
        [null, 0xfcfffc0, 0xfd00000, 128, 128, 0, 'inferred'],
      ], 'the 64 device pfns at the top of dmirror0, each handed out twice');
      const refs = await other.all<Row>('SELECT what, count(*) AS n, count(pgmap) AS ptr, min(balance) AS lo FROM pgmap_refs WHERE trace_id = $1 GROUP BY what ORDER BY what', [s.trace_id]);
      assert.deepEqual(refs.map((x) => [x.what, num(x.n), num(x.ptr), num(x.lo)]), [['get', 128, 0, 1], ['put', 128, 0, 0]]);
      const dev = await other.all<Row>('SELECT count(*) AS n, count(DISTINCT pfn) AS pfns, min(pfn) AS lo FROM pages WHERE trace_id = $1 AND zone_device', [s.trace_id]);
      assert.deepEqual([num(dev[0].n), num(dev[0].pfns), num(dev[0].lo)], [128, 64, 0xfcfffc0]);
      assert.equal(sum.anomalies, 0);
    } finally {
      other.close();
    }
    const inferred = await db.all<Row>("SELECT trace_id FROM pgmaps WHERE source = 'inferred'");
    assert.deepEqual(inferred, [], 'RAM sections see the page allocator');
  });

  it('kmem-only (perf script, trace-cmd report, tracefs trace): lifetimes are exactly the alloc/free pairs by pfn, batched frees included', async () => {
    for (const cap of ['perf', 'tcmd', 'raw'] as Cap[]) {
      const ev = await rows(
        `SELECT seq::DOUBLE AS seq, event, pfn::DOUBLE AS pfn, coalesce("order", 0)::INTEGER AS o FROM events
         WHERE trace_id = $1 AND event IN ('mm_page_alloc', 'mm_page_free', 'mm_page_free_batched') AND pfn > 0 ORDER BY seq`, cap);
      // The reference pairing: an allocation opens the pfn, a free closes it (or is a lifetime that began before the
      // capture). mm_page_free_batched right after the mm_page_free of the same free (free_unref_folios prints both)
      // closes nothing more.
      const open = new Map<number, number>();
      const freed = new Set<number>();
      const want: string[] = [];
      let batchedAlone = 0;
      let batchedAfterFree = 0;
      for (const e of ev) {
        const pfn = num(e.pfn);
        const n = 2 ** num(e.o);
        if (e.event === 'mm_page_alloc') {
          for (let i = 0; i < n; i++) {
            if (open.has(pfn + i)) want.push(`${pfn + i} ${open.get(pfn + i)} -`);
            open.delete(pfn + i);
            freed.delete(pfn + i);
          }
          open.set(pfn, num(e.seq));
          continue;
        }
        for (let i = 0; i < n; i++) {
          const s = pfn + i;
          if (open.has(s)) {
            want.push(`${s} ${open.get(s)} ${num(e.seq)}`);
            open.delete(s);
            if (e.event === 'mm_page_free_batched') batchedAlone++;
          } else if (e.event === 'mm_page_free_batched' && freed.has(s)) batchedAfterFree++;
          else if (i === 0) want.push(`${s} - ${num(e.seq)}`);
          freed.add(s);
        }
      }
      for (const [pfn, seq] of open) want.push(`${pfn} ${seq} -`);
      const got = (await rows('SELECT pfn, alloc_seq, free_seq FROM pages WHERE trace_id = $1', cap)).map(
        (r) => `${num(r.pfn)} ${r.alloc_seq === null ? '-' : num(r.alloc_seq)} ${r.free_seq === null ? '-' : num(r.free_seq)}`,
      );
      assert.equal(got.length, want.length, cap);
      assert.deepEqual(got.sort(), want.sort(), cap);
      const batched = ev.filter((e) => e.event === 'mm_page_free_batched').length;
      assert.equal(batchedAlone + batchedAfterFree, batched, `${cap}: every batched free accounted for`);
      const edges = await rows(
        `SELECT count(*) FILTER (WHERE start_edge AND alloc_seq IS NOT NULL) AS bad1, count(*) FILTER (WHERE end_edge AND free_seq IS NOT NULL) AS bad2,
           count(*) FILTER (WHERE alloc_seq IS NULL AND free_seq IS NULL) AS neither FROM pages WHERE trace_id = $1`, cap);
      assert.deepEqual([num(edges[0].bad1), num(edges[0].bad2), num(edges[0].neither)], [0, 0, 0]);
    }
    for (const cap of ['perf', 'tcmd', 'raw'] as Cap[]) {
      assert.equal(sums[cap].anomalies, 0, `${cap}: window edges are never leaks or anomalies`);
      assert.equal(sums[cap].pins + sums[cap].holds + sums[cap].cma_attempts + sums[cap].pgmaps, 0, cap);
    }
  });

  it('replaying again replaces the previous rows', async () => {
    const before = await rows('SELECT (SELECT count(*) FROM pages WHERE trace_id = $1) AS p, (SELECT count(*) FROM holds WHERE trace_id = $1) AS h', 'b');
    const s = await replay(db, ids.b, { holdThresholdNs: 2e9 });
    assert.equal(s.holds, 0, 'nothing held 2 s');
    const again = await replay(db, ids.b, {});
    const after = await rows('SELECT (SELECT count(*) FROM pages WHERE trace_id = $1) AS p, (SELECT count(*) FROM holds WHERE trace_id = $1) AS h', 'b');
    assert.deepEqual(after, before);
    assert.equal(again.pages, num(before[0].p));
    const runs = await rows('SELECT count(*) AS n FROM replay_runs WHERE trace_id = $1', 'b');
    assert.equal(num(runs[0].n), 1);
  });

  it('parses durations and pfn ranges', () => {
    assert.equal(parseDuration('1s'), 1e9);
    assert.equal(parseDuration('100ms'), 1e8);
    assert.equal(parseDuration('250us'), 250_000);
    assert.equal(parseDuration('2'), 2e9);
    assert.ok(Number.isNaN(parseDuration('soon')));
    assert.deepEqual(parsePfnRange('0x7bc00-0x7fc00'), { start: 0x7bc00, end: 0x7fc00 });
    assert.equal(parsePfnRange('10-5'), null);
  });
});

describe('replay: scenario generators against their truth', async () => {
  const gen = await import('../../samples/generate/file.js');
  // Every scenario against its truth: test/e2e/queries-scenarios.test.ts, on the databases its queries read.
  it('dax-pgmap(-leak) without pgmap probes: an inferred pgmap with the same balance as the probes give', async () => {
    const { generateToFile } = gen;
    for (const name of ['dax-pgmap', 'dax-pgmap-leak'] as const) {
      const file = join(dir, `${name}-noprobe.txt`);
      const truth = await generateToFile(name, file, { format: 'ftrace', seed: 3 });
      const s = await ingest(db, file, {});
      await db.run("DELETE FROM event_rows WHERE trace_id = $1 AND system IN ('pgmap', 'kprobe')", [s.trace_id]);
      await replay(db, s.trace_id, {});
      const p = await db.all<Row>('SELECT pgmap, gets, puts, outstanding_end, source FROM pgmaps WHERE trace_id = $1', [s.trace_id]);
      const t = truth.expect.pgmaps![0]!;
      assert.deepEqual(p.map((x) => [x.pgmap, num(x.gets), num(x.puts), num(x.outstanding_end), x.source]), [[null, t.gets, t.puts, t.outstanding_end, 'inferred']], name);
      if (name === 'dax-pgmap-leak') {
        const leaked = truth.expect.leaks![0]!.pfn;
        const pg = await db.all<Row>('SELECT zone_device, free_seq FROM pages WHERE trace_id = $1 AND pfn = $2', [s.trace_id, leaked]);
        assert.deepEqual(pg.map((x) => [x.zone_device, x.free_seq]), [[true, null]], 'the leaked device page is still out');
      }
    }
  });

  it('pin-leak with --movable-range over its pages: each FOLL_LONGTERM pin on ZONE_MOVABLE is a longterm_pin_in_cma error', async () => {
    const file = join(dir, 'pin-leak-movable.txt');
    await gen.generateToFile('pin-leak', file, { format: 'ftrace', seed: 5 });
    const s = await ingest(db, file, {});
    const q = 'SELECT pfn, severity, certain FROM anomalies WHERE trace_id = $1 AND kind = $2 ORDER BY pfn';
    await replay(db, s.trace_id, {});
    assert.deepEqual(await db.all(q, [s.trace_id, 'longterm_pin_in_cma']), [], 'without ranges nothing says the pages are in ZONE_MOVABLE');
    const pins = await db.all<Row>('SELECT DISTINCT pfn FROM pins WHERE trace_id = $1 AND longterm ORDER BY pfn', [s.trace_id]);
    assert.equal(pins.length, 8);
    const lo = num(pins[0].pfn);
    const hi = num(pins[pins.length - 1].pfn) + 1;
    await replay(db, s.trace_id, { movableRanges: [{ start: lo, end: hi }] });
    const a = await db.all<Row>(q, [s.trace_id, 'longterm_pin_in_cma']);
    assert.deepEqual(a.map((x) => [num(x.pfn), x.severity, x.certain]), pins.map((p) => [num(p.pfn), 'error', true]));
    const moved = await db.all<Row>('SELECT count(*) AS n FROM pins WHERE trace_id = $1 AND movable_zone', [s.trace_id]);
    assert.equal(num(moved[0].n), 8);
  });
});
