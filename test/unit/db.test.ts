/**
 * db/duckdb.ts: the buffer-pool caps of ingest and replay (nested caps restore the enclosing one, an error
 * restores it too) and the storage format of new files.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';

const limit = async (db: Db) => (await db.one<{ v: string }>("SELECT current_setting('memory_limit') AS v"))!.v;

describe('Db.withMemoryLimit', () => {
  it('caps memory_limit inside, restores the enclosing cap after a nested one and after an error', async () => {
    const saved = process.env.REFSCOPE_MEMORY_LIMIT;
    delete process.env.REFSCOPE_MEMORY_LIMIT;
    const db = await Db.open(':memory:', { memoryLimit: '2GB' });
    try {
      const atOpen = await limit(db);
      const seen: string[] = [];
      await db.withMemoryLimit('128MB', async () => {
        seen.push(await limit(db));
        await db.withMemoryLimit('256MB', async () => {
          seen.push(await limit(db));
        });
        seen.push(await limit(db));
        await assert.rejects(db.withMemoryLimit('256MB', () => db.run('SELECT no_such_column')));
        seen.push(await limit(db));
      });
      seen.push(await limit(db));
      // DuckDB reports the limits rounded (e.g. 122.0 MiB): compare them with each other, not with the inputs.
      const [outer, nested, afterNested, afterError, after] = seen;
      assert.notEqual(outer, atOpen);
      assert.notEqual(nested, outer);
      assert.deepEqual([afterNested, afterError, after], [outer, outer, atOpen]);
    } finally {
      db.close();
      if (saved !== undefined) process.env.REFSCOPE_MEMORY_LIMIT = saved;
    }
  });
});

describe('Db.open storage format', () => {
  it("creates files in DuckDB 1.3's format unless told to use DuckDB's default", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'refscope-db-test-'));
    try {
      const made = await Db.open(join(dir, 'new.duckdb'));
      const legacy = await Db.open(join(dir, 'old.duckdb'), { storageVersion: null });
      try {
        assert.equal(await made.legacyStorage(), false);
        assert.equal(await legacy.legacyStorage(), true);
      } finally {
        made.close();
        legacy.close();
      }
      // An existing file keeps its format whatever the open asks for.
      const reopened = await Db.open(join(dir, 'old.duckdb'));
      try {
        assert.equal(await reopened.legacyStorage(), true);
      } finally {
        reopened.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
