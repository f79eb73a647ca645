import type { Db } from '../db/duckdb.js';
import { listQueries, QUERIES_DIR, QueryError, runQuery, type QueryDef, type ResultRow } from './runner.js';

/**
 * `refscope check`: reads summary.sql and compares each finding kind with its limit. A kind fails when its
 * count (certain findings, plus uncertain ones with includeUncertain) is above its maximum (default 0). The kinds
 * are the queries whose header says `@gate`; a kind's count is the summary column its `@verdict` names, or, when
 * summary.sql has no such column, its own rows. One convention everywhere: a finding is certain when its row says
 * certain = true (every gated query has that column; summary's `<kind>` counts those, `<kind>_uncertain` the others).
 */

/** The gated queries, in the order of their `@gate`. */
export function gatedQueries(dir = QUERIES_DIR): QueryDef[] {
  return listQueries(dir)
    .filter((q) => q.gate !== null)
    .sort((a, b) => a.gate! - b.gate! || a.name.localeCompare(b.name));
}

/** Names of the finding kinds `check` knows (the gated queries). */
export function findingKinds(dir = QUERIES_DIR): string[] {
  return gatedQueries(dir).map((q) => q.name);
}

export type FindingKind = string;

export interface CheckOptions {
  traceId?: number;
  /** Kinds that make the check fail (default: all five). */
  failOn?: FindingKind[];
  /** Per-kind maximum (default 0). */
  max?: Partial<Record<FindingKind, number>>;
  includeUncertain?: boolean;
  /** Query library directory (tests). */
  dir?: string;
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

export function parseFailOn(s: string, dir = QUERIES_DIR): FindingKind[] {
  const known = findingKinds(dir);
  const kinds = s.split(',').map((x) => x.trim()).filter(Boolean);
  for (const k of kinds)
    if (!known.includes(k)) throw new QueryError(`unknown finding kind '${k}' in --fail-on (known: ${known.join(', ')})`);
  return kinds;
}

export function parseMax(items: string[], dir = QUERIES_DIR): Partial<Record<FindingKind, number>> {
  const known = findingKinds(dir);
  const out: Partial<Record<FindingKind, number>> = {};
  for (const it of items) {
    const m = /^([a-z-]+)=(\d+)$/.exec(it.trim());
    if (!m) throw new QueryError(`bad --max ${JSON.stringify(it)}: expected NAME=N, e.g. cma-blockers=3`);
    if (!known.includes(m[1]!)) throw new QueryError(`unknown finding kind '${m[1]}' in --max (known: ${known.join(', ')})`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

function num(v: unknown): number {
  return typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : 0;
}

/** Certain and uncertain rows of a gated query that summary.sql does not count, over the given traces. */
async function countRows(db: Db, q: QueryDef, traces: unknown[], dir: string): Promise<{ certain: number; uncertain: number }> {
  let certain = 0;
  let uncertain = 0;
  for (const t of traces) {
    const params = q.params.some((p) => p.name === 'trace_id') ? { trace_id: t } : {};
    for (const row of (await runQuery(db, q, params, { dir })).rows)
      if (row.certain === true) certain++;
      else uncertain++;
  }
  return { certain, uncertain };
}

export async function check(db: Db, opts: CheckOptions = {}): Promise<CheckReport> {
  const dir = opts.dir ?? QUERIES_DIR;
  const gated = gatedQueries(dir);
  const failOn = opts.failOn ?? gated.map((q) => q.name);
  const r = await runQuery(db, 'summary', { trace_id: opts.traceId ?? null }, { dir });
  if (r.rows.length === 0) throw new QueryError(`no traces in ${db.path}`);
  const notReplayed = r.rows.filter((row) => row.replayed !== true).map((row) => row.trace_id);
  if (notReplayed.length)
    throw new QueryError(`trace ${notReplayed.join(', ')} not replayed (run: refscope replay --db ${db.path} --trace ID)`);
  const sum = (rows: ResultRow[], col: string) => rows.reduce((a, row) => a + num(row[col]), 0);
  const lines: CheckLine[] = [];
  for (const q of gated) {
    const col = q.verdict!.column;
    const counted = r.columns.some((c) => c.name === col)
      ? { certain: sum(r.rows, col), uncertain: sum(r.rows, col + '_uncertain') }
      : await countRows(db, q, r.rows.map((row) => row.trace_id), dir);
    const count = counted.certain + (opts.includeUncertain ? counted.uncertain : 0);
    const max = opts.max?.[q.name] ?? 0;
    const gatedKind = failOn.includes(q.name);
    lines.push({ kind: q.name, count, uncertain: counted.uncertain, max, gated: gatedKind, ok: !gatedKind || count <= max });
  }
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
