/**
 * References outstanding at the end of the trace and holders that exit (docs/model.md §15), on small hand-written
 * ftrace traces: a pin or pgmap reference is a leak only when its holder's process exited after taking it, certain
 * outside lost windows and the exit grace; an exit before the get (pid reuse) says nothing; a thread's pin belongs
 * to its thread group; a child forked after the get that outlives the holder may still hold it (not certain); the
 * queries (outstanding, pin-leaks, pgmap-imbalance, summary) say the same as the replay.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { replay } from '../../replay/replay.js';
import { runQuery, type ResultRow } from '../../queries/runner.js';
import { ftraceFile, ftraceLine } from '../lib/ftrace.js';

const VMEMMAP = 0xffd4000000000000n;
const page = (pfn: number): string => '0x' + (VMEMMAP + BigInt(pfn) * 64n).toString(16);


const ref = (pfn: number, count: number, val: number, extra = ''): string =>
  `pfn=0x${pfn.toString(16)} flags=uptodate|lru count=${count} mapcount=1 mapping=ff11000003d1d001 mt=1 val=${val}${extra}`;

type Who = [comm: string, pid: number, tgid: number, cpu: number];

class Trace {
  lines: string[] = [];
  us = 10_000_000;
  at(dt: number): this {
    this.us += dt;
    return this;
  }
  ev(who: Who, event: string, payload: string): this {
    this.lines.push(ftraceLine(who[0], who[1], who[2], who[3], this.us, event, payload));
    this.us += 1;
    return this;
  }
  /** Regular background so that no stretch of the trace looks like a silence. */
  tick(who: Who, n: number, every: number): this {
    for (let i = 0; i < n; i++) this.at(every).ev(who, 'tracing_mark_write', 'tick');
    return this;
  }
  fork(who: Who, child: Who): this {
    return this.ev(who, 'sched_process_fork', `comm=${who[0]} pid=${who[1]} child_comm=${child[0]} child_pid=${child[1]}`);
  }
  exit(who: Who, groupDead = ''): this {
    return this.ev(who, 'sched_process_exit', `comm=${who[0]} pid=${who[1]} prio=120${groupDead}`);
  }
  text(): string {
    return ftraceFile(this.lines);
  }
}

let dir: string;
let db: Db;
let n = 0;

async function run(t: Trace): Promise<number> {
  const file = join(dir, `t${n++}.txt`);
  writeFileSync(file, t.text());
  const s = await ingest(db, file, {});
  await replay(db, s.trace_id, {});
  return s.trace_id;
}
const q = (sql: string, id: number) => db.all<Record<string, unknown>>(sql, [id]);
const query = async (name: string, params: Record<string, unknown>): Promise<ResultRow[]> => (await runQuery(db, name, params)).rows;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-tasks-'));
  db = await Db.open(join(dir, 'u.duckdb'));
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('holders that exit', () => {
  const leader: Who = ['app', 300, 300, 0];
  const thread: Who = ['iou-wrk-300', 301, 300, 1];
  const live: Who = ['qemu', 400, 400, 1];
  const reused: Who = ['sh', 400, 400, 0];
  const bg: Who = ['bg', 500, 500, 0];
  const [A, B, C, D] = [0x6000, 0x6001, 0x6002, 0x6003];

  it('a pin is a leak only when its holder exited after pinning; alive, pid reuse and a recent exit are not certain', async () => {
    const t = new Trace()
      .exit(reused) // an earlier task with the live holder's pid: before its pin, it says nothing
      .ev(thread, 'page_ref_mod', ref(A, 1025, 1024)) // a thread of app pins A
      .ev(leader, 'page_ref_mod', ref(B, 1025, 1024)) // app pins B
      .ev(live, 'page_ref_mod', ref(C, 1025, 1024)) // qemu pins C and stays alive
      .tick(bg, 20, 10_000)
      .exit(thread, ' group_dead=false')
      .exit(leader, ' group_dead=true')
      .tick(bg, 30, 10_000); // 300 ms after the exit: past the 100 ms grace
    const id = await run(t);
    const a = await q("SELECT pfn, kind, certain, pid FROM anomalies WHERE trace_id = $1 ORDER BY pfn", id);
    assert.deepEqual(a.map((x) => [Number(x.pfn), x.kind, x.certain, x.pid]), [
      [A, 'pin_never_released', true, 301],
      [B, 'pin_never_released', true, 300],
    ]);
    const o = await query('outstanding', { trace_id: id, kind: 'pin' });
    assert.deepEqual(o.map((r) => [r.holder_pid, r.holder_state, r.leak, r.certain, (r.example_pfns as bigint[]).map(Number)]), [
      [300, 'exited', true, true, [B]],
      [301, 'exited', true, true, [A]],
      [400, 'alive', false, false, [C]],
    ]);
    const pl = await query('pin-leaks', { trace_id: id });
    assert.deepEqual(pl.map((r) => [r.holder_pid, r.certain]).sort(), [[300, true], [301, true]]);
    const s = (await query('summary', { trace_id: id }))[0]!;
    assert.deepEqual([s.pin_leaks, s.pin_leaks_uncertain, s.outstanding_pins, s.outstanding_exited], [2n, 0n, 3n, 2n]);
  });

  it('an exit younger than the exit grace leaves the leak uncertain, in replay and in the queries', async () => {
    const t = new Trace()
      .ev(leader, 'page_ref_mod', ref(D, 1025, 1024))
      .tick(bg, 20, 10_000)
      .exit(leader)
      .tick(bg, 5, 10_000); // 50 ms
    const id = await run(t);
    const a = await q("SELECT kind, certain FROM anomalies WHERE trace_id = $1", id);
    assert.deepEqual(a.map((x) => [x.kind, x.certain]), [['pin_never_released', false]]);
    assert.deepEqual(await query('pin-leaks', { trace_id: id }), []);
    const unc = await query('pin-leaks', { trace_id: id, include_uncertain: true });
    assert.deepEqual(unc.map((r) => [r.holder_state, r.certain, r.lost]), [['exited', false, false]]);
    assert.equal((await query('pin-leaks', { trace_id: id, exit_grace_ns: '10ms' }))[0]!.certain, true);
  });

  it('a device page whose pgmap reference outlives its taker is pgmap_ref_never_released and a pgmap-imbalance problem', async () => {
    const pgmap = 'ff11000003c2f9c0';
    const dev = 0xfcf0010;
    const t = new Trace()
      .ev(leader, 'memremap_pages', `(memremap_pages+0x0/0x6a0) pgmap=0x${pgmap} nid=0 vmemmap_base=0xffd4000000000000 page_offset_base=0xff11000000000000`)
      .ev(leader, 'memremap_pages_ret', `(dmirror_allocate_chunk+0x1a3 <- memremap_pages) vaddr=0xff110fcf00000000`)
      .ev(leader, 'zone_device_page_init', `(zone_device_page_init+0x0/0x80) page=${page(dev)} pgmap=0x${pgmap}`)
      .ev(leader, 'page_ref_set', `pfn=0x${dev.toString(16)} flags=reserved count=1 mapcount=0 mapping=0000000000000000 mt=1 val=1`)
      .ev(live, 'zone_device_page_init', `(zone_device_page_init+0x0/0x80) page=${page(dev + 1)} pgmap=0x${pgmap}`)
      .ev(live, 'page_ref_set', `pfn=0x${(dev + 1).toString(16)} flags=reserved count=1 mapcount=0 mapping=0000000000000000 mt=1 val=1`)
      .tick(bg, 10, 10_000)
      .exit(leader)
      .tick(bg, 30, 10_000);
    const id = await run(t);
    const a = await q("SELECT pfn, kind, certain, pid FROM anomalies WHERE trace_id = $1 AND kind = 'pgmap_ref_never_released'", id);
    assert.deepEqual(a.map((x) => [Number(x.pfn), x.certain, x.pid]), [[dev, true, 300]]);
    const o = await query('outstanding', { trace_id: id, kind: 'pgmap' });
    assert.deepEqual(o.map((r) => [r.holder_pid, r.holder_state, r.leak, r.certain, r.pgmap]), [
      [300, 'exited', true, true, '0x' + pgmap],
      [400, 'alive', false, false, '0x' + pgmap],
    ]);
    const pg = await query('pgmap-imbalance', { trace_id: id });
    assert.deepEqual(pg.map((r) => [r.problems, n2(r.refs_leaked), r.certain]), [['refs_of_exited_holder', 1, true]]);
    const s = (await query('summary', { trace_id: id }))[0]!;
    assert.deepEqual([s.pgmap_imbalance, s.outstanding_pgmap_refs], [1n, 2n]);
  });

  it('a holder that forked after the get: a live child (or grandchild) may still hold the reference, not certain', async () => {
    const h1: Who = ['app', 300, 300, 0]; // pins A, forks c1 after: c1 alive at the end -> uncertain
    const c1: Who = ['app', 310, 310, 1];
    const h2: Who = ['app2', 320, 320, 0]; // forks c2 before pinning B: c2 says nothing -> certain
    const c2: Who = ['app2', 330, 330, 1];
    const h3: Who = ['app3', 340, 340, 0]; // pins C, forks c3, c3 forks g3; all exit, the last > grace before the end -> certain
    const c3: Who = ['app3', 350, 350, 1];
    const g3: Who = ['app3', 360, 360, 0];
    const h4: Who = ['app4', 370, 370, 0]; // pins D, forks c4, c4 forks g4; c4 and h4 exit, g4 alive -> uncertain
    const c4: Who = ['app4', 380, 380, 1];
    const g4: Who = ['app4', 390, 390, 0];
    const E = 0x6004;
    const t = new Trace()
      .fork(h2, c2)
      .ev(h1, 'page_ref_mod', ref(A, 1025, 1024))
      .ev(h2, 'page_ref_mod', ref(B, 1025, 1024))
      .ev(h3, 'page_ref_mod', ref(C, 1025, 1024))
      .ev(h4, 'page_ref_mod', ref(D, 1025, 1024))
      .fork(h1, c1)
      .fork(h3, c3)
      .fork(c3, g3)
      .fork(h4, c4)
      .fork(c4, g4)
      .tick(bg, 10, 10_000)
      .exit(c3)
      .exit(c4)
      .exit(h1)
      .exit(h2)
      .exit(h3)
      .exit(h4)
      .tick(bg, 5, 10_000)
      .exit(g3) // 50 ms after h3: the last exit is what the grace applies to
      .ev(h1, 'page_ref_mod', ref(E, 2, 1)) // a live task's get, nothing to do with them
      .tick(bg, 30, 10_000);
    const id = await run(t);
    const a = await q("SELECT pfn, certain, detail FROM anomalies WHERE trace_id = $1 AND kind = 'pin_never_released' ORDER BY pfn", id);
    assert.deepEqual(a.map((x) => [Number(x.pfn), x.certain]), [[A, false], [B, true], [C, true], [D, false]]);
    assert.match(String(a[0]!.detail), /pid 310, forked from it after the pin, did not exit: a child may still hold it/);
    assert.match(String(a[3]!.detail), /pid 390, forked from it after the pin, did not exit/);
    const o = await query('outstanding', { trace_id: id, kind: 'pin' });
    assert.deepEqual(o.map((r) => [r.holder_pid, r.leak, r.certain]).sort(), [[300, true, false], [320, true, true], [340, true, true], [370, true, false]]);
    const pl = await query('pin-leaks', { trace_id: id, include_uncertain: true });
    assert.deepEqual(pl.map((r) => [r.holder_pid, r.certain]).sort(), [[300, false], [320, true], [340, true], [370, false]]);
    const s = (await query('summary', { trace_id: id }))[0]!;
    assert.deepEqual([s.pin_leaks, s.pin_leaks_uncertain], [2n, 2n]);
    // The grace applies to the last exit: with a 60 ms grace g3's exit (≈50 ms before h3's + 300 ms) still counts.
    const late = await query('pin-leaks', { trace_id: id, include_uncertain: true, exit_grace_ns: '320ms' });
    assert.deepEqual(late.map((r) => [r.holder_pid, r.certain]).sort(), [[300, false], [320, true], [340, false], [370, false]]);
  });

  it('a pgmap reference whose taker forked a child that outlives it is not certain, in replay and pgmap-imbalance', async () => {
    const pgmap = 'ff11000003c2f9c0';
    const dev = 0xfcf0010;
    const child: Who = ['app', 310, 310, 1];
    const t = new Trace()
      .ev(leader, 'memremap_pages', `(memremap_pages+0x0/0x6a0) pgmap=0x${pgmap} nid=0 vmemmap_base=0xffd4000000000000 page_offset_base=0xff11000000000000`)
      .ev(leader, 'memremap_pages_ret', `(dmirror_allocate_chunk+0x1a3 <- memremap_pages) vaddr=0xff110fcf00000000`)
      .ev(leader, 'zone_device_page_init', `(zone_device_page_init+0x0/0x80) page=${page(dev)} pgmap=0x${pgmap}`)
      .ev(leader, 'page_ref_set', `pfn=0x${dev.toString(16)} flags=reserved count=1 mapcount=0 mapping=0000000000000000 mt=1 val=1`)
      .fork(leader, child)
      .tick(bg, 10, 10_000)
      .exit(leader)
      .tick(bg, 30, 10_000);
    const id = await run(t);
    const a = await q("SELECT certain, detail FROM anomalies WHERE trace_id = $1 AND kind = 'pgmap_ref_never_released'", id);
    assert.deepEqual(a.map((x) => x.certain), [false]);
    assert.match(String(a[0]!.detail), /pid 310, forked from it after the get, did not exit/);
    const o = await query('outstanding', { trace_id: id, kind: 'pgmap' });
    assert.deepEqual(o.map((r) => [r.holder_pid, r.leak, r.certain]), [[300, true, false]]);
    assert.deepEqual(await query('pgmap-imbalance', { trace_id: id }), []);
    const pg = await query('pgmap-imbalance', { trace_id: id, include_uncertain: true });
    assert.deepEqual(pg.map((r) => [r.problems, n2(r.refs_leaked), r.certain]), [['refs_of_exited_holder', 1, false]]);
  });
});

const n2 = (v: unknown): number => Number(v as bigint);
