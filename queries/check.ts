import type { Db } from '../db/duckdb.js';
import { QueryError, runQuery, type ResultRow } from './runner.js';

/**
 * `refscope check`: reads summary.sql and compares each finding kind with its limit. A kind fails when its
 * count (certain findings, plus uncertain ones with includeUncertain) is above its maximum (default 0).
 */

export const FINDING_KINDS = ['leaks', 'pin-leaks', 'cma-blockers', 'pgmap-imbalance', 'use-after-free'] as const;
export type FindingKind = (typeof FINDING_KINDS)[number];

export interface CheckOptions {
  traceId?: number;
  /** Kinds that make the check fail (default: all five). */
  failOn?: FindingKind[];
  /** Per-kind maximum (default 0). */
  max?: Partial<Record<FindingKind, number>>;
  includeUncertain?: boolean;
}

export interface CheckLine {
  kind: FindingKind;
  count: number;
  /** Uncertain findings (counted only with includeUncertain). */
  uncertain: number;
  max: number;
  /** Whether this kind can fail the check (listed in failOn). */
  gated: boolean;
  ok: boolean;
}

export interface CheckReport {
  traces: number[];
  lines: CheckLine[];
  ok: boolean;
}

export function parseFailOn(s: string): FindingKind[] {
  const kinds = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const k of kinds)
    if (!(FINDING_KINDS as readonly string[]).includes(k))
      throw new QueryError(`unknown finding kind '${k}' in --fail-on (known: ${FINDING_KINDS.join(', ')})`);
  return kinds as FindingKind[];
}

export function parseMax(items: string[]): Partial<Record<FindingKind, number>> {
  const out: Partial<Record<FindingKind, number>> = {};
  for (const it of items) {
    const m = /^([a-z-]+)=(\d+)$/.exec(it.trim());
    if (!m) throw new QueryError(`bad --max ${JSON.stringify(it)}: expected NAME=N, e.g. cma-blockers=3`);
    if (!(FINDING_KINDS as readonly string[]).includes(m[1]!))
      throw new QueryError(`unknown finding kind '${m[1]}' in --max (known: ${FINDING_KINDS.join(', ')})`);
    out[m[1] as FindingKind] = Number(m[2]);
  }
  return out;
}

const column = (k: FindingKind) => k.replace(/-/g, '_');

function num(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 0;
}

export async function check(db: Db, opts: CheckOptions = {}): Promise<CheckReport> {
  const failOn = opts.failOn ?? [...FINDING_KINDS];
  const r = await runQuery(db, 'summary', { trace_id: opts.traceId ?? null });
  if (r.rows.length === 0) throw new QueryError(`no traces in ${db.path}`);
  const notReplayed = r.rows.filter((row) => row.replayed !== true).map((row) => row.trace_id);
  if (notReplayed.length)
    throw new QueryError(`trace ${notReplayed.join(', ')} not replayed (run: refscope replay --db ${db.path} --trace ID)`);
  const sum = (rows: ResultRow[], col: string) => rows.reduce((a, row) => a + num(row[col]), 0);
  const lines = FINDING_KINDS.map((kind): CheckLine => {
    const certain = sum(r.rows, column(kind));
    const uncertain = sum(r.rows, column(kind) + '_uncertain');
    const count = certain + (opts.includeUncertain ? uncertain : 0);
    const max = opts.max?.[kind] ?? 0;
    const gated = failOn.includes(kind);
    return { kind, count, uncertain, max, gated, ok: !gated || count <= max };
  });
  return { traces: r.rows.map((row) => num(row.trace_id)), lines, ok: lines.every((l) => l.ok) };
}

/** `leaks: 0 (max 0) ok`, one line per kind. */
export function formatCheck(rep: CheckReport, includeUncertain = false): string {
  return (
    rep.lines
      .map((l) => {
        const verdict = !l.gated ? 'not checked' : l.ok ? 'ok' : 'FAIL';
        const unc = !includeUncertain && l.uncertain ? ` [+${l.uncertain} uncertain]` : '';
        return `${l.kind}: ${l.count} (max ${l.max}) ${verdict}${unc}`;
      })
      .join('\n') + '\n'
  );
}
