import { listValue, type DuckDBValue } from '@duckdb/node-api';
import type { Db, Row } from '../db/duckdb.js';
import { toBig, toNum } from './format.js';

/**
 * The events behind each finding row: for every query of the library, which `events.seq` show what the row says
 * (the get that was never put, the failed CMA range, the event of an anomaly, ...). Pure look-ups by the ids and
 * pfns the row already carries; nothing is decided here.
 */

const MAX_EVENTS_PER_ROW = 12;

type Resolver = (db: Db, traceId: number, row: Row) => Promise<number[]>;

async function seqs(db: Db, sql: string, params: DuckDBValue[]): Promise<number[]> {
  const rows = await db.all(sql, params);
  const out: number[] = [];
  for (const r of rows) for (const v of Object.values(r)) {
    const n = toNum(v);
    if (n !== null) out.push(n);
  }
  return out;
}

function pfnsOfRow(r: Row): number[] {
  const out: number[] = [];
  const add = (v: unknown) => {
    const n = toNum(v);
    if (n !== null) out.push(n);
  };
  if (Array.isArray(r.example_pfns)) r.example_pfns.forEach(add);
  add(r.pfn);
  return [...new Set(out)].slice(0, 5);
}

const RESOLVERS: Record<string, Resolver> = {
  'use-after-free': async (_db, _t, r) => [toNum(r.seq)].filter((x): x is number => x !== null),
  divergence: async (_db, _t, r) => [toNum(r.seq)].filter((x): x is number => x !== null),
  'cma-blockers': async (db, t, r) => {
    if (r.what !== 'cma_blocker') return [];
    const out: number[] = [];
    // The holder's get / pin (and its put if any), then the failed ranges, then the cma_alloc call itself.
    if (r.holder_kind === 'hold' || r.holder_kind === 'pin') {
      const table = r.holder_kind === 'hold' ? 'holds' : 'pins';
      out.push(
        ...(await seqs(
          db,
          `SELECT start_seq, end_seq FROM ${table} WHERE trace_id = $1 AND pfn = $2 AND start_ts_ns = $3
             AND holder_pid IS NOT DISTINCT FROM $4 ORDER BY start_seq LIMIT 4`,
          [t, toNum(r.pfn), toNum(r.since_ts_ns), toNum(r.holder_pid)],
        )),
      );
    }
    out.push(
      ...(await seqs(
        db,
        `SELECT DISTINCT range_seq FROM cma_blockers WHERE trace_id = $1 AND attempt_id = $2 AND pfn = $3 ORDER BY range_seq LIMIT 5`,
        [t, toNum(r.attempt_id), toNum(r.pfn)],
      )),
    );
    out.push(...(await seqs(db, 'SELECT start_seq, end_seq FROM cma_attempts WHERE trace_id = $1 AND attempt_id = $2', [t, toNum(r.attempt_id)])));
    return out;
  },
  'long-pins': async (db, t, r) => {
    const table = r.kind === 'pin' ? 'pins' : r.kind === 'hold' ? 'holds' : null;
    if (!table) return [];
    const idCol = table === 'pins' ? 'pin_id' : 'hold_id';
    return seqs(db, `SELECT start_seq, end_seq FROM ${table} WHERE trace_id = $1 AND ${idCol} = $2`, [t, toNum(r.id)]);
  },
  'pin-leaks': async (db, t, r) => {
    const pfns = pfnsOfRow(r);
    if (!pfns.length) return [];
    return seqs(
      db,
      `SELECT start_seq FROM pins WHERE trace_id = $1 AND end_seq IS NULL AND holder_pid IS NOT DISTINCT FROM $2
         AND stack_id IS NOT DISTINCT FROM $3 AND list_contains($4::BIGINT[], pfn) ORDER BY start_seq LIMIT 6`,
      [t, toNum(r.holder_pid), toNum(r.stack_id), listValue(pfns)],
    );
  },
  leaks: async (db, t, r) => {
    const pfns = pfnsOfRow(r);
    if (!pfns.length) return [];
    const alloc = await seqs(
      db,
      `SELECT alloc_seq FROM pages WHERE trace_id = $1 AND free_seq IS NULL AND alloc_seq IS NOT NULL
         AND list_contains($2::BIGINT[], pfn) ORDER BY alloc_seq LIMIT 3`,
      [t, listValue(pfns)],
    );
    const gets = await seqs(
      db,
      `SELECT start_seq FROM (SELECT pfn, start_seq FROM holds WHERE trace_id = $1 AND end_seq IS NULL
                              UNION ALL SELECT folio_pfn, start_seq FROM pins WHERE trace_id = $1 AND end_seq IS NULL)
       WHERE list_contains($2::BIGINT[], pfn) ORDER BY start_seq LIMIT 6`,
      [t, listValue(pfns)],
    );
    return [...alloc, ...gets];
  },
  'pgmap-imbalance': async (db, t, r) => {
    const p = typeof r.pgmap === 'string' && /^0x[0-9a-f]+$/i.test(r.pgmap) ? BigInt(r.pgmap) : toBig(r.pgmap);
    if (p === null) return [];
    const life = await seqs(
      db,
      `SELECT seq FROM pgmap_refs WHERE trace_id = $1 AND pgmap = $2::UBIGINT AND what NOT IN ('get', 'put') ORDER BY seq LIMIT 8`,
      [t, p.toString()],
    );
    const anomalies = await seqs(
      db,
      `SELECT seq FROM anomalies WHERE trace_id = $1 AND pgmap = $2::UBIGINT AND seq IS NOT NULL ORDER BY seq LIMIT 4`,
      [t, p.toString()],
    );
    return [...life, ...anomalies];
  },
};

/** Event seqs behind each row (same order as rows), at most MAX_EVENTS_PER_ROW each, sorted. */
export async function evidenceSeqs(db: Db, traceId: number, query: string, rows: Row[]): Promise<number[][]> {
  const resolve = RESOLVERS[query];
  const out: number[][] = [];
  for (const r of rows) {
    let s: number[] = [];
    if (resolve) {
      try {
        s = await resolve(db, traceId, r);
      } catch {
        s = [];
      }
    }
    out.push([...new Set(s)].sort((a, b) => a - b).slice(0, MAX_EVENTS_PER_ROW));
  }
  return out;
}
