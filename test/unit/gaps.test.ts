/**
 * Untraced windows (replay/gaps.ts, docs/model.md §16) on small hand-written 6.1-style ftrace traces: count= on a
 * freed pfn decides between an untraced allocation and a real bug; a count jump nothing explains makes the page
 * uncertain (a concurrent re-read does not); a long silence is a window only when a page after it shows missed events.
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

const line = (comm: string, pid: number, cpu: number, us: number, event: string, payload: string): string =>
  ftraceLine(comm, pid, pid, cpu, us, event, payload);

const ref = (pfn: number, count: number, val: number, extra = ''): string =>
  `pfn=0x${pfn.toString(16)} flags=uptodate|lru count=${count} mapcount=0 mapping=0000000000000000 mt=1 val=${val}${extra}`;
const kmem = (pfn: number): string => `page=0x${(0xffd4000000000000n + BigInt(pfn) * 64n).toString(16)} pfn=0x${pfn.toString(16)} order=0`;

type Who = [string, number, number];
const W0: Who = ['work', 100, 0];
const W1: Who = ['other', 200, 1];

class Trace {
  lines: string[] = [];
  us = 10_000_000;
  at(dt: number): this {
    this.us += dt;
    return this;
  }
  ev(event: string, payload: string, who: Who = W0): this {
    this.lines.push(line(who[0], who[1], who[2], this.us, event, payload));
    this.us += 10;
    return this;
  }
  /** page_ref_set + mm_page_alloc (count 1). */
  alloc(pfn: number, who: Who = W0): this {
    return this.ev('page_ref_set', ref(pfn, 1, 1), who).ev('mm_page_alloc', `${kmem(pfn)} migratetype=1 gfp_flags=GFP_KERNEL`, who);
  }
  /** The put to 0 and mm_page_free. */
  free(pfn: number, who: Who = W0): this {
    return this.ev('page_ref_mod_and_test', ref(pfn, 0, -1, ' ret=1'), who).ev('mm_page_free', kmem(pfn), who);
  }
  /** Unrelated traffic: `n` gets and puts on `pfn` (alive, count 1), 10 µs apart. */
  busy(pfn: number, n: number): this {
    for (let i = 0; i < n; i++) this.ev('page_ref_mod', ref(pfn, 2, 1)).ev('page_ref_mod_and_test', ref(pfn, 1, -1, ' ret=0'));
    return this;
  }
  text(): string {
    return ftraceFile(this.lines);
  }
}

let dir: string;
let db: Db;
let k = 0;

async function run(t: Trace): Promise<{ id: number; s: ReplaySummary }> {
  const file = join(dir, `g${k++}.txt`);
  writeFileSync(file, t.text());
  const s = await ingest(db, file, {});
  return { id: s.trace_id, s: await replay(db, s.trace_id, {}) };
}

const q = (sql: string, id: number) => db.all<Record<string, unknown>>(sql, [id]);
const gaps = async (id: number) => (await q('SELECT kind, pfn FROM gaps WHERE trace_id = $1 ORDER BY seq', id)).map((r) => [r.kind, r.pfn === null ? null : Number(r.pfn)]);
const anomalies = async (id: number) => (await q('SELECT kind, pfn, certain FROM anomalies WHERE trace_id = $1 ORDER BY seq', id)).map((r) => [r.kind, Number(r.pfn), r.certain]);
const uncertain = async (id: number, pfn: number) =>
  (await db.all<Record<string, unknown>>("SELECT uncertain FROM pages WHERE trace_id = $1 AND pfn = $2 ORDER BY first_seq", [id, pfn])).map((r) => r.uncertain);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-gaps-'));
  db = await Db.open(join(dir, 'g.duckdb'));
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('untraced windows', () => {
  it('count= on a freed pfn: prior > 0 is an untraced allocation, prior 0 is the bug', async () => {
    const [D, E, F, G] = [0x5000, 0x5001, 0x5002, 0x5003];
    const t = new Trace().alloc(D).alloc(E).alloc(F).alloc(G).free(D).free(E).free(F).free(G)
      .ev('page_ref_mod_and_test', ref(D, -1, -1, ' ret=0')) // a put on a free page: underflow
      .ev('page_ref_mod_and_test', ref(E, 0, -1, ' ret=1')) // count 1 before it: E was allocated unseen
      .ev('mm_page_free', kmem(E))
      .ev('page_ref_mod', ref(F, 1, 1)) // a get on a free page: 0 -> 1
      .ev('page_ref_mod', ref(G, 3, 1)); // 2 before it: G was allocated unseen
    const { id, s } = await run(t);
    assert.deepEqual(await anomalies(id), [['refcount_underflow', D, true], ['ref_after_free', F, true]]);
    assert.deepEqual(await gaps(id), [['alive-on-free', E], ['alive-on-free', G]]);
    assert.deepEqual(await uncertain(id, E), [false, true], 'the lifetime after the untraced allocation is uncertain');
    assert.equal(s.gaps, 2);
    assert.deepEqual(s.gap_kinds, { 'alive-on-free': 2 });
  });

  it('a count jump nothing explains: a count-jump gap, the page uncertain; a concurrent re-read is neither', async () => {
    const [A, B, C] = [0x6000, 0x6001, 0x6002];
    const t = new Trace().alloc(A).alloc(B).alloc(C)
      .ev('page_ref_mod', ref(A, 2, 1))
      .ev('page_ref_mod', ref(A, 5, 1)) // expected 3
      .ev('page_ref_mod_and_test', ref(A, 4, -1, ' ret=0'))
      .ev('page_ref_mod', ref(B, 2, 1))
      .ev('page_ref_mod', ref(C, 3, 1), W0) // re-read after CPU 1's get below: expected 2
      .ev('page_ref_mod', ref(C, 3, 1), W1);
    const { id } = await run(t);
    const d = await q('SELECT pfn, explanation FROM divergences WHERE trace_id = $1 ORDER BY seq', id);
    assert.deepEqual(d.map((r) => [Number(r.pfn), r.explanation]), [[A, 'unknown'], [C, 'concurrent']]);
    assert.deepEqual(await gaps(id), [['count-jump', A]]);
    assert.deepEqual([await uncertain(id, A), await uncertain(id, B), await uncertain(id, C)], [[true], [false], [false]]);
  });

  it('pins and holds open on a page when it shows untraced events become uncertain; those opened after stay certain', async () => {
    const [A, B, E] = [0x6100, 0x6101, 0x6102];
    const cma = (ev: string, payload: string) => t.ev(ev, payload, ['cma_block', 352, 1]);
    const t = new Trace().alloc(A).alloc(B).alloc(E)
      .ev('page_ref_mod', ref(A, 1025, 1024)) // pin 1 (W0)
      .ev('page_ref_mod', ref(A, 1026, 1), W1) // hold 1 (W1)
      .ev('page_ref_mod', ref(A, 1030, 1)) // expected 1027: untraced events on A (count-jump); hold 2, on that observed get
      .ev('page_ref_mod', ref(A, 2054, 1024)) // pin 2: after the evidence
      .ev('page_ref_mod', ref(B, 1025, 1024)) // pin 3
      .ev('page_ref_mod', ref(B, 1026, 1), W1) // hold 3
      .ev('page_ref_mod', ref(B, 1028, 1)) // expected 1027: re-read after CPU 1's get below...
      .ev('page_ref_mod', ref(B, 1028, 1), W1) // ...so a concurrent op: nothing untraced, B keeps its certainty
      .free(E)
      .ev('page_ref_mod', ref(E, 3, 1)) // alive-on-free: the free closed everything E held; hold 6 opened after
      .ev('page_ref_mod', ref(E, 1027, 1024)); // pin 4, after the evidence
    cma('cma_alloc_start', 'name=reserved request_count=4 available_count=8096 total_count=8192 align=0');
    cma('test_pages_isolated', `start_pfn=0x${A.toString(16)} end_pfn=0x${(A + 4).toString(16)} fin_pfn=0x${A.toString(16)} ret=fail`);
    cma('cma_alloc_finish', `name=reserved pfn=0x${A.toString(16)} page=0000000000000000 count=4 align=0`);
    const { id } = await run(t);
    assert.deepEqual(await gaps(id), [['count-jump', A], ['alive-on-free', E]]);
    const rows = async (sql: string) => (await q(sql, id)).map((r) => [Number(r.pfn), Number(r.pid), r.uncertain]);
    assert.deepEqual(await rows('SELECT pfn, holder_pid AS pid, uncertain FROM pins WHERE trace_id = $1 ORDER BY start_seq'),
      [[A, 100, true], [A, 100, false], [B, 100, false], [E, 100, false]], 'pin 1 was open at the count jump; the others were not, or it was concurrent');
    assert.deepEqual(await rows('SELECT pfn, holder_pid AS pid, uncertain FROM holds WHERE trace_id = $1 ORDER BY start_seq'),
      [[A, 200, true], [A, 100, false], [B, 200, false], [B, 100, false], [B, 200, false], [E, 100, false]]);
    assert.deepEqual(
      await rows(`SELECT pfn, holder_pid AS pid, uncertain FROM cma_blockers WHERE trace_id = $1 AND pfn = ${A} AND holder_kind <> 'unknown' ORDER BY since_ts_ns`),
      [[A, 100, true], [A, 200, true], [A, 100, false], [A, 100, false]], 'blockers resting on pin 1 and hold 1 are uncertain');
  });

  it('a GUP-fast pin whose halves straddle the evidence began before it: uncertain', async () => {
    const P = 0x6110;
    const t = new Trace().alloc(P)
      .ev('page_ref_mod', ref(P, 2, 1)) // W0's first half (+1): a tentative hold
      .ev('page_ref_mod', ref(P, 6, 1), W1) // expected 3: untraced events on P; W1's hold rests on this observed get
      .ev('page_ref_mod', ref(P, 1029, 1023)) // W0's second half: the pin taken at its first half
      .at(200_000).alloc(P + 1); // the trace ends 200 ms later: the hold is long enough to be written
    const { id } = await run(t);
    assert.deepEqual(await gaps(id), [['count-jump', P]]);
    assert.deepEqual((await q('SELECT holder_pid, uncertain FROM pins WHERE trace_id = $1', id)).map((r) => [Number(r.holder_pid), r.uncertain]), [[100, true]]);
    assert.deepEqual((await q('SELECT holder_pid, uncertain FROM holds WHERE trace_id = $1', id)).map((r) => [Number(r.holder_pid), r.uncertain]), [[200, false]]);
  });

  it('a lost-event window between the halves of a GUP-fast pin touches the pin (it began at its first half)', async () => {
    const pinWith = async (lostBetween: boolean): Promise<boolean> => {
      const P = 0x6130;
      const t = new Trace().alloc(P);
      if (!lostBetween) t.lines.push('CPU:0 [LOST 3 EVENTS]');
      t.ev('page_ref_mod', ref(P, 2, 1)); // first half (+1)
      if (lostBetween) t.lines.push('CPU:0 [LOST 3 EVENTS]');
      t.ev('page_ref_mod', ref(P, 1025, 1023)).ev('page_ref_mod', ref(P, 2, -1023)).ev('page_ref_mod_and_test', ref(P, 1, -1, ' ret=0'));
      const { id } = await run(t);
      const r = await q('SELECT uncertain FROM pins WHERE trace_id = $1', id);
      assert.equal(r.length, 1);
      return r[0]!.uncertain as boolean;
    };
    assert.equal(await pinWith(true), true, 'the window fell inside the pin');
    assert.equal(await pinWith(false), false, 'the window came before the pin began');
  });

  it('a pin open across a count jump: freed_while_pinned about it is uncertain', async () => {
    const [P, Q] = [0x6120, 0x6121];
    const t = new Trace().alloc(P).alloc(Q)
      .ev('page_ref_mod', ref(P, 1025, 1024))
      .ev('page_ref_mod', ref(P, 1030, 1)) // expected 1026: untraced events on P
      .ev('mm_page_free', kmem(P))
      .ev('page_ref_mod', ref(Q, 1025, 1024))
      .ev('mm_page_free', kmem(Q)); // the same with every event observed: certain
    const { id } = await run(t);
    assert.deepEqual(await anomalies(id), [['freed_while_pinned', P, false], ['freed_while_pinned', Q, true]]);
  });

  it('a long silence alone is a quiet system, not a window', async () => {
    const [P, Q] = [0x7000, 0x7001];
    const t = new Trace().alloc(P).alloc(Q).busy(P, 50).free(Q).at(5_000_000).busy(P, 50);
    const { id, s } = await run(t);
    assert.deepEqual(await gaps(id), []);
    assert.deepEqual(await uncertain(id, P), [false]);
    assert.equal(s.gaps, 0);
  });

  it('a long silence after which a page shows missed events is a window of every CPU', async () => {
    const [P, Q] = [0x7000, 0x7001];
    const t = new Trace().alloc(P).alloc(Q).busy(P, 50).free(Q).at(5_000_000).busy(P, 50)
      .ev('page_ref_mod_and_test', ref(Q, 0, -1, ' ret=1')) // Q allocated again while tracing was off
      .ev('mm_page_free', kmem(Q));
    const { id, s } = await run(t);
    const g = await q('SELECT kind, pfn, evidence FROM gaps WHERE trace_id = $1', id);
    assert.deepEqual(g.map((r) => [r.kind, r.pfn]), [['silence', null]], "the silence explains Q's evidence: no page row of its own");
    assert.match(String(g[0]!.evidence), /^no event for 5\.\d+ s .*; 1 page after it shows untraced events$/);
    assert.deepEqual(await anomalies(id), []);
    assert.deepEqual(await uncertain(id, P), [true], 'P crossed the window');
    assert.deepEqual(s.gap_kinds, { silence: 1 });
  });
});
