/**
 * Replay semantics on small hand-written 6.1-style ftrace traces: frees and references after them, lost-event
 * windows, the -1023/-1 unpin pair, puts that unmap, and device pages whose pgmap reference is never dropped.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { replay, type ReplaySummary } from '../../replay/replay.js';
import { ftraceFile, ftraceLine } from '../lib/ftrace.js';

const VMEMMAP = 0xffd4000000000000n;
const page = (pfn: number): string => '0x' + (VMEMMAP + BigInt(pfn) * 64n).toString(16);

/** One ftrace line (record-tgid layout) at `us` microseconds. */
const line = (comm: string, pid: number, cpu: number, us: number, event: string, payload: string): string =>
  ftraceLine(comm, pid, pid, cpu, us, event, payload);

const ref = (pfn: number, count: number, val: number, extra = '', mapcount = 1, mt = 1): string =>
  `pfn=0x${pfn.toString(16)} flags=uptodate|lru count=${count} mapcount=${mapcount} mapping=ff11000003d1d001 mt=${mt} val=${val}${extra}`;

class Trace {
  lines: string[] = [];
  us = 10_000_000;
  private lost = 0;
  at(dt: number): this {
    this.us += dt;
    return this;
  }
  ev(event: string, payload: string, who: [string, number, number] = ['work', 100, 0]): this {
    this.lines.push(line(who[0], who[1], who[2], this.us, event, payload));
    this.us += 1;
    return this;
  }
  /** A `<stack trace>` block for the event just written (frames innermost first). */
  stack(frames: string[], who: [string, number, number] = ['work', 100, 0]): this {
    this.lines.push(line(who[0], who[1], who[2], this.us - 1, '<stack trace>', '').replace(/: $/, ''), ...frames.map((f) => ` => ${f}`));
    return this;
  }
  lostMarker(cpu: number, n: number): this {
    this.lines.push(`CPU:${cpu} [LOST ${n} EVENTS]`);
    this.lost += n;
    return this;
  }
  text(): string {
    const n = this.lines.filter((l) => !l.startsWith('CPU:')).length;
    return ftraceFile(this.lines, n, n + this.lost);
  }
}

let dir: string;
let db: Db;
let n = 0;

async function run(t: Trace): Promise<{ id: number; s: ReplaySummary }> {
  const file = join(dir, `t${n++}.txt`);
  writeFileSync(file, t.text());
  const s = await ingest(db, file, {});
  return { id: s.trace_id, s: await replay(db, s.trace_id, {}) };
}

const q = (sql: string, id: number) => db.all<Record<string, unknown>>(sql, [id]);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-replay-units-'));
  db = await Db.open(join(dir, 'u.duckdb'));
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('replay semantics', () => {
  it('a get after the free is ref_after_free; a failed speculative get is not', async () => {
    const P = 0x5000;
    const t = new Trace()
      .ev('page_ref_set', ref(P, 1, 1, '', 0))
      .ev('mm_page_alloc', `page=ffd4000000140000 pfn=0x${P.toString(16)} order=0 migratetype=1 gfp_flags=GFP_KERNEL`)
      .ev('page_ref_mod_and_test', ref(P, 0, -1, ' ret=1', 0))
      .ev('mm_page_free', `page=ffd4000000140000 pfn=0x${P.toString(16)} order=0`)
      .ev('mm_page_free_batched', `page=ffd4000000140000 pfn=0x${P.toString(16)} order=0`)
      .ev('page_ref_mod_unless', ref(P, 0, 1, ' ret=0', 0), ['kswapd0', 60, 1])
      .at(500)
      .ev('page_ref_mod', ref(P, 1, 1, '', 0), ['buggy', 200, 1]);
    const { id, s } = await run(t);
    const a = await q('SELECT kind, pfn, certain, pid FROM anomalies WHERE trace_id = $1', id);
    assert.deepEqual(a.map((x) => [x.kind, Number(x.pfn), x.certain, x.pid]), [['ref_after_free', P, true, 200]]);
    const pages = await q('SELECT alloc_event, free_event, start_edge FROM pages WHERE trace_id = $1 ORDER BY first_seq', id);
    assert.deepEqual(pages.map((x) => [x.alloc_event, x.free_event, x.start_edge]), [
      ['mm_page_alloc', 'mm_page_free', false],
      [null, null, true],
    ], 'the batched event is the same free; the bad get starts an unknown lifetime');
    assert.equal(s.agreed, s.checked);
  });

  it('a lost-event window makes uncertain what its CPU touched: pins, holds, lifetimes and the counts checked after it', async () => {
    // CPU 1 loses events. P is pinned on CPU 1; R and S on CPU 0, but S is touched on CPU 1 after the window (its
    // span covers it); Q and T take a get on CPU 0; after the window Q's count diverges on CPU 1 and T's on CPU 0.
    const [P, Q, R, S, T] = [0x6000, 0x6001, 0x6002, 0x6003, 0x6004];
    const cpu1: [string, number, number] = ['work', 100, 1];
    const cpu0: [string, number, number] = ['bg', 101, 0];
    const t = new Trace()
      .ev('page_ref_mod', ref(P, 1025, 1024), cpu1)
      .ev('page_ref_mod', ref(R, 1025, 1024), cpu0)
      .ev('page_ref_mod', ref(S, 1025, 1024), cpu0)
      .ev('page_ref_mod', ref(Q, 2, 1), cpu0)
      .ev('page_ref_mod', ref(T, 2, 1), cpu0)
      .at(1000)
      .lostMarker(1, 64)
      .ev('page_ref_mod', ref(Q, 7, 1), cpu1)
      .ev('page_ref_mod', ref(S, 1026, 1), cpu1)
      .ev('page_ref_mod', ref(R, 1026, 1), cpu0)
      .ev('page_ref_mod', ref(T, 5, 1), cpu0)
      // The holders exit, well before the end (a pin outstanding at the end is an anomaly only then).
      .ev('sched_process_exit', 'comm=work pid=100 prio=120', cpu1)
      .ev('sched_process_exit', 'comm=bg pid=101 prio=120', cpu0)
      .at(200_000)
      .ev('tracing_mark_write', 'end', cpu0);
    const { id, s } = await run(t);
    const pins = await q('SELECT pfn, end_seq, uncertain FROM pins WHERE trace_id = $1 ORDER BY pfn', id);
    assert.deepEqual(pins.map((x) => [Number(x.pfn), x.end_seq, x.uncertain]), [[P, null, true], [R, null, false], [S, null, true]]);
    const a = await q('SELECT pfn, kind, certain FROM anomalies WHERE trace_id = $1 ORDER BY pfn', id);
    assert.deepEqual(a.map((x) => [Number(x.pfn), x.kind, x.certain]), [
      [P, 'pin_never_released', false],
      [R, 'pin_never_released', true],
      [S, 'pin_never_released', false],
    ]);
    const d = await q('SELECT pfn, expected, printed, in_lost_window, explanation FROM divergences WHERE trace_id = $1 ORDER BY pfn', id);
    assert.deepEqual(d.map((x) => [Number(x.pfn), x.expected, x.printed, x.in_lost_window, x.explanation]), [
      [Q, 3, 7, true, 'lost'],
      [T, 3, 5, true, 'lost'],
    ], "T was never seen on CPU 1, but its count shows the lost events touched it");
    const pages = await q('SELECT pfn, uncertain FROM pages WHERE trace_id = $1 ORDER BY pfn', id);
    assert.deepEqual(pages.map((x) => [Number(x.pfn), x.uncertain]), [[P, true], [Q, true], [R, false], [S, true], [T, true]]);
    assert.equal(s.lost_markers, 1);
    assert.deepEqual([s.checked, s.agreed, s.checked_outside_lost, s.agreed_outside_lost], [4, 2, 1, 1], "only R's second event is checked outside");
  });

  it('the +1/+1023 pair opens a pin and the -1023/-1 pair closes it, from the first to the last event', async () => {
    const P = 0x7000;
    const t = new Trace()
      .ev('page_ref_mod_unless', ref(P, 2, 1, ' ret=1'))
      .ev('page_ref_mod', ref(P, 1025, 1023))
      .at(2000)
      .ev('page_ref_mod', ref(P, 2, -1023))
      .ev('page_ref_mod_and_test', ref(P, 1, -1, ' ret=0'));
    const { id } = await run(t);
    const pins = await q('SELECT refs, start_seq, end_seq, duration_ns FROM pins WHERE trace_id = $1', id);
    assert.deepEqual(pins.map((x) => [x.refs, Number(x.start_seq), Number(x.end_seq)]), [[1, 0, 3]]);
    assert.equal(Number(pins[0].duration_ns), 2_003_000, 'from the +1 to the -1');
    const holds = await q('SELECT count(*) AS n FROM holds WHERE trace_id = $1', id);
    assert.equal(Number(holds[0].n), 0, 'the +1 of the pair is not a hold');
  });

  it('a put that unmaps returns the mapping reference; the get stays held until the last put', async () => {
    const P = 0x8000;
    const t = new Trace()
      .ev('page_ref_mod_unless', ref(P, 2, 1, ' ret=1', 1), ['holder', 300, 0])
      .at(10)
      .ev('page_ref_mod_and_test', ref(P, 1, -1, ' ret=0', 0), ['holder', 300, 0])
      .at(200_000)
      .ev('page_ref_mod_and_test', ref(P, 0, -1, ' ret=1', 0), ['drainer', 301, 1]);
    const { id } = await run(t);
    const h = await q('SELECT holder_pid, release_pid, duration_ns, end_seq FROM holds WHERE trace_id = $1', id);
    assert.deepEqual(h.map((x) => [x.holder_pid, x.release_pid, Number(x.end_seq)]), [[300, 301, 2]]);
    assert.equal(Number(h[0].duration_ns), 200_012_000);
  });

  it('refcount_not_baseline: a get nobody accounts for still held at the end, not GUP, page cache or in-flight references', async () => {
    const pg = (pfn: number, count: number, val: number, o: { mapcount?: number; flags?: string; mapping?: string; ret?: string } = {}): string =>
      `pfn=0x${pfn.toString(16)} flags=${o.flags ?? 'uptodate|lru|swapbacked'} count=${count} mapcount=${o.mapcount ?? 1} ` +
      `mapping=${o.mapping ?? 'ff11000003d1dd69'} mt=1 val=${val}${o.ret ?? ''}`;
    const [A, B, C, D, E] = [0xa000, 0xb000, 0xc000, 0xd000, 0xe000];
    const buggy: [string, number, number] = ['buggy', 200, 1];
    const t = new Trace();
    // A: mapped anon page; a driver's get_page is never put.
    t.ev('page_ref_mod', pg(A, 2, 1)).ev('page_ref_mod_and_test', pg(A, 1, -1, { ret: ' ret=0' }))
      .ev('page_ref_mod', pg(A, 2, 1), buggy).stack(['dmirror_snapshot_pte', 'walk_page_range', 'dmirror_ioctl'], buggy);
    // B: a FOLL_GET GUP reference (vmsplice) outlives the mapping: its holder is known.
    t.ev('page_ref_mod', pg(B, 1, 0)).ev('page_ref_mod_unless', pg(B, 2, 1, { ret: ' ret=1' }))
      .stack(['try_grab_folio', 'internal_get_user_pages_fast', 'iov_iter_get_pages2', '__do_sys_vmsplice'])
      .ev('page_ref_mod_and_test', pg(B, 1, -1, { mapcount: 0, ret: ' ret=0' }));
    // C: a new page-cache page: the cache and the buffer heads (private) keep a reference each.
    t.ev('page_ref_set', pg(C, 1, 1, { flags: 'none', mapcount: 0, mapping: '0000000000000000' }))
      .ev('page_ref_mod', pg(C, 2, 1, { flags: 'locked', mapcount: 0, mapping: '0000000000000000' }))
      .ev('page_ref_mod', pg(C, 3, 1, { flags: 'locked', mapcount: 0, mapping: 'ff1100000313a168' }))
      .ev('page_ref_mod', pg(C, 4, 1, { flags: 'locked', mapcount: 0, mapping: 'ff1100000313a168' }))
      .ev('page_ref_mod_and_test', pg(C, 3, -1, { flags: 'uptodate|private', mapcount: 0, mapping: 'ff1100000313a168', ret: ' ret=0' }))
      .ev('page_ref_mod_and_test', pg(C, 2, -1, { flags: 'uptodate|lru|private', mapcount: 0, mapping: 'ff1100000313a168', ret: ' ret=0' }));
    // E: a get returned half a second later.
    t.ev('page_ref_mod', pg(E, 1, 0)).ev('page_ref_mod', pg(E, 2, 1), buggy).at(500_000).ev('page_ref_mod_and_test', pg(E, 1, -1, { ret: ' ret=0' }), buggy);
    // D: a get in flight when the capture stops.
    t.ev('page_ref_mod', pg(D, 1, 0)).ev('page_ref_mod', pg(D, 2, 1), buggy).ev('page_ref_mod', pg(D + 1, 1, 0));
    const { id } = await run(t);
    const a = await q('SELECT kind, pfn, certain, pid, comm, seq, stack_id FROM anomalies WHERE trace_id = $1', id);
    assert.deepEqual(a.map((x) => [x.kind, Number(x.pfn), x.certain, x.pid, x.comm, Number(x.seq)]), [['refcount_not_baseline', A, true, 200, 'buggy', 2]]);
    assert.ok(a[0].stack_id !== null, 'the stack of the get that never returned');
  });

  it('a pin that follows a longterm_pin migration of its task is linked to it (1 s at most without kretprobes)', async () => {
    const [P, Q, R] = [0x7a00, 0x7a01, 0x7a02];
    const io: [string, number, number] = ['iouring_pin', 300, 0];
    const pinStack = ['try_grab_page', 'follow_page_pte', '__get_user_pages', '__gup_longterm_locked', 'pin_user_pages', 'io_sqe_buffers_register'];
    const t = new Trace()
      .ev('mm_migrate_pages', 'nr_succeeded=4 nr_failed=0 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 mode=MIGRATE_SYNC reason=longterm_pin', io)
      .at(10_000)
      .ev('page_ref_mod', ref(P, 1025, 1024), io).stack(pinStack, io)
      .ev('page_ref_mod', ref(R, 1025, 1024), ['other', 301, 1])
      .at(2_000_000)
      .ev('page_ref_mod', ref(Q, 1025, 1024), io).stack(pinStack, io);
    const { id } = await run(t);
    const pins = await q('SELECT pfn, longterm, migrate_seq FROM pins WHERE trace_id = $1 ORDER BY pfn', id);
    assert.deepEqual(pins.map((x) => [Number(x.pfn), x.longterm, x.migrate_seq === null ? null : Number(x.migrate_seq)]), [
      [P, true, 0],
      [Q, true, null],
      [R, null, null],
    ], 'P retries the migration; Q comes 2 s later; R is another task');
  });

  it('replay tables written by an older refscope (other columns) are dropped and recreated', async () => {
    let other = await Db.open(join(dir, 'old.duckdb'));
    try {
      const file = join(dir, 'old.txt');
      writeFileSync(file, new Trace().ev('page_ref_mod', ref(0x7b00, 1025, 1024)).text());
      const s = await ingest(other, file, {});
      await replay(other, s.trace_id, {});
      await other.run('ALTER TABLE pins DROP COLUMN migrate_seq');
      // Opened again, as the next refscope run opens a file an older one wrote (a Db checks its schema once).
      other.close();
      other = await Db.open(join(dir, 'old.duckdb'));
      const again = await replay(other, s.trace_id, {});
      assert.equal(again.pins, 1);
      const cols = await other.all<{ n: number }>("SELECT count(*)::INTEGER AS n FROM duckdb_columns() WHERE table_name = 'pins' AND column_name = 'migrate_seq'");
      assert.equal(cols[0].n, 1);
    } finally {
      other.close();
    }
  });

  it('events stored out of seq order are replayed in seq order; a caller transaction is refused clearly', async () => {
    const P = 0x9000;
    const t = new Trace();
    for (let i = 0; i < 50; i++) t.ev('page_ref_mod', ref(P + i, 1025, 1024)).at(1000).ev('page_ref_mod_and_test', ref(P + i, 1, -1024, ' ret=0'));
    const { id, s } = await run(t);
    // Rewrite the trace's rows in reverse seq order.
    await db.run('CREATE TEMP TABLE rev AS SELECT * FROM event_rows WHERE trace_id = $1 ORDER BY seq DESC', [id]);
    await db.run('DELETE FROM event_rows WHERE trace_id = $1', [id]);
    await db.run('INSERT INTO event_rows SELECT * FROM rev');
    await db.run('DROP TABLE rev');
    const again = await replay(db, id, {});
    assert.equal(again.pins, 50);
    assert.equal(again.checked, s.checked);
    assert.equal(again.agreed, again.checked);
    const pins = await q('SELECT count(*) AS n FROM pins WHERE trace_id = $1 AND end_seq = start_seq + 1', id);
    assert.equal(Number(pins[0].n), 50);
    await db.run('BEGIN TRANSACTION');
    try {
      await assert.rejects(replay(db, id, {}), /after the ingest transaction committed/);
    } finally {
      await db.run('ROLLBACK');
    }
  });

  it('a replay whose result rows were already being inserted: restarted, it ends with one copy of each row; failed, the previous results stay', async () => {
    // 40 000 pages freed during the stream: their rows go through the pages feed while events are still read.
    const t = new Trace();
    for (let i = 0; i < 40_000; i++) {
      const P = 0x100000 + i;
      t.ev('mm_page_alloc', `page=${page(P)} pfn=0x${P.toString(16)} order=0 migratetype=1 gfp_flags=GFP_KERNEL`)
        .ev('mm_page_free', `page=${page(P)} pfn=0x${P.toString(16)} order=0`);
    }
    t.ev('tracing_mark_write', 'capture done').ev('tracing_mark_write', 'really done');
    const { id, s } = await run(t);
    assert.equal(s.pages, 40_000);
    // The two markers at the end swap seq: the in-order stream meets that at its very end (OrderError) and the
    // replay restarts with ORDER BY seq.
    await db.run(
      `UPDATE event_rows SET seq = CASE WHEN seq = m THEN m - 1 ELSE m END FROM (SELECT max(seq) AS m FROM events WHERE trace_id = $1)
       WHERE trace_id = $1 AND seq IN (m - 1, m)`,
      [id],
    );
    const { TableFeed } = await import('../../db/feed.js');
    // Count the batches of pages rows handed to DuckDB: an attempt that completes hands 20 (40 000 rows / 2048).
    let handed = 0;
    const countedFill = TableFeed.prototype.fill;
    TableFeed.prototype.fill = function (this: InstanceType<typeof TableFeed>, out) {
      if (this.table.name === 'pages' && (this as unknown as { left: number }).left > 0) handed++;
      return countedFill.call(this, out);
    };
    let again: ReplaySummary;
    try {
      again = await replay(db, id, {});
    } finally {
      TableFeed.prototype.fill = countedFill;
    }
    // More than 20: the aborted attempt had inserted rows too, which its rollback removed.
    assert.ok(handed > 20, `${handed} batches of pages handed to DuckDB`);
    assert.equal(again.pages, 40_000);
    const rows = await q('SELECT count(*) AS n, count(DISTINCT pfn) AS d FROM pages WHERE trace_id = $1', id);
    assert.deepEqual([Number(rows[0].n), Number(rows[0].d)], [40_000, 40_000]);
    const runs = await q('SELECT count(*) AS n FROM replay_runs WHERE trace_id = $1', id);
    assert.equal(Number(runs[0].n), 1);

    // Inserts that fail half-way (from the third batch of pages on, in both attempts) fail the replay, which
    // leaves the last results.
    const before = await q('SELECT seconds FROM replay_runs WHERE trace_id = $1', id);
    const fill = TableFeed.prototype.fill;
    let fills = 0;
    TableFeed.prototype.fill = function (this: InstanceType<typeof TableFeed>, out) {
      if (this.table.name === 'pages' && ++fills >= 3) throw new Error('disk on fire');
      return fill.call(this, out);
    };
    try {
      await assert.rejects(replay(db, id, {}), /disk on fire/);
    } finally {
      TableFeed.prototype.fill = fill;
    }
    assert.deepEqual(await q('SELECT seconds FROM replay_runs WHERE trace_id = $1', id), before);
    const kept = await q('SELECT count(*) AS n FROM pages WHERE trace_id = $1', id);
    assert.equal(Number(kept[0].n), 40_000);
    // Nothing of the failed replay is left open: the next one runs.
    assert.equal((await replay(db, id, {})).pages, 40_000);
  });

  it('a device page whose refcount reaches 0 without free_zone_device_page is device_page_zero_without_put', async () => {
    const A = 0xfcfff00;
    const B = 0xfcfff01;
    const pg = '0xff11000003c2f9c0';
    const t = new Trace()
      .ev('memremap_pages', `(memremap_pages+0x0/0x650) pgmap=${pg} nid=0 vmemmap_base=0xffd4000000000000 page_offset_base=0xff11000000000000`, ['insmod', 50, 0])
      .ev('memremap_pages_ret', `(0xffffffffc0002373 <- memremap_pages) vaddr=0xff1100fcf0000000`, ['insmod', 50, 0]);
    for (const p of [A, B])
      t.ev('zone_device_page_init', `(zone_device_page_init+0x0/0xd0) page=${page(p)} pgmap=${pg}`).ev('page_ref_set', ref(p, 1, 1, '', 0));
    t.at(100)
      .ev('page_ref_mod_and_test', ref(A, 0, -1, ' ret=1', 0))
      .ev('free_zone_device_page', `(free_zone_device_page+0x0/0x140) page=${page(A)} pgmap=${pg}`)
      .ev('page_ref_mod_and_test', ref(B, 0, -1, ' ret=1', 0))
      .at(100)
      .ev('free_zone_device_page', `(free_zone_device_page+0x0/0x140) page=${page(A)} pgmap=${pg}`);
    const { id } = await run(t);
    const a = await q('SELECT kind, pfn, certain FROM anomalies WHERE trace_id = $1 ORDER BY kind', id);
    assert.deepEqual(a.map((x) => [x.kind, Number(x.pfn), x.certain]), [
      ['device_page_zero_without_put', B, true],
      ['pgmap_put_without_get', A, true],
    ]);
    const m = await q('SELECT gets, puts, puts_without_get, freed_without_put, pfn_start FROM pgmaps WHERE trace_id = $1', id);
    assert.deepEqual(m.map((x) => [Number(x.gets), Number(x.puts), Number(x.puts_without_get), Number(x.freed_without_put), Number(x.pfn_start)]), [
      [2, 2, 1, 1, 0xfcf0000],
    ]);
  });

  it('cma_alloc of ≈4.2 (no errorno): page= tells success, align= the alignment; also from the payload of an older database', async () => {
    // The ≈v4.2 format (docs/formats.md §3): `cma_alloc: pfn=%lx page=%p count=%u align=%u`, pfn hex without 0x.
    const t = new Trace()
      .ev('cma_alloc', `pfn=7bc00 page=${page(0x7bc00).slice(2)} count=16 align=4`, ['cma_test', 352, 1])
      .at(100)
      .ev('cma_alloc', 'pfn=ffffffffffffffff page=(null) count=64 align=6', ['cma_test', 352, 1]);
    const { id } = await run(t);
    const want = [[16, 4, true], [64, 6, false]];
    const got = async () =>
      (await q('SELECT request_count, align, succeeded FROM cma_attempts WHERE trace_id = $1 ORDER BY start_seq', id)).map((x) => [
        Number(x.request_count), x.align, x.succeeded,
      ]);
    assert.deepEqual(await got(), want);
    // A database ingested before align= and page= had columns: the same answers from the payload.
    await db.run('UPDATE event_rows SET "order" = NULL, ptr = NULL WHERE trace_id = $1', [id]);
    await replay(db, id, {});
    assert.deepEqual(await got(), want);
  });

  it('timestamps of a counter clock past 2^53 are written to pages exactly, carry between the 32-bit halves included', async () => {
    // trace_clock=counter / x86-tsc prints the raw counter: replay keeps times relative to the first one and adds it
    // back when writing. 9123456789012345678 = 0x7e9d... with a low word of 2293560142: +2001407154 carries.
    const base = 9123456789012345678n;
    const at = [base, base + 1000n, base + 2001407154n + 5n];
    const ln = (ts: bigint, ev: string, p: string) => `            bash-12621   [001] .....  ${ts}: ${ev}: ${p}`;
    const file = join(dir, `t${n++}.txt`);
    writeFileSync(
      file,
      [
        ln(at[0], 'mm_page_alloc', 'page=ffd4000000200000 pfn=0x8000 order=0 migratetype=1 gfp_flags=GFP_KERNEL'),
        ln(at[1], 'mm_page_alloc', 'page=ffd4000000200040 pfn=0x8001 order=0 migratetype=1 gfp_flags=GFP_KERNEL'),
        ln(at[2], 'mm_page_free', 'page=ffd4000000200000 pfn=0x8000 order=0'),
        '',
      ].join('\n'),
    );
    const id = (await ingest(db, file, {})).trace_id;
    await replay(db, id, {});
    const rows = await q('SELECT pfn, alloc_ts_ns::VARCHAR AS a, free_ts_ns::VARCHAR AS f FROM pages WHERE trace_id = $1 ORDER BY pfn', id);
    assert.deepEqual(rows.map((r) => [Number(r.pfn), r.a, r.f]), [
      [0x8000, String(at[0]), String(at[2])],
      [0x8001, String(at[1]), null],
    ]);
  });
});
