/**
 * db/feed.ts: rows written through a TableFeed (DuckDB inserts them on its own thread, calling back into JS for
 * each batch) arrive exactly as the appender writes them, including dictionary values first seen after an
 * insert started, NULLs and plain text; an insert error reaches the caller and nothing is left half-written.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { createTableSql, type Table } from '../../db/columns.js';
import { Db } from '../../db/duckdb.js';
import { TableFeed } from '../../db/feed.js';
import { RowWriter, type Value } from '../../db/rows.js';

const T: Table = {
  name: 'feed_test',
  doc: '',
  columns: [
    { name: 'id', type: 'BIGINT NOT NULL', doc: '' },
    { name: 'big', type: 'UBIGINT', doc: '' },
    { name: 'n', type: 'INTEGER', doc: '' },
    { name: 's', type: 'SMALLINT', doc: '' },
    { name: 'b', type: 'BOOLEAN', doc: '' },
    { name: 'word', type: 'VARCHAR', doc: '' },
  ],
  constraints: ['PRIMARY KEY (id)'],
};

/** Row i: values that vary by column, NULLs at different rows, and text that grows a new value every 700 rows. */
function row(i: number): Record<string, Value> {
  return {
    id: i,
    big: i % 5 === 0 ? null : 2n ** 63n + BigInt(i),
    n: i % 7 === 0 ? null : -i,
    s: i % 3 === 0 ? null : i % 30000,
    b: i % 11 === 0 ? null : i % 2 === 0,
    word: i % 13 === 0 ? null : `task-${Math.floor(i / 700)} <${i % 4}>`,
  };
}

async function table(db: Db): Promise<string[]> {
  const rows = await db.all<Record<string, unknown>>(`SELECT * FROM ${T.name} ORDER BY id`);
  return rows.map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)));
}

async function fresh(): Promise<Db> {
  const db = await Db.open(':memory:');
  await db.run(createTableSql(T));
  return db;
}

describe('TableFeed', () => {
  it('writes what the appender writes, while the caller keeps adding rows', async () => {
    const n = 100_000; // 49 batches: several inserts, each started with part of the rows
    const viaAppender = await fresh();
    const a = await new RowWriter(viaAppender, T).open();
    for (let i = 0; i < n; i++) a.add(row(i));
    await a.close();

    const viaFeed = await fresh();
    const feed = new TableFeed(viaFeed, T, 4);
    const f = await new RowWriter(viaFeed, T, feed).open();
    let yields = 0;
    for (let i = 0; i < n; i++) {
      f.add(row(i));
      // Give DuckDB's callbacks a turn now and then, as the replay does between two chunks of events.
      if (i % 3000 === 0) {
        yields++;
        await new Promise((r) => setImmediate(r));
      }
    }
    await f.close();
    assert.ok(yields > 10);
    assert.equal(feed.backlog, 0);
    const want = await table(viaAppender);
    assert.equal(want.length, n);
    assert.deepEqual(await table(viaFeed), want);
  });

  it('dictionary columns go in as ENUMs of the values known when each insert started, huge ones as text', async () => {
    const db = await fresh();
    const { ColumnarBatch, setInt, setStr } = await import('../../db/batch.js');
    const batch = new ColumnarBatch(T, []); // word is dictionary-coded here
    const feed = new TableFeed(db, T, 1);
    feed.open();
    const id = batch.col('id');
    const word = batch.col('word');
    // 2500 values in the first 40 000 rows: the first insert's ENUM has under 255 (uint8 codes), later ones more
    // (uint16 codes); then a new value per row, past the 65535 an ENUM may hold here (text from then on).
    const wordOf = (i: number) => (i < 40_000 ? `w${Math.floor(i / 16)}` : `x${i}`);
    const n = 110_000;
    for (let i = 0; i < n; i++) {
      if (batch.full) {
        feed.append(batch); // threshold 1: an insert starts with each full batch
        await new Promise((r) => setTimeout(r, 2));
      }
      const r = batch.addRow();
      setInt(id, r, i);
      setStr(word, r, wordOf(i));
    }
    assert.ok(word.dict!.values.length > 65535);
    feed.append(batch);
    await feed.close();
    assert.ok(feed.inserts > 2, `${feed.inserts} inserts`);
    const got = await db.all<{ id: bigint; word: string }>(`SELECT id, word FROM ${T.name} ORDER BY id`);
    assert.equal(got.length, n);
    got.forEach((g, i) => assert.equal(g.word, wordOf(i), `row ${i}`));
  });

  it('a writer waiting for room is woken as inserts take batches, with no drain() to start them', async () => {
    const db = await fresh();
    const feed = new TableFeed(db, T, 4);
    const w = await new RowWriter(db, T, feed).open();
    // The first insert starts with 4 batches (the rows of a fifth are still being added) ...
    for (let i = 0; i < 4 * 2048 + 1; i++) w.add(row(i));
    while (feed.inserts === 0) await new Promise((r) => setImmediate(r));
    // ... 8 more are queued while it runs; then the writer appends nothing more until there is room, so the
    // insert that takes them must start by itself.
    for (let i = 4 * 2048 + 1; i < 12 * 2048 + 1; i++) w.add(row(i));
    assert.ok(feed.backlog >= 8 * 2048, `${feed.backlog} rows queued`);
    await feed.whenRoom(2);
    assert.ok(feed.backlog < 2 * 2048, `${feed.backlog} rows queued after waiting`);
    assert.equal(feed.inserts, 2);
    await w.close();
    assert.deepEqual(await db.all(`SELECT count(*)::INTEGER AS n FROM ${T.name}`), [{ n: 12 * 2048 + 1 }]);
  });

  it('an insert that fails rejects close() and the transaction leaves the table as it was', async () => {
    const db = await fresh();
    await db.run(`INSERT INTO ${T.name} (id) VALUES (4242)`);
    await assert.rejects(
      db.transaction(async () => {
        const feed = new TableFeed(db, T, 2);
        const w = await new RowWriter(db, T, feed).open();
        try {
          for (let i = 0; i < 10_000; i++) w.add(row(i)); // 4242 again: PRIMARY KEY violation
          await w.close();
        } catch (e) {
          await feed.abort();
          throw e;
        }
      }),
      /PRIMARY KEY|[Dd]uplicate key/,
    );
    assert.deepEqual(await db.all(`SELECT count(*)::INTEGER AS n FROM ${T.name}`), [{ n: 1 }]);
    // The connection is usable afterwards, and a new feed into the same table works.
    const w = await new RowWriter(db, T, new TableFeed(db, T)).open();
    w.add(row(1));
    await w.close();
    assert.deepEqual(await db.all(`SELECT count(*)::INTEGER AS n FROM ${T.name}`), [{ n: 2 }]);
  });
});
