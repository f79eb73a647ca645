/**
 * trace.dat v7 zstd chunks, decoded by libzstd (zstddec's WebAssembly) with fzstd saying why when libzstd refuses:
 * every chunk of a real capture decodes as fzstd decodes it, and a chunk whose header claims one byte less or more
 * than its frame holds is refused with the chunk's offset (fzstd alone cut the page short or padded it with zeros),
 * as is a chunk whose frame does not decode at all.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decompress } from 'fzstd';
import { unxzSync } from 'node-liblzma';
import { Db } from '../../db/duckdb.js';
import { ensureSchema } from '../../db/setup.js';
import { TraceDatError } from '../../ingest/readers/tracedat.js';
import { readTraceDatHeader } from '../../ingest/readers/tracedat/header.js';
import { countsByTrace } from '../lib/tables.js';
import { assertRefused } from '../lib/refusals.js';

const lost = unxzSync(readFileSync(new URL('../../samples/real/binary/trace-cmd-v7-zstd-lost.dat.xz', import.meta.url)));

/** Each compressed CPU's chunks by CPU: [offset of the chunk header, compressed size, size]. */
function chunksOf(buf: Buffer): Map<number, [number, number, number][]> {
  const out = new Map<number, [number, number, number][]>();
  for (const b of readTraceDatHeader(buf).buffers) {
    if (!b?.compressed) continue;
    const list: [number, number, number][] = [];
    let at = b.fileOffset + 4;
    for (let i = buf.readUInt32LE(b.fileOffset); i > 0; i--) {
      list.push([at, buf.readUInt32LE(at), buf.readUInt32LE(at + 4)]);
      at += 8 + buf.readUInt32LE(at);
    }
    out.set(b.cpu, list);
  }
  return out;
}

describe('trace.dat zstd chunks', () => {
  let dir: string;
  let db: Db;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-tracedat-zstd-'));
    db = await Db.open(join(dir, 'db.duckdb'));
    await ensureSchema(db);
  });
  after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("every CPU's pages as fzstd decodes its chunks", () => {
    const f = readTraceDatHeader(lost);
    const chunks = chunksOf(lost);
    assert.equal(chunks.size, 2);
    for (const b of f.buffers) {
      if (!b) continue;
      const mine = chunks.get(b.cpu)!;
      const want = Buffer.concat(mine.map(([at, z, u]) => decompress(lost.subarray(at + 8, at + 8 + z), new Uint8Array(u))));
      assert.ok(want.length > 0 && b.data.equals(want), `CPU ${b.cpu}`);
    }
  });

  it('a chunk whose size is one byte short or long, or whose frame is corrupt, is refused with its offset, database unchanged', async () => {
    const [at, , size] = chunksOf(lost).get(0)![0]!;
    const withSize = (n: number) => ((b) => (b.writeUInt32LE(n, at + 4), b))(Buffer.from(lost));
    const badMagic = Buffer.from(lost);
    badMagic[at + 8] ^= 0xff;
    const before = await countsByTrace(db);
    await assertRefused(db, dir, [
      ['short.dat', withSize(size - 1), new RegExp(`short\\.dat: offset ${at}: zstd data does not decompress \\(libzstd refuses it: more content than the chunk header says`)],
      ['long.dat', withSize(size + 5), new RegExp(`long\\.dat: offset ${at}: zstd data decompressed to ${size} bytes, its header says ${size + 5}$`)],
      ['magic.dat', badMagic, new RegExp(`magic\\.dat: offset ${at}: zstd data does not decompress \\(invalid zstd data\\)$`)],
    ]);
    assert.deepEqual(await countsByTrace(db), before);
    // The reader's own error, as ingest gets it.
    assert.throws(() => readTraceDatHeader(withSize(size - 1)), (e) => e instanceof TraceDatError && e.offset === at);
  });
});
