import type { Db } from '../db/duckdb.js';
import { escapeControl } from '../db/escape.js';
import { listQueries, QUERIES_DIR, QueryError, runQuery, type QueryDef } from './runner.js';

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

/** One trace's share of the counts, so that a failed check says which trace failed. */
export interface CheckTrace {
  trace_id: number;
  source: string;
  /** Per kind (every gated kind, in order): its count in this trace (as CheckLine.count) and uncertain ones. */
  kinds: { kind: FindingKind; count: number; uncertain: number }[];
  /** false when the trace has findings of a kind whose total failed. */
  ok: boolean;
}

export interface CheckReport {
  traces: CheckTrace[];
  /** Totals over the traces, against the limits. */
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

/** Certain and uncertain rows of a gated query that summary.sql does not count, in one trace. */
async function countRows(db: Db, q: QueryDef, trace: unknown, dir: string): Promise<{ certain: number; uncertain: number }> {
  let certain = 0;
  let uncertain = 0;
  const params = q.params.some((p) => p.name === 'trace_id') ? { trace_id: trace } : {};
  for (const row of (await runQuery(db, q, params, { dir })).rows)
    if (row.certain === true) certain++;
    else uncertain++;
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
  // Per trace (summary's rows) and kind: certain and uncertain counts.
  const perTrace: { certain: number; uncertain: number }[][] = [];
  for (const row of r.rows) {
    const counts = [];
    for (const q of gated) {
      const col = q.verdict!.column;
      counts.push(
        r.columns.some((c) => c.name === col)
          ? { certain: num(row[col]), uncertain: num(row[col + '_uncertain']) }
          : await countRows(db, q, row.trace_id, dir),
      );
    }
    perTrace.push(counts);
  }
  const counted = (c: { certain: number; uncertain: number }) => c.certain + (opts.includeUncertain ? c.uncertain : 0);
  const lines: CheckLine[] = gated.map((q, k) => {
    const count = perTrace.reduce((a, t) => a + counted(t[k]!), 0);
    const uncertain = perTrace.reduce((a, t) => a + t[k]!.uncertain, 0);
    const max = opts.max?.[q.name] ?? 0;
    const gatedKind = failOn.includes(q.name);
    return { kind: q.name, count, uncertain, max, gated: gatedKind, ok: !gatedKind || count <= max };
  });
  const traces: CheckTrace[] = r.rows.map((row, i) => {
    const kinds = gated.map((q, k) => ({ kind: q.name, count: counted(perTrace[i]![k]!), uncertain: perTrace[i]![k]!.uncertain }));
    return { trace_id: num(row.trace_id), source: String(row.source), kinds, ok: kinds.every((c, k) => lines[k]!.ok || c.count === 0) };
  });
  return { traces, lines, ok: lines.every((l) => l.ok) };
}

/**
 * One line per trace naming it and its findings (`trace 2 (c.txt): FAIL: cma-blockers 8`), then the totals
 * against the limits (`leaks: 0 (max 0) ok`), one line per kind.
 */
export function formatCheck(rep: CheckReport, includeUncertain = false): string {
  const unc = (n: number) => (!includeUncertain && n ? ` [+${n} uncertain]` : '');
  const traces = rep.traces.map((t) => {
    const found = t.kinds
      .filter((c) => c.count || (!includeUncertain && c.uncertain))
      .map((c) => `${c.kind} ${c.count}${unc(c.uncertain)}${rep.lines.find((l) => l.kind === c.kind)!.gated ? '' : ' (not checked)'}`);
    return `trace ${t.trace_id} (${escapeControl(t.source)}): ${t.ok ? 'ok' : 'FAIL'}: ${found.length ? found.join(', ') : 'no findings'}`;
  });
  return (
    [
      ...traces,
      ...rep.lines.map((l) => {
        const verdict = !l.gated ? 'not checked' : l.ok ? 'ok' : 'FAIL';
        return `${l.kind}: ${l.count} (max ${l.max}) ${verdict}${unc(l.uncertain)}`;
      }),
    ].join('\n') + '\n'
  );
}
