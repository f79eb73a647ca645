/**
 * Inputs that used to hide a task, hang or wrap (issue #22): comms with any byte but NUL, lines longer than the
 * limit, values no kernel prints. Each case is one of the measured failures; docs/formats.md "Limits".
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { EventBuilder } from '../../ingest/builder.js';
import { detectFormat } from '../../ingest/detect.js';
import { ingest } from '../../ingest/ingest.js';
import { bytesOf, readerFor, type TextFormat } from '../../ingest/parse.js';
import { LineSplitter, MAX_LINE_BYTES } from '../../ingest/source.js';
import { replay } from '../../replay/replay.js';
import { ftraceLine } from '../lib/ftrace.js';

const ALLOC = 'page=0xffd4000000200000 pfn=0x8000 order=0 migratetype=1 gfp_flags=GFP_KERNEL';
const alloc = (pfn: number, order = 0): string => `page=0xffd4000000200000 pfn=0x${pfn.toString(16)} order=${order} migratetype=1 gfp_flags=GFP_KERNEL`;

/** One line of a task in each text format. */
const LINE: Record<TextFormat, (comm: string, pid: number, us: number, event: string, payload: string) => string> = {
  ftrace: (comm, pid, us, event, payload) => ftraceLine(comm, pid, pid, 1, us, event, payload),
  'trace-cmd': (comm, pid, us, event, payload) =>
    `${`${comm}-${pid}`.padStart(16)} [001] ${(us / 1e6).toFixed(6)}: ${`${event}:`.padEnd(20)} ${payload}`,
  perf: (comm, pid, us, event, payload) => `${comm.padStart(16)} ${pid} [001] ${(us / 1e6).toFixed(6)}: kmem:${event}: ${payload}`,
};

/** Parse lines in memory; the builder's rows and facts. */
function parse(format: TextFormat, lines: string[]) {
  const rows: { comm: string | null; pid: number | null }[] = [];
  const b = new EventBuilder(1, (batch) => {
    const comm = batch.col('comm');
    const pid = batch.col('pid');
    for (let r = 0; r < batch.rows; r++)
      rows.push({ comm: comm.dict!.values[comm.codes![r]], pid: (pid.valid[r >>> 5] >>> (r & 31)) & 1 ? pid.i32![r] : null });
  });
  const reader = readerFor(format, b);
  const sp = new LineSplitter((t, n) => reader.line(t, n), (prefix, n) => b.unparsed(n, prefix, 'line longer than 1 MiB'), bytesOf(reader));
  sp.push(Buffer.from(lines.join('\n') + '\n', 'utf8'));
  sp.end();
  reader.end();
  b.finish();
  return { rows, facts: b.facts(sp.lineNo) };
}

describe('comms are bytes', () => {
  const odd = ['a\u2028b', 'cr\rx', '\x1b[31mred\x1b[0m', 'x=1 [2] y', 'k-1 [000] 1.0:', '-5', 'sp ace 12'];
  for (const format of ['ftrace', 'trace-cmd', 'perf'] as TextFormat[])
    it(`${format}: a comm with U+2028, \\r, ESC, =, brackets, a fake pid or digits keeps its events`, () => {
      const lines = odd.map((comm, i) => LINE[format](comm, 100 + i, 10_000_000 + i, 'mm_page_alloc', alloc(0x8000 + i)));
      const { rows, facts } = parse(format, lines);
      assert.equal(facts.unparsedCount, 0, JSON.stringify(facts.unparsedRows));
      assert.deepEqual(
        rows.map((r) => [r.comm, r.pid]),
        odd.map((c, i) => [c, 100 + i]),
      );
    });

  it('text with escapes in every comm is not refused as binary; NUL bytes are', () => {
    const lines = Array.from({ length: 300 }, (_, i) => LINE.ftrace('\x1b]0;t\x07\x1b[2J', 7, 10_000_000 + i, 'mm_page_alloc', ALLOC));
    assert.equal(detectFormat(Buffer.from(lines.join('\n'))), 'ftrace');
    assert.deepEqual(detectFormat(Buffer.from(lines.join('\n') + '\0')), { refuse: 'binary content, not trace text' });
  });
});

describe('linear time, bounded lines', () => {
  // Each was quadratic in some regex (a lazy comm before `-pid`, a callchain symbol, a function_graph comment).
  const shapes = (n: number): string[] => [
    ' '.repeat(n),
    'a' + ' '.repeat(n) + 'x',
    '\t1 a' + ' '.repeat(n) + 'x',
    '1) /* ' + ' '.repeat(n) + 'x',
    '-1 '.repeat(n / 3),
    'a'.repeat(n) + ' 1 [0] 1.0: ',
    'PERF_RECORD_LOST'.repeat(n / 16),
    'sys_x(' + ') '.repeat(n / 2),
  ];
  for (const format of ['ftrace', 'trace-cmd', 'perf'] as TextFormat[])
    it(`${format}: 300 KB lines of blanks and separators parse in linear time`, () => {
      for (const line of shapes(300_000)) {
        const t0 = performance.now();
        const { facts } = parse(format, [line]);
        const ms = performance.now() - t0;
        assert.ok(ms < 300, `${JSON.stringify(line.slice(0, 12))}...: ${ms.toFixed(0)} ms`);
        assert.equal(facts.lines, 1);
      }
    });

  it('a decimal pfn too long for a double (Infinity) beside a page pointer is an unparsed line, not a crash', () => {
    // Found by the fuzzer (seed 22, 60 s budget): vmemmap_base learning took BigInt(Infinity).
    const payload = `page=0xffd4000000200000 pfn=${'9'.repeat(400)} order=0 migratetype=1 gfp_flags=GFP_KERNEL`;
    const { rows, facts } = parse('ftrace', [LINE.ftrace('cc1', 7, 1_000_000, 'mm_page_alloc', payload)]);
    assert.deepEqual([rows.length, facts.unparsedCount], [0, 1]);
    assert.equal(facts.vmemmapBase, null);
  });

  it('a stack deeper than 4096 frames keeps 4096; the frames beyond are unparsed lines', () => {
    const frames = Array.from({ length: 5000 }, (_, i) => ` => f${i}+0x1/0x10`);
    const { facts } = parse('ftrace', [LINE.ftrace('bash', 7, 10_000_000, 'mm_page_alloc', ALLOC), LINE.ftrace('bash', 7, 10_000_000, '<stack trace>', ''), ...frames]);
    assert.equal(facts.stacks[0].frames.length, 4096);
    assert.equal(facts.unparsedCount, 904);
    assert.deepEqual(facts.unparsedRows[0], { lineNo: 4099, reason: 'stack deeper than 4096 frames', text: 'f4096+0x1/0x10' });
  });

  it('a line longer than 1 MiB is one unparsed line with its number and a prefix, never held whole', () => {
    const ok = LINE.ftrace('bash', 7, 10_000_000, 'mm_page_alloc', ALLOC);
    const long = 'x'.repeat(3 * MAX_LINE_BYTES + 5);
    const bytes = Buffer.from([ok, long, ok, 'y'.repeat(MAX_LINE_BYTES + 1)].join('\n') + '\n' + ok + '\n');
    // Small blocks: the long line arrives in pieces.
    for (const block of [4096, 1 << 20, bytes.length]) {
      const got: string[] = [];
      const sp = new LineSplitter(
        (t, n) => got.push(`${n}:${t.length}`),
        (prefix, n) => got.push(`${n}:long:${prefix.slice(0, 3)}:${prefix.length}`),
      );
      for (let at = 0; at < bytes.length; at += block) sp.push(bytes.subarray(at, at + block));
      sp.end();
      assert.deepEqual(got, [`1:${ok.length}`, '2:long:xxx:200', `3:${ok.length}`, '4:long:yyy:200', `5:${ok.length}`], `blocks of ${block}`);
    }
    // Exactly the limit is still a line.
    const got: number[] = [];
    const sp = new LineSplitter((t) => got.push(t.length), () => got.push(-1));
    sp.push(Buffer.from('z'.repeat(MAX_LINE_BYTES) + '\n'));
    assert.deepEqual(got, [MAX_LINE_BYTES]);
  });
});

describe('values no kernel prints (ingested)', () => {
  let dir: string;
  let db: Db;
  let n = 0;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-limits-'));
    db = await Db.open(join(dir, 't.duckdb'));
  });
  after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function load(lines: string[], gz = false) {
    const file = join(dir, `t${n++}.txt${gz ? '.gz' : ''}`);
    const text = Buffer.from(['# tracer: nop', ...lines, ''].join('\n'));
    writeFileSync(file, gz ? gzipSync(text) : text);
    const s = await ingest(db, file, {});
    const unparsed = (await db.all<{ line_no: bigint; reason: string }>(
      'SELECT line_no, reason FROM unparsed_lines WHERE trace_id = $1 ORDER BY line_no',
      [s.trace_id],
    )).map((r) => [Number(r.line_no), r.reason]);
    return { id: s.trace_id, events: s.events, unparsed };
  }
  const ln = (us: number, event: string, payload: string, cpu = 1, pid = 7) => ftraceLine('bash', pid, pid, cpu, us, event, payload);

  it('order=40 is an unparsed line and replay finishes', async () => {
    const t = await load([ln(10_000_000, 'mm_page_alloc', alloc(0x8000, 40)), ln(10_000_001, 'mm_page_alloc', alloc(0x9000, 2))]);
    assert.deepEqual(t.unparsed, [[2, 'order 40 out of range (max 20)']]);
    assert.equal(t.events, 1);
    const t0 = performance.now();
    await replay(db, t.id, {});
    // A database ingested before the bound may hold order=40: replay ignores such an order instead of 2^40 pages.
    await db.run('UPDATE event_rows SET "order" = 40 WHERE trace_id = $1', [t.id]);
    await replay(db, t.id, {});
    assert.ok(performance.now() - t0 < 10_000);
  });

  it('pfns beyond 2^52 are unparsed; pointers are exact up to 2^64-1', async () => {
    const probe = (ptr: string) => `(try_grab_folio+0x0/0x140) page=${ptr} refs=1 flags=0x40000`;
    const t = await load([
      ln(10_000_000, 'mm_page_alloc', alloc(0x20000000000003)),
      ln(10_000_001, 'mm_page_alloc', alloc(0x8000)),
      ln(10_000_002, 'try_grab_folio', probe('0x20000000000001')),
      ln(10_000_003, 'try_grab_folio', probe('0xffffffffffffffff')),
      ln(10_000_004, 'try_grab_folio', probe('0x1ffffffffffffffff')),
    ]);
    assert.deepEqual(t.unparsed, [
      [2, 'pfn 0x20000000000004 beyond 2^52'],
      [6, 'ptr 0x1ffffffffffffffff beyond 64 bits'],
    ]);
    const ptrs = await db.all<{ p: string }>('SELECT ptr::VARCHAR AS p FROM events WHERE trace_id = $1 AND ptr IS NOT NULL ORDER BY seq', [t.id]);
    assert.deepEqual(ptrs.map((r) => r.p), [String(2n ** 53n + 1n), String(2n ** 64n - 1n)]);
  });

  it('count, mapcount, pid and cpu beyond their types are unparsed, not wrapped', async () => {
    const ref = (count: string, mapcount = '1') => `pfn=0x8000 flags=lru count=${count} mapcount=${mapcount} mapping=0 mt=1 val=1`;
    const t = await load([
      ln(10_000_000, 'page_ref_mod', ref('100000000000000000000')),
      ln(10_000_001, 'page_ref_mod', ref('2', '-2147483649')),
      ln(10_000_002, 'page_ref_mod', ref('2'), 1, 99999999999),
      ln(10_000_003, 'page_ref_mod', ref('2'), 99999),
      ln(10_000_004, 'page_ref_mod', ref('2', '-1')),
    ]);
    assert.deepEqual(t.unparsed, [
      [2, 'count 0x56bc75e2d63100000 out of int32'],
      [3, 'mapcount -2147483649 out of int32'],
      [4, 'pid 99999999999 beyond 4194304'],
      [5, 'cpu 99999 beyond 8192'],
    ]);
    assert.equal(t.events, 1);
  });

  it('a timestamp past 2^63 ns and [LOST 1e20 EVENTS] are unparsed lines; the trace still ingests', async () => {
    const t = await load([
      ln(10_000_000, 'mm_page_alloc', ALLOC),
      ln(9_300_000_000_000_000, 'mm_page_alloc', ALLOC),
      'CPU:1 [LOST 100000000000000000000 EVENTS]',
      'CPU:1 [LOST 5 EVENTS]',
      ln(10_000_001, 'mm_page_alloc', ALLOC),
    ]);
    assert.deepEqual(t.unparsed, [
      [3, 'timestamp beyond 2^63 ns'],
      [4, 'lost count beyond 2^53'],
    ]);
    assert.equal(t.events, 2);
    const lost = await db.all<{ lost: bigint }>('SELECT lost FROM lost_events WHERE trace_id = $1', [t.id]);
    assert.deepEqual(lost.map((r) => Number(r.lost)), [5]);
  });

  it('a 16 MiB line inside a small .gz is one unparsed line (with the file still read to its end)', async () => {
    const t = await load([ln(10_000_000, 'mm_page_alloc', ALLOC), ' '.repeat(16 << 20), ln(10_000_001, 'mm_page_alloc', ALLOC)], true);
    assert.deepEqual(t.unparsed, [[3, 'line longer than 1 MiB']]);
    assert.equal(t.events, 2);
  });

  it('CSV values go through the same bounds', async () => {
    const file = join(dir, `t${n++}.csv`);
    writeFileSync(file, ['ts_ns,cpu,pid,event,pfn,order', '1000,0,1,mm_page_alloc,32768,0', '1001,0,1,mm_page_alloc,32769,40', '1002,9000,1,mm_page_alloc,32770,0', '1003,0,1,mm_page_alloc,9007199254740993,0', `1004,0,1,${'x'.repeat(3 << 20)},1,0`, '1005,0,1,mm_page_alloc,32771,0', ''].join('\n'));
    const s = await ingest(db, file, {});
    const u = await db.all<{ line_no: bigint; reason: string }>('SELECT line_no, reason FROM unparsed_lines WHERE trace_id = $1 ORDER BY line_no', [s.trace_id]);
    assert.deepEqual(u.map((r) => [Number(r.line_no), r.reason]), [
      [3, 'order 40 out of range (max 20)'],
      [4, 'cpu 9000 beyond 8192'],
      [5, 'pfn 0x20000000000001 beyond 2^52'],
      [6, 'line longer than 1 MiB'],
    ]);
    assert.equal(s.events, 2);
  });
});
