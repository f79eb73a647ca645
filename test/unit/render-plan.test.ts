/**
 * renderPayload renders little-endian records by a plan worked out once per format (event-format.ts renderLE);
 * renderFields is the field-by-field reference. Every event format of a real trace.dat (1.5k formats: __data_loc
 * and __rel_loc strings, char arrays, number arrays, 1/2/4/8-byte signed and unsigned, hex, flag and symbol
 * tables) renders random records, whole and cut short, to the same text both ways, and by offsets inside a
 * larger buffer (renderPayloadAt, as the readers call it).
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { unxzSync } from 'node-liblzma';
import { renderFields, renderPayload, renderPayloadAt } from '../../ingest/readers/event-format.js';
import { readTraceDatHeader } from '../../ingest/readers/tracedat/header.js';

describe('payload rendering by plan', () => {
  it('matches the field-by-field rendering on every format of a trace.dat, random and short records', () => {
    const f = readTraceDatHeader(unxzSync(readFileSync(new URL('../../samples/real/binary/trace-cmd-v7-zstd-lost.dat.xz', import.meta.url))));
    let seed = 1;
    const byte = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >>> 16) & 0xff;
    const kinds = new Set<string>();
    let records = 0;
    for (const fmt of f.formats.values()) {
      const size = Math.max(8, ...fmt.fields.map((x) => x.offset + x.size));
      for (let k = 0; k < 12; k++) {
        // Zeros, all-ones, small values, random (k = 5 cut short), then bytes of a few values: numbers that share
        // their low bits and differ above (a per-value cache must tell them apart).
        const raw = Buffer.alloc(k === 5 ? Math.floor(size / 2) : size + 16);
        for (let i = 0; i < raw.length; i++) raw[i] = k === 0 ? 0 : k === 1 ? 0xff : k === 2 ? byte() & 0x0f : k < 6 ? byte() : [0, 1, 0x40, 0x80][byte() & 3]!;
        for (const x of fmt.fields)
          if (x.dataLoc && x.offset + 4 <= raw.length) raw.writeUInt32LE(((byte() & 7) << 16) | (size + (byte() & 7)), x.offset);
        const want = renderFields(fmt, raw, true);
        assert.equal(renderPayload(fmt, raw, true), want, `${fmt.system}:${fmt.name} record ${k}`);
        // The same record inside a larger buffer (a capture's), between other bytes: rendered by offsets.
        const big = Buffer.concat([Buffer.alloc(7, 0x41), raw, Buffer.alloc(9, 0x42)]);
        assert.equal(renderPayloadAt(fmt, big, 7, 7 + raw.length), want, `${fmt.system}:${fmt.name} record ${k} at 7`);
        records++;
      }
      // After the first render: it sets the symbolic fields.
      for (const x of fmt.fields)
        kinds.add(x.dataLoc ? 'dataloc' : x.chars ? 'chars' : x.array ? 'array' : x.symbolic ? 'symbolic' : `${x.size}${x.hex ? 'x' : x.signed ? 's' : 'u'}`);
    }
    assert.ok(f.formats.size > 1000, `${f.formats.size} formats`);
    for (const k of ['dataloc', 'chars', 'array', 'symbolic', '1u', '2u', '4s', '4u', '4x', '8u', '8s', '8x']) assert.ok(kinds.has(k), k);
    assert.ok(records > 12000);
  });
});
