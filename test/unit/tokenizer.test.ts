/**
 * The tokenizer (ingest/tokenize.ts, issue #20) against the regex path it stands in for: every ftrace and
 * trace-cmd text trace in samples/real (head and windows), generated scenarios in each era and both layouts, and
 * mutated lines of those captures, are parsed twice in memory (tokenizer.on true and false) and must give the
 * same reader calls (so the same events, stacks, lost markers, header facts, unparsed lines and line
 * accounting), the same rows in every events column and the same trace facts. A count of lines the tokenizer
 * took checks that it did take the common shapes.
 */
import { strict as assert } from 'node:assert';
import { createHash, type Hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { type BatchColumn, type ColumnarBatch, isValid } from '../../db/batch.js';
import { EventBuilder } from '../../ingest/builder.js';
import { longLine, readerFor, type TextFormat } from '../../ingest/parse.js';
import type { Clock, LineContext, LineSink, LostKind, SkipKind, StackKind } from '../../ingest/readers/sink.js';
import { LineSplitter } from '../../ingest/source.js';
import { fastContext, tokenizer } from '../../ingest/tokenize.js';
import { generate, type Scenario } from '../../samples/generate/index.js';
import type { Era } from '../../samples/generate/types.js';

/** Every sink call, in order, into a hash (LineContext is copied by value: readers reuse theirs). */
class Recorder implements LineSink {
  private buf: string[] = [];
  constructor(
    private readonly to: EventBuilder,
    private readonly h: Hash,
  ) {}
  private log(s: string): void {
    this.buf.push(s);
    if (this.buf.length >= 4096) this.drain();
  }
  drain(): void {
    this.h.update(this.buf.join('\n'));
    this.buf = [];
  }
  event(lineNo: number, ctx: LineContext, system: string | null, event: string, payload: string, line?: string | (() => string)): boolean {
    const ok = this.to.event(lineNo, ctx, system, event, payload, line);
    const c = ctx;
    this.log(`E${lineNo}|${c.tsSec}|${c.tsNs}|${c.cpu}|${c.pid}|${c.tgid}|${c.comm}|${c.irq}|${system}|${event}|${payload}|${ok}`);
    return ok;
  }
  stackStart(kind: StackKind, cpu: number): void {
    this.log(`S${kind}|${cpu}`);
    this.to.stackStart(kind, cpu);
  }
  frame(text: string, lineNo?: number): void {
    this.log(`F${text}|${lineNo}`);
    this.to.frame(text, lineNo);
  }
  continuation(lineNo: number, text: string): void {
    this.log(`C${lineNo}|${text}`);
    this.to.continuation(lineNo, text);
  }
  lost(lineNo: number, cpu: number | null, count: number | null, kind: LostKind, line?: string): void {
    this.log(`L${lineNo}|${cpu}|${count}|${kind}|${line}`);
    this.to.lost(lineNo, cpu, count, kind, line);
  }
  header(key: string, value: string): void {
    this.log(`H${key}|${value}`);
    this.to.header(key, value);
  }
  skip(lineNo: number, what: SkipKind): void {
    this.log(`K${lineNo}|${what}`);
  }
  clock(clock: Clock): void {
    this.log(`T${clock}`);
    this.to.clock(clock);
  }
  unparsed(lineNo: number, text: string, reason: string): void {
    this.log(`U${lineNo}|${reason}|${text}`);
    this.to.unparsed(lineNo, text, reason);
  }
}

/** Every valid value of every column of the batch's rows, in order. */
function hashRows(b: ColumnarBatch, h: Hash): void {
  const cols = b.columns;
  for (let r = 0; r < b.rows; r++) {
    let row = '';
    for (const c of cols) row += isValid(c, r) ? cell(c, r) + '\x01' : '\x02';
    h.update(row + '\n');
  }
}

function cell(c: BatchColumn, r: number): string {
  switch (c.storage) {
    case 'i64':
    case 'u64':
      return `${c.i32![2 * r]},${c.i32![2 * r + 1]}`;
    case 'i32':
      return String(c.i32![r]);
    case 'i16':
      return String(c.i16![r]);
    case 'bool':
      return String(c.u8![r]);
    case 'dict':
      return c.dict!.values[c.codes![r]];
    case 'str': {
      const t = c.text!;
      return t.bytes.toString('latin1', t.start[r], t.start[r] + t.len[r]);
    }
  }
}

interface Parsed {
  calls: string;
  rows: string;
  facts: string;
}

function parse(format: TextFormat, text: Buffer, fast: boolean): Parsed {
  const was = tokenizer.on;
  tokenizer.on = fast;
  try {
    const callHash = createHash('sha1');
    const rowHash = createHash('sha1');
    const builder = new EventBuilder(1, (b) => hashRows(b, rowHash));
    const rec = new Recorder(builder, callHash);
    const reader = readerFor(format, rec);
    const sp = new LineSplitter((t, n) => reader.line(t, n), longLine(rec));
    sp.push(text);
    sp.end();
    reader.end();
    builder.finish();
    rec.drain();
    const facts = JSON.stringify(builder.facts(sp.lineNo), (_k, v) => (typeof v === 'bigint' ? `${v}n` : v));
    return { calls: callHash.digest('hex'), rows: rowHash.digest('hex'), facts };
  } finally {
    tokenizer.on = was;
  }
}

function assertSame(format: TextFormat, text: Buffer, what: string): void {
  const slow = parse(format, text, false);
  const fast = parse(format, text, true);
  assert.equal(fast.calls, slow.calls, `${what}: reader calls differ`);
  assert.equal(fast.rows, slow.rows, `${what}: events rows differ`);
  assert.equal(fast.facts, slow.facts, `${what}: trace facts differ`);
}

/** Lines the tokenizer takes (the test would prove nothing if it took none). */
function taken(text: Buffer): number {
  const ctx: LineContext = { tsSec: 0, tsNs: 0, cpu: 0, pid: 0, tgid: -1, comm: '', irq: null };
  let n = 0;
  for (const l of text.toString('latin1').split('\n')) if (fastContext(l, ctx) >= 0) n++;
  return n;
}

const linesOf = new Map<string, string[]>();
function realLines(f: string): string[] {
  let lines = linesOf.get(f);
  if (!lines) linesOf.set(f, (lines = gunzipSync(readFileSync(new URL(`../../samples/real/${f}`, import.meta.url))).toString('latin1').split('\n')));
  return lines;
}

/** A capture's head (its header) and three windows, WINDOW lines each: the whole files take ~10 s twice over. */
const WINDOW = 5_000;
function excerpt(lines: string[]): Buffer {
  if (lines.length <= 4 * WINDOW) return Buffer.from(lines.join('\n'), 'latin1');
  const parts = [0, 0.33, 0.66, 1].map((q) => {
    const s = Math.min(Math.floor(q * lines.length), lines.length - WINDOW);
    return lines.slice(s, s + WINDOW).join('\n');
  });
  return Buffer.from(parts.join('\n'), 'latin1');
}

const REAL: [TextFormat, string][] = [
  ['ftrace', 'a-iouring-longterm.trace.txt.gz'],
  ['ftrace', 'b-vmsplice.trace.txt.gz'],
  ['ftrace', 'c-cma-blocked.trace.txt.gz'],
  ['ftrace', 'd-pgmap-hmm.trace.txt.gz'],
  ['ftrace', 'e-mixed.trace.txt.gz'],
  ['ftrace', 'ftrace-raw-default.txt.gz'],
  ['ftrace', 'ftrace-raw-stacktrace-pidfiltered.txt.gz'],
  ['trace-cmd', 'trace-cmd-extract.report.txt.gz'],
];

async function generated(scenario: Scenario, format: TextFormat, era: Era, seed: number): Promise<Buffer> {
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (b: Buffer) => parts.push(b));
  await generate(scenario, out, { format, era, seed, scale: 0.1 });
  out.end();
  return Buffer.concat(parts);
}

/** mulberry32, as in fuzz.test.ts. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// fuzz.test.ts's mutations of real lines, those that reach the context prefix and the frames (its long runs are
// shorter here: the tokenizer's reach is the first 256 characters).
const ODD_COMMS = ['a\u2028b', 'c\rr', '\x1b[2J\x1b]0;x\x07', 'k=v', 'a b', '[001]', 'x-1 [000] 1.0: y:', '<...>', 'é€😀', '-', ' 12 ', '#x', '=>f', 'a-1 b', 'IPC I/O Parent', 'x-12 (  1) [0] 1.5: '];
const HUGE = ['100000000000000000000', '18446744073709551615', '9007199254740993', '0xffffffffffffffffff', '99999', '1e20', '-0', '0x', '0000000000000001', ''];
const PUNCT = ['=', ' =', 'pfn=', ' pfn=1 ', ' mapping=', ',count=', '(ret=', 'x=', '\r', '\u2028', '\x1b', '=', ':', ': ', ':\t', '(', ')', '[', ']', '*/', '=>', '-', '-1', '.', ' ', '\t', '+0x1/0x2', '(+0.5)', '\u00a0'];

/** Frames whose normal form is not what was printed (stack.ts ftraceFrame), and some that are. */
const FRAMES = [' => ffffffff8117c9e4', ' => deadbeef', ' => abcdef', ' => Func+0X1C/0x80', ' => func+0x1C/0x80', ' => func+0x1c/0x80 ',
  ' => <ffffffff8117c9e4>', ' => 0xffffffffc0001234', ' => f+0x1c', ' => f+0x1c/', ' => f.cold+0x1/0x2', '\t=>\tg', ' => g [mod]',
  ' => 1abc', ' => _', ' => x' + 'f'.repeat(1100)];

function mutate(line: string, r: () => number): string {
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
  // Half in the context prefix, half anywhere (payload fields: the decoders' fast entry points).
  const at = Math.floor(r() * (r() < 0.5 ? Math.min(line.length + 1, 90) : line.length + 1));
  switch (Math.floor(r() * 9)) {
    case 0:
      return line.slice(0, at) + String.fromCharCode(Math.floor(r() * 0x2100) || 1) + line.slice(at + 1);
    case 1: {
      const runs = [...line.matchAll(/\d+/g)];
      if (!runs.length) return line + pick(HUGE);
      const m = pick(runs);
      return line.slice(0, m.index) + pick(HUGE) + line.slice(m.index! + m[0].length);
    }
    case 2: {
      const m = /-\d|\s\d/.exec(line);
      return ' '.repeat(Math.floor(r() * 8)) + pick(ODD_COMMS) + line.slice(m ? m.index : at);
    }
    case 3:
      return line.slice(0, at) + pick([' ', '-', '1', 'a', '-1 ', ') ', '\t', '[', '=']).repeat(Math.floor(r() * 300)) + line.slice(at);
    case 4:
      return line.slice(0, at);
    case 5: {
      const toks = line.split(' ');
      toks.splice(Math.floor(r() * Math.min(toks.length, 12)), 1);
      return toks.join(' ');
    }
    case 6:
      return line.slice(0, at) + pick(PUNCT) + line.slice(at);
    case 7:
      return pick(FRAMES);
    default:
      return line.slice(0, at) + line.slice(at + 1 + Math.floor(r() * 4));
  }
}

describe('tokenizer: the same tables as the regex path', () => {
  it('mutated lines of the real captures', () => {
    const r = rng(20);
    for (const [format, file] of REAL) {
      const lines = realLines(file);
      const out: string[] = lines.slice(0, 20);
      for (let w = 0; w < 20; w++) {
        const s = Math.floor(r() * (lines.length - 100));
        for (const l of lines.slice(s, s + 100)) out.push(r() < 0.5 ? mutate(l, r) : l);
      }
      const text = Buffer.from(out.join('\n') + '\n', 'utf8');
      assertSame(format, text, `mutated ${file}`);
    }
  });

  for (const [format, file] of REAL) {
    it(`${file} (${format})`, () => {
      const text = excerpt(realLines(file));
      assertSame(format, text, file);
      assert.ok(taken(text) > 0, `${file}: the tokenizer took no line`);
    });
  }

  const SCENARIOS: Scenario[] = ['noise', 'vmsplice-cma', 'dax-pgmap', 'lost-window', 'tracing-gap'];
  for (const era of ['5.15', '6.1', '6.18'] as Era[])
    for (const format of ['ftrace', 'trace-cmd'] as TextFormat[])
      it(`generated scenarios, era ${era}, ${format}`, async () => {
        for (const [k, scenario] of SCENARIOS.entries()) {
          const text = await generated(scenario, format, era, k + 1);
          assertSame(format, text, `${scenario} ${era} ${format}`);
          assert.ok(taken(text) > 0, `${scenario}: the tokenizer took no line`);
        }
      });
});
