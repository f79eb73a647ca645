import { Db } from '../db/duckdb.js';
import { pickTrace, replayFacts } from '../reports/data.js';
import { writePerfetto } from '../export/perfetto.js';
import { parseFormats, writeReport } from '../reports/report.js';

/** The `report` command and the `export --perfetto` option: argument checks, then reports/*. */

/** A mistake the user can fix (bad option, no such trace, not replayed): printed as one line, exit 2. */
export class ReportUsageError extends Error {}

function traceOption(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new ReportUsageError(`--trace ${String(v)}: not a trace id`);
  return Number(v);
}

async function openReadOnly(path: string): Promise<Db> {
  return Db.open(path, { readOnly: true }).catch((e: Error) => {
    throw new ReportUsageError(`${path}: cannot open database: ${e.message.split('\n')[0]}`);
  });
}

/** Open the database read-only, pick the trace (--trace or the last), insist it was replayed, run fn. */
async function withReplayedTrace<T>(o: { db: string; trace?: string }, fn: (db: Db, traceId: number) => Promise<T>): Promise<T> {
  const asked = traceOption(o.trace);
  const db = await openReadOnly(o.db);
  try {
    let traceId: number;
    try {
      traceId = await pickTrace(db, asked);
    } catch (e) {
      throw new ReportUsageError((e as Error).message);
    }
    if (!(await replayFacts(db, traceId)))
      throw new ReportUsageError(`trace ${traceId} not replayed (run: refscope replay --db ${o.db} --trace ${traceId})`);
    return await fn(db, traceId);
  } finally {
    db.close();
  }
}

export interface ReportCommandOptions {
  db: string;
  trace?: string;
  out: string;
  format: string;
}

export async function reportCommand(o: ReportCommandOptions): Promise<void> {
  let formats;
  try {
    formats = parseFormats(o.format);
  } catch (e) {
    throw new ReportUsageError((e as Error).message);
  }
  await withReplayedTrace(o, async (db, traceId) => {
    const r = await writeReport(db, { traceId, outDir: o.out, formats });
    const bad = r.verdict.filter((v) => v.level === 'bad');
    console.error(
      `report of trace ${traceId} in ${o.out}/ (${formats.join(', ')}): ` +
        (bad.length ? bad.map((v) => `${v.query} ${v.count}`).join(', ') : 'no problem found') +
        `; ${r.charts.filter((c) => c.drawn).length} of ${r.charts.length} charts drawn`,
    );
  });
}

export interface PerfettoCommandOptions {
  db: string;
  trace?: string;
  perfetto: string;
}

export async function perfettoCommand(o: PerfettoCommandOptions): Promise<void> {
  await withReplayedTrace(o, async (db, traceId) => {
    const r = await writePerfetto(db, traceId, o.perfetto);
    console.error(`exported trace ${traceId} to ${r.file}: ${r.events} trace events (open in ui.perfetto.dev or chrome://tracing)`);
  });
}
