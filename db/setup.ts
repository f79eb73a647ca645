import { createTableSql } from './columns.js';
import type { Db } from './duckdb.js';
import { recover, sweepUntracked } from './recover.js';
import { EVENT_ROWS, EVENTS, INGEST_TABLES, INGEST_VIEWS, MT_LAYOUTS } from './tables/ingest.js';
import { RECOVERY_TABLES, TRACE_LOADS } from './tables/recovery.js';
import { REPLAY_TABLES } from './tables/replay.js';

/** Every table refscope writes: ingest's, replay's, then the crash-recovery bookkeeping. */
export const ALL_TABLES = [...INGEST_TABLES, ...REPLAY_TABLES, ...RECOVERY_TABLES];

/** The tables as queries see them: ALL_TABLES with `events` (the view) for event_rows, the rows it reads. */
export const PUBLIC_TABLES = ALL_TABLES.map((t) => (t === EVENT_ROWS ? EVENTS : t));

/**
 * Columns added after their table was first shipped: a database made before them gets them (NULL, or the default,
 * for its rows). A table created now has them already.
 */
const ADDED_COLUMNS = [
  'ALTER TABLE traces ADD COLUMN IF NOT EXISTS truncated BOOLEAN DEFAULT false',
  'ALTER TABLE traces ADD COLUMN IF NOT EXISTS callsite_skip VARCHAR',
  'ALTER TABLE stacks ADD COLUMN IF NOT EXISTS frames_shown VARCHAR',
];

/**
 * The Db objects whose schema this process has ensured. Nothing else changes a database's schema while this process
 * holds it writable (DuckDB lets one process write a file), so ingest and the replay after it on the same Db need
 * not re-read the catalog, re-create the views and count migratetypes again (~100 ms of a small ingest + replay).
 */
const ensured = new WeakSet<Db>();

/**
 * The Db objects whose replay tables are known to have this version's columns: ensureSchema created them, or
 * replay checked them (db stays so until it closes: nothing else changes its schema).
 */
const currentReplayTables = new WeakSet<Db>();

export const replayTablesCurrent = (db: Db): boolean => currentReplayTables.has(db);
export const markReplayTablesCurrent = (db: Db): void => void currentReplayTables.add(db);

/** Tables were dropped (replay's stale tables): the next ensureSchema on this Db does the whole work again. */
export function schemaChanged(db: Db): void {
  ensured.delete(db);
}

/**
 * Create every table and view refscope uses (idempotent), then remove what a killed ingest or replay left
 * (db/recover.ts). Ingest and replay call it on their writable open; once per Db (above).
 */
export async function ensureSchema(db: Db): Promise<void> {
  // What a failed ingest or replay of this process could not clean up is still looked for (one small query).
  if (ensured.has(db)) return void (await recover(db));
  const legacy = await db.legacyStorage();
  // One catalog query instead of a statement per table: only the missing tables are created (in one statement).
  const have = new Set(
    (await db.all<{ name: string }>(
      "SELECT table_name AS name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'",
    )).map((r) => r.name),
  );
  const hadTraces = have.has('traces');
  if (have.has('events')) {
    await storeEventRows(db);
    have.add(EVENT_ROWS.name);
  }
  const tracked = have.has(TRACE_LOADS.name);
  const missing = ALL_TABLES.filter((t) => !have.has(t.name));
  if (missing.length > 0) await db.run(missing.map((t) => createTableSql(t, legacy)).join(';\n'));
  if (REPLAY_TABLES.every((t) => !have.has(t.name))) currentReplayTables.add(db);
  if (hadTraces) await db.run(ADDED_COLUMNS.join(';\n'));
  await db.run(INGEST_VIEWS.map((v) => v.sql).join(';\n'));
  const empty = !have.has('migratetypes') || (await db.one<{ n: number }>('SELECT count(*)::INTEGER AS n FROM migratetypes'))?.n === 0;
  if (empty) {
    // One statement: a statement costs a few ms however small it is.
    const rows = Object.entries(MT_LAYOUTS).flatMap(([layout, names]) => names.map((name, mt) => [layout, mt, name] as const));
    await db.run(`INSERT INTO migratetypes VALUES ${rows.map((_, i) => `($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3})`).join(', ')}`, rows.flat());
  }
  if (hadTraces && !tracked) await sweepUntracked(db);
  await recover(db);
  ensured.add(db);
}

/**
 * A database made before `events` became a view (db/tables/ingest.ts EVENT_ROWS) has a table `events` with a
 * plain payload column: it becomes `event_rows`, its payload the stored text. Renames only (no row is copied), in
 * one transaction; the views are dropped first (they read the old table) and made again by ensureSchema.
 */
async function storeEventRows(db: Db): Promise<void> {
  await db.run('BEGIN TRANSACTION');
  try {
    await db.run(
      [
        ...INGEST_VIEWS.filter((v) => v.name !== 'events').map((v) => `DROP VIEW IF EXISTS "${v.name}"`),
        `ALTER TABLE events RENAME TO ${EVENT_ROWS.name}`,
        `ALTER TABLE ${EVENT_ROWS.name} RENAME COLUMN payload TO payload_text`,
        `ALTER TABLE ${EVENT_ROWS.name} ALTER COLUMN payload_text DROP NOT NULL`,
      ].join(';\n'),
    );
    await db.run('COMMIT');
  } catch (e) {
    await db.run('ROLLBACK').catch(() => undefined);
    throw e;
  }
}

/**
 * Why db is an older refscope's, or null: a table or a column this version reads is missing (a database written
 * before it, opened read-only so ensureSchema has not updated it). null too for a file without `traces`: not a
 * refscope database at all, which its caller says. One catalog query.
 */
export async function olderSchema(db: Db): Promise<string | null> {
  const have = new Map<string, Set<string>>();
  for (const r of await db.all<{ t: string; c: string }>(
    "SELECT table_name AS t, column_name AS c FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'main'",
  )) {
    if (!have.has(r.t)) have.set(r.t, new Set());
    have.get(r.t)!.add(r.c);
  }
  if (!have.has('traces')) return null;
  for (const t of ALL_TABLES) {
    const cols = have.get(t.name);
    if (cols === undefined) return `no table ${t.name}`;
    const missing = t.columns.find((c) => !cols.has(c.name));
    if (missing) return `no column ${t.name}.${missing.name}`;
  }
  return null;
}
