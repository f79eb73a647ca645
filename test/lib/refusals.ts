import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';

/** Each [file name, bytes, message] written into `dir` and ingested: refused with one line matching the message. */
export async function assertRefused(db: Db, dir: string, cases: [string, Buffer, RegExp][]): Promise<void> {
  for (const [file, bytes, re] of cases) {
    const path = join(dir, file);
    writeFileSync(path, bytes);
    await assert.rejects(ingest(db, path), (e: Error) => {
      assert.match(e.message, re);
      assert.ok(!e.message.includes('\n'), e.message);
      return true;
    });
  }
}
