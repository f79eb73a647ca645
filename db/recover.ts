import { closeSync, fsyncSync, openSync, rmSync, statSync } from 'node:fs';
import { createTableSql } from './columns.js';
import type { Db } from './duckdb.js';
import { INGEST_TABLES, INGEST_VIEWS } from './tables/ingest.js';
import { RECOVERY_TABLES, REPLAY_LOADS, TRACE_LOADS } from './tables/recovery.js';
import { REPLAY_TABLES } from './tables/replay.js';

/**
 * Crash recovery. DuckDB alone does not make a killed ingest vanish: killed at its commit, a transaction's big
 * INSERT can survive without its small ones (issue #22). So ingest and replay commit their intent first
 * (db/tables/recovery.ts) and write their completion row last; recover() removes whatever a killed one left.
 */

const TABLES = [...INGEST_TABLES, ...REPLAY_TABLES];

export interface Orphans {
  /** Ingests that never wrote their `traces` row: every row of these ids goes. */
  traces: number[];
  /** Replays that never deleted their `replay_loads` row: every replay row of these traces goes, replay_runs too. */
  replays: number[];
}

/**
 * What a killed ingest or replay left, in one query over the two small bookkeeping tables (nothing for a database
 * made before them). Works on a read-only open too: when it finds something, open the file writable once and run
 * ensureSchema (db/setup.ts), which calls recover(). tablesExist: the caller knows the two tables exist.
 */
export async function needsRecovery(db: Db, tablesExist = false): Promise<Orphans> {
  if (!tablesExist && (!(await db.tableExists(TRACE_LOADS.name)) || !(await db.tableExists(REPLAY_LOADS.name)))) return { traces: [], replays: [] };
  const rows = await db.all<{ kind: string; trace_id: number }>(
    `SELECT 'trace' AS kind, trace_id FROM ${TRACE_LOADS.name}
       WHERE state = 'loading' AND trace_id NOT IN (SELECT trace_id FROM traces)
     UNION ALL
     SELECT 'replay', trace_id FROM ${REPLAY_LOADS.name}
     ORDER BY 1, 2`,
  );
  const of = (k: string) => rows.filter((r) => r.kind === k).map((r) => r.trace_id);
  return { traces: of('trace'), replays: of('replay') };
}

/**
 * Delete the rows of killed ingests and replays, then CHECKPOINT so the deletions are in the file, not only in the
 * WAL, and give back the space a killed ingest's blocks took (reclaim()). Needs a writable database with the schema
 * in place (ensureSchema calls it). Cheap when nothing is orphaned.
 */
export async function recover(db: Db): Promise<Orphans> {
  // The bookkeeping tables exist (ensureSchema made them): no need to look them up.
  const o = await needsRecovery(db, true);
  if (o.traces.length + o.replays.length === 0) return o;
  await db.transaction(async () => {
    for (const id of o.traces) {
      for (const t of TABLES) if (t.columns.some((c) => c.name === 'trace_id')) await db.run(`DELETE FROM ${t.name} WHERE trace_id = $1`, [id]);
      await db.run(`UPDATE ${TRACE_LOADS.name} SET state = 'abandoned' WHERE trace_id = $1`, [id]);
    }
    for (const id of o.replays) for (const t of REPLAY_TABLES) await db.run(`DELETE FROM ${t.name} WHERE trace_id = $1`, [id]);
    for (const id of [...o.traces, ...o.replays]) await db.run(`DELETE FROM ${REPLAY_LOADS.name} WHERE trace_id = $1`, [id]);
  });
  await reclaim(db);
  return o;
}

/**
 * A database made before trace_loads existed has no record of killed ingests: once, when that table is created,
 * rows of any trace id without a `traces` row, and replay rows without a `replay_runs` row, are deleted.
 */
export async function sweepUntracked(db: Db): Promise<void> {
  await db.transaction(async () => {
    for (const t of INGEST_TABLES)
      if (t.name !== 'traces' && t.columns.some((c) => c.name === 'trace_id'))
        await db.run(`DELETE FROM ${t.name} WHERE trace_id NOT IN (SELECT trace_id FROM traces)`);
    for (const t of REPLAY_TABLES)
      if (t.name !== 'replay_runs') await db.run(`DELETE FROM ${t.name} WHERE trace_id NOT IN (SELECT trace_id FROM replay_runs)`);
    await db.run('DELETE FROM replay_runs WHERE trace_id NOT IN (SELECT trace_id FROM traces)');
  });
  await db.run('CHECKPOINT').catch(() => undefined);
}

/** Free blocks worth a rewrite: at least this many bytes, and more than half the file. */
const COMPACT_MIN_FREE = 4 * 1024 * 1024;

/**
 * After a rolled-back ingest or the clean-up of a killed one: CHECKPOINT, and when the file is then mostly space no
 * block in use takes, rewrite it compactly. DuckDB reuses free blocks but does not shrink the file: blocks a killed
 * transaction wrote past the last one in use are not even counted in pragma_database_size's total_blocks.
 */
export async function reclaim(db: Db): Promise<{ before: number; after: number } | null> {
  if (db.path === '' || db.path === ':memory:') return null;
  // Another connection's open write transaction forbids it; the deletions are committed (in the WAL) all the same.
  if (!(await db.run('CHECKPOINT').then(() => true, () => false))) return null;
  const size = await fileBlocks(db);
  if (!size) return null;
  const unused = size.bytes - size.used * size.block;
  if (unused * 2 <= size.bytes || unused < COMPACT_MIN_FREE) return null;
  if (await db.legacyStorage()) return null;
  // Only tables refscope knows how to recreate (with their compression settings) are copied: anything else, keep as is.
  const known = new Set([...TABLES, ...RECOVERY_TABLES].map((t) => t.name));
  const base = await db.all<{ table_name: string }>(
    "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT internal",
  );
  if (base.some((b) => !known.has(b.table_name))) return null;
  const tmp = db.path + '.compact';
  rmSync(tmp, { force: true });
  rmSync(tmp + '.wal', { force: true });
  const cur = (await db.one<{ d: string }>('SELECT current_database() AS d'))!.d;
  // ATTACH takes no parameters; the path is quoted as an SQL string literal.
  await db.run(`ATTACH '${tmp.replace(/'/g, "''")}' AS refscope_compact (STORAGE_VERSION '${await storageTag(db)}')`);
  try {
    await db.withOneThread(async () => {
      await db.run('USE refscope_compact');
      try {
        for (const t of [...TABLES, ...RECOVERY_TABLES]) await db.run(createTableSql(t));
        for (const v of INGEST_VIEWS) await db.run(v.sql);
      } finally {
        await db.run(`USE "${cur.replace(/"/g, '""')}"`);
      }
      // One thread: the rows keep their order (replay reads events in stored seq order).
      for (const b of base) await db.run(`INSERT INTO refscope_compact.${b.table_name} BY NAME SELECT * FROM ${b.table_name}`);
    });
    await db.run('DETACH refscope_compact');
  } catch {
    await db.run('DETACH refscope_compact').catch(() => undefined);
    rmSync(tmp, { force: true });
    rmSync(tmp + '.wal', { force: true });
    return null;
  }
  const fd = openSync(tmp, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  await db.replaceFile(tmp);
  const after = await fileBlocks(db);
  return { before: size.bytes, after: after?.bytes ?? 0 };
}

/** The file's size and the blocks in use. */
async function fileBlocks(db: Db): Promise<{ bytes: number; used: number; block: number } | undefined> {
  const r = await db.one<{ used: bigint; block: bigint }>(
    'SELECT used_blocks AS used, block_size AS block FROM pragma_database_size() WHERE database_name = current_database()',
  );
  return r && { bytes: statSync(db.path).size, used: Number(r.used), block: Number(r.block) };
}

async function storageTag(db: Db): Promise<string> {
  const r = await db.one<{ v: string }>(
    "SELECT tags['storage_version'] AS v FROM duckdb_databases() WHERE database_name = current_database()",
  );
  const v = r?.v ?? '';
  return /^v\d+\.\d+\.\d+$/.test(v) ? v : 'v1.3.0';
}
