/**
 * .gz, .xz and .zst wrappers (ingest/source.ts): the same trace in each gives the same content, hash and rows
 * (a trace and its .xz are one trace: the second is a duplicate), text on the main thread and on the parse worker,
 * and a binary format (perf.data) inside; a corrupt or truncated stream is refused with the file and the reason,
 * the database unchanged. The .xz inputs are made here (node-liblzma compresses); the .zst ones are fixtures made
 * with the zstd command (test/fixtures/wrappers/README.md).
 */
import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { decompress } from 'fzstd';
import { xzSync as xzPreset6 } from 'node-liblzma';
import { Db } from '../../db/duckdb.js';
import { DuplicateTraceError, ingest } from '../../ingest/ingest.js';
import { InputError, openSource } from '../../ingest/source.js';
import { CAPTURES, REAL } from '../lib/captures.js';
import { countsByTrace } from '../lib/tables.js';

/** Preset 1: the default (6) spends most of a second per MiB here. */
const xzSync = (b: Buffer): Buffer => xzPreset6(b, { preset: 1 });
const WRAP = fileURLToPath(new URL('../fixtures/wrappers/', import.meta.url));
const PERFDATA = fileURLToPath(new URL('../fixtures/perfdata/', import.meta.url));

let dir: string;
let db: Db;
const file = (name: string, content: Buffer): string => {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
};

async function content(path: string): Promise<{ text: Buffer; sha: string; compression: string | null }> {
  const src = await openSource(path);
  const parts: Buffer[] = [];
  for await (const b of src.blocks()) parts.push(b);
  return { text: Buffer.concat(parts), sha: src.sha256(), compression: src.compression };
}

/** A trace's rows, every column but trace_id. */
async function rows(id: number) {
  const q = (t: string, order: string) => db.all(`SELECT * EXCLUDE (trace_id) FROM ${t} WHERE trace_id = $1 ORDER BY ${order}`, [id]);
  return { events: await q('events', 'seq'), stacks: await q('stacks', 'stack_id'), lost: await q('lost_events', 'seq, lost') };
}

/** Ingested again from `path` (same content: --replace), it gives the rows of trace `id`, and replaces it. */
async function sameAs(id: number, path: string): Promise<number> {
  const want = await rows(id);
  const s = await ingest(db, path, { replace: true, kallsyms: false });
  assert.deepEqual(s.replaced, [id]);
  assert.deepEqual(await rows(s.trace_id), want);
  return s.trace_id;
}

async function refused(path: string, reason: RegExp): Promise<void> {
  await assert.rejects(ingest(db, path), (e: Error) => {
    // The parse worker's errors reach the main thread as their message.
    if (process.env.REFSCOPE_WORKER !== '1') assert.ok(e instanceof InputError, e.stack);
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    assert.match(e.message, reason);
    return true;
  });
}

/**
 * A zstd frame holding "a" as a raw block, by hand (RFC 8878 §3.1.1): single segment with a 1-byte content size and a
 * checksum, the low half of XXH64("a") = 0xd24ec4f1a98c6e5b (xxhash's published value).
 */
const frameOfA = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x24, 1, 1 | (1 << 3), 0, 0, 0x61, 0x5b, 0x6e, 0x8c, 0xa9]);
const SKIPPABLE = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);

describe('compressed wrappers', () => {
  const text = gunzipSync(readFileSync(join(REAL, CAPTURES.b)));
  const perfData = gunzipSync(readFileSync(join(PERFDATA, 'g.data.gz')));
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  const env = process.env.REFSCOPE_WORKER;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-wrappers-'));
    db = await Db.open(join(dir, 'db.duckdb'));
  });
  after(async () => {
    if (env === undefined) delete process.env.REFSCOPE_WORKER;
    else process.env.REFSCOPE_WORKER = env;
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gzip, xz, zstd (and zstd frames in a row, split across read steps) give the same content and SHA-256', async () => {
    const zst = readFileSync(join(WRAP, 'b-vmsplice.trace.txt.zst'));
    const cases: [string, string, Buffer][] = [
      [join(REAL, CAPTURES.b), 'gzip', text],
      [file('b.xz', xzSync(text)), 'xz', text],
      [file('b2.xz', Buffer.concat([xzSync(text), xzSync(text)])), 'xz', Buffer.concat([text, text])],
      [join(WRAP, 'b-vmsplice.trace.txt.zst'), 'zstd', text],
      [file('b2.zst', Buffer.concat([zst, zst, zst])), 'zstd', Buffer.concat([text, text, text])],
      // A 14-byte frame (fzstd holds back frames under 18 bytes) and a skippable frame before the fixture's: each
      // frame's checksum is checked on its own content (the fixture's, zstd's own, covers the long XXH64 path).
      [file('a.zst', Buffer.concat([frameOfA, SKIPPABLE, zst])), 'zstd', Buffer.concat([Buffer.from('a'), text])],
      [join(WRAP, 'g.data.zst'), 'zstd', perfData],
    ];
    for (const [path, compression, want] of cases) {
      const c = await content(path);
      assert.equal(c.compression, compression, path);
      assert.ok(c.text.equals(want), path);
      assert.equal(c.sha, sha(want), path);
    }
  });

  it('text: .xz is a duplicate of the same .gz, and gives the same rows on the parse worker (it reads the file itself)', async () => {
    // Main thread: the rows of a trace come from src.blocks(), whose content the first case compares.
    process.env.REFSCOPE_WORKER = '0';
    const gz = await ingest(db, join(REAL, CAPTURES.b));
    assert.ok(gz.events > 4000);
    const xz = file('b.trace.xz', xzSync(text));
    await assert.rejects(ingest(db, xz), (e: Error) => e instanceof DuplicateTraceError && e.message.includes(`already ingested as trace ${gz.trace_id}`));
    // The worker loads node-liblzma's native addon in its own thread.
    process.env.REFSCOPE_WORKER = '1';
    await sameAs(gz.trace_id, xz);
  });

  it('perf.data inside .gz, .xz and .zst: the same events and stacks', async () => {
    const gz = await ingest(db, join(PERFDATA, 'g.data.gz'), { kallsyms: false });
    assert.equal(gz.format, 'perf-data');
    assert.ok(gz.stacks > 0);
    const id = await sameAs(gz.trace_id, file('g.data.xz', xzSync(perfData)));
    await sameAs(id, join(WRAP, 'g.data.zst'));
  });

  it('a corrupt or truncated .xz / .zst is refused with the file and the reason, database unchanged', async () => {
    const xz = xzSync(text);
    const zst = readFileSync(join(WRAP, 'b-vmsplice.trace.txt.zst'));
    const flipped = Buffer.from(xz);
    flipped[xz.length >> 1] ^= 0x55;
    // zstd: the first block's header (after magic, frame header byte 0x04 and window byte) given the reserved block
    // type 3; and a flipped byte that still decodes (fzstd alone would pass it on), caught by the content checksum.
    assert.equal(zst[4], 0x04);
    const badBlock = Buffer.from(zst);
    badBlock[6] |= 0x06;
    let decodes: Buffer | null = null;
    for (let at = zst.length >> 1; decodes === null; at++) {
      const b = Buffer.from(zst);
      b[at] ^= 0x01;
      try {
        if (!Buffer.from(decompress(b)).equals(text)) decodes = b;
      } catch {
        // this flip breaks the structure: try the next byte
      }
    }
    const before = await countsByTrace(db);
    process.env.REFSCOPE_WORKER = '0';
    await refused(file('cut.xz', xz.subarray(0, xz.length >> 1)), /: xz stream is corrupt: unexpected end of file$/);
    await refused(file('end.xz', xz.subarray(0, xz.length - 4)), /: xz stream is corrupt: unexpected end of file$/);
    await refused(file('flip.xz', flipped), /: xz stream is corrupt: data is corrupt$/);
    await refused(file('cut.zst', zst.subarray(0, zst.length >> 1)), /: zstd stream is corrupt: unexpected end of file$/);
    await refused(file('end.zst', zst.subarray(0, zst.length - 2)), /: zstd stream is corrupt: unexpected end of file$/);
    await refused(file('block.zst', badBlock), /: zstd stream is corrupt: invalid block type$/);
    await refused(file('flip.zst', decodes), /: zstd stream is corrupt: content checksum mismatch$/);
    const wrongA = Buffer.from(frameOfA);
    wrongA[13] ^= 0x80;
    await refused(file('a-bad.zst', Buffer.concat([wrongA, zst])), /: zstd stream is corrupt: content checksum mismatch$/);
    await refused(file('g.cut.xz', xzSync(perfData).subarray(0, 2000)), /: xz stream is corrupt: unexpected end of file$/);
    process.env.REFSCOPE_WORKER = '1';
    await refused(join(dir, 'end.xz'), /: xz stream is corrupt: unexpected end of file$/);
    assert.deepEqual(await countsByTrace(db), before);
  });
});
