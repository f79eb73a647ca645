/**
 * The report leads with the story (issue #21): on the io_uring capture (samples/real/a-iouring-longterm, NOTES.md
 * section "a-iouring-longterm") the sessions query groups each ring's 1024 FOLL_LONGTERM pins into one session with
 * its releaser (ring 2 torn down by kworker/u4:0 via io_ring_exit_work), the THP pins of ring 3 get the call site
 * of the small-page pins, the report's first screen tells it, and on the captures with no certain finding no amber
 * verdict line comes from references of mapped or page-cache pages.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { runQuery, type ResultRow } from '../../queries/runner.js';
import { writeReport } from '../../reports/report.js';
import { type Cap } from '../lib/captures.js';
import { ALL_REAL, openFixture, realIds, replayedDb } from '../lib/fixtures.js';

/** The real captures with page_ref events and no certain finding and long references (c-cma-blocked has CMA blockers, e-mixed no reference held over 1 s). */
const CLEAN: Cap[] = ['a', 'b', 'd'];

let dir: string;
let db: Db;
const ids: Partial<Record<Cap, number>> = {};

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-story-'));
  // The real captures ingested and replayed (by replay.test.ts; test/lib/fixtures.ts keeps the database).
  const all = await replayedDb(ALL_REAL);
  db = await openFixture(all);
  for (const k of CLEAN) ids[k] = realIds(all)[k];
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const q = async (name: string, params: Record<string, unknown>): Promise<ResultRow[]> =>
  (await runQuery(db, name, params as never)).rows;
const num = (v: unknown) => Number(v);

describe('story of the io_uring capture', () => {
  it('sessions: each ring is one session of 1024 FOLL_LONGTERM pins by iouring_pin/234; ring 2 released by kworker/u4:0 (pid 9) via io_ring_exit_work', async () => {
    const pins = (await q('sessions', { trace_id: ids.a })).filter((r) => r.kind === 'pin');
    assert.equal(pins.length, 3, pins.map((r) => `${r.start_ts_ns}:${r.refs_taken}`).join(' '));
    for (const r of pins) {
      assert.equal(r.longterm, true);
      assert.equal(num(r.refs_taken), 1024);
      assert.equal(r.holder_comm, 'iouring_pin');
      assert.equal(num(r.holder_tgid), 234);
      assert.equal(num(r.held_to_end), 0);
      assert.ok(num(r.held_ns) > 1.04e9 && num(r.held_ns) < 1.08e9, String(r.held_ns));
    }
    const [ring1, ring2, ring3] = pins;
    // ring 1: registered at 4.833 s, unregistered by the workload itself (io_uring_register UNREGISTER_BUFFERS).
    assert.ok(num(ring1!.start_ts_ns) >= 4.834e9 && num(ring1!.start_ts_ns) < 4.835e9);
    assert.equal(num(ring1!.pages), 1024);
    assert.equal(num(ring1!.release_pid), 234);
    assert.equal(ring1!.release_via, 'io_uring_register');
    // ring 2: the fd closed without unregistering, the ring torn down by a kworker.
    assert.ok(num(ring2!.start_ts_ns) >= 5.927e9 && num(ring2!.start_ts_ns) < 5.928e9);
    assert.equal(num(ring2!.pages), 1024);
    assert.equal(ring2!.release_comm, 'kworker/u4:0');
    assert.equal(num(ring2!.release_pid), 9);
    assert.equal(num(ring2!.releasers), 1);
    assert.equal(ring2!.release_via, 'io_ring_exit_work');
    assert.equal(ring2!.release_callsite, 'io_buffer_unmap');
    // ring 3: 512 subpage pins on each of the THPs 0x8600 and 0x8800, the call site of the small-page pins.
    assert.equal(num(ring3!.pages), 2);
    assert.equal(num(ring3!.first_pfn), 0x8600);
    assert.equal(ring3!.callsite, 'io_pin_pages');
    assert.equal(ring1!.callsite, 'io_pin_pages');
    assert.equal(ring3!.holder_via, 'io_uring_register');
    assert.ok(!/kprobe|ftrace|0xffff|follow_|try_grab/.test(String(ring3!.holder_path)), String(ring3!.holder_path));
  });

  it('the call-site skip list is a parameter: passing over io_pin_pages names its caller', async () => {
    const pins = (await q('sessions', { trace_id: ids.a, callsite_skip_extra: 'io_pin_pages' })).filter((r) => r.kind === 'pin');
    assert.deepEqual([...new Set(pins.map((r) => r.callsite))], ['io_sqe_buffer_register']);
  });

  it("the report's first screen names the ring torn down by kworker/u4:0 via io_ring_exit_work", async () => {
    const out = join(dir, 'report-a');
    await writeReport(db, { traceId: ids.a, outDir: out, formats: ['html', 'md'], chartFiles: false });
    const html = readFileSync(join(out, 'index.html'), 'utf8');
    // The first screen: everything before the trace facts (verdict, CMA blockers, the story).
    const first = html.slice(html.indexOf('<main>'), html.indexOf('id="summary"')).replace(/<[^>]+>/g, '');
    assert.match(first, /Verdict: no problem found/i);
    assert.match(first, /1,024 FOLL_LONGTERM pins on 1,024 pages by iouring_pin\/234 from 5\.928 s via io_uring_register \(io_pin_pages\), released 1\.05 s later by kworker\/u4:0 \(pid 9\) via io_ring_exit_work/);
    assert.match(first, /1,024 FOLL_LONGTERM pins on 2 large folios \(from pfn 0x8600\)/);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    const mdFirst = md.split('\n').slice(0, 40).join('\n');
    assert.match(mdFirst, /released 1\.05 s later by `kworker\/u4:0` \(pid 9\) via `io_ring_exit_work`/);
    assert.match(md, /\(sessions, \d+ rows\)/);
  });
});

describe('captures with no problem', () => {
  it('no amber verdict line from references of mapped or page-cache pages', async () => {
    for (const k of CLEAN) {
      const [s] = await q('summary', { trace_id: ids[k] });
      assert.equal(num(s!.long_pins), 0, `${k}: long_pins`);
      assert.ok(num(s!.long_refs) > 0, `${k}: long_refs`);
      const long = await q('long-pins', { trace_id: ids[k] });
      assert.ok(long.every((r) => r.problem === false), k);
      // Every plain, non-GUP long reference on these captures is a page-cache or mapped-page reference.
      const plain = long.filter((r) => r.kind === 'hold' && r.foll_get === false);
      assert.ok(plain.every((r) => r.explained === 'mapped page'), `${k}: ${plain.filter((r) => !r.explained).map((r) => r.pfn).join(',')}`);
    }
  });
});
