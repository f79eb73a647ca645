/**
 * `node --import tsx scripts/snapshot-tables.ts OUT_DIR INPUT...`: ingests and replays each input into a fresh
 * database of its own and writes every table, every row sorted, as OUT_DIR/<input>.<table>.csv. Two snapshots of
 * the same inputs taken by two versions of refscope compare with `diff -r`: a restructuring that changes no
 * behaviour leaves them byte-identical (a stronger check than EXCEPT ALL both ways, which ignores column order and
 * formatting). Columns that vary from run to run by nature (ingest time, durations, the input's path) are left out.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Db } from '../db/duckdb.js';
import { ingest } from '../ingest/ingest.js';
import { replay } from '../replay/replay.js';

const VARYING = /seconds|ingested_at|_at$|sha256|^source$/;

async function snapshot(input: string, outDir: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'refscope-snapshot-'));
  const db = await Db.open(join(dir, 'snapshot.duckdb'));
  try {
    const s = await ingest(db, input, {});
    await replay(db, s.trace_id);
    const tables = await db.all<{ name: string }>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_type = 'BASE TABLE' ORDER BY 1",
    );
    for (const { name } of tables) {
      const cols = await db.all<{ name: string }>(
        'SELECT column_name AS name FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position',
        [name],
      );
      const list = cols.map((c) => c.name).filter((c) => !VARYING.test(c)).map((c) => `"${c}"`).join(', ');
      const file = join(outDir, `${basename(input)}.${name}.csv`).replaceAll("'", "''");
      await db.run(`COPY (SELECT ${list} FROM "${name}" ORDER BY ALL) TO '${file}' (HEADER)`);
    }
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const [out, ...inputs] = process.argv.slice(2);
if (!out || inputs.length === 0) {
  console.error('usage: node --import tsx scripts/snapshot-tables.ts OUT_DIR INPUT...');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
for (const input of inputs) {
  await snapshot(resolve(input), resolve(out));
  console.log(`${input}: done`);
}
