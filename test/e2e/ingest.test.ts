/**
 * Ingest of the three text formats, from real lines: every layout variant of ftrace `trace`, `trace-cmd report`
 * and `perf script` (published example lines of docs/formats.md §4 and lines of the real captures in samples/real;
 * the few that no capture shows are built from the kernel's format strings and say so), payload decoding by
 * field name, and the real captures in samples/real/ against the event counts of their NOTES.md (their ingest as
 * replay.test.ts runs it, read from the suite's database of every real capture: test/lib/fixtures.ts).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTableSql } from '../../db/columns.js';
import { EVENT_ROWS } from '../../db/tables/ingest.js';
import { Db } from '../../db/duckdb.js';
import { ingest, type IngestOptions, type IngestSummary } from '../../ingest/ingest.js';
import { LineSplitter } from '../../ingest/source.js';
import { ALL_REAL, openFixture, replayedDb, type Fixture } from '../lib/fixtures.js';

type Row = Record<string, unknown>;

let db: Db;
let dir: string;
let fileNo = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-ingest-test-'));
  db = await Db.open(':memory:');
});
after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** BIGINT/UBIGINT come back as bigint: numbers when exact, so assertions read naturally. */
function plain(r: Row): Row {
  const o: Row = {};
  for (const [k, v] of Object.entries(r)) o[k] = typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  return o;
}

interface Ingested {
  s: IngestSummary;
  ev: Row[];
  trace: Row;
  stacks: Row[];
  lost: Row[];
  unparsed: Row[];
}

async function ingestText(text: string, opts: IngestOptions = {}): Promise<Ingested> {
  const f = join(dir, `fixture-${fileNo++}.txt`);
  writeFileSync(f, text);
  return ingestFile(f, opts);
}

/** Ingest `f` and read back its rows; `columns`: the events columns to read (all by default: reading every column
 * of the 80k events of a real capture into JS takes longer than ingesting it). */
async function ingestFile(f: string, opts: IngestOptions = {}, columns = '*'): Promise<Ingested> {
  return readBack(db, await ingest(db, f, opts), columns);
}

/** The rows of the trace `s` says was ingested into `from`. */
async function readBack(from: Db, s: IngestSummary, columns = '*'): Promise<Ingested> {
  const id = [s.trace_id];
  const q = async (sql: string) => (await from.all(sql, id)).map(plain);
  return {
    s,
    ev: await q(`SELECT ${columns} FROM events WHERE trace_id = $1 ORDER BY seq`),
    trace: (await q('SELECT * FROM traces WHERE trace_id = $1'))[0],
    stacks: await q('SELECT * FROM stacks WHERE trace_id = $1 ORDER BY stack_id'),
    lost: await q('SELECT * FROM lost_events WHERE trace_id = $1 ORDER BY line_no'),
    unparsed: await q('SELECT * FROM unparsed_lines WHERE trace_id = $1 ORDER BY line_no'),
  };
}

function frames(t: Ingested, id: unknown): string[] {
  const s = t.stacks.find((x) => x.stack_id === id);
  assert.ok(s, `stack ${String(id)} exists`);
  return String(s.frames).split('\n');
}

const lines = (...l: string[]) => l.join('\n') + '\n';

// ---------------------------------------------------------------- ftrace `trace`

describe('ftrace trace file layouts', () => {
  it('5-char irq flags, record-tgid `(    261)` and `(-------)`, comm with / and :, header facts', async () => {
    // qemu-6.1 captures (b-vmsplice, d-pgmap-hmm, a-iouring-longterm), verbatim.
    const t = await ingestText(
      lines(
        '# tracer: nop',
        '#',
        '# entries-in-buffer/entries-written: 5622/5622   #P:2',
        '#',
        '#                                          _-----=> irqs-off/BH-disabled',
        '#           TASK-PID       TGID    CPU#  |||||  TIMESTAMP  FUNCTION',
        '#              | |           |       |   |||||     |         |',
        '            init-1       (      1) [000] .....    12.844760: tracing_mark_write: scenario=b-vmsplice step=begin',
        '   vmsplice_hold-261     (    261) [001] d....    12.910350: try_grab_folio: (try_grab_folio+0x0/0x170) page=0xffd4000001e53700 refs=1 flags=0x4',
        '          <idle>-0       (-------) [001] ..s1.    23.065017: dev_pagemap_percpu_release: (dev_pagemap_percpu_release+0x0/0x10) ref=0xff11000003c2f9f0',
        '    kworker/u4:0-9       (      9) [000] .....     5.973365: page_ref_mod_and_test: pfn=0x3dc8 flags=none count=0 mapcount=0 mapping=0000000000000000 mt=0 val=-1 ret=1',
      ),
    );
    assert.equal(t.s.format, 'ftrace');
    assert.equal(t.ev.length, 4);
    assert.equal(t.s.unparsed_lines, 0);
    assert.equal(t.trace.entries_in_buffer, 5622);
    assert.equal(t.trace.entries_written, 5622);
    assert.equal(t.trace.cpus, 2);
    assert.equal(t.trace.tracer, 'nop');
    assert.equal(t.trace.has_tgid, true);
    assert.equal(t.trace.clock, 'us');
    assert.deepEqual(
      t.ev.map((e) => [e.comm, e.pid, e.tgid, e.cpu, e.irq_flags, e.ts_ns, e.event, e.line_no]),
      [
        ['init', 1, 1, 0, '.....', 12844760000, 'tracing_mark_write', 8],
        ['vmsplice_hold', 261, 261, 1, 'd....', 12910350000, 'try_grab_folio', 9],
        ['<idle>', 0, null, 1, '..s1.', 23065017000, 'dev_pagemap_percpu_release', 10],
        ['kworker/u4:0', 9, 9, 0, '.....', 5973365000, 'page_ref_mod_and_test', 11],
      ],
    );
    assert.deepEqual(t.ev.map((e) => e.seq), [0, 1, 2, 3]);
    assert.equal(t.ev[0].payload, 'scenario=b-vmsplice step=begin');
    assert.equal(t.ev[0].system, 'ftrace');
  });

  it('4-char flags, pid width 5 with tgid `(  123)` / `(-----)`, no tgid, and no irq flags at all', async () => {
    // Pre-5.12 context "%16s-%-5d (%5d) [%03d] %c%c%c%c %5lu.%06lu: " (docs/formats.md §1.1), built around the verbatim
    // 4-flag line of docs/formats.md §4.4 (the last one).
    const payload = 'pfn=0x3dbc47 flags=referenced|uptodate|dirty|lru|active|swapbacked count=0 mapcount=0 mapping=00000000d68d0ca0 mt=1 val=-1 ret=1';
    const t = await ingestText(
      lines(
        `            bash-123   (  123) [001] d..1   161.787930: page_ref_mod_and_test: ${payload}`,
        `           <...>-33724 (-----) [067] ....   161.787933: page_ref_mod_and_test: ${payload}`,
        `<...>-33724 [067] ....   161.787936: page_ref_mod_and_test: ${payload}`,
        // No irq-info option: nothing between the cpu and the timestamp.
        `            bash-123   [002]   161.787940: page_ref_mod_and_test: ${payload}`,
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    assert.deepEqual(
      t.ev.map((e) => [e.comm, e.pid, e.tgid, e.cpu, e.irq_flags, e.ts_ns]),
      [
        ['bash', 123, 123, 1, 'd..1', 161787930000],
        ['<...>', 33724, null, 67, '....', 161787933000],
        ['<...>', 33724, null, 67, '....', 161787936000],
        ['bash', 123, null, 2, null, 161787940000],
      ],
    );
    for (const e of t.ev) assert.equal(e.pfn, 0x3dbc47);
  });

  it('comm with spaces, dashes, colons, slashes and <...>', async () => {
    const t = await ingestText(
      lines(
        // verbatim (live-6.18, qemu-6.1)
        '  capture_raw.sh-12573   [001] ...1.   411.157605: tracing_mark_write: scenario=raw-default step=fadvise_dontneed_usr_share_doc_p',
        '    kworker/u4:0-9       (      9) [000] .....     5.973365: page_ref_mod_and_test: pfn=0x3dc8 flags=none count=0 mapcount=0 mapping=0000000000000000 mt=0 val=-1 ret=1',
        // comm values as the kernel prints them (%16s): a jbd2 thread (dash + slash) and a browser thread (space)
        '     jbd2/vda1-8-273     [000] .....    20.000100: mm_page_free: page=0000000012345678 pfn=0x1234 order=0',
        '     Web Content-4521    [002] d..1.    20.000200: mm_page_free: page=0000000012345679 pfn=0x1235 order=0',
        '           <...>-9018    [004] .....    20.000300: mm_page_free: page=000000001234567a pfn=0x1236 order=0',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    assert.deepEqual(
      t.ev.map((e) => [e.comm, e.pid]),
      [
        ['capture_raw.sh', 12573],
        ['kworker/u4:0', 9],
        ['jbd2/vda1-8', 273],
        ['Web Content', 4521],
        ['<...>', 9018],
      ],
    );
  });

  it('timestamps: 6 digits (us), 9 digits (ns) and a counter clock', async () => {
    const us = await ingestText(lines('            bash-12621   [001] .....   413.376144: mm_page_alloc: page=000000002c49ac86 pfn=0x18dbea order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP'));
    assert.equal(us.ev[0].ts_ns, 413376144000);
    assert.equal(us.trace.clock, 'us');
    const ns = await ingestText(lines('            bash-12621   [001] .....   413.376144123: mm_page_alloc: page=000000002c49ac86 pfn=0x18dbea order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP'));
    assert.equal(ns.ev[0].ts_ns, 413376144123);
    assert.equal(ns.trace.clock, 'ns');
    // trace_clock=counter / x86-tsc: " %12llu" instead of secs.usecs; ts_ns keeps the raw counter.
    const ctr = await ingestText(
      lines(
        '            bash-12621   [001] .....  8734902834567: mm_page_alloc: page=000000002c49ac86 pfn=0x18dbea order=0 migratetype=1 gfp_flags=GFP_KERNEL',
        '            bash-12621   [001] .....  8734902834999: mm_page_free: page=000000002c49ac86 pfn=0x18dbea order=0',
      ),
    );
    assert.equal(ctr.s.unparsed_lines, 0);
    assert.deepEqual(ctr.ev.map((e) => e.ts_ns), [8734902834567, 8734902834999]);
    assert.equal(ctr.trace.clock, 'counter');
    assert.equal(ctr.trace.first_ts_ns, 8734902834567);
    assert.equal(ctr.trace.last_ts_ns, 8734902834999);
    // A counter past 2^53 stays exact (int64), digit for digit.
    const big = await ingestText(
      lines('            bash-12621   [001] .....  9123456789012345678: mm_page_free: page=000000002c49ac86 pfn=0x18dbea order=0'),
    );
    assert.equal(String(big.ev[0].ts_ns), '9123456789012345678');
  });

  it('<stack trace> blocks with ` => func`, ` => func+0x1c/0x80`, ` => func (addr)`, and <user stack trace>', async () => {
    const t = await ingestText(
      lines(
        // verbatim (live-6.18 ftrace-raw-stacktrace-pidfiltered.txt, first block)
        '            bash-12621   [001] .....   413.376144: mm_page_alloc: page=000000002c49ac86 pfn=0x18dbea order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP',
        '            bash-12621   [001] .....   413.376168: <stack trace>',
        ' => trace_event_raw_event_mm_page_alloc',
        ' => __alloc_frozen_pages_noprof',
        ' => alloc_pages_mpol',
        ' => vma_alloc_folio_noprof',
        ' => do_anonymous_page',
        // An event of another CPU between an event and its stack: the stack still belongs to its own CPU's event.
        '    kworker/u4:0-9       [000] .....   413.376170: mm_page_free: page=0000000012345678 pfn=0x1234 order=0',
        // sym-offset option
        '            bash-12621   [001] .....   413.376171: mm_page_free: page=000000002c49ac86 pfn=0x18dbea order=0',
        '            bash-12621   [001] .....   413.376172: <stack trace>',
        ' => free_unref_folios+0x1c/0x80',
        ' => folios_put_refs+0x10b/0x1d0',
        ' => release_pages (ffffffff8117c9e4)',
        // userstacktrace option
        '            bash-12621   [001] .....   413.376173: <user stack trace>',
        ' => <00007f4de5aa58a8>',
        ' => <000055d1c2a3b4c5>',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    assert.equal(t.ev.length, 3);
    assert.deepEqual(frames(t, t.ev[0].stack_id), [
      'trace_event_raw_event_mm_page_alloc',
      '__alloc_frozen_pages_noprof',
      'alloc_pages_mpol',
      'vma_alloc_folio_noprof',
      'do_anonymous_page',
    ]);
    assert.equal(t.ev[1].stack_id, null, 'the other CPU event has no stack');
    assert.deepEqual(frames(t, t.ev[2].stack_id), ['free_unref_folios+0x1c/0x80', 'folios_put_refs+0x10b/0x1d0', 'release_pages']);
    // Frames are normalised (docs/formats.md): a frame without a symbol is 0x<address>.
    assert.deepEqual(frames(t, t.ev[2].user_stack_id), ['0x00007f4de5aa58a8', '0x000055d1c2a3b4c5']);
    const user = t.stacks.find((s) => s.stack_id === t.ev[2].user_stack_id)!;
    assert.equal(user.kind, 'user');
    const k = t.stacks.find((s) => s.stack_id === t.ev[0].stack_id)!;
    assert.equal(k.kind, 'kernel');
    assert.equal(k.depth, 5);
    assert.equal(k.callsite, 'do_anonymous_page');
  });

  it('trace markers: tracing_mark_write, and lost / buffer-started markers', async () => {
    const t = await ingestText(
      lines(
        '# tracer: nop',
        '#',
        '# entries-in-buffer/entries-written: 3/4100   #P:4',
        '#',
        '  capture_raw.sh-12573   [001] ...1.   411.157605: tracing_mark_write: scenario=raw-default step=fadvise_dontneed_usr_share_doc_p',
        'CPU:1 [LOST 4096 EVENTS]',
        '            bash-12621   [001] .....   413.376144: mm_page_alloc: page=000000002c49ac86 pfn=0x18dbea order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP',
        '##### CPU 2 buffer started ####',
        '            bash-12622   [002] .....   413.376145: mm_page_free: page=000000002c49ac86 pfn=0x18dbea order=0',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    assert.deepEqual(t.ev.map((e) => e.event), ['tracing_mark_write', 'mm_page_alloc', 'mm_page_free']);
    assert.equal(t.ev[0].payload, 'scenario=raw-default step=fadvise_dontneed_usr_share_doc_p');
    assert.deepEqual(
      t.lost.map((l) => [l.kind, l.cpu, l.lost, l.seq, l.line_no]),
      [
        ['lost', 1, 4096, 1, 6],
        ['buffer-started', 2, null, 2, 8],
      ],
    );
    assert.equal(t.trace.lost_markers, 2);
    // The overwritten events (4100 - 3 = 4097) and the LOST marker describe the same loss: counted once.
    assert.equal(t.trace.lost_events, 4097);
  });

  it('latency format (`<...>-5263      3..... 276242022us : ...`)', async () => {
    // verbatim, docs/formats.md §4.3 (LKML xfs thread 2022)
    const t = await ingestText(
      lines(
        '<...>-5263      3..... 276242022us : page_ref_mod: pfn=0x206a70 flags=referenced|uptodate|lru|active|private|writeback|head count=6 mapcount=0 mapping=ffff888125e5d868 mt=1 val=1',
        '<...>-5263      3..... 276242023us : page_ref_mod_and_test: pfn=0x206a70 flags=referenced|uptodate|lru|active|private|head count=5 mapcount=0 mapping=ffff888125e5d868 mt=1 val=-1 ret=0',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    assert.deepEqual(
      t.ev.map((e) => [e.comm, e.pid, e.cpu, e.irq_flags, e.ts_ns, e.event, e.pfn, e.count, e.val]),
      [
        ['<...>', 5263, 3, '.....', 276242022000, 'page_ref_mod', 0x206a70, 6, 1],
        ['<...>', 5263, 3, '.....', 276242023000, 'page_ref_mod_and_test', 0x206a70, 5, -1],
      ],
    );
    assert.equal(t.trace.clock, 'relative-us');
    assert.equal(t.ev[0].mapping, 0xffff888125e5d868n);
    assert.equal(t.ev[0].page_flags, 'referenced|uptodate|lru|active|private|writeback|head');
  });

  it('events printed as comments inside function_graph output', async () => {
    // The comment line is docs/formats.md §1.1's; its elided fields completed from the mm_page_alloc format.
    const t = await ingestText(
      lines(
        '# tracer: function_graph',
        '#',
        '# CPU  DURATION                  FUNCTION CALLS',
        '# |     |   |                     |   |   |   |',
        ' 24)               |  __alloc_pages() {',
        ' 24)               |  /* mm_page_alloc: page=0000000000000000 pfn=0 order=9 migratetype=1 gfp_flags=GFP_TRANSHUGE */',
        ' 24)   0.917 us    |  }',
        ' 24)               |  /* a plain comment, not an event */',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    // The function_graph lines themselves are events of their own kind (docs/formats.md §1.4).
    assert.deepEqual(t.ev.map((e) => e.event), ['funcgraph_entry', 'mm_page_alloc', 'funcgraph_exit', 'funcgraph_comment']);
    assert.deepEqual([t.ev[1].event, t.ev[1].cpu, t.ev[1].pfn, t.ev[1].order, t.ev[1].nr_pages], ['mm_page_alloc', 24, 0, 9, 512]);
  });
});

// ---------------------------------------------------------------- trace-cmd report

describe('trace-cmd report layouts', () => {
  it('preamble, padded names, print markers, dropped events, kernel_stack with `=> f (addr)`', async () => {
    const t = await ingestText(
      lines(
        'version = 6',
        'CPU 3 is empty',
        'cpus=4',
        // verbatim, live-6.18 trace-cmd-extract.report.txt
        '         cc1plus-14111 [000]   494.717332: mm_page_alloc:        page=0x10a008 pfn=0x10a008 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP',
        '           wl.sh-14397 [000]   494.722263: print:                tracing_mark_write: scenario=tracecmd-extract step=tar_usr_share_doc_p_start',
        '              rm-14396 [001]   494.718764: mm_page_free_batched: page=0x1e6915 pfn=0x1e6915 order=0',
        // a trace-cmd drop marker (docs/formats.md §2)
        'CPU:7 [204600 EVENTS DROPPED]',
        // verbatim, docs/formats.md §4.1 (Joonsoo Kim 2016)
        '           <...>-9018  [004]    92.678375: page_ref_set:         pfn=0x17ac9 flags=0x0 count=1 mapcount=0 mapping=(nil) mt=4 val=1',
        '           <...>-9018  [004]    92.678378: kernel_stack:',
        '=> get_page_from_freelist (ffffffff81176659)',
        ' => release_pages (ffffffff8117c9e4)',
        'CPU:2 [EVENTS DROPPED]',
        '           <...>-9018  [004]    92.678379: page_ref_mod:         pfn=0x17ac9 flags=0x40048 count=2 mapcount=1 mapping=0xffff880015a78dc1 mt=4 val=1',
      ),
    );
    assert.equal(t.s.format, 'trace-cmd');
    assert.equal(t.s.unparsed_lines, 0);
    assert.equal(t.trace.cpus, 4);
    assert.equal(t.trace.file_version, '6');
    assert.equal(t.trace.kernel_version, null, 'version = is the file version, not the kernel');
    assert.deepEqual(
      t.ev.map((e) => [e.event, e.comm, e.pid, e.cpu, e.irq_flags]),
      [
        ['mm_page_alloc', 'cc1plus', 14111, 0, null],
        ['tracing_mark_write', 'wl.sh', 14397, 0, null],
        ['mm_page_free_batched', 'rm', 14396, 1, null],
        ['page_ref_set', '<...>', 9018, 4, null],
        ['page_ref_mod', '<...>', 9018, 4, null],
      ],
    );
    assert.equal(t.ev[1].payload, 'scenario=tracecmd-extract step=tar_usr_share_doc_p_start');
    assert.equal(t.ev[0].payload, 'page=0x10a008 pfn=0x10a008 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP');
    assert.deepEqual(frames(t, t.ev[3].stack_id), ['get_page_from_freelist', 'release_pages']);
    assert.deepEqual(
      t.lost.map((l) => [l.kind, l.cpu, l.lost, l.seq]),
      [
        ['dropped', 7, 204600, 3],
        ['dropped', 2, null, 4],
      ],
    );
    assert.equal(t.ev[4].page_flags, '0x40048');
    assert.equal(t.ev[3].mapping, 0, 'mapping=(nil) is NULL pointer 0');
    assert.equal(t.ev[4].mapping, 0xffff880015a78dc1n);
  });

  it('-l latency flags (bracketed and glued to the cpu), -t ns timestamps, multi-line print payloads', async () => {
    const t = await ingestText(
      lines(
        'cpus=2',
        // `trace-cmd report -l` as its man page shows it (flags glued to the bare cpu number)
        '          <idle>-0       0d.h1. 106467.859747: function:             ktime_get <-- tick_check_idle',
        // bracketed cpu with flags
        '         cc1plus-14111 [000] d..1. 494.717332: mm_page_alloc:        page=0x10a008 pfn=0x10a008 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP',
        // -t: nanoseconds
        '         cc1plus-14111 [000]   494.717361123: mm_page_alloc:        page=0x1c8b9b pfn=0x1c8b9b order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP',
        // a print whose text holds newlines continues on lines of its own
        '           wl.sh-14397 [000]   494.722263: print:                tracing_mark_write: first line',
        ' gid=4',
        'third line',
        '              rm-14396 [001]   494.718764: mm_page_free_batched: page=0x1e6915 pfn=0x1e6915 order=0',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    assert.deepEqual(
      t.ev.map((e) => [e.event, e.cpu, e.irq_flags, e.ts_ns]),
      [
        ['function', 0, 'd.h1.', 106467859747000],
        ['mm_page_alloc', 0, 'd..1.', 494717332000],
        ['mm_page_alloc', 0, null, 494717361123],
        ['tracing_mark_write', 0, null, 494722263000],
        ['mm_page_free_batched', 1, null, 494718764000],
      ],
    );
    assert.equal(t.ev[3].payload, 'first line\n gid=4\nthird line');
  });
});

// ---------------------------------------------------------------- perf script

describe('perf script layouts', () => {
  it('padded sys:event names, -g callchains (kernel + user), pid/tid, --ns, no cpu column', async () => {
    const t = await ingestText(
      lines(
        // verbatim, live-6.18 perf-task.script.txt
        '           wl.sh 15876 [001]   504.839906:                        kmem:mm_page_alloc: page=0x10afc8 pfn=0x10afc8 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP',
        // verbatim, docs/formats.md §4.9 (tip commit d15d356887e7): decimal pfn, callchain with a kernel and a user frame
        'perf  6429 [000]    22.498450:             kmem:mm_page_alloc: page=0x176a17 pfn=1534487 order=0 migratetype=0 gfp_flags=GFP_KERNEL',
        '\tffffffffbe23e32e __alloc_pages_nodemask+0x22e (/lib/modules/5.1.0-rc3+/build/vmlinux)',
        '\t7efdf7f7d3e8 __poll+0x18 (/usr/lib64/libc-2.28.so)',
        '',
        // verbatim, live-6.18 perf-task-callgraph.script.txt: `[unknown]` user frames stay in the user stack
        'wl.sh 16910 [001]   507.900690: kmem:mm_page_alloc: page=0x1da451 pfn=0x1da451 order=0 migratetype=0 gfp_flags=GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP',
        '\tffffffff8161f42b __alloc_frozen_pages_noprof+0x26b ([kernel.kallsyms])',
        '\tffffffff81658996 alloc_pages_mpol+0x86 ([kernel.kallsyms])',
        '\t    7f4de5aa58a8 [unknown] ([unknown])',
        '\t               0 [unknown] ([unknown])',
        '',
        // -F comm,pid,tid,time,event,trace: pid/tid and no cpu; --ns
        '           wl.sh 15876/15880   504.839910123: kmem:mm_page_free: page=0x10afc8 pfn=0x10afc8 order=0',
      ),
    );
    assert.equal(t.s.format, 'perf');
    assert.equal(t.s.unparsed_lines, 0);
    assert.deepEqual(
      t.ev.map((e) => [e.comm, e.pid, e.tgid, e.cpu, e.system, e.event, e.pfn, e.ts_ns]),
      [
        ['wl.sh', 15876, null, 1, 'kmem', 'mm_page_alloc', 0x10afc8, 504839906000],
        ['perf', 6429, null, 0, 'kmem', 'mm_page_alloc', 1534487, 22498450000],
        ['wl.sh', 16910, null, 1, 'kmem', 'mm_page_alloc', 0x1da451, 507900690000],
        ['wl.sh', 15880, 15876, null, 'kmem', 'mm_page_free', 0x10afc8, 504839910123],
      ],
    );
    assert.deepEqual(frames(t, t.ev[1].stack_id), ['__alloc_pages_nodemask+0x22e']);
    assert.deepEqual(frames(t, t.ev[1].user_stack_id), ['__poll+0x18 [/usr/lib64/libc-2.28.so]']);
    assert.deepEqual(frames(t, t.ev[2].stack_id), ['__alloc_frozen_pages_noprof+0x26b', 'alloc_pages_mpol+0x86']);
    assert.deepEqual(frames(t, t.ev[2].user_stack_id), ['0x7f4de5aa58a8', '0x0']);
    assert.equal(t.ev[3].stack_id, null);
  });
});

// ---------------------------------------------------------------- payload decoding

describe('payload decoding by field name', () => {
  it('page_ref: hex pfn, symbolic and hex flags, (nil)/hashed/raw mapping, mapcount -1, val/ret', async () => {
    const t = await ingestText(
      lines(
        // verbatim, docs/formats.md §4.2 (6.15, hashed mapping)
        ' crosvm_VmRunApp-6493    [007] ...2.   144.767288: page_ref_mod: pfn=0x9f83a8 flags=locked|uptodate|swapbacked|mlocked count=4 mapcount=0 mapping=00000000f0e9c5fd mt=4 val=1',
        '    crosvm_vcpu0-6499    [003] ...1.   144.786828: page_ref_mod: pfn=0x9f83a8 flags=uptodate|dirty|lru|swapbacked|unevictable|mlocked count=1027 mapcount=0 mapping=00000000f0e9c5fd mt=4 val=1024',
        // the §4.2 line with raw _mapcount (>= 6.10) of an unmapped page: -1
        ' crosvm_VmRunApp-6493    [007] ...1.   144.767358: page_ref_mod_and_test: pfn=0x9f83a8 flags=uptodate|dirty|lru|swapbacked|unevictable|mlocked count=3 mapcount=-1 mapping=00000000f0e9c5fd mt=4 val=-1 ret=0',
        // verbatim, docs/formats.md §4.5: mt=5 (isolated) and a non-page_ref event refscope has no decoder for
        '   bash-7442    [007] ...1.   288.504690: report_page_pinners: pfn=0x91430 flags=uptodate|swapbacked count=2 mapcount=0 mapping=ffff88f5480a2709 mt=5 reason=contig_range err=-11',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    const [a, b, c, d] = t.ev;
    assert.deepEqual([a.pfn, a.count, a.mapcount, a.mapping, a.mt, a.val, a.ret, a.page_flags], [0x9f83a8, 4, 0, 0xf0e9c5fd, 4, 1, null, 'locked|uptodate|swapbacked|mlocked']);
    assert.deepEqual([b.count, b.val], [1027, 1024]);
    assert.deepEqual([c.mapcount, c.val, c.ret], [-1, -1, 0]);
    assert.equal(t.trace.mapcount_semantics, 'raw', 'a -1 mapcount means raw _mapcount');
    assert.equal(a.system, 'page_ref');
    assert.equal(a.args, null);
    // unknown event: kept, no system, fields in args
    assert.equal(d.event, 'report_page_pinners');
    assert.equal(d.system, null);
    assert.equal(d.pfn, null);
    assert.deepEqual(JSON.parse(String(d.args)), {
      pfn: '0x91430',
      flags: 'uptodate|swapbacked',
      count: '2',
      mapcount: '0',
      mapping: 'ffff88f5480a2709',
      mt: '5',
      reason: 'contig_range',
      err: '-11',
    });
  });

  it('kmem: decimal and hex pfn, `page= (null)`, hex gfp_flags, order -> nr_pages', async () => {
    const t = await ingestText(
      lines(
        // verbatim, docs/formats.md §4.8 (4.14 Android kernel, decimal pfn, hashed page, a patch's nr_free=)
        '<...>-22275 [006] ....   889.213383: mm_page_alloc: page=00000000d2be5665 pfn=970744 order=0 migratetype=0 nr_free=3650 gfp_flags=GFP_HIGHUSER|__GFP_ZERO',
        // same source, the failed allocation: `page= (null)` (its elided tail completed like the line above)
        'kswapd0-1207  [005] ...1   889.213398: mm_page_alloc: page= (null) pfn=0 order=0 migratetype=0 nr_free=3650 gfp_flags=GFP_HIGHUSER|__GFP_ZERO',
        // docs/formats.md §4.7: raw hex gfp from userspace formatters (page/pfn from there, order 2)
        'kcompactd0-40  [000] ....   889.213399: mm_page_alloc: page=0xffffffff981685f3 pfn=0x122233 order=2 migratetype=1 gfp_flags=0x140cca',
        '         cc1plus-14111 [000] .....   494.717332: mm_page_alloc_extfrag: page=0000000012345678 pfn=0x10a008 alloc_order=0 fallback_order=9 pageblock_order=9 alloc_migratetype=1 fallback_migratetype=0 fragmenting=0 change_ownership=1',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    assert.deepEqual(
      t.ev.map((e) => [e.pfn, e.order, e.nr_pages, e.mt, e.gfp]),
      [
        [970744, 0, 1, 0, 'GFP_HIGHUSER|__GFP_ZERO'],
        [0, 0, 1, 0, 'GFP_HIGHUSER|__GFP_ZERO'],
        [0x122233, 2, 4, 1, '0x140cca'],
        [0x10a008, 0, null, 1, null],
      ],
    );
    assert.equal(t.ev[0].ptr, null, 'page= of kmem events is never a key');
  });

  it('cma: pfn with and without 0x, page=0000000000000000 on failure, busy_retry, align= as order', async () => {
    const t = await ingestText(
      lines(
        // verbatim, qemu-6.1 c-cma-blocked.trace.txt
        '       cma_block-352     (    352) [001] .....    69.606914: cma_alloc_busy_retry: name=reserved pfn=0x7bc00 page=ffd4000001ef0000 count=16380 align=0',
        '       cma_block-352     (    352) [001] .....    69.616584: cma_alloc_finish: name=reserved pfn=0x7bc04 page=0000000000000000 count=16380 align=0',
        // the real cma_release line of the same file in the ≈5.13 format (`pfn=%lx`, no 0x, docs/formats.md §3)
        '       cma_block-352     (    352) [001] .....    70.875202: cma_release: name=reserved pfn=7bc00 page=ffd4000001ef0000 count=16380',
        // the ≈v6.18 payload (docs/formats.md §4.6), on a context prefix of this file
        '       cma_block-352     (    352) [001] .....   279.814717: cma_alloc_start: name=reserved request_count=4 available_count=8096 total_count=8192 align=0',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    const [busy, fin, rel, start] = t.ev;
    assert.deepEqual([busy.system, busy.name, busy.pfn, busy.nr_pages, busy.pfn_end, busy.ptr], ['cma', 'reserved', 0x7bc00, 16380, 0x7bc00 + 16380, 0xffd4000001ef0000n]);
    assert.deepEqual([fin.pfn, fin.ptr, fin.nr_pages], [0x7bc04, 0, 16380]);
    assert.deepEqual([rel.pfn, rel.nr_pages, rel.pfn_end], [0x7bc00, 16380, 0x7bc00 + 16380]);
    assert.deepEqual([start.name, start.nr_pages, start.pfn], ['reserved', 4, null]);
    assert.deepEqual([busy.order, fin.order, rel.order, start.order], [0, 0, null, 0], 'align= (an order) in order');
  });

  it('test_pages_isolated ret=fail -> ret 1 and fin_pfn; migrate and alloc_contig_range', async () => {
    const t = await ingestText(
      lines(
        // verbatim, qemu-6.1 c-cma-blocked.trace.txt
        '       cma_block-352     (    352) [001] .....    69.605460: test_pages_isolated: start_pfn=0x7bc00 end_pfn=0x7fbfc fin_pfn=0x7dc00 ret=fail',
        '       cma_block-352     (    352) [001] .....    69.578579: alloc_contig_range: (alloc_contig_range+0x0/0x280) start=0x7bc00 end=0x7fbfc migratetype=4 gfp=0xcc0',
        '       cma_block-352     (    352) [001] .....    69.606405: alloc_contig_range_ret: (cma_alloc+0x149/0x3d0 <- alloc_contig_range) ret=-16',
        // a 2016 line (padded event name, docs/formats.md §4.1) with the success outcome
        '           <...>-9131  [001] .....    93.174468: test_pages_isolated:  start_pfn=0x17800 end_pfn=0x17c00 fin_pfn=0x17c00 ret=success',
        '       cma_block-352     (    352) [001] .....    69.604564: mm_migrate_pages: nr_succeeded=14 nr_failed=0 nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 mode=MIGRATE_SYNC reason=contig_range',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    const [iso, acr, acrRet, ok, mig] = t.ev;
    assert.deepEqual([iso.pfn, iso.pfn_end, iso.fin_pfn, iso.ret, iso.nr_pages], [0x7bc00, 0x7fbfc, 0x7dc00, 1, 0x7fbfc - 0x7bc00]);
    assert.equal(ok.ret, 0);
    assert.deepEqual([acr.system, acr.pfn, acr.pfn_end, acr.mt, acr.gfp], ['cmak', 0x7bc00, 0x7fbfc, 4, '0xcc0']);
    assert.equal(acrRet.ret, -16);
    assert.deepEqual([mig.nr_succeeded, mig.nr_failed, mig.mode, mig.name], [14, 0, 'MIGRATE_SYNC', 'contig_range']);
  });

  it('kprobes: GUP fields, kretprobe values, and page pointers -> pfns through vmemmap_base', async () => {
    const t = await ingestText(
      lines(
        // verbatim, qemu-6.1 d-pgmap-hmm / b-vmsplice / a-iouring-longterm
        '          insmod-306     (    306) [000] .....    19.108470: memremap_pages: (memremap_pages+0x0/0x650) pgmap=0xff11000003c2f9c0 nid=0 vmemmap_base=0xffd4000000000000 page_offset_base=0xff11000000000000',
        '     hmm_migrate-321     (    321) [000] .....    19.648017: zone_device_page_init: (zone_device_page_init+0x0/0xd0) page=0xffd40003f3ffffc0 pgmap=0xff11000003c2f9c0',
        '   vmsplice_hold-261     (    261) [001] d....    12.910350: try_grab_folio: (try_grab_folio+0x0/0x170) page=0xffd4000001e53700 refs=1 flags=0x4',
        '     iouring_pin-234     (    234) [000] .....     4.541375: get_user_pages_remote: (get_user_pages_remote+0x0/0x30) mm=0xff11000002c3d000 start=0xffffffffffefe7 nr_pages=1 gup_flags=0x1',
        '           rmmod-323     (    323) [001] .....    23.079104: memunmap_pages_ret: (0xffffffffc0002cc5 <- memunmap_pages)',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    const [remap, init, grab, remote, unmapRet] = t.ev;
    assert.equal(t.trace.vmemmap_base, 0xffd4000000000000n);
    assert.deepEqual([remap.system, remap.pgmap], ['pgmap', 0xff11000003c2f9c0n]);
    assert.deepEqual([init.ptr, init.pgmap, init.pfn], [0xffd40003f3ffffc0n, 0xff11000003c2f9c0n, 0xfcfffff]);
    assert.deepEqual([grab.system, grab.ptr, grab.refs, grab.gup_flags, grab.pfn], ['gup', 0xffd4000001e53700n, 1, 4, (0x1e53700 / 64)]);
    assert.deepEqual([remote.addr, remote.nr_pages, remote.gup_flags], [0xffffffffffefe7n, 1, 1]);
    assert.deepEqual([unmapRet.system, unmapRet.payload], ['pgmap', '(0xffffffffc0002cc5 <- memunmap_pages)']);
  });

  it('syscalls: `sys_vmsplice(...)` and `sys_munmap -> 0x0`; unknown tracepoints keep args', async () => {
    const t = await ingestText(
      lines(
        // verbatim, qemu-6.1 b-vmsplice
        '   vmsplice_hold-261     (    261) [001] ...1.    12.909132: sys_vmsplice(fd: 5, uiov: 36d958c0, nr_segs: 100, flags: 0)',
        '   vmsplice_hold-261     (    261) [001] ...1.    12.936686: sys_munmap -> 0x0',
        '   vmsplice_hold-261     (    261) [001] ...1.    12.926988: sys_vmsplice -> 0x100000',
        '            init-1       (      1) [000] .....    12.846202: sched_process_fork: comm=init pid=1 child_comm=init child_pid=261',
      ),
    );
    assert.equal(t.s.unparsed_lines, 0);
    const [enter, munmap, exit, fork] = t.ev;
    assert.deepEqual([enter.system, enter.event], ['syscalls', 'sys_enter_vmsplice']);
    assert.deepEqual(JSON.parse(String(enter.args)), { fd: '5', uiov: '36d958c0', nr_segs: '100', flags: '0' });
    assert.equal(enter.payload, 'fd: 5, uiov: 36d958c0, nr_segs: 100, flags: 0');
    assert.deepEqual([munmap.event, munmap.ret, munmap.payload], ['sys_exit_munmap', 0, '-> 0x0']);
    assert.deepEqual([exit.event, exit.ret], ['sys_exit_vmsplice', 0x100000]);
    // sched_process_fork is in the catalogue (replay/tasks.ts: holders that fork, docs/model.md §15); its fields stay in args.
    assert.deepEqual([fork.event, fork.system], ['sched_process_fork', 'sched']);
    assert.deepEqual(JSON.parse(String(fork.args)), { comm: 'init', pid: '1', child_comm: 'init', child_pid: '261' });
  });
});

// ---------------------------------------------------------------- real captures

/** Event counts from the NOTES.md of each capture (the notes samples/real/README.md summarises). */
const REAL: { file: string; format: string; counts: Record<string, number>; stacks?: number; facts?: (t: Ingested) => void }[] = [
  {
    file: 'b-vmsplice.trace.txt.gz',
    format: 'ftrace',
    counts: {
      page_ref_set: 325,
      page_ref_mod: 490,
      page_ref_mod_and_test: 1416,
      page_ref_mod_unless: 608,
      mm_page_alloc: 325,
      mm_page_free: 322,
      mm_page_free_batched: 60,
      get_user_pages_fast: 256,
      get_user_pages_fast_ret: 256,
      internal_get_user_pages_fast: 256,
      try_grab_folio: 256,
      try_grab_folio_ret: 256,
      try_grab_page: 3,
      __get_user_pages: 3,
      get_user_pages_remote: 3,
      sys_enter_vmsplice: 1,
      sys_exit_vmsplice: 1,
      sys_enter_munmap: 1,
      sys_exit_munmap: 1,
      sched_process_fork: 1,
      sched_process_exec: 1,
      sched_process_exit: 1,
      tracing_mark_write: 12,
    },
    stacks: 768,
    facts: (t) => {
      assert.equal(t.trace.vmemmap_base, 0xffd4000000000000n, 'learned from cma/kmem page= + pfn= pairs');
      const grabs = t.ev.filter((e) => e.event === 'try_grab_folio' && e.pid === 261);
      assert.equal(grabs.length, 256);
      assert.ok(grabs.every((e) => e.refs === 1 && e.gup_flags === 4 && typeof e.pfn === 'number' && e.stack_id !== null));
      const pfns = new Set(grabs.map((e) => e.pfn as number));
      assert.equal(pfns.size, 256);
      assert.ok([...pfns].every((p) => p >= 0x794da && p <= 0x795da), 'NOTES: buffer pfns 0x794da..0x795da');
    },
  },
  {
    file: 'a-iouring-longterm.trace.txt.gz',
    format: 'ftrace',
    counts: {
      page_ref_set: 1174,
      page_ref_mod: 4442,
      page_ref_mod_and_test: 6541,
      page_ref_mod_unless: 967,
      mm_page_alloc: 1174,
      mm_page_alloc_zone_locked: 702,
      mm_page_free: 1142,
      mm_page_free_batched: 1114,
      try_grab_page: 3078,
      gup_put_folio: 3072,
      unpin_user_page: 3072,
      pin_user_pages: 3,
      pin_user_pages_ret: 3,
      __gup_longterm_locked: 3,
      __get_user_pages: 9,
      get_user_pages_remote: 6,
      io_uring_create: 3,
      io_uring_register: 5,
      sys_enter_io_uring_setup: 3,
      sys_exit_io_uring_setup: 3,
      sys_enter_io_uring_register: 5,
      sys_exit_io_uring_register: 5,
      sys_enter_munmap: 2,
      sys_exit_munmap: 2,
      sched_process_fork: 3,
      sched_process_exec: 2,
      sched_process_exit: 3,
      tracing_mark_write: 26,
    },
    stacks: 6156,
    facts: (t) => {
      const pins = t.ev.filter((e) => e.event === 'page_ref_mod' && e.val === 1024);
      assert.equal(pins.length, 2048, 'ring1 + ring2: 1024 small-page pins each');
      assert.equal(t.ev.filter((e) => e.event === 'try_grab_page' && e.gup_flags === 0x50001).length, 3072);
    },
  },
  {
    file: 'c-cma-blocked.trace.txt.gz',
    format: 'ftrace',
    counts: {
      page_ref_set: 24315,
      page_ref_mod: 7931,
      page_ref_mod_and_test: 32298,
      page_ref_mod_unless: 52,
      mm_page_alloc: 7931,
      mm_page_alloc_zone_locked: 7959,
      mm_page_free: 24315,
      mm_page_free_batched: 7912,
      mm_page_pcpu_drain: 17962,
      cma_alloc_start: 2,
      cma_alloc_busy_retry: 5,
      cma_alloc_finish: 2,
      cma_release: 1,
      alloc_contig_range: 6,
      alloc_contig_range_ret: 6,
      test_pages_isolated: 6,
      mm_migrate_pages_start: 6,
      mm_migrate_pages: 6,
      set_migration_pte: 19,
      remove_migration_pte: 19,
      mm_compaction_isolate_migratepages: 192,
      mm_compaction_isolate_freepages: 16,
      get_user_pages_fast: 8,
      get_user_pages_fast_ret: 8,
      internal_get_user_pages_fast: 8,
      try_grab_folio: 8,
      try_grab_folio_ret: 8,
      try_grab_page: 3,
      __get_user_pages: 3,
      get_user_pages_remote: 3,
      sys_enter_vmsplice: 1,
      sys_exit_vmsplice: 1,
      sys_enter_munmap: 119,
      sys_exit_munmap: 119,
      sched_process_fork: 1,
      sched_process_exec: 1,
      sched_process_exit: 1,
      tracing_mark_write: 36,
    },
    stacks: 15,
    facts: (t) => {
      const iso = t.ev.filter((e) => e.event === 'test_pages_isolated');
      assert.deepEqual(
        iso.map((e) => [e.ret, e.fin_pfn]),
        [...Array(5).fill([1, 0x7dc00]), [0, 0x7fc00]],
        'NOTES: 5 failed isolations blocked at 0x7dc00, then success',
      );
      assert.deepEqual(
        t.ev.filter((e) => e.event === 'cma_alloc_busy_retry').map((e) => e.pfn),
        [0x7bc00, 0x7bc01, 0x7bc02, 0x7bc03, 0x7bc04],
      );
    },
  },
  {
    file: 'd-pgmap-hmm.trace.txt.gz',
    format: 'ftrace',
    counts: {
      page_ref_set: 713,
      page_ref_mod: 986,
      page_ref_mod_and_test: 2594,
      page_ref_mod_unless: 66440,
      mm_page_alloc: 1096,
      mm_page_alloc_zone_locked: 73,
      mm_page_free: 1257,
      mm_page_free_batched: 744,
      memremap_pages: 2,
      memremap_pages_ret: 2,
      memunmap_pages: 2,
      memunmap_pages_ret: 2,
      get_dev_pagemap: 4,
      get_dev_pagemap_ret: 4,
      zone_device_page_init: 128,
      free_zone_device_page: 128,
      dev_pagemap_percpu_release: 2,
      migrate_vma_setup: 19,
      migrate_vma_pages: 19,
      migrate_vma_finalize: 19,
      remove_migration_pte: 160,
      module_load: 1,
      module_free: 1,
      sys_enter_ioctl: 4,
      sys_exit_ioctl: 4,
      sys_enter_munmap: 2,
      sys_exit_munmap: 2,
      sched_process_fork: 21,
      sched_process_exec: 8,
      sched_process_exit: 21,
      tracing_mark_write: 20,
    },
    stacks: 262,
    facts: (t) => {
      const init = t.ev.filter((e) => e.event === 'zone_device_page_init');
      const free = t.ev.filter((e) => e.event === 'free_zone_device_page');
      const pfns = (l: Row[]) => l.map((e) => e.pfn as number).sort((a, b) => a - b);
      assert.ok(init.every((e) => (e.pfn as number) >= 0xfcfffc0 && (e.pfn as number) <= 0xfcfffff), 'NOTES: device pfns 0xfcfffc0..0xfcfffff');
      assert.deepEqual(pfns(init), pfns(free), 'NOTES: the multiset of pfns initialised == the multiset freed');
      assert.ok([...init, ...free].every((e) => e.pgmap === 0xff11000003c2f9c0n), 'all on pgmap A');
    },
  },
  {
    file: 'perf-task.script.txt.gz',
    format: 'perf',
    counts: { mm_page_alloc: 3140, mm_page_free: 1828, mm_page_free_batched: 1150, mm_filemap_add_to_page_cache: 1429, mm_filemap_delete_from_page_cache: 697 },
  },
  {
    file: 'perf-task-callgraph.script.txt.gz',
    format: 'perf',
    counts: { mm_page_alloc: 3136, mm_page_free: 1770 },
    // perf record -g: after every sample a callchain, kernel frames then user frames (two stacks).
    stacks: 2 * (3136 + 1770),
  },
  {
    file: 'ftrace-raw-default.txt.gz',
    format: 'ftrace',
    counts: {
      mm_page_alloc: 31136,
      mm_page_free: 17446,
      mm_page_free_batched: 15037,
      mm_page_alloc_zone_locked: 16453,
      mm_page_pcpu_drain: 1075,
      mm_filemap_add_to_page_cache: 1351,
      mm_filemap_delete_from_page_cache: 1352,
      tracing_mark_write: 5,
    },
    facts: (t) => {
      assert.equal(t.trace.entries_in_buffer, 83855);
      assert.equal(t.trace.entries_written, 83855);
      assert.equal(t.trace.lost_events, 0);
    },
  },
  {
    file: 'ftrace-raw-stacktrace-pidfiltered.txt.gz',
    format: 'ftrace',
    counts: { mm_page_alloc: 5164, mm_page_free: 4981, tracing_mark_write: 2 },
    stacks: 10145,
    facts: (t) => {
      assert.equal(t.trace.entries_in_buffer, 20292);
      assert.equal(t.trace.entries_written, 20292);
      assert.equal(t.trace.lost_events, 0);
    },
  },
  {
    file: 'trace-cmd-extract.report.txt.gz',
    format: 'trace-cmd',
    counts: {
      mm_page_alloc: 21763,
      mm_page_free: 24087,
      mm_page_free_batched: 22031,
      mm_page_pcpu_drain: 10677,
      mm_filemap_add_to_page_cache: 1433,
      mm_filemap_delete_from_page_cache: 656,
      tracing_mark_write: 5,
    },
  },
];

describe('real captures (samples/real/*.gz) match their NOTES.md', () => {
  // The events columns these checks and the NOTES facts read.
  const columns = 'seq, line_no, event, pid, pfn, val, ret, refs, gup_flags, pgmap, fin_pfn, stack_id, user_stack_id';
  // Each capture's ingest as replay.test runs it (fresh, every run) into the suite's database of every real capture
  // (test/lib/fixtures.ts ALL_REAL: ingest() with default options, as here before), read back instead of run again:
  // its summary as ingest() returned it, its rows as it wrote them.
  let all: Fixture;
  let real: Db;
  before(async () => {
    all = await replayedDb(ALL_REAL);
    real = await openFixture(all);
  });
  after(() => real?.close());
  for (const r of REAL) {
    it(r.file, async () => {
      const i = ALL_REAL.findIndex((x) => 'file' in x && basename(x.file) === r.file);
      assert.ok(i >= 0, `${r.file} is in ALL_REAL`);
      const t = await readBack(real, all.ingested[i]!, columns);
      assert.equal(t.s.format, r.format);
      assert.equal(t.s.unparsed_lines, 0);
      assert.deepEqual(t.s.event_counts, r.counts, 'event counts');
      for (const [e, n] of Object.entries(r.counts)) assert.equal(t.s.event_counts[e], n, e);
      assert.equal(Object.keys(t.s.event_counts).length, Object.keys(r.counts).length, 'no event the NOTES do not list');
      assert.equal(t.s.events, Object.values(r.counts).reduce((a, b) => a + b, 0));
      if (r.stacks !== undefined) {
        assert.equal(t.ev.filter((e) => e.stack_id !== null).length + t.ev.filter((e) => e.user_stack_id !== null).length, r.stacks, '<stack trace> blocks');
        assert.equal(t.stacks.reduce((a, s) => a + (s.uses as number), 0), r.stacks, 'each block attached to its own event');
      }
      // seq is gapless input order; line numbers increase with it
      assert.ok(t.ev.every((e, i) => e.seq === i));
      assert.ok(t.ev.every((e, i) => i === 0 || (e.line_no as number) > (t.ev[i - 1].line_no as number)));
      r.facts?.(t);
    });
  }
});

describe('parsing on a worker thread (inputs > 32 MiB) gives the same tables as parsing in-thread', () => {
  // Small blocks would not exercise batch recycling: these captures span many 2048-row batches each.
  for (const file of ['ftrace-raw-stacktrace-pidfiltered.txt.gz', 'trace-cmd-extract.report.txt.gz', 'perf-task.script.txt.gz']) {
    it(file, async () => {
      const path = new URL(`../../samples/real/${file}`, import.meta.url).pathname;
      const digest = async (id: number) =>
        plain(
          (await db.all(
            `SELECT count(*) AS n, sum(hash(COLUMNS(* EXCLUDE (trace_id)))) FROM events WHERE trace_id = $1`,
            [id],
          ))[0],
        );
      const saved = process.env.REFSCOPE_WORKER;
      try {
        process.env.REFSCOPE_WORKER = '0';
        const a = await ingest(db, path, { replace: true });
        const inThread = await digest(a.trace_id);
        process.env.REFSCOPE_WORKER = '1';
        const b = await ingest(db, path, { replace: true });
        assert.ok(b.events > 4096, 'several batches');
        assert.deepEqual(b.replaced, [a.trace_id], 'the worker hashes the content to the same sha256');
        assert.deepEqual(await digest(b.trace_id), inThread);
        assert.deepEqual({ ...b, trace_id: 0, seconds: 0, lines_per_second: 0, replaced: [] }, { ...a, trace_id: 0, seconds: 0, lines_per_second: 0, replaced: [] });
      } finally {
        if (saved === undefined) delete process.env.REFSCOPE_WORKER;
        else process.env.REFSCOPE_WORKER = saved;
      }
    });
  }
});

describe('LineSplitter (blocks to lines)', () => {
  // A task may name itself with any bytes (prctl PR_SET_NAME): UTF-8 must survive, whichever block a line falls in.
  const lines = [
    '            bash-12621   [001] .....   413.376144: mm_page_free: page=000000002c49ac86 pfn=0x18dbea order=0',
    '      Bäckerei-ü€-901    [000] d..1.   413.376150: tracing_mark_write: größe=1 ✓',
    '',
    '           <...>-7       [001] .....   413.376160: mm_page_free: page=000000002c49ac87 pfn=0x18dbeb order=0',
  ];
  const text = lines.join('\r\n') + '\n';
  const bytes = Buffer.from(text, 'utf8');

  function split(cuts: number[]): string[] {
    const out: string[] = [];
    const sp = new LineSplitter((t, n) => out.push(`${n}:${t}`));
    let at = 0;
    for (const c of [...cuts, bytes.length]) {
      sp.push(bytes.subarray(at, c));
      at = c;
    }
    sp.end();
    return out;
  }

  it('gives the same lines (CR stripped, numbered) wherever the blocks are cut, even inside a UTF-8 character', () => {
    const want = lines.map((l, i) => `${i + 1}:${l}`);
    for (let c = 0; c <= bytes.length; c++) assert.deepEqual(split([c]), want, `cut at byte ${c}`);
    // An ASCII-only block next to one with UTF-8 (the ASCII fast path and the UTF-8 one in the same run).
    const second = bytes.indexOf(10) + 1;
    assert.deepEqual(split([second, second + 20]), want);
  });

  it('keeps a last line without a newline', () => {
    const out: string[] = [];
    const sp = new LineSplitter((t) => out.push(t));
    sp.push(Buffer.from('a\nBäckerei ü', 'utf8'));
    sp.end();
    assert.deepEqual(out, ['a', 'Bäckerei ü']);
  });
});

describe('storage of events (on disk)', () => {
  const sample = new URL('../../samples/real/ftrace-raw-stacktrace-pidfiltered.txt.gz', import.meta.url).pathname;
  const other = new URL('../../samples/real/perf-task.script.txt.gz', import.meta.url).pathname;
  /** Methods DuckDB used per declared column, after a second ingest into the same file. */
  async function storedMethods(path: string, storageVersion?: null): Promise<{ methods: Record<string, string[]>; traces: number }> {
    const disk = await Db.open(path, { storageVersion });
    try {
      await ingest(disk, sample, {});
      await ingest(disk, other, {});
      await disk.run('CHECKPOINT');
      const stored = await disk.all<{ column_name: string; methods: string[] }>(
        `SELECT column_name, list(DISTINCT compression ORDER BY compression) AS methods FROM pragma_storage_info('event_rows')
         WHERE segment_type <> 'VALIDITY' GROUP BY column_name`,
      );
      const traces = Number((await disk.one<{ n: bigint }>('SELECT count(*) AS n FROM traces'))!.n);
      // DuckDB still stores a constant segment as Constant and falls back to Uncompressed; never another method.
      const methods = Object.fromEntries(stored.map((r) => [r.column_name, r.methods.map((m) => m.toLowerCase()).filter((m) => m !== 'constant' && m !== 'uncompressed')]));
      return { methods, traces };
    } finally {
      disk.close();
    }
  }
  const declared = EVENT_ROWS.columns.filter((c) => c.compression);

  it('a new file: low-cardinality text as DICT_FSST, the payload as ZSTD (left to itself, DuckDB picks DICT_FSST for it: 12x the space)', async () => {
    assert.ok(declared.some((c) => c.name === 'payload_text' && c.compression === 'long') && declared.some((c) => c.name === 'comm' && c.compression === 'dict'));
    const { methods, traces } = await storedMethods(join(dir, 'storage.duckdb'));
    assert.equal(traces, 2);
    for (const c of declared) assert.deepEqual(methods[c.name], [c.compression === 'long' ? 'zstd' : 'dict_fsst'], c.name);
  });

  it("a file in DuckDB's older default format (no ZSTD / DICT_FSST there) gets Dictionary and FSST, and takes further traces", async () => {
    const path = join(dir, 'storage-legacy.duckdb');
    const { methods, traces } = await storedMethods(path, null);
    assert.equal(traces, 2);
    for (const c of declared) assert.deepEqual(methods[c.name], [c.compression === 'long' ? 'fsst' : 'dictionary'], c.name);
    // Opened again with refscope's default, the file keeps its format and its methods.
    const again = await Db.open(path);
    try {
      assert.equal(await again.legacyStorage(), true);
      await ingest(again, new URL('../../samples/real/b-vmsplice.trace.txt.gz', import.meta.url).pathname, {});
      assert.equal(Number((await again.one<{ n: bigint }>('SELECT count(*) AS n FROM traces'))!.n), 3);
    } finally {
      again.close();
    }
  });
});

describe('an insert that fails part-way through a large ingest (worker, 64 batches)', () => {
  it('rejects the ingest naming the input, the database and DuckDB\'s reason, and leaves the database as it was', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'refscope-feed-fail-'));
    const saved = process.env.REFSCOPE_WORKER;
    try {
      const path = join(dir, 'db.duckdb');
      const db = await Db.open(path);
      const small = join(dir, 'small.txt');
      writeFileSync(small, '            bash-12621   [001] .....   413.376144: mm_page_free: page=000000002c49ac86 pfn=0x18dbea order=0\n');
      await ingest(db, small, {});
      // event_rows as ingest creates it, plus a constraint that rows past the first 40 000 break: an insert fails after
      // others went in, with more than half the capture's 131 k events still to come.
      await db.run(createTableSql({ ...EVENT_ROWS, name: 'events_checked', constraints: ['CHECK (seq < 40000)'] }));
      await db.run('INSERT INTO events_checked SELECT * FROM event_rows');
      await db.run('DROP TABLE event_rows');
      await db.run('ALTER TABLE events_checked RENAME TO event_rows');
      const count = async () => plain((await db.all('SELECT (SELECT count(*) FROM traces) AS traces, (SELECT count(*) FROM events) AS events'))[0]);
      const before = await count();
      process.env.REFSCOPE_WORKER = '1';
      const big = new URL('../../samples/real/c-cma-blocked.trace.txt.gz', import.meta.url).pathname;
      await assert.rejects(ingest(db, big, {}), (e: Error) => e.message.startsWith(`${big}: writing its events into ${path}: `) && /CHECK constraint/i.test(e.message));
      assert.deepEqual(await count(), before);
      assert.deepEqual(before, { traces: 1, events: 1 });
      // The connection takes the next ingest.
      delete process.env.REFSCOPE_WORKER;
      const again = join(dir, 'again.txt');
      writeFileSync(again, '            bash-12621   [001] .....   414.376144: mm_page_free: page=000000002c49ac86 pfn=0x18dbeb order=0\n');
      await ingest(db, again, {});
      assert.deepEqual(await count(), { traces: 2, events: 2 });
      db.close();
    } finally {
      if (saved === undefined) delete process.env.REFSCOPE_WORKER;
      else process.env.REFSCOPE_WORKER = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
