/**
 * Hold attribution (replay/holds.ts pick(), docs/model.md §13.5), one rule per case, on small hand-written
 * 6.1-style ftrace traces: which hold a put returns (end_seq / release_pid), and the attribution and candidates
 * it leaves. In every case the hold the rule picks is not the latest one, so that without the rule
 * last-in-first-out would return another hold.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { replay } from '../../replay/replay.js';
import { ftraceFile, ftraceLine } from '../lib/ftrace.js';

/** comm, pid, cpu, tgid (default: pid). */
type Who = [string, number, number, number?];

function line(who: Who, us: number, event: string, payload: string): string {
  const [comm, pid, cpu, tgid = pid] = who;
  return ftraceLine(comm, pid, tgid, cpu, us, event, payload);
}

/** A page_ref payload; flags null: no flags= printed (lru unknown). */
const ref = (pfn: number, flags: string | null, count: number, val: number, extra = ''): string =>
  `pfn=0x${pfn.toString(16)}${flags === null ? '' : ` flags=${flags}`} count=${count} mapcount=0 mapping=0000000000000000 mt=1 val=${val}${extra}`;
const kmem = (pfn: number): string => `page=0x${(0xffd4000000000000n + BigInt(pfn) * 64n).toString(16)} pfn=0x${pfn.toString(16)} order=0`;

const ON = 'uptodate|lru';
const OFF = 'uptodate';

const APP: Who = ['app', 100, 0];
const OTHER: Who = ['other', 200, 1];
const THIRD: Who = ['third', 300, 1];

class Trace {
  lines: string[] = [];
  us = 10_000_000;
  /** The page's count after the last event written by get/put. */
  count = 1;
  constructor(readonly pfn: number) {}
  ev(event: string, payload: string, who: Who, stack: string[] = []): this {
    this.lines.push(line(who, this.us, event, payload));
    if (stack.length > 0) {
      this.lines.push(line(who, this.us, '<stack trace>', '').replace(/: $/, ''));
      this.lines.push(...[`trace_event_raw_event_${event}`, `__${event}`, ...stack].map((f) => ` => ${f}`));
    }
    this.us += 10_000; // 10 ms: past the GUP-fast pair window (a +1 may be the first half of a pin until then)
    return this;
  }
  /** page_ref_set + mm_page_alloc (count 1, by APP). */
  alloc(): this {
    return this.ev('page_ref_set', ref(this.pfn, 'none', 1, 1), APP).ev('mm_page_alloc', `${kmem(this.pfn)} migratetype=1 gfp_flags=GFP_KERNEL`, APP);
  }
  get(who: Who, flags: string | null = ON, stack: string[] = [], event = 'page_ref_mod'): this {
    this.count++;
    return this.ev(event, ref(this.pfn, flags, this.count, 1, event === 'page_ref_mod_unless' ? ' ret=1' : ''), who, stack);
  }
  put(who: Who, flags: string | null = ON, stack: string[] = []): this {
    this.count--;
    return this.ev('page_ref_mod_and_test', ref(this.pfn, flags, this.count, -1, ' ret=0'), who, stack);
  }
  text(): string {
    const n = this.lines.filter((l) => !l.startsWith(' =>') && !l.includes('<stack trace>')).length;
    return ftraceFile(this.lines, n);
  }
}

const LRU_ADD_STACK = ['folio_add_lru', 'shmem_get_folio_gfp', 'shmem_fault', '__do_fault', 'handle_mm_fault', 'exc_page_fault'];
const GUP_STACK = ['try_grab_folio', 'internal_get_user_pages_fast', 'get_user_pages_fast', '__iov_iter_get_pages_alloc', 'iov_iter_get_pages2', '__do_sys_vmsplice', 'do_syscall_64'];
const PIPE_STACK = ['anon_pipe_buf_release', 'pipe_read', 'vfs_read', 'ksys_read', 'do_syscall_64'];
const DRAIN_STACK = ['folio_batch_move_lru', 'lru_add_drain_cpu', 'lru_add_drain', 'exit_mmap', 'do_exit'];
const PLAIN_PUT_STACK = ['folio_put', 'filemap_read', 'vfs_read', 'ksys_read', 'do_syscall_64'];

interface HoldRow {
  pid: number;
  tgid: number;
  via: string;
  /** Returned (end_seq not NULL). */
  closed: boolean;
  release: number | null;
  attribution: string;
  candidates: string | null;
}

let dir: string;
let db: Db;
let k = 0;

/** Ingest and replay t (every hold written: threshold 0); its holds in the order taken. */
async function holds(t: Trace): Promise<HoldRow[]> {
  const file = join(dir, `h${k++}.txt`);
  writeFileSync(file, t.text());
  const s = await ingest(db, file, {});
  await replay(db, s.trace_id, { holdThresholdNs: 0 });
  const rows = await db.all<Record<string, unknown>>(
    'SELECT holder_pid, holder_tgid, via, end_seq, release_pid, attribution, candidates FROM holds WHERE trace_id = $1 ORDER BY start_seq',
    [s.trace_id],
  );
  return rows.map((r) => ({
    pid: Number(r.holder_pid),
    tgid: Number(r.holder_tgid),
    via: String(r.via),
    closed: r.end_seq !== null,
    release: r.release_pid === null ? null : Number(r.release_pid),
    attribution: String(r.attribution),
    candidates: r.candidates === null ? null : String(r.candidates),
  }));
}

const summary = (rows: HoldRow[]) => rows.map((r) => [r.pid, r.closed, r.release, r.attribution, r.candidates]);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-holdattr-'));
  db = await Db.open(join(dir, 'h.duckdb'));
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('hold attribution', () => {
  it("the putting task's own reference: returned without doubt (exact), not the later one of another task", async () => {
    const t = new Trace(0x7000).alloc().get(APP).get(OTHER).put(APP);
    assert.deepEqual(summary(await holds(t)), [
      [100, true, 100, 'exact', null],
      [200, false, null, 'exact', null],
    ]);
  });

  it('an LRU batch reference by LRU drain frames (no flags printed, not a kworker): exact', async () => {
    // APP's get while the page is off the LRU with folio_add_lru frames: the LRU batch's reference.
    const t = new Trace(0x7100).alloc().get(APP, OFF, LRU_ADD_STACK).get(OTHER, OFF).put(THIRD, null, DRAIN_STACK);
    assert.deepEqual(summary(await holds(t)), [
      [100, true, 300, 'exact', null],
      [200, false, null, 'exact', null],
    ]);
  });

  it('an LRU batch reference by a put showing `lru` (the drain set PG_lru): exact', async () => {
    const t = new Trace(0x7110).alloc().get(APP, OFF, LRU_ADD_STACK).get(OTHER, OFF).put(THIRD, ON);
    assert.deepEqual(summary(await holds(t)), [
      [100, true, 300, 'exact', null],
      [200, false, null, 'exact', null],
    ]);
  });

  it('not the LRU batch reference: a put showing the page still off the LRU, or `lru` after an event already showed it', async () => {
    // A kworker's put that prints flags without `lru`: the batch was not drained yet.
    const off = new Trace(0x7120).alloc().get(APP, OFF, LRU_ADD_STACK).get(OTHER, OFF).put(['kworker/1:2', 21, 1], OFF);
    // (the LRU hold scores below OTHER's: no tie, so neither is ambiguous)
    assert.deepEqual(summary(await holds(off)), [
      [100, false, null, 'exact', null],
      [200, true, 21, 'exact', null],
    ]);
    // OTHER's get already shows `lru`: the drain happened unseen, the later put showing `lru` is not it.
    const stale = new Trace(0x7130).alloc().get(APP, OFF, LRU_ADD_STACK).get(OTHER, ON).put(THIRD, ON);
    assert.deepEqual(summary(await holds(stale)), [
      [100, false, null, 'exact', null],
      [200, true, 300, 'exact', null],
    ]);
  });

  it("a kworker's put with no flags printed returns the LRU batch reference: inferred", async () => {
    // OTHER's get shows the page still off the LRU (an `lru` there would make the LRU hold stale).
    const t = new Trace(0x7200).alloc().get(APP, OFF, LRU_ADD_STACK).get(OTHER, OFF).put(['kworker/1:2', 21, 1], null);
    assert.deepEqual(summary(await holds(t)), [
      [100, true, 21, 'inferred', null],
      [200, false, null, 'inferred', null],
    ]);
  });

  it('a put that releases a pipe buffer returns the vmsplice (GUP) get of another task: inferred', async () => {
    const t = new Trace(0x7300).alloc()
      .get(['splicer', 210, 1], ON, GUP_STACK, 'page_ref_mod_unless')
      .get(OTHER)
      .put(['reader', 700, 1], ON, PIPE_STACK);
    const rows = await holds(t);
    assert.deepEqual(rows.map((r) => r.via), ['gup', 'get']);
    assert.deepEqual(summary(rows), [
      [210, true, 700, 'inferred', null],
      [200, false, null, 'inferred', null],
    ]);
  });

  it("a reference of the putting task's thread group: inferred", async () => {
    // APP's thread 101 (tgid 100) takes a reference, another process's task a later one; APP's thread 102 puts.
    const t = new Trace(0x7400).alloc().get(['app', 101, 0, 100]).get(OTHER).put(['app', 102, 1, 100], ON, PLAIN_PUT_STACK);
    const rows = await holds(t);
    assert.deepEqual(rows.map((r) => r.tgid), [100, 200]);
    assert.deepEqual(summary(rows), [
      [101, true, 102, 'inferred', null],
      [200, false, null, 'inferred', null],
    ]);
  });

  it('no rule decides: the latest reference is returned, both ambiguous, each naming the other as candidate', async () => {
    const t = new Trace(0x7500).alloc().get(APP).get(OTHER).put(THIRD);
    assert.deepEqual(summary(await holds(t)), [
      [100, false, null, 'ambiguous', '200:other'],
      [200, true, 300, 'ambiguous', '100:app'],
    ]);
  });

  it('a hold no put had to choose against another task keeps exact', async () => {
    const t = new Trace(0x7600).alloc().get(APP).get(APP).put(THIRD);
    assert.deepEqual(summary(await holds(t)), [
      [100, false, null, 'exact', null],
      [100, true, 300, 'exact', null],
    ]);
  });
});
