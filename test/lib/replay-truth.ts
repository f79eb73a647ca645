/**
 * Compare a replayed trace with a scenario generator's truth (samples/generate types.ts): returns the list of
 * differences (empty = agreement). Used by test/replay.test.ts; kept separate so it can be run by hand.
 */
import type { Db } from '../../db/duckdb.js';
import type { Truth } from '../../samples/generate/index.js';

type R = Record<string, unknown>;
const n = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const hex = (v: unknown): string | null => (v === null || v === undefined ? null : '0x' + BigInt(v as bigint).toString(16));

export async function compareWithTruth(db: Db, traceId: number, truth: Truth): Promise<string[]> {
  const diffs: string[] = [];
  const e = truth.expect;
  const q = (sql: string) => db.all<R>(sql, [traceId]);

  if (e.pins) {
    const rows = await q('SELECT * FROM pins WHERE trace_id = $1 ORDER BY start_seq');
    const key = (pfn: number, start: number | null) => `${pfn}@${start}`;
    const got = new Map(rows.map((r) => [key(n(r.pfn)!, n(r.start_ts_ns)), r]));
    if (rows.length !== e.pins.length) diffs.push(`pins: ${rows.length} rows, truth ${e.pins.length}`);
    for (const t of e.pins) {
      const r = got.get(key(t.pfn, t.start_ts_ns));
      if (!r) {
        diffs.push(`pin missing: pfn 0x${t.pfn.toString(16)} start ${t.start_ts_ns}`);
        continue;
      }
      const want: [string, unknown, unknown][] = [
        ['refs', t.refs, n(r.refs)],
        ['holder_pid', t.holder_pid, n(r.holder_pid)],
        ['holder_comm', t.holder_comm, r.holder_comm],
        ['end_ts_ns', t.end_ts_ns, n(r.end_ts_ns)],
        ['in_cma', t.in_cma, r.in_cma],
        ['large_folio', t.large_folio, r.large_folio],
        ['uncertain', t.uncertain ?? false, r.uncertain],
        ['migrated', t.migrated ?? false, r.migrate_seq !== null],
      ];
      if (t.longterm !== null) want.push(['longterm', t.longterm, r.longterm]);
      for (const [k, a, b] of want) if (a !== b) diffs.push(`pin 0x${t.pfn.toString(16)}@${t.start_ts_ns}: ${k} ${String(b)}, truth ${String(a)}`);
    }
  }
  if (e.holds) {
    const rows = await q('SELECT * FROM holds WHERE trace_id = $1');
    for (const t of e.holds) {
      const ok = rows.some(
        (r) => n(r.pfn) === t.pfn && n(r.refs) === t.refs && n(r.holder_pid) === t.holder_pid && r.holder_comm === t.holder_comm && n(r.end_ts_ns) === t.end_ts_ns,
      );
      if (!ok) diffs.push(`hold missing: pfn 0x${t.pfn.toString(16)} by ${t.holder_comm} (${t.holder_pid}) end ${t.end_ts_ns}`);
    }
  }
  if (e.anomalies) {
    const rows = await q('SELECT kind, pfn, certain FROM anomalies WHERE trace_id = $1');
    const got = rows.map((r) => `${r.kind} ${n(r.pfn)} ${r.certain}`).sort();
    const want = e.anomalies.map((a) => `${a.kind} ${a.pfn} ${a.certain}`).sort();
    if (got.join('|') !== want.join('|')) diffs.push(`anomalies: got [${got.join(', ')}], truth [${want.join(', ')}]`);
  }
  if (truth.forbid.length) {
    const rows = await q('SELECT kind, count(*) AS n FROM anomalies WHERE trace_id = $1 GROUP BY kind');
    const allowed = new Set((e.anomalies ?? []).map((a) => a.kind));
    for (const r of rows) if (truth.forbid.includes(String(r.kind)) && !allowed.has(String(r.kind))) diffs.push(`forbidden anomaly ${r.kind} x${n(r.n)}`);
  }
  if (e.cma_attempts) {
    const rows = await q('SELECT kind, cma_name, busy_retries, succeeded FROM cma_attempts WHERE trace_id = $1 ORDER BY start_seq, attempt_id');
    const got = rows.map((r) => `${r.kind}/${r.cma_name}/${n(r.busy_retries)}/${r.succeeded}`);
    const want = e.cma_attempts.map((a) => `${a.kind}/${a.cma_name}/${a.busy_retries}/${a.succeeded}`);
    if (got.join('|') !== want.join('|')) diffs.push(`cma_attempts: got [${got.join(', ')}], truth [${want.join(', ')}]`);
  }
  if (e.cma_blockers) {
    const rows = await q('SELECT DISTINCT pfn, holder_kind, holder_pid, holder_comm FROM cma_blockers WHERE trace_id = $1');
    const got = rows.map((r) => `${n(r.pfn)}/${r.holder_kind}/${n(r.holder_pid)}/${r.holder_comm}`).sort();
    const want = e.cma_blockers.map((b) => `${b.pfn}/${b.holder_kind}/${b.holder_pid}/${b.holder_comm}`).sort();
    if (got.join('|') !== want.join('|')) diffs.push(`cma_blockers: got [${got.join(', ')}], truth [${want.join(', ')}]`);
  }
  if (e.pgmaps) {
    const rows = await q('SELECT * FROM pgmaps WHERE trace_id = $1');
    const got = rows.map((r) => `${hex(r.pgmap)}/${n(r.gets)}/${n(r.puts)}/${n(r.outstanding_end)}/${n(r.outstanding_at_unmap)}`).sort();
    const want = e.pgmaps.map((p) => `${p.pgmap}/${p.gets}/${p.puts}/${p.outstanding_end}/${p.outstanding_at_unmap}`).sort();
    if (got.join('|') !== want.join('|')) diffs.push(`pgmaps: got [${got.join(', ')}], truth [${want.join(', ')}]`);
  }
  return diffs;
}
