/**
 * The native trace.dat reader against the text route: each binary-6.18 capture (samples/real/binary/README.md)
 * read into an EventBuilder gives, batch for batch, the columns, stacks and lost markers that the trace-cmd text
 * reader gives for its `trace-cmd report` text. Left out of the comparison, on purpose: `payload_text` (libtraceevent
 * evaluates all of print fmt, in its order, %p of computed pointers included; the reader writes the format's fields
 * as name=value, only __print_flags / __print_symbolic evaluated), `line_no` (report lines vs record ordinals);
 * `ts_ns` is compared at the report's precision (trace-cmd rounds ns to the nearest us). v7-none and v7-zstd hold v6's data: they are compared with v6 at the sink.
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { deflateSync } from 'node:zlib';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { unxzSync } from 'node-liblzma';
import { getI64String, getStr, isValid, type BatchColumn, type ColumnarBatch } from '../../db/batch.js';
import { Db } from '../../db/duckdb.js';
import { ensureSchema } from '../../db/setup.js';
import { EventBuilder } from '../../ingest/builder.js';
import { detectFormat } from '../../ingest/detect.js';
import { Kallsyms } from '../../ingest/kallsyms.js';
import { TraceCmdReader } from '../../ingest/readers/tracecmd.js';
import { checkPages, readTraceDat, TraceDatError } from '../../ingest/readers/tracedat.js';
import { readTraceDatHeader } from '../../ingest/readers/tracedat/header.js';
import { CpuStream } from '../../ingest/readers/tracedat/ring.js';
import { formatBprint } from '../../ingest/readers/tracedat/printk.js';
import { parseFormat } from '../../ingest/readers/event-format.js';
import type { LineSink } from '../../ingest/readers/sink.js';
import { countsByTrace } from '../lib/tables.js';
import { assertRefused } from '../lib/refusals.js';

const BIN = new URL('../../samples/real/binary/', import.meta.url);
const unxz = (name: string): Buffer => unxzSync(readFileSync(new URL(name, BIN)));
const SKIP = new Set(['payload_text', 'line_no']);

/** One batch's columns as comparable values: typed arrays with NULL rows zeroed, strings for dictionary/text columns. */
type Snap = Map<string, { valid: Uint32Array; wide: boolean; data: Int32Array | Int16Array | Uint8Array | (string | null)[] }>;

function snapshot(b: ColumnarBatch, roundUs: boolean): Snap {
  const out: Snap = new Map();
  const n = b.rows;
  for (const c of b.columns) {
    if (SKIP.has(c.name)) continue;
    const valid = c.valid.slice(0, (n + 31) >>> 5);
    let data: Int32Array | Int16Array | Uint8Array | (string | null)[];
    if (c.storage === 'dict' || c.storage === 'str') data = Array.from({ length: n }, (_, r) => getStr(c, r));
    else if (c.storage === 'i64' || c.storage === 'u64') {
      data = new Int32Array(2 * n);
      for (let r = 0; r < n; r++) if (isValid(c, r)) (data[2 * r] = c.i32![2 * r]!, (data[2 * r + 1] = c.i32![2 * r + 1]!));
      if (c.name === 'ts_ns' && roundUs) roundToUs(c, data, n);
    } else {
      const src = (c.i32 ?? c.i16 ?? c.u8)!;
      data = src.slice(0, n);
      for (let r = 0; r < n; r++) if (!isValid(c, r)) data[r] = 0;
    }
    out.set(c.name, { valid, wide: c.storage === 'i64' || c.storage === 'u64', data });
  }
  return out;
}

/** trace-cmd prints (ns + 500) / 1000 us: the binary's ns at the text's precision. */
function roundToUs(c: BatchColumn, data: Int32Array, n: number): void {
  for (let r = 0; r < n; r++) {
    const ns = Number(getI64String(c, r));
    const t = Math.floor((ns + 500) / 1000) * 1000;
    const hi = Math.floor(t / 4294967296);
    data[2 * r] = (t - hi * 4294967296) | 0;
    data[2 * r + 1] = hi;
  }
}

interface Built {
  batches: Snap[];
  builder: EventBuilder;
  records: number;
}

function build(feed: (b: EventBuilder) => number, roundUs: boolean): Built {
  const batches: Snap[] = [];
  const builder = new EventBuilder(1, (b) => batches.push(snapshot(b, roundUs)));
  const records = feed(builder);
  builder.finish();
  return { batches, builder, records };
}

/** The text route on `text`'s first `lines` lines. */
const viaText = (text: string, lines = Infinity): Built =>
  build((b) => {
    const r = new TraceCmdReader(b);
    let n = 0;
    for (let at = 0; at < text.length && n < lines; ) {
      let eol = text.indexOf('\n', at);
      if (eol < 0) eol = text.length;
      r.line(text.slice(at, eol), ++n);
      at = eol + 1;
    }
    r.end();
    return n;
  }, false);

/** The reader into a builder (its first `events` events only), and every event name it hands over counted. */
function viaBinary(buf: Buffer, events = Infinity): Built & { counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const built = build((b) => {
    let open = true;
    const sink: LineSink = {
      event(l, c, sys, ev, payload) {
        const name = ev === 'print' ? 'tracing_mark_write' : ev;
        counts.set(name, (counts.get(name) ?? 0) + 1);
        open = b.events < events;
        return open ? b.event(l, c, sys, ev, payload) : true;
      },
      stackStart: (k, cpu) => open && b.stackStart(k, cpu),
      frame: (t, l) => open && b.frame(t, l),
      continuation: (l, t) => open && b.continuation(l, t),
      lost: (l, cpu, n, kind) => open && b.lost(l, cpu, n, kind),
      header: (k, v) => b.header(k, v),
      clock: (c) => b.clock(c),
      unparsed: (l, t, r) => b.unparsed(l, t, r),
    };
    return readTraceDat(buf, sink);
  }, true);
  return { ...built, counts };
}

/** Event lines per event name in report text (`comm-pid [cpu] time: name: ...`), found without the reader. */
function reportCounts(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (let at = 0; at < text.length; ) {
    let eol = text.indexOf('\n', at);
    if (eol < 0) eol = text.length;
    const close = text.indexOf('] ', at);
    if (close > 0 && close < eol) {
      const colon = text.indexOf(': ', close);
      const end = text.indexOf(':', colon + 2);
      if (colon > 0 && end > 0 && end < eol) {
        const name = text.slice(colon + 2, end);
        const key = name === 'print' ? 'tracing_mark_write' : name;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
    }
    at = eol + 1;
  }
  return counts;
}

/** Same rows in every compared column; the first difference named by column and seq. */
function assertSameEvents(a: Built, b: Built): void {
  assert.equal(a.builder.events, b.builder.events, 'events');
  assert.equal(a.batches.length, b.batches.length, 'batches');
  for (let i = 0; i < a.batches.length; i++) {
    for (const [name, x] of a.batches[i]!) {
      const y = b.batches[i]!.get(name)!;
      const r = Array.from({ length: Math.max(x.data.length, y.data.length) }, (_, k) => k).find((k) => x.data[k] !== y.data[k]);
      const row = (k: number) => i * 2048 + (x.wide ? k >> 1 : k);
      if (r !== undefined) assert.fail(`column ${name} differs at seq ${row(r)}: ${x.data[r]} vs ${y.data[r]}`);
      assert.deepEqual(x.valid, y.valid, `NULLs of ${name} in batch ${i}`);
    }
  }
  const stacks = (s: Built) => s.builder.stacks.rows.map((r) => ({ ...r }));
  assert.deepEqual(stacks(a), stacks(b), 'stacks');
  const lost = (s: Built) => s.builder.lostRows.map(({ seq, cpu, lost, kind }) => ({ seq, cpu, lost, kind }));
  assert.deepEqual(lost(a), lost(b), 'lost markers');
  assert.deepEqual(a.builder.eventCounts, b.builder.eventCounts);
  assert.equal(a.builder.unparsedCount, 0, 'unparsed (binary)');
  assert.equal(b.builder.unparsedCount, 0, 'unparsed (text)');
}

/** v6 cut to its first `pages` pages per CPU: the flyrecord table rewritten, the CPUs' pages laid one after the other. */
function shrinkV6(v6: Buffer, pages: number): Buffer {
  const table = v6.indexOf('flyrecord\0', 0, 'latin1') + 10;
  const h = readTraceDatHeader(v6);
  const parts = [v6.subarray(0, h.buffers[0]!.fileOffset)];
  let at = h.buffers[0]!.fileOffset;
  const out = Buffer.from(parts[0]!);
  for (const b of h.buffers) {
    const i = table + 16 * b!.cpu;
    out.writeBigUInt64LE(BigInt(at), i);
    out.writeBigUInt64LE(BigInt(4096 * pages), i + 8);
    parts.push(b!.data.subarray(0, 4096 * pages));
    at += 4096 * pages;
  }
  parts[0] = out;
  return Buffer.concat(parts);
}

/**
 * A minimal version 7 file: one kmem format, cmdlines, one CPU (cpu 1) with one page holding one mm_page_free record,
 * every section and the CPU's chunk compressed with `zip` (null: compression none).
 */
function v7File(name: string, zip: ((b: Buffer) => Buffer) | null): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  const put = (b: Buffer): number => (parts.push(b), (size += b.length) - b.length);
  const u16 = (v: number) => Buffer.from([v & 0xff, v >> 8]);
  const u32 = (v: number) => (((b) => (b.writeUInt32LE(v), b))(Buffer.alloc(4)));
  const u64 = (v: number) => (((b) => (b.writeBigUInt64LE(BigInt(v)), b))(Buffer.alloc(8)));
  const str = (t: string) => Buffer.from(t + '\0');
  const section = (id: number, body: Buffer): number => {
    const data = zip ? Buffer.concat([u32(zip(body).length), u32(body.length), zip(body)]) : body;
    return put(Buffer.concat([u16(id), u16(zip ? 1 : 0), u32(0), u64(data.length), data]));
  };
  const headerPage = 'field: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\nfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\nfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n';
  const fmt = 'name: mm_page_free\nID: 300\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n' +
    '\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\tfield:unsigned long pfn;\toffset:8;\tsize:8;\tsigned:0;\n' +
    '\tfield:unsigned int order;\toffset:16;\tsize:4;\tsigned:0;\n\nprint fmt: "page=%p pfn=0x%lx order=%d", 0, REC->pfn, REC->order\n';
  put(Buffer.concat([Buffer.from([0x17, 0x08, 0x44]), Buffer.from('tracing7\0'), Buffer.from([0, 8]), u32(4096), str(name), str('1')]));
  put(u64(0)); // parts[1]: the options offset, known once the other sections are placed
  const headerAt = section(16, Buffer.concat([str('header_page'), u64(headerPage.length), Buffer.from(headerPage), str('header_event'), u64(0)]));
  const formatsAt = section(18, Buffer.concat([u32(1), str('kmem'), u32(1), u64(fmt.length), Buffer.from(fmt)]));
  const cmdlinesAt = section(21, Buffer.concat([u64(10), Buffer.from('42 worker\n')]));
  const page = Buffer.alloc(4096);
  page.writeBigUInt64LE(1_000_000_000n, 0);
  page.writeUInt32LE(24, 8);
  page.writeUInt32LE((10 << 5) | 5, 16); // type_len 5 (20 bytes), delta 10 ns
  page.writeUInt16LE(300, 20);
  page.writeInt32LE(42, 24);
  page.writeBigUInt64LE(0x1234n, 28);
  page.writeUInt32LE(2, 36);
  const bufferAt = put(Buffer.concat([u16(3), u16(zip ? 1 : 0), u32(0), u64(0)]));
  const cpuData = zip ? Buffer.concat([u32(1), u32(zip(page).length), u32(4096), zip(page)]) : page;
  const cpuAt = put(cpuData);
  const opt = (id: number, b: Buffer) => Buffer.concat([u16(id), u32(b.length), b]);
  const options = Buffer.concat([
    opt(16, u64(headerAt)), opt(18, u64(formatsAt)), opt(21, u64(cmdlinesAt)),
    opt(3, Buffer.concat([u64(bufferAt), str(''), str('local'), u32(4096), u32(1), u32(1), u64(cpuAt), u64(cpuData.length - (zip ? 4 : 0))])),
    opt(0, u64(0)),
  ]);
  parts[1] = u64(size); // the options section goes last
  section(0, options);
  return Buffer.concat(parts);
}

describe('trace.dat reader', () => {
  let v6: Buffer;
  let dir: string;
  let db: Db;
  before(async () => {
    v6 = unxz('trace-cmd-v6.dat.xz');
    dir = mkdtempSync(join(tmpdir(), 'refscope-tracedat-'));
    db = await Db.open(join(dir, 'db.duckdb'));
  });
  after(async () => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('v6: the event counts of its trace-cmd report text, and every column of its first 40000 lines', () => {
    // The whole report through the text route costs seconds (272k lines): the columns are compared on a
    // contiguous slice, the event names over the whole file; the zstd captures below are compared whole.
    assert.equal(detectFormat(v6), 'trace-dat');
    const text = unxz('trace-cmd.report.txt.xz').toString('utf8');
    const b = viaText(text, 40000);
    const a = viaBinary(v6, b.builder.events);
    assertSameEvents(a, b);
    assert.ok(b.builder.events > 39000);
    assert.deepEqual(new Map([...a.counts].sort()), new Map([...reportCounts(text)].sort()));
    assert.ok([...a.counts.values()].reduce((x, y) => x + y) > 270000);
    assert.equal(a.counts.get('tracing_mark_write'), 2);
    assert.equal(a.builder.headers.get('cpus'), b.builder.headers.get('cpus'));
  });

  it('v7 (compression none, zstd): the metadata and pages of v6, so the same events', () => {
    // The events are a function of these (the v6 comparison above and the zstd captures below read them).
    const strip = (buf: Buffer) => {
      const { version, compression, buffers, formats, ...h } = readTraceDatHeader(buf);
      const fmt = [...formats].map(([id, f]) => `${id} ${f.system}:${f.name} ${JSON.stringify(f.fields)} ${f.constants}`);
      return { ...h, formats: fmt, pages: buffers.map((x) => x && createHash('sha1').update(x.data).digest('hex')) };
    };
    const base = strip(v6);
    assert.ok(base.pages.length === 2 && base.pages.every((p) => p !== undefined));
    assert.deepEqual(strip(unxz('trace-cmd-v7-none.dat.xz')), base);
    assert.deepEqual(strip(unxz('trace-cmd-v7-zstd.dat.xz')), base);
  });

  it('v7 zstd with options/stacktrace: kernel_stack entries as symbolised stacks, the DROPPED marker without a count', () => {
    const a = viaBinary(unxz('trace-cmd-v7-zstd-stacktrace.dat.xz'));
    const b = viaText(unxz('trace-cmd-v7-zstd-stacktrace.report.txt.xz').toString('utf8'));
    assertSameEvents(a, b);
    assert.ok(a.builder.stacks.rows.length > 10);
    // Named from the file's kallsyms (a frame outside it stays an address, as trace-cmd prints it).
    const frames = a.builder.stacks.rows.flatMap((s) => s.frames);
    assert.ok(frames.filter((f) => !f.startsWith('0x')).length > 0.99 * frames.length);
    assert.deepEqual(a.builder.lostRows.map((l) => [l.cpu, l.lost, l.kind]), [[0, null, 'dropped']]);
  });

  it('v7 zstd, 64 KiB buffers: the per-page dropped counts as markers with their CPU', () => {
    const a = viaBinary(unxz('trace-cmd-v7-zstd-lost.dat.xz'));
    const b = viaText(unxz('trace-cmd-v7-zstd-lost.report.txt.xz').toString('utf8'));
    assertSameEvents(a, b);
    assert.deepEqual(a.builder.lostRows.map((l) => [l.cpu, l.lost]), [[1, 49849], [0, 52028]]);
  });

  it('refuses a cut file, a flipped section size, a bad page, big-endian and an unknown compression with file and offset, database unchanged', async () => {
    const lost = unxz('trace-cmd-v7-zstd-lost.dat.xz');
    const optionsAt = Number(lost.readBigUInt64LE(lost.indexOf(0, lost.indexOf(0, 18) + 1) + 1));
    const flipped = Buffer.from(lost);
    flipped.writeBigUInt64LE(1n << 40n, optionsAt + 8);
    const cpu0 = readTraceDatHeader(v6).buffers[0]!.fileOffset;
    const badPage = shrinkV6(v6, 4);
    badPage.writeUInt32LE(0x7ffffff, cpu0 + 4096 + 8);
    const bigEndian = Buffer.from(lost.subarray(0, 64));
    bigEndian[12] = 1;
    const lz4 = Buffer.concat([lost.subarray(0, 18), Buffer.from('lz4\0'), lost.subarray(23)]);
    await ensureSchema(db);
    const beforeRows = await countsByTrace(db);
    const loads = async () => (await db.one<{ n: number }>('SELECT count(*)::INTEGER AS n FROM trace_loads'))?.n;
    const beforeLoads = await loads();
    const cases: [string, Buffer, RegExp][] = [
      ['cut.dat', lost.subarray(0, Math.floor(lost.length / 2)), /cut\.dat: offset \d+: truncated: /],
      ['flip.dat', flipped, new RegExp(`flip\\.dat: offset ${optionsAt + 16}: truncated: the options section needs 1099511627776 bytes, the file has \\d+$`)],
      ['page.dat', badPage, new RegExp(`page\\.dat: offset ${cpu0 + 4096}: CPU 0: page commit 134217727 runs past the page's 4080 data bytes`)],
      ['be.dat', bigEndian, /be\.dat: offset 12: big-endian trace\.dat is not supported/],
      ['lz4.dat', lz4, /lz4\.dat: offset 18: compression "lz4" is not supported/],
    ];
    await assertRefused(db, dir, cases);
    assert.deepEqual(await countsByTrace(db), beforeRows);
    assert.equal(await loads(), beforeLoads);
  });

  it('a corrupt byte in the pages is read or refused with its offset, never another error', () => {
    const small = shrinkV6(v6, 8);
    const good = readTraceDatHeader(small);
    // The pages alone are corrupted, the metadata (and its parsed kallsyms) reused: a read costs milliseconds.
    assert.equal(checkPages(good), good);
    let seed = 11;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    let refused = 0;
    for (let i = 0; i < 100; i++) {
      const buffers = good.buffers.map((b) => b && { ...b, data: Buffer.from(b.data) });
      for (let k = 0; k < 3; k++) {
        const b = buffers[rand(buffers.length)]!;
        b.data[rand(b.data.length)] = rand(256);
      }
      const f = { ...good, buffers };
      try {
        readTraceDat(small, new EventBuilder(1, () => undefined), checkPages(f));
      } catch (e) {
        assert.ok(e instanceof TraceDatError, String(e));
        assert.ok(e.offset >= 0 && e.offset <= small.length);
        refused++;
      }
    }
    assert.ok(refused > 0);
  });

  it('v7 with zlib sections and chunks (and with none): a CPU numbered 1, its record with the cmdline name', () => {
    for (const [name, zip] of [['zlib', (b: Buffer) => deflateSync(b)], ['none', null]] as const) {
      const file = v7File(name, zip);
      const got: string[] = [];
      const sink: LineSink = {
        event: (_l, c, sys, ev, payload) => (got.push(`${c.tsSec}.${c.tsNs} ${c.cpu} ${c.pid} ${c.comm} ${sys}:${ev} ${payload}`), true),
        stackStart: () => assert.fail('no stack'), frame: () => assert.fail('no frame'), continuation: () => assert.fail('no continuation'),
        lost: () => assert.fail('no loss'), header: (k, v) => got.push(`${k}=${v}`), clock: (c) => got.push(`clock ${c}`),
        unparsed: (_l, t, r) => assert.fail(`${r}: ${t}`),
      };
      readTraceDat(file, sink);
      assert.deepEqual(got, ['cpus=2', 'file_version=7', 'trace_clock=local', 'clock ns', '1.10 1 42 worker kmem:mm_page_free pfn=0x1234 order=2'], name);
    }
  });

  it("ftrace's own records (function, print, bputs, kernel_stack) named with the file's kallsyms, and names learnt from sched_switch, as trace-cmd prints them", () => {
    const f = readTraceDatHeader(v7File('none', null));
    const common = '\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n';
    const fmt = (name: string, id: number, fields: string) => parseFormat('ftrace', `name: ${name}\nID: ${id}\nformat:\n${common}${fields}\nprint fmt: ""\n`)!;
    f.formats.set(1, fmt('function', 1, '\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:unsigned long parent_ip;\toffset:16;\tsize:8;\tsigned:0;\n'));
    f.formats.set(4, fmt('kernel_stack', 4, '\tfield:int size;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:unsigned long caller[8];\toffset:16;\tsize:64;\tsigned:0;\n'));
    f.formats.set(5, fmt('print', 5, '\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:char buf[];\toffset:16;\tsize:0;\tsigned:0;\n'));
    f.formats.set(15, fmt('bputs', 15, '\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:const char * str;\toffset:16;\tsize:8;\tsigned:0;\n'));
    f.formats.set(20, parseFormat('sched', `name: sched_switch\nID: 20\nformat:\n${common}\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n` +
      '\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n\tfield:char next_comm[16];\toffset:28;\tsize:16;\tsigned:0;\n\tfield:pid_t next_pid;\toffset:44;\tsize:4;\tsigned:1;\n\nprint fmt: ""\n')!);
    f.kallsyms = 'ffffffff81000000 T do_thing\nffffffff81000100 t helper.cold\nffffffff81000200 T tracing_mark_write\nffffffff81000300 T zz_end\n';
    f.printk.set('ffffffff82000000', 'a constant message\n');
    const rec = (id: number, body: bigint[], tail = Buffer.alloc(0), pid = 7) => {
      const b = Buffer.alloc(8 + 8 * body.length);
      b.writeUInt16LE(id, 0);
      b.writeInt32LE(pid, 4);
      body.forEach((v, i) => b.writeBigUInt64LE(v, 8 + 8 * i));
      return Buffer.concat([b, tail]);
    };
    function switchRec(prevPid: number, prev: string, nextPid: number, next: string): Buffer {
      const b = Buffer.alloc(48);
      b.writeUInt16LE(20, 0);
      b.writeInt32LE(prevPid, 4);
      b.write(prev, 8, 'latin1');
      b.writeInt32LE(prevPid, 24);
      b.write(next, 28, 'latin1');
      b.writeInt32LE(nextPid, 44);
      return b;
    }
    const records = [
      rec(1, [0xffffffff81000010n, 0xffffffff81000104n]),
      rec(4, [3n, 0xffffffff81000108n, 0xffffffffc0000000n, 0xffffffff81000010n, 0xffffffffffffffffn, 0xffffffff81000010n]),
      rec(5, [0xffffffff81000200n], Buffer.from('begin\n\0\0')),
      rec(15, [0xffffffff81000010n, 0xffffffff82000000n]),
      // sched_switch names pid 7 and 9 (unnamed so far), not pid 42 (saved cmdlines: worker)
      switchRec(7, 'old', 9, 'next9'),
      switchRec(9, 'next9', 42, 'renamed'),
      rec(15, [0xffffffff81000010n, 0xffffffff82000000n], undefined, 42),
      rec(15, [0xffffffff81000010n, 0xffffffff82000000n], undefined, 7),
    ];
    const page = Buffer.alloc(4096);
    let at = 16;
    for (const r of records) {
      const len = (r.length + 3) & ~3;
      page.writeUInt32LE((1 << 5) | (len / 4), at);
      r.copy(page, at + 4);
      at += 4 + len;
    }
    page.writeUInt32LE(at - 16, 8);
    f.buffers = [{ cpu: 0, data: page, fileOffset: 0, compressed: false }];
    const got: string[] = [];
    const sink: LineSink = {
      event: (_l, c, sys, ev, payload) => (got.push(`${c.pid} ${c.comm} ${sys}:${ev} ${payload}`), true),
      stackStart: (k, cpu) => got.push(`${k} stack on ${cpu}`), frame: (t) => got.push(`=> ${t}`), continuation: () => assert.fail('no continuation'),
      lost: () => assert.fail('no loss'), header: () => undefined, clock: () => undefined, unparsed: (_l, t, r) => assert.fail(`${r}: ${t}`),
    };
    readTraceDat(Buffer.alloc(0), sink, f);
    assert.deepEqual(got, [
      '7 <...> ftrace:function do_thing <-- helper.cold',
      'kernel stack on 0', '=> helper.cold', '=> 0xffffffffc0000000', '=> do_thing',
      '7 <...> ftrace:print tracing_mark_write: begin',
      '7 <...> ftrace:bputs do_thing: a constant message',
      '7 <...> sched:sched_switch prev_comm=old prev_pid=7 next_comm=next9 next_pid=9',
      '9 next9 sched:sched_switch prev_comm=next9 prev_pid=9 next_comm=renamed next_pid=42',
      '42 worker ftrace:bputs do_thing: a constant message',
      '7 old ftrace:bputs do_thing: a constant message',
    ]);
  });

  it('ring-buffer pages as kbuffer reads them: deltas, time extend, length word, padding, absolute time, drops only before a page\'s first record', () => {
    const page = (ts: bigint, flags: number, words: number[], lost?: number): Buffer => {
      const p = Buffer.alloc(4096);
      p.writeBigUInt64LE(ts, 0);
      p.writeUInt32LE(((words.length * 4) | flags) >>> 0, 8);
      words.forEach((w, i) => p.writeUInt32LE(w >>> 0, 16 + 4 * i));
      if (lost !== undefined) p.writeBigUInt64LE(BigInt(lost), 16 + 4 * words.length);
      return p;
    };
    const h = (type: number, delta: number) => ((delta << 5) | type) >>> 0;
    const abs = 5_000_000_123;
    const data = Buffer.concat([
      // drops stored (bit 31 | bit 30): 7, reported before the first record
      page(999_999_990n, 0xc0000000, [h(2, 5), 0xa1, 0xa2, h(30, 3), 1, h(0, 2), 16, 0xb1, 0xb2, 0xb3, h(29, 1), 8, 0, h(1, 0), 0xc1], 7),
      // drops flagged, but a time extend comes first: kbuffer reports none (trace-cmd prints no marker)
      page((1n << 53n) + 7n, 0x80000000, [h(30, 1), 0, h(1, 0), 0xd1]),
      // an absolute time stamp: 59 bits, ext << 27 | delta
      page(1n, 0, [h(31, abs % 2 ** 27), Math.floor(abs / 2 ** 27), h(1, 0), 0xe1]),
    ]);
    const f = { pageSize: 4096, pageData: 16, kernelLong: 8 } as ConstructorParameters<typeof CpuStream>[1];
    const s = new CpuStream({ cpu: 3, data, fileOffset: 0, compressed: false }, f, null);
    const got: [number, number, number, number][] = [];
    for (; s.has; s.advance()) got.push([s.tsSec, s.tsNs, s.missed, s.buffer.readUInt32LE(s.dataStart)]);
    assert.deepEqual(got, [
      [0, 999_999_995, 7, 0xa1],
      [1, 134_217_728, 0, 0xb1],
      [1, 134_217_729, 0, 0xc1],
      [9_007_199, 254_741_000, 0, 0xd1],
      [5, 123, 0, 0xe1],
    ]);
  });

  it('bprint arguments as libtraceevent reads them: numbers 4-byte aligned, strings inline, %ps named', () => {
    const args = Buffer.alloc(48);
    args.write('cma\0', 0, 'latin1'); // %s at 0..3
    args.writeBigUInt64LE(0x1a2bn, 4); // %lx: a long, aligned to 4 (not 8)
    args.writeInt32LE(-3, 12); // %d
    args.writeBigUInt64LE(0xffffffff81000010n, 16); // %ps
    args.writeUInt32LE(7, 24); // %05u
    const sym = (hi: number, lo: number) => (hi === 0xffffffff && lo === 0x81000010 ? 'do_thing' : null);
    assert.equal(formatBprint('%s pfn=%lx ret=%d in %ps [%05u] 100%%\n', args, 8, sym), 'cma pfn=1a2b ret=-3 in do_thing [00007] 100%\n');
  });

  it('Kallsyms: containing symbol and offset, module, aliases, absolute symbols, zero addresses, past the last', () => {
    const k = Kallsyms.parse(
      [
        'ffffffff81000000 T _text', 'ffffffff81000000 T _stext', 'ffffffff81001000 t helper', '0000000000001000 A fixed_percpu_data',
        'ffffffff81002000 T $x', 'ffffffffc0100000 t mod_fn\t[mymod]', 'ffffffffc0100100 t mod_end\t[mymod]',
      ].join('\n'),
    );
    assert.equal(k.size, 5);
    assert.deepEqual(k.lookup(0xffffffff, 0x81000010), { name: '_text', offset: 16, module: null });
    assert.deepEqual(k.lookup(0xffffffff, 0x81001fff), { name: 'helper', offset: 0xfff, module: null });
    assert.deepEqual(k.lookup(0xffffffff, 0xc0100004), { name: 'mod_fn', offset: 4, module: 'mymod' });
    assert.equal(k.lookup(0, 0x1000), null);
    assert.equal(k.lookup(0xffffffff, 0x80000000), null);
    assert.deepEqual(k.lookup(0xffffffff, 0xc0100100), { name: 'mod_end', offset: 0, module: 'mymod' });
    assert.equal(k.lookup(0xffffffff, 0xc0100101), null);
    assert.equal(Kallsyms.parse('0000000000000000 T _text\n0000000000000000 T start_kernel\n').size, 0);
    // Symbols in two 4 GiB spans are sorted the other way (by both words): the same answers.
    const mixed = Kallsyms.parse('ffffffff81000000 T _text\nffffffff81000000 T _stext\n0000000000002000 t low_sym\nffffffff81001000 t helper\n');
    assert.deepEqual(mixed.lookup(0, 0x2004), { name: 'low_sym', offset: 4, module: null });
    assert.deepEqual(mixed.lookup(0xffffffff, 0x81000010), { name: '_text', offset: 16, module: null });
  });
});
