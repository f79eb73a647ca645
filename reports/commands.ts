import { Db } from '../db/duckdb.js';
import { pickTrace, replayFacts } from './data.js';
import { writePerfetto } from './perfetto.js';
import { parseFormats, writeReport } from './report.js';

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

async function chooseTrace(db: Db, asked: number | undefined): Promise<number> {
  try {
    return await pickTrace(db, asked);
  } catch (e) {
    throw new ReportUsageError((e as Error).message);
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
  const asked = traceOption(o.trace);
  const db = await openReadOnly(o.db);
  try {
    const traceId = await chooseTrace(db, asked);
    if (!(await replayFacts(db, traceId)))
      throw new ReportUsageError(`trace ${traceId} not replayed (run: refscope replay --db ${o.db} --trace ${traceId})`);
    const r = await writeReport(db, { traceId, outDir: o.out, formats });
    const bad = r.verdict.filter((v) => v.level === 'bad');
    console.error(
      `report of trace ${traceId} in ${o.out}/ (${formats.join(', ')}): ` +
        (bad.length ? bad.map((v) => `${v.query} ${v.count}`).join(', ') : 'no problem found') +
        `; ${r.charts.filter((c) => c.drawn).length} of ${r.charts.length} charts drawn`,
    );
  } finally {
    db.close();
  }
}

export interface PerfettoCommandOptions {
  db: string;
  trace?: string;
  perfetto: string;
}

export async function perfettoCommand(o: PerfettoCommandOptions): Promise<void> {
  const asked = traceOption(o.trace);
  const db = await openReadOnly(o.db);
  try {
    const traceId = await chooseTrace(db, asked);
    if (!(await replayFacts(db, traceId)))
      throw new ReportUsageError(`trace ${traceId} not replayed (run: refscope replay --db ${o.db} --trace ${traceId})`);
    const r = await writePerfetto(db, traceId, o.perfetto);
    console.error(`exported trace ${traceId} to ${r.file}: ${r.events} trace events (open in ui.perfetto.dev or chrome://tracing)`);
  } finally {
    db.close();
  }
}
