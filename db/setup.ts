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
  // One catalog query instead of a statement per table: only the missing tables are created (in one statement).
  const have = new Set(
    (await db.all<{ name: string }>(
      "SELECT table_name AS name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'",
    )).map((r) => r.name),
  );
  const hadTraces = have.has('traces');
  const tracked = have.has(TRACE_LOADS.name);
  const missing = ALL_TABLES.filter((t) => !have.has(t.name));
  if (missing.length > 0) await db.run(missing.map((t) => createTableSql(t, legacy)).join(';\n'));
  await db.run(INGEST_VIEWS.map((v) => v.sql).join(';\n'));
  const n = await db.one<{ n: number }>('SELECT count(*)::INTEGER AS n FROM migratetypes');
  if ((n?.n ?? 0) === 0) {
    for (const [layout, names] of Object.entries(MT_LAYOUTS))
      for (let mt = 0; mt < names.length; mt++)
        await db.run('INSERT INTO migratetypes VALUES ($1, $2, $3)', [layout, mt, names[mt]]);
  }
  if (hadTraces && !tracked) await sweepUntracked(db);
  await recover(db);
}
