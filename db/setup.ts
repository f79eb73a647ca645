import { createTableSql } from './columns.js';
import type { Db } from './duckdb.js';
import { recover, sweepUntracked } from './recover.js';
import { INGEST_TABLES, INGEST_VIEWS, MT_LAYOUTS } from './tables/ingest.js';
import { RECOVERY_TABLES, TRACE_LOADS } from './tables/recovery.js';
import { REPLAY_TABLES } from './tables/replay.js';

/** Every table refscope writes: ingest's, replay's, then the crash-recovery bookkeeping. */
export const ALL_TABLES = [...INGEST_TABLES, ...REPLAY_TABLES, ...RECOVERY_TABLES];

/**
 * Create every table and view refscope uses (idempotent), then remove what a killed ingest or replay left
 * (db/recover.ts). Ingest and replay call it on their writable open.
 */
export async function ensureSchema(db: Db): Promise<void> {
  const legacy = await db.legacyStorage();
  const hadTraces = await db.tableExists('traces');
  const tracked = await db.tableExists(TRACE_LOADS.name);
  for (const t of ALL_TABLES) await db.run(createTableSql(t, legacy));
  for (const v of INGEST_VIEWS) await db.run(v.sql);
  const n = await db.one<{ n: number }>('SELECT count(*)::INTEGER AS n FROM migratetypes');
  if ((n?.n ?? 0) === 0) {
    for (const [layout, names] of Object.entries(MT_LAYOUTS))
      for (let mt = 0; mt < names.length; mt++)
        await db.run('INSERT INTO migratetypes VALUES ($1, $2, $3)', [layout, mt, names[mt]]);
  }
  if (hadTraces && !tracked) await sweepUntracked(db);
  await recover(db);
}
