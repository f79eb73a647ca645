/**
 * The native perf.data reader against the text route: each fixture (test/fixtures/perfdata/README.md) ingested
 * as perf.data gives the events, stacks and lost markers of ingesting its `perf script --show-lost-events` text.
 * What the text carries differently is left out, and said: payload (perf evaluates all of print fmt, in its order,
 * %p of computed pointers included; the reader writes the format's fields as name=value), line_no, user frames' dso
 * names. gfp is compared: the reader renders print fmt's __print_flags as perf does (event-format.test.ts).
 */
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { detectFormat } from '../../ingest/detect.js';
import { ingest } from '../../ingest/ingest.js';
import { parseFormat, renderPayload } from '../../ingest/readers/event-format.js';
import { checkPerfData, PerfDataError, readPerfData } from '../../ingest/readers/perfdata.js';
import { EventBuilder } from '../../ingest/builder.js';
import { countsByTrace } from '../lib/tables.js';
import { assertRefused } from '../lib/refusals.js';

const FIX = new URL('../fixtures/perfdata/', import.meta.url);
const fixture = (name: string): Buffer => gunzipSync(readFileSync(new URL(name, FIX)));

// Every events column the text route fills from a perf script line, but payload and line_no (see above).
const COLS = 'seq, ts_ns, cpu, pid, tgid, comm, system, event, pfn, "order", nr_pages, mt, gfp, name, mode, nr_succeeded, nr_failed';
/**
 * A kernel stack as its frames (the fixtures' text was rendered without kallsyms: raw addresses both ways); a user
 * stack as its depth (perf symbolises user frames from the dsos on this machine, the reader keeps addresses).
 */
const STACK = (col: string, kind: string) => `(SELECT ${kind === 'user' ? 's.depth' : 's.frames'}
   FROM stacks s WHERE s.trace_id = e.trace_id AND s.stack_id = e.${col} AND s.kind = '${kind}')`;

/** The file with its first record's type made PERF_RECORD_COMPRESSED (81). */
function compressed(data: Buffer): Buffer {
  const b = Buffer.from(data);
  b.writeUInt32LE(81, Number(b.readBigUInt64LE(40)));
  return b;
}

let dir: string;
let db: Db;

async function rows(id: number) {
  const events = await db.all<Record<string, unknown>>(
    `SELECT ${COLS}, ${STACK('stack_id', 'kernel')} AS kstack, ${STACK('user_stack_id', 'user')} AS ustack
     FROM events e WHERE trace_id = $1 ORDER BY seq`,
    [id],
  );
  const lost = await db.all<Record<string, unknown>>('SELECT seq, lost::BIGINT AS lost FROM lost_events WHERE trace_id = $1 ORDER BY seq, lost', [id]);
  return { events, lost };
}

describe('perf.data reader', () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-perfdata-'));
    db = await Db.open(join(dir, 'db.duckdb'));
  });
  after(async () => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is detected by its magic (its .xz / .zst wrappers: source-wrappers.test.ts)', () => {
    assert.equal(detectFormat(fixture('plain.data.gz')), 'perf-data');
  });

  for (const name of ['plain', 'a', 'g', 'lost']) {
    it(`${name}: the events, stacks and lost markers of its perf script --show-lost-events text`, async () => {
      // Raw kernel frames, as the text was rendered, whatever machine runs the test (--kallsyms: perfdata-kallsyms).
      const bin = await ingest(db, new URL(`${name}.data.gz`, FIX).pathname, { kallsyms: false });
      const text = await ingest(db, new URL(`${name}.script.txt.gz`, FIX).pathname);
      assert.equal(bin.format, 'perf-data');
      assert.equal(text.format, 'perf');
      assert.equal(bin.unparsed_lines, 0);
      assert.equal(text.unparsed_lines, 0);
      const a = await rows(bin.trace_id);
      const b = await rows(text.trace_id);
      assert.ok(a.events.length > 100);
      assert.deepEqual(a.events, b.events);
      if (name === 'g') assert.ok(a.events.every((e) => e.kstack !== null) && a.events.some((e) => e.ustack !== null));
      // The LOST_SAMPLES records perf record writes last count the loss the LOST records tell: not counted twice.
      assert.deepEqual(a.lost, b.lost);
      assert.equal(bin.lost_events, text.lost_events);
      if (name === 'lost') assert.ok(b.lost.length > 0);
    });
  }

  it('renders a raw record by its format: fields in order, hex pfn, signed ints, print fmt constants', () => {
    const f = parseFormat(
      'kmem',
      `name: mm_page_free_batched\nID: 7\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n` +
        `\tfield:unsigned long pfn;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:int mt;\toffset:16;\tsize:4;\tsigned:1;\n` +
        `\tfield:__data_loc char[] name;\toffset:20;\tsize:4;\tsigned:0;\n\n` +
        `print fmt: "page=%p pfn=0x%lx order=0 name=%s", REC->pfn, REC->pfn, __get_str(name)\n`,
    )!;
    const raw = Buffer.alloc(32);
    raw.writeUInt16LE(7, 0);
    raw.writeBigUInt64LE(0x1a2bn, 8);
    raw.writeInt32LE(-2, 16);
    raw.writeUInt32LE(24 | (4 << 16), 20);
    raw.write('cma\0', 24, 'latin1');
    assert.equal(renderPayload(f, raw, true), 'pfn=0x1a2b mt=-2 name=cma order=0');
  });

  it('refuses a truncated file, a flipped header byte, a pipe header and compressed records with one line naming file and offset, database unchanged', async () => {
    const data = fixture('plain.data.gz');
    const before = await countsByTrace(db);
    const cases: [string, Buffer, RegExp][] = [
      ['cut.data', data.subarray(0, Math.floor(data.length / 2)), /^.*cut\.data: offset \d+: truncated: /],
      ['flip.data', Buffer.from(data).fill(0x7f, 20, 21), /^.*flip\.data: offset 16: attr entry size /],
      ['pipe.data', Buffer.concat([data.subarray(0, 8), Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(64)]), /pipe\.data: offset 8: piped perf\.data/],
      ['zstd.data', compressed(data), /zstd\.data: offset \d+: PERF_RECORD_COMPRESSED \(perf record -z\) is not supported/],
    ];
    await assertRefused(db, dir, cases);
    assert.deepEqual(await countsByTrace(db), before);
  });

  it('a corrupt byte anywhere is read or refused with its offset, never another error', () => {
    const data = fixture('g.data.gz');
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    let refused = 0;
    for (let i = 0; i < 300; i++) {
      const bad = Buffer.from(data);
      bad[rand(bad.length)] ^= 1 << rand(8);
      bad[rand(bad.length)] = rand(256);
      try {
        readPerfData(bad, new EventBuilder(1, () => undefined), checkPerfData(bad));
      } catch (e) {
        assert.ok(e instanceof PerfDataError, String(e));
        assert.ok(e.offset >= 0 && e.offset <= bad.length);
        refused++;
      }
    }
    assert.ok(refused > 0);
  });

  it('says in the summary that plain perf script text cannot show loss', async () => {
    const path = join(dir, 'plain.txt.gz');
    copyFileSync(new URL('plain.noloss-flag.script.txt.gz', FIX), path);
    const s = await ingest(db, path, { replace: true });
    assert.ok(s.notes.includes('perf script output does not show lost events: run perf script --show-lost-events (or ingest the perf.data) to know'), s.notes.join('; '));
    const l = await ingest(db, new URL('lost.data.gz', FIX).pathname, { replace: true });
    assert.deepEqual(l.notes, []);
  });
});
