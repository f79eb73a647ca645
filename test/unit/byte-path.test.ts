/**
 * The text readers' byte paths (ftrace.ts and perf.ts lineBytes, ftrace-bytes.ts, perf-bytes.ts, decode/scan.ts)
 * must store exactly what the string path stores: every column of every row, the stacks and the trace facts, for
 * ftrace, trace-cmd and perf script text.
 * Checked on real captures, generated scenarios of the oldest and newest eras, and seeded mutations aimed at where a
 * hand-written scanner can part from the regexes it replaces (digit runs around 15, flags of 3 to 7 characters,
 * tgid forms, `(+delta)`, hex of 12 to 17 digits, upper case, signs, missing or extra fields and blanks, fake
 * `-pid` in comms, stack headers, perf's pid/tid, cpu and period columns), and crafted lines at each fork of the
 * patterns. The byte path must also be the one taken for most lines, or this proves nothing.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import type { ColumnarBatch } from '../../db/batch.js';
import { EventBuilder } from '../../ingest/builder.js';
import { bytesOf, longLine, readerFor } from '../../ingest/parse.js';
import { LineSplitter } from '../../ingest/source.js';
import { generate, type Format } from '../../samples/generate/index.js';
import { Rng } from '../../samples/generate/prng.js';

type TextFormat = 'ftrace' | 'trace-cmd' | 'perf';

/** Every row of every batch as printable values (validity included), the stacks and the facts. */
function parse(text: Buffer, format: TextFormat, bytes: boolean): { rows: string[]; rest: string; viaBytes: number } {
  const rows: string[] = [];
  const b = new EventBuilder(1, (batch: ColumnarBatch) => {
    for (let r = 0; r < batch.rows; r++) rows.push(batch.columns.map((c) => cell(c, r)).join('\t'));
  });
  const reader = readerFor(format, b);
  let viaBytes = 0;
  const onBytes = bytesOf(reader);
  const counted = onBytes && ((buf: Buffer, s: number, e: number, n: number) => (onBytes(buf, s, e, n) ? (viaBytes++, true) : false));
  const split = new LineSplitter((t, n) => reader.line(t, n), longLine(b), bytes ? counted : null);
  // Blocks of odd sizes: lines cross block ends (the splitter's carry).
  for (let at = 0; at < text.length; at += 7919) split.push(text.subarray(at, at + 7919));
  split.end();
  reader.end();
  b.finish();
  const rest = JSON.stringify(b.facts(split.lineNo), (_k, v) => (typeof v === 'bigint' ? String(v) : v));
  return { rows, rest, viaBytes };
}

function cell(c: ColumnarBatch['columns'][number], r: number): string {
  if (!(c.valid[r >>> 5] & (1 << (r & 31)))) return 'NULL';
  switch (c.storage) {
    case 'i64':
    case 'u64':
      return `${c.i32![2 * r + 1]}:${c.i32![2 * r] >>> 0}`;
    case 'i32':
      return String(c.i32![r]);
    case 'i16':
      return String(c.i16![r]);
    case 'bool':
      return String(c.u8![r]);
    case 'dict':
      return JSON.stringify(c.dict!.values[c.codes![r]]);
    case 'str':
      return JSON.stringify(c.text!.bytes.toString('utf8', c.text!.start[r], c.text!.start[r] + c.text!.len[r]));
  }
}

/** Byte path and string path agree; returns how many lines the byte path read (and sets `events`). */
let events = 0;
function same(text: Buffer, format: TextFormat, what: string): number {
  const a = parse(text, format, false);
  const b = parse(text, format, true);
  assert.equal(b.rows.length, a.rows.length, `${what}: rows`);
  for (let i = 0; i < a.rows.length; i++) assert.equal(b.rows[i], a.rows[i], `${what}: row ${i}`);
  if (b.rest !== a.rest) {
    let i = 0;
    while (b.rest[i] === a.rest[i]) i++;
    assert.fail(`${what}: stacks and facts differ at\n  bytes:  ${b.rest.slice(i - 300, i + 200)}\n  string: ${a.rest.slice(i - 300, i + 200)}`);
  }
  events = (JSON.parse(a.rest) as { events: number }).events;
  return b.viaBytes;
}

const real = (f: string) => gunzipSync(readFileSync(new URL(`../../samples/real/${f}`, import.meta.url)));

class Sink extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    cb();
  }
}

const NUMBERS = ['0', '-0', '7', '-1', '999999999999999', '1000000000000000', '-999999999999999', '2147483648', '65536', '0x10', '00012'];
const HEXES = ['0', 'f', 'ffffffffffff', 'fffffffffffff', 'ffffffffffffff', 'ffd4000001fc3ac0', 'ffd4000001fc3ac01', 'FFD4000001FC3AC0', '0x7f0eb', 'x12', '0xfffffffffffff', '0x10000000000000', ''];
const FLAGS = ['...', '....', '.....', 'd..2.', 'd.h1.1', 'dNh1.1.', '1234', '12345', '123456', 'a:b.', ''];
const PIECES = [' ', '  ', '\t', '-', '-12', '-1 [000] 1.0: x:', ':', '(', ')', '[', ']', '(+0.5)', '(+)', '<stack trace>', '<user stack trace>', '<x>', '0x1f', ',', '=', '\r', 'ret=', ' ret=1', 'pfn=', 'page='];

/** One mutation of an ASCII line, aimed at the scanners' edges. */
function mutate(line: string, r: () => number): string {
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
  const at = Math.floor(r() * (line.length + 1));
  switch (Math.floor(r() * 10)) {
    case 0: // a number somewhere replaced
      return line.replace(/-?\d+/g, (m) => (r() < 0.3 ? pick(NUMBERS) : m));
    case 1: // a hex value replaced
      return line.replace(/(0x)?[0-9a-f]{5,}/g, (m) => (r() < 0.5 ? pick(HEXES) : m));
    case 2: // the flags column
      return line.replace(/\] \S+ /, () => `] ${pick(FLAGS)} `);
    case 3: // a piece inserted
      return line.slice(0, at) + pick(PIECES) + line.slice(at);
    case 4: // a character deleted
      return line.slice(0, at) + line.slice(at + 1);
    case 5: // the comm replaced by one with dashes and digits, around 15 bytes
      return line.replace(/^\s*\S+?-(\d+)/, (_m, pid) => `${'x-1'.repeat(Math.floor(r() * 7))}${'a'.repeat(Math.floor(r() * 4))}-${pid}`);
    case 7: // the tgid column, and a short comm so its dashes are candidates for the task's end
      return line.replace(/^\s*\S+?-(\d+)(\s+)\(\s*\d+\)/, (_m, pid, gap) => `${pick(['a', 'x-1', ''])}-${pid}${gap}${pick(['(-------)', '(-----)', '(-)', '( 12 )', '()', '(--1)'])}`);
    case 8: // perf's columns: pid/tid, no cpu, a period, a counter event's modifiers
      return line.replace(/^(\s*\S+\s+)(\d+)( +)(\[\d+\] +)?(\d+\.\d+: +)(\S+:)/, (_m, comm, pid, gap, cpu, ts, ev) =>
        `${comm}${pid}${r() < 0.5 ? `/${pick(NUMBERS)}` : ''}${gap}${r() < 0.3 ? '' : (cpu ?? '[001] ')}${ts}${r() < 0.4 ? `${pick(NUMBERS)} ` : ''}${r() < 0.2 ? 'cycles:ppp:' : ev}`);
    case 6: // truncated
      return line.slice(0, at);
    default: // a field dropped
      return line.replace(new RegExp(` ${pick(['count', 'mapcount', 'mapping', 'mt', 'val', 'ret', 'order', 'migratetype', 'gfp_flags', 'flags'])}=\\S*`), '');
  }
}

describe('text byte path', () => {
  it('stores what the string path stores for real captures', () => {
    for (const [f, format] of [
      ['e-mixed.trace.txt.gz', 'ftrace'],
      ['a-iouring-longterm.trace.txt.gz', 'ftrace'],
      ['ftrace-raw-default.txt.gz', 'ftrace'],
      ['ftrace-raw-stacktrace-pidfiltered.txt.gz', 'ftrace'],
      ['trace-cmd-extract.report.txt.gz', 'trace-cmd'],
      ['perf-kmem-a.script.txt.gz', 'perf'],
      ['perf-task-callgraph.script.txt.gz', 'perf'],
    ] as [string, TextFormat][]) {
      // The start and the end of each (the suite's time): its header, stacks, markers and lost lines are there.
      const all = real(f).toString('latin1').split('\n');
      const kept = all.length > 12000 ? [...all.slice(0, 9000), ...all.slice(-3000)] : all;
      const text = Buffer.from(kept.join('\n'), 'latin1');
      const viaBytes = same(text, format, f);
      // Every event line but the odd one out (other layouts, payloads the string path reads) goes the byte way.
      assert.ok(viaBytes > 0.9 * events, `${f}: ${viaBytes} lines read as bytes, ${events} events`);
    }
  });

  it('stores what the string path stores for generated scenarios of two eras in the three layouts', async () => {
    let seed = 1;
    for (const scenario of ['noise', 'gup-interleaved', 'dax-pgmap-leak'] as const)
      for (const format of ['ftrace', 'trace-cmd', 'perf'] as Format[])
        for (const era of ['5.15', '6.18'] as const) {
          const sink = new Sink();
          await generate(scenario, sink, { format, seed: seed++, era, scale: 0.05 });
          const text = Buffer.concat(sink.chunks);
          const viaBytes = same(text, format as TextFormat, `${scenario} ${format} ${era}`);
          assert.ok(viaBytes > 0, `${scenario} ${format} ${era}: byte path taken`);
        }
  });

  it('stores what the string path stores for mutated lines', () => {
    const rand = new Rng(20);
    const r = () => rand.next();
    for (const [f, format] of [
      ['e-mixed.trace.txt.gz', 'ftrace'],
      ['trace-cmd-extract.report.txt.gz', 'trace-cmd'],
      ['perf-task-callgraph.script.txt.gz', 'perf'],
    ] as [string, TextFormat][]) {
      const lines = real(f).toString('latin1').split('\n').slice(0, 2500);
      const out: string[] = [];
      for (const line of lines) {
        out.push(line);
        if (r() < 0.5) out.push(mutate(line, r));
        if (r() < 0.2) out.push(mutate(mutate(line, r), r));
      }
      const text = Buffer.from(out.join('\n') + '\n', 'latin1');
      assert.ok(same(text, format, `mutated ${f}`) > 0);
    }
  });

  it('keeps the task of the match it chose when a later dash looks like a pid', () => {
    // Within 15 bytes of the comm's start, `-2 ` is tried as a task end after `-1 ` matched, and fails.
    const text = Buffer.from(['a-1 [0] 1: b: -2 z', 'a-1 [0] 1.5: b: -2 (x', 'x-1-7 [1] 2: c: -3 ['].join('\n') + '\n');
    assert.equal(same(text, 'ftrace', 'short lines'), 3);
  });

  it('agrees on crafted lines at each fork of the context patterns', () => {
    const ftrace = [
      'a-1 (  12)[000] 1.0: b: x', // tgid without the blank after it
      'a-1 (-----) [000] 1.0: b: x',
      'a-1 ( 12 ) [000] 1.0: b: x',
      'a-1 (12 [000] 1.0: b: x',
      'a-1 [000] d.h1 1.0: b: x', // flags of 4, 3, 7 characters, digits among them
      'a-1 [000] 123 1.0: b: x',
      'a-1 [000] 1234 5.0: b: x',
      'a-1 [000] 1234567 5.0: b: x',
      'a-1 [000] 1.0 (+0.5): b: x',
      'a-1 [000] 1.0 (+): b: x',
      'a-1 [000] 1: b: x', // a counter clock
      'a-1 [000] 1.1234567890: b: x',
      'a-1 [000] 1234567890123456.0: b: x',
      'a-1 [000] 1.0:b: x',
      'a-1 [000] 1.0: 0x12: x',
      'a-1 [000] 1.0: <stack trace>',
      'a-1 [000] 1.0: <x>: y',
      'a-1 [000] 1.0: b:',
      'a-1 [000] 1.0: b:   ',
    ];
    const perf = [
      'a 1/2 [000] 1.000001: sys:ev: p',
      'a 1 1.000001: sys:ev: p', // no cpu
      'a 1 [000] 1.000001: 5 sys:ev: p', // a period
      'a 1 [000] 1.000001: 5 cycles:ppp: p',
      'a 1 [000] 1.000001: cycles:ppp: p',
      'a 1 [000] 1.000001: sys:ev:p',
      'a 1 [000] 1.000001: sys:ev:  p',
      'a b 1 [0] 1.0: s:ev: p',
      'a 1 [0]1.0: s:ev: p',
      'a 1/ [0] 1.0: s:ev: p',
      'a 1 [0] 1: s:ev: p',
      'a 1 [0] 1.0: s:ev.f-g: p',
      'a 1 [0] 1.0: s:e: p', // `e` alone is a modifier: a counter event's
    ];
    for (const [format, lines] of [['ftrace', ftrace], ['trace-cmd', ftrace], ['perf', perf]] as [TextFormat, string[]][])
      assert.ok(same(Buffer.from(lines.join('\n') + '\n'), format, `crafted ${format}`) > 0);
  });

  it('leaves a block with non-ASCII bytes to the string path', () => {
    const line = '          bash\u00e9-1868    (   1868) [000] .....   230.295218: page_ref_set: pfn=0x7f0eb flags=none count=1 mapcount=0 mapping=0000000000000000 mt=4 val=1\n';
    const text = Buffer.from(line.repeat(3));
    same(text, 'ftrace', 'utf8');
    assert.equal(parse(text, 'ftrace', true).viaBytes, 0);
  });
});
