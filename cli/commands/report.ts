import type { Command } from 'commander';
import { join } from 'node:path';
import { dbOption, ReportUsageError, withReplayedTraces } from '../common.js';

/**
 * `refscope report`: HTML, Markdown, findings.json and charts of one replayed trace. A database of several traces
 * needs --trace N, or --trace all: one folder per trace, OUT/trace-N.
 */
export function reportCommand(program: Command): void {
  program
    .command('report')
    .description('write an offline HTML report, a Markdown summary, findings.json and charts for one replayed trace')
    .addOption(dbOption())
    .option('--trace <id>', 'trace id, or all (one folder per trace: OUT/trace-N); default: the only trace')
    .option('--out <dir>', 'output directory', 'refscope-report')
    .option('--format <formats>', 'comma-separated: html,md,json', 'html,md,json')
    .action(async (o: ReportCommandOptions) => {
      await report(o);
    });
}

export interface ReportCommandOptions {
  db: string;
  trace?: string;
  out: string;
  format: string;
}

export async function report(o: ReportCommandOptions): Promise<void> {
  const { parseFormats, writeReport } = await import('../../reports/report.js');
  let formats;
  try {
    formats = parseFormats(o.format);
  } catch (e) {
    throw new ReportUsageError((e as Error).message);
  }
  await withReplayedTraces({ ...o, all: `one folder per trace, ${join(o.out, 'trace-N')}` }, async (db, traceId) => {
    const outDir = o.trace === 'all' ? join(o.out, `trace-${traceId}`) : o.out;
    const r = await writeReport(db, { traceId, outDir, formats });
    const bad = r.verdict.filter((v) => v.level === 'bad');
    console.error(
      `report of trace ${traceId} in ${outDir}/ (${formats.join(', ')}): ` +
        (bad.length ? bad.map((v) => `${v.query} ${v.count}`).join(', ') : 'no problem found') +
        `; ${r.charts.filter((c) => c.drawn).length} of ${r.charts.length} charts drawn`,
    );
  });
}
