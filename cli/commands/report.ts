import type { Command } from 'commander';
import { dbOption, ReportUsageError, withReplayedTrace } from '../common.js';

/** `refscope report`: HTML, Markdown, findings.json and charts of one replayed trace. */
export function reportCommand(program: Command): void {
  program
    .command('report')
    .description('write an offline HTML report, a Markdown summary, findings.json and charts for one replayed trace')
    .addOption(dbOption())
    .option('--trace <id>', 'trace id (default: the last ingested)')
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
