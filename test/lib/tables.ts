import { strict as assert } from 'node:assert';
import type { Db } from '../../db/duckdb.js';
import { EVENTS, INGEST_TABLES } from '../../db/tables/ingest.js';
import { REPLAY_TABLES } from '../../db/tables/replay.js';

/** Row count per trace of every ingest and replay table (`trace_id:n ...`), to compare a database before and after. */
export async function countsByTrace(db: Db): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of [...INGEST_TABLES, ...REPLAY_TABLES]) {
    if (!t.columns.some((c) => c.name === 'trace_id')) continue;
    const rows = await db.all<{ id: number; n: number }>(`SELECT trace_id AS id, count(*)::INTEGER AS n FROM ${t.name} GROUP BY 1 ORDER BY 1`);
    out[t.name] = rows.map((r) => `${r.id}:${r.n}`).join(' ');
  }
  return out;
}

/** The `events` of two attached databases `a` and `b` are the same multiset of rows (every column but trace_id). */
export async function assertSameEvents(db: Db, a: string, b: string): Promise<void> {
  const cols = EVENTS.columns.filter((c) => c.name !== 'trace_id').map((c) => `"${c.name}"`).join(', ');
  for (const [x, y] of [
    [a, b],
    [b, a],
  ]) {
    const d = await db.one<{ n: number }>(`SELECT count(*)::INTEGER AS n FROM (SELECT ${cols} FROM ${x}.events EXCEPT ALL SELECT ${cols} FROM ${y}.events)`);
    assert.equal(d!.n, 0, `${x} minus ${y}`);
  }
}
