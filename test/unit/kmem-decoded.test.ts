/**
 * Binary readers hand kmem page fields to the builder already decoded (renderPayloadAt's `kmem`, eventDecoded)
 * instead of having kmemPage parse the rendered payload back: every column, unparsed row and learnt vmemmap_base
 * must be what the text path gives. Real captures are read both ways (the builder, and a sink without
 * eventDecoded), and synthetic records cover what the captures lack (page pointers, -1UL, pfns past 2^52, gfp text
 * with separators, short records, print fmt constants).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { unxzSync } from 'node-liblzma';
import type { ColumnarBatch } from '../../db/batch.js';
import { EventBuilder } from '../../ingest/builder.js';
import { isKmemPage, newKmemFields, parseFormat, renderPayloadAt } from '../../ingest/readers/event-format.js';
import { readPerfData } from '../../ingest/readers/perfdata.js';
import type { LineContext, LineSink } from '../../ingest/readers/sink.js';
import { readTraceDat } from '../../ingest/readers/tracedat.js';

/** Every column's values, row by row (null: not valid). */
function snapshot(b: ColumnarBatch, out: unknown[][]): void {
  for (let r = 0; r < b.rows; r++) {
    const row: unknown[] = [];
    for (const c of b.columns) {
      if (!(c.valid[r >>> 5] & (1 << (r & 31)))) row.push(null);
      else if (c.codes) row.push(c.dict!.values[c.codes[r]]);
      else if (c.text) row.push(c.text.bytes.toString('utf8', c.text.start[r], c.text.start[r] + c.text.len[r]));
      else if (c.i32) row.push(c.storage === 'i64' || c.storage === 'u64' ? [c.i32[2 * r], c.i32[2 * r + 1]] : c.i32[r]);
      else row.push((c.i16 ?? c.u8)![r]);
    }
    out.push(row);
  }
}

interface Read {
  rows: unknown[][];
  builder: EventBuilder;
}

function builder(): Read {
  const rows: unknown[][] = [];
  const b = new EventBuilder(1, (batch) => snapshot(batch, rows));
  return { rows, builder: b };
}

/** The builder's LineSink methods only: the readers then render text and the builder decodes it. */
function textOnly(b: EventBuilder): LineSink {
  return {
    event: (...a) => b.event(...a),
    lost: (...a) => b.lost(...a),
    header: (...a) => b.header(...a),
    clock: (...a) => b.clock(...a),
    unparsed: (...a) => b.unparsed(...a),
    stackStart: (...a) => b.stackStart(...a),
    frame: (...a) => b.frame(...a),
    continuation: (...a) => b.continuation(...a),
    skip: (...a) => b.skip(...a),
  };
}

function same(a: Read, b: Read): void {
  a.builder.finish();
  b.builder.finish();
  assert.ok(a.rows.length > 0);
  assert.deepEqual(a.rows, b.rows);
  assert.deepEqual(a.builder.facts(0), b.builder.facts(0));
}

describe('kmem page fields decoded from the record', () => {
  it('trace.dat and perf.data captures: the same rows as decoding the rendered text', () => {
    const dat = unxzSync(readFileSync(new URL('../../samples/real/binary/trace-cmd-v7-zstd-lost.dat.xz', import.meta.url)));
    const perf = gunzipSync(readFileSync(new URL('../fixtures/perfdata/lost.data.gz', import.meta.url)));
    for (const read of [(s: LineSink) => readTraceDat(dat, s), (s: LineSink) => readPerfData(perf, s)]) {
      const a = builder();
      const b = builder();
      read(a.builder);
      read(textOnly(b.builder));
      same(a, b);
    }
  });

  const FORMAT = (name: string, fields: string, fmt: string) => `name: ${name}
ID: 7
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

${fields}
print fmt: ${fmt}
`;
  const ALLOC = parseFormat(
    'kmem',
    FORMAT(
      'mm_page_alloc',
      `\tfield:struct page * page;\toffset:8;\tsize:8;\tsigned:0;
\tfield:unsigned long pfn;\toffset:16;\tsize:8;\tsigned:0;
\tfield:unsigned int order;\toffset:24;\tsize:4;\tsigned:0;
\tfield:unsigned long gfp_flags;\toffset:32;\tsize:8;\tsigned:0;
\tfield:int migratetype;\toffset:40;\tsize:4;\tsigned:1;`,
      `"page=%p pfn=0x%lx order=%d migratetype=%d gfp_flags=%s", REC->page, REC->pfn, REC->order, REC->migratetype, (REC->gfp_flags) ? __print_flags(REC->gfp_flags, "|", {0x1u, "A"}, {0x2u, "B C"}, {0x4u, "(D"}) : "none"`,
    ),
  )!;
  const BATCHED = parseFormat(
    'kmem',
    FORMAT('mm_page_free_batched', `\tfield:unsigned long pfn;\toffset:16;\tsize:8;\tsigned:0;`, `"page=%p pfn=0x%lx order=0", pfn_to_page(REC->pfn), REC->pfn`),
  )!;
  const STRING = parseFormat(
    'kmem',
    FORMAT('mm_page_free', `\tfield:unsigned long pfn;\toffset:8;\tsize:8;\tsigned:0;\n\tfield:__data_loc char[] name;\toffset:16;\tsize:4;\tsigned:0;`, `"pfn=0x%lx"`),
  )!;

  it('synthetic records: pointers, -1UL, wide pfns, gfp text, short records, constants', () => {
    assert.ok(isKmemPage(ALLOC) && isKmemPage(BATCHED));
    assert.ok(!isKmemPage(STRING), 'a string field could hold a key: left to the text');
    const base = 0xffffea0000000000n;
    // [page, pfn, order, gfp, mt, bytes]
    const records: [bigint, bigint, number, bigint, number, number][] = [];
    for (const pfn of [0x10000n, 0x10001n, 0x23456n, 0x10000n]) records.push([base + pfn * 64n, pfn, 0, 1n, 1, 48]);
    records.push(
      [0xffffea0000001000n, 0xffffffffffffffffn, 0, 0n, 0, 48], // -1UL
      [0xffffea0000001000n, (1n << 52n) + 5n, 1, 3n, 0, 48], // past 2^52 (and `B C` has a blank): left to the text
      [0x00000000f0e9c5fdn, 0x1234n, 5, 8n, -1, 48], // hashed pointer; a flag bit with no name
      [0n, 0n, 31, 0n, 2, 48], // order past its bound (limits.ts): unparsed
      [0n, 5n, 3, 4n, 5, 48], // `(D`
      [0n, 6n, 0xffffffff, 0n, 5, 48], // an order no int holds: unparsed
      [0n, 7n, 2, 1n, 3, 28], // gfp_flags and migratetype cut off
      [0n, 8n, 2, 1n, 3, 20], // order cut off
    );
    const a = builder();
    const b = builder();
    const k = newKmemFields();
    const ctx: LineContext = { tsSec: 1, tsNs: 0, cpu: 0, pid: 1, tgid: -1, comm: 'x', irq: null };
    let direct = 0;
    records.forEach(([page, pfn, order, gfp, mt, bytes], i) => {
      const raw = Buffer.alloc(48);
      raw.writeBigUInt64LE(page, 8);
      raw.writeBigUInt64LE(pfn, 16);
      raw.writeUInt32LE(order, 24);
      raw.writeBigUInt64LE(gfp, 32);
      raw.writeInt32LE(mt, 40);
      for (const fmt of [ALLOC, BATCHED]) {
        const payload = renderPayloadAt(fmt, raw, 0, bytes, k);
        if (k.ok) direct++;
        a.builder.eventDecoded(i + 1, ctx, 'kmem', fmt.name, payload, k);
        b.builder.event(i + 1, ctx, 'kmem', fmt.name, renderPayloadAt(fmt, raw, 0, bytes));
      }
    });
    assert.equal(direct, 21, `${direct} records decoded from their bytes`);
    same(a, b);
    assert.equal(a.builder.vmemmapBase, base, 'three agreeing page/pfn pairs');
  });
});
