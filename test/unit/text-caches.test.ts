/**
 * The text parser's caches of repeated strings (db/batch.ts Interner: comms, event names, flag words; ftrace.ts
 * frame lines) must never answer with another string: inputs that share a cache slot (same length and the
 * characters the slot is picked by) still come out as they were printed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getStr, Interner, type ColumnarBatch } from '../../db/batch.js';
import { EventBuilder } from '../../ingest/builder.js';
import { longLine, readerFor } from '../../ingest/parse.js';
import { LineSplitter } from '../../ingest/source.js';

describe('text caches', () => {
  it('Interner gives the text of the slice, the same object when repeated', () => {
    const cache = new Interner(2);
    // Same length, first, middle and last character: one slot.
    const a = cache.get('  aXbYc  ', 2, 7);
    assert.equal(a, 'aXbYc');
    assert.equal(cache.get('-aYbXc-', 1, 6), 'aYbXc');
    const again = cache.get('aYbXc', 0, 5);
    assert.equal(again, 'aYbXc');
    assert.equal(cache.get('>aYbXc', 1, 6), again);
    assert.equal(cache.get('x', 0, 0), '');
    const long = 'a-long-comm-name-' + 'z'.repeat(40);
    assert.equal(cache.get(long, 2, 30), long.slice(2, 30));
  });

  it('lines sharing cache slots keep their comm, event, flags and frames', () => {
    const rows: { comm: string | null; event: string | null; flags: string | null }[] = [];
    const b = new EventBuilder(1, (batch: ColumnarBatch) => {
      const c = (n: string) => batch.col(n);
      for (let r = 0; r < batch.rows; r++) rows.push({ comm: getStr(c('comm'), r), event: getStr(c('event'), r), flags: getStr(c('page_flags'), r) });
    });
    const reader = readerFor('ftrace', b);
    const split = new LineSplitter((t, n) => reader.line(t, n), longLine(b));
    const line = (comm: string, event: string, flags: string) =>
      `${comm.padStart(16)}-1148    (   1148) [000] .....   230.295218: ${event}: pfn=0x7f0eb flags=${flags} count=1 mapcount=0 mapping=0000000000000000 mt=4 val=1\n`;
    const text = [
      line('aXbYc', 'page_ref_set', 'aX|b|Ya'),
      '            aXbYc-1148    (   1148) [000] .....   230.295218: <stack trace>\n',
      ' => fooA+0x1/0x2\n',
      line('aYbXc', 'page_ref_set', 'aY|b|Xa'),
      '            aYbXc-1148    (   1148) [000] .....   230.295218: <stack trace>\n',
      ' => fooB+0x1/0x2\n',
      line('aXbYc', 'page_ref_set', 'aX|b|Ya'),
      line('aXbYc', 'evXa_bYc', 'a'),
      line('aXbYc', 'evYa_bXc', 'a'),
    ].join('');
    split.push(Buffer.from(text));
    split.end();
    b.finish();
    assert.deepEqual(rows, [
      { comm: 'aXbYc', event: 'page_ref_set', flags: 'aX|b|Ya' },
      { comm: 'aYbXc', event: 'page_ref_set', flags: 'aY|b|Xa' },
      { comm: 'aXbYc', event: 'page_ref_set', flags: 'aX|b|Ya' },
      { comm: 'aXbYc', event: 'evXa_bYc', flags: null },
      { comm: 'aXbYc', event: 'evYa_bXc', flags: null },
    ]);
    assert.deepEqual(b.stacks.rows.map((s) => s.frames), [['fooA+0x1/0x2'], ['fooB+0x1/0x2']]);
  });
});
