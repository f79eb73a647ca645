import { listValue } from '../db/duckdb-api.js';
import type { DuckDBValue } from '@duckdb/node-api';
import type { Db, Row } from '../db/duckdb.js';
import { rowsOf } from '../queries/statements.js';
import { toBig, toNum } from './format.js';

/**
 * The events behind each finding row: for every query of the library, which `events.seq` show what the row says
 * (the get that was never put, the failed CMA range, the event of an anomaly, ...). Pure look-ups (the statements
 * of queries/evidence/) by the ids and pfns the row already carries; nothing is decided here.
 */

const MAX_EVENTS_PER_ROW = 12;

type Resolver = (db: Db, traceId: number, row: Row) => Promise<number[]>;

/** Every number in the rows of queries/evidence/<name>.sql. */
async function seqs(db: Db, name: string, params: Record<string, DuckDBValue>): Promise<number[]> {
  const rows = await rowsOf(db, `evidence/${name}.sql`, params);
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
    if (r.holder_kind === 'hold' || r.holder_kind === 'pin')
      out.push(
        ...(await seqs(db, 'interval-by-holder', {
          trace_id: t,
          kind: r.holder_kind,
          pfn: toNum(r.pfn),
          start_ts_ns: toNum(r.since_ts_ns),
          holder_pid: toNum(r.holder_pid),
        })),
      );
    out.push(...(await seqs(db, 'cma-ranges', { trace_id: t, attempt_id: toNum(r.attempt_id), pfn: toNum(r.pfn) })));
    out.push(...(await seqs(db, 'cma-attempt', { trace_id: t, attempt_id: toNum(r.attempt_id) })));
    return out;
  },
  'long-pins': async (db, t, r) => {
    if (r.kind !== 'pin' && r.kind !== 'hold') return [];
    return seqs(db, 'interval-by-id', { trace_id: t, kind: r.kind, id: toNum(r.id) });
  },
  'pin-leaks': async (db, t, r) => {
    const pfns = pfnsOfRow(r);
    if (!pfns.length) return [];
    return seqs(db, 'open-pins', { trace_id: t, holder_pid: toNum(r.holder_pid), stack_id: toNum(r.stack_id), pfns: listValue(pfns) });
  },
  leaks: async (db, t, r) => {
    const pfns = pfnsOfRow(r);
    if (!pfns.length) return [];
    const alloc = await seqs(db, 'leak-allocs', { trace_id: t, pfns: listValue(pfns) });
    const gets = await seqs(db, 'leak-refs', { trace_id: t, pfns: listValue(pfns) });
    return [...alloc, ...gets];
  },
  'pgmap-imbalance': async (db, t, r) => {
    const p = typeof r.pgmap === 'string' && /^0x[0-9a-f]+$/i.test(r.pgmap) ? BigInt(r.pgmap) : toBig(r.pgmap);
    if (p === null) return [];
    const life = await seqs(db, 'pgmap-lifecycle', { trace_id: t, pgmap: p.toString() });
    const anomalies = await seqs(db, 'pgmap-anomalies', { trace_id: t, pgmap: p.toString() });
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
