/**
 * Fuzzer (issue #22): seeded mutations of real lines (samples/real/*.gz, the three text formats): byte flips,
 * huge numbers, odd comms (U+2028, `\r`, ESC, `=`, blanks, brackets, fake `-pid`), long lines, truncations,
 * deleted fields, NULs. For a fixed budget (REFSCOPE_FUZZ_BUDGET_MS, default 2500 ms; the bench runs it longer):
 * parsing never throws, takes time linear in the bytes, and accounts for every line (an event, a stack, a header
 * fact, a lost marker, a continuation or a counted unparsed line; only blank lines, `#` comments and the layouts'
 * documented decorations are skipped). Then a few mutated traces go through `ingest` into a database: each
 * either ingests or fails with one line naming the file, and a failure leaves the database as it was.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ensureSchema } from '../../db/setup.js';
import { EventBuilder } from '../../ingest/builder.js';
import { ingest } from '../../ingest/ingest.js';
import { bytesOf, longLine, readerFor, type TextFormat } from '../../ingest/parse.js';
import type { LineSink } from '../../ingest/readers/sink.js';
import { LineSplitter } from '../../ingest/source.js';

const BUDGET_MS = Number(process.env.REFSCOPE_FUZZ_BUDGET_MS ?? 2500);
const SEED = Number(process.env.REFSCOPE_FUZZ_SEED ?? 22);

const real = (f: string) => new URL(`../../samples/real/${f}`, import.meta.url).pathname;
const SOURCES: [TextFormat, string][] = [
  ['ftrace', 'e-mixed.trace.txt.gz'],
  ['ftrace', 'ftrace-raw-stacktrace-pidfiltered.txt.gz'],
  ['ftrace', 'd-pgmap-hmm.trace.txt.gz'],
  ['trace-cmd', 'trace-cmd-extract.report.txt.gz'],
  ['perf', 'perf-task-callgraph.script.txt.gz'],
];

/** mulberry32: small, seeded, good enough to pick mutations. */
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

const ODD_COMMS = ['a\u2028b', 'c\rr', '\x1b[2J\x1b]0;x\x07', 'k=v', 'a b', '[001]', 'x-1 [000] 1.0: y:', '<...>', 'é€😀', '-', ' 12 '];
const HUGE = ['100000000000000000000', '18446744073709551615', '18446744073709551616', '-2147483649', '9007199254740993', '0xffffffffffffffffff', '99999', '1e20', '-0', '0x'];

function mutate(line: string, r: () => number): string {
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
  const at = Math.floor(r() * (line.length + 1));
  switch (Math.floor(r() * 10)) {
    case 0: {
      // Byte flip (as a UTF-16 unit: any character the decoder may produce, NUL excluded by the splitter's input).
      const c = Math.floor(r() * 0x2100) || 1;
      return line.slice(0, at) + String.fromCharCode(c) + line.slice(at + 1);
    }
    case 1: {
      // A run of digits becomes a huge or odd number.
      const runs = [...line.matchAll(/\d+/g)];
      if (!runs.length) return line + pick(HUGE);
      const m = pick(runs);
      return line.slice(0, m.index) + pick(HUGE) + line.slice(m.index! + m[0].length);
    }
    case 2: {
      // An odd comm: replace what precedes the first `-digits` (ftrace) or the first number (perf).
      const m = /-\d|\s\d/.exec(line);
      const end = m ? m.index : at;
      return ' '.repeat(Math.floor(r() * 8)) + pick(ODD_COMMS) + line.slice(end);
    }
    case 3:
      // A long run (blanks, a separator, digits) somewhere: long enough that a quadratic parse of it takes seconds,
      // short enough that it does not hang the test; now and then a line past the 1 MiB limit.
      return line.slice(0, at) + pick([' ', '-', '1', 'a', '-1 ', ') ', '\t', '/*', '[', '=']).repeat(Math.floor(r() * (r() < 0.05 ? 1_200_000 : 30_000))) + line.slice(at);
    case 4:
      return line.slice(0, at);
    case 5: {
      // Delete a field (a blank-separated token).
      const toks = line.split(' ');
      toks.splice(Math.floor(r() * toks.length), 1);
      return toks.join(' ');
    }
    case 6:
      return line.slice(0, at) + pick(['\r', '\u2028', '\x1b', '=', ':', ': ', '(', ')', '[', ']', '*/', '=>', '\u0000']) + line.slice(at);
    case 7:
      return pick(['CPU:1 [LOST 100000000000000000000 EVENTS]', 'CPU:99999 [LOST 1 EVENTS]', '##### CPU 99999 buffer started ####', 'cpus=99999999999', '# entries-in-buffer/entries-written: 99999999999999999999/1   #P:2', ' => ' + 'f'.repeat(r() * 1000), '\t' + 'f'.repeat(16) + ' x (' + '('.repeat(r() * 1000)]);
    case 8:
      // Two lines glued, or one split by a carriage return.
      return line + pick(['', '\r', ' ']) + line;
    default:
      return line;
  }
}

/** Lines the readers skip by design: blank, `#` comments, trace-cmd's `CPU n is empty`, function_graph decorations. */
const SKIPPED = /^\s*$|^\s*#|^CPU \d+ is empty\s*$|^\s*\d+\)|\/\*.*\*\/\s*$|^(version|cpus)\s*=/;

let pools: [TextFormat, string[]][];

describe('fuzzing the text readers', () => {
  before(() => {
    pools = SOURCES.map(([format, f]) => {
      const lines = gunzipSync(readFileSync(real(f))).toString('utf8').split('\n');
      // The head (headers) and windows of consecutive lines (stacks, continuations stay whole).
      const r = rng(SEED);
      const pool = lines.slice(0, 30);
      for (let w = 0; w < 20; w++) {
        const s = Math.floor(r() * (lines.length - 40));
        pool.push(...lines.slice(s, s + 40));
      }
      return [format, pool];
    });
  });

  it(`never throws, stays linear and accounts for every line (${BUDGET_MS} ms)`, () => {
    const r = rng(SEED);
    const t0 = performance.now();
    let traces = 0;
    let lines = 0;
    while (performance.now() - t0 < BUDGET_MS) {
      const [format, pool] = pools[traces % pools.length];
      const start = Math.floor(r() * (pool.length - 60));
      const input = pool.slice(start, start + 60).map((l) => (r() < 0.3 ? mutate(l, r) : l));
      checkTrace(format, input, `seed ${SEED} trace ${traces}`);
      traces++;
      lines += input.length;
    }
    assert.ok(traces > 10, `${traces} traces in the budget`);
    process.stdout.write(`# fuzz: ${traces} traces, ${lines} lines in ${BUDGET_MS} ms\n`);
  });
});

function checkTrace(format: TextFormat, input: string[], what: string): void {
  const text = input.join('\n') + '\n';
  const builder = new EventBuilder(1, () => {});
  let cur = 0;
  const seen = new Set<number>();
  const mark = () => seen.add(cur);
  // Every sink call during a line accounts for it.
  const sink = new Proxy(builder, {
    get(target, prop, recv) {
      const v = Reflect.get(target, prop, recv);
      if (typeof v !== 'function') return v;
      return (...a: unknown[]) => {
        mark();
        return (v as (...x: unknown[]) => unknown).apply(target, a);
      };
    },
  }) as LineSink;
  const reader = readerFor(format, sink);
  // [ms, line, read as bytes]
  const times: [number, string, boolean][] = [];
  const onLong = longLine(sink);
  // As ingest runs it: ASCII blocks' lines go to the reader's byte path first (parse.ts bytesOf).
  const onBytes = bytesOf(reader);
  const sp = new LineSplitter(
    (t, n) => {
      cur = n;
      const a = performance.now();
      reader.line(t, n);
      times.push([performance.now() - a, t, false]);
    },
    (prefix, n) => {
      cur = n;
      onLong(prefix, n);
    },
    onBytes &&
    ((b, s, e, n) => {
      cur = n;
      const a = performance.now();
      const read = onBytes(b, s, e, n);
      if (read) times.push([performance.now() - a, b.toString('latin1', s, e), true]);
      return read;
    }),
  );
  const bytes = Buffer.from(text, 'utf8');
  try {
    sp.push(bytes);
    sp.end();
    reader.end();
    builder.finish();
  } catch (e) {
    assert.fail(`${what} (${format}) threw: ${(e as Error).stack}\n${text.slice(0, 2000)}`);
  }
  // Linear: no line costs more than a fixed overhead plus a (generous) constant per character. A slow line is
  // timed again alone (best of 3), so a garbage-collection pause is not taken for a quadratic parse.
  const bound = (len: number) => 20 + len / 2000;
  for (const [ms, t, viaBytes] of times) {
    if (ms < bound(t.length)) continue;
    let best = Infinity;
    for (let k = 0; k < 3; k++) {
      const again = readerFor(format, new EventBuilder(1, () => {}));
      const b = Buffer.from(t, 'latin1');
      const a = performance.now();
      if (!viaBytes || !again.lineBytes!(b, 0, b.length, 1)) again.line(t, 1);
      best = Math.min(best, performance.now() - a);
    }
    assert.ok(best < bound(t.length), `${what}: a ${t.length}-char line took ${best.toFixed(1)} ms: ${JSON.stringify(t.slice(0, 100))}`);
  }
  // Accounting: the lines as the splitter numbered them.
  const split = text.split('\n').slice(0, -1);
  split.forEach((l, i) => {
    if (seen.has(i + 1)) return;
    const line = l.endsWith('\r') ? l.slice(0, -1) : l;
    assert.ok(SKIPPED.test(line), `${what} (${format}): line ${i + 1} left unaccounted: ${JSON.stringify(line.slice(0, 300))}`);
  });
}

describe('fuzzing ingest', () => {
  let dir: string;
  let db: Db;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-fuzz-'));
    db = await Db.open(join(dir, 'f.duckdb'));
    await ensureSchema(db);
  });
  after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('each mutated trace ingests, or fails with one line naming the file and leaves the database as it was', async () => {
    const r = rng(SEED + 1);
    const count = async () =>
      (await db.all<{ t: bigint; e: bigint }>('SELECT (SELECT count(*) FROM traces) AS t, (SELECT count(*) FROM events) AS e'))[0];
    let ok = 0;
    let failed = 0;
    for (let k = 0; k < 8; k++) {
      const [format, pool] = pools[k % pools.length];
      const input = pool.map((l) => (r() < 0.2 ? mutate(l, r) : l));
      // Some traces start with binary garbage, or are cut in the middle of a line.
      if (k % 4 === 3) input.unshift('\u0000\u0001\u0002');
      const file = join(dir, `fuzz-${k}.txt`);
      writeFileSync(file, input.join('\n').slice(0, k % 3 === 2 ? -7 : undefined));
      const before = await count();
      try {
        await ingest(db, file, {});
        ok++;
      } catch (e) {
        failed++;
        const msg = (e as Error).message;
        assert.ok(msg.startsWith(file), `error does not name the file: ${msg}`);
        assert.ok(!msg.includes('\n'), `error is not one line: ${msg}`);
        assert.deepEqual(await count(), before, 'a failed ingest changed the database');
      }
      void format;
    }
    assert.ok(ok > 0 && failed > 0, `${ok} ingested, ${failed} refused`);
  });
});
