import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db, Row } from '../db/duckdb.js';
import { jsonValue } from '../queries/format.js';
import { runQuery, type Value } from '../queries/runner.js';
import { buildCharts, pfnsOf, renderSvg, svgToPng, type Chart } from './charts.js';
import { loadReportData, pickTrace, type LoadOptions, type ReportData } from './data.js';
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import { verdictLines, type VerdictLine } from './model.js';
import { Staging } from './publish.js';

/**
 * `refscope report`: reads one trace's query results and replay tables and writes
 *   index.html      self-contained, offline (vega inlined), sortable tables, charts
 *   report.md       verdict + CMA sentences + compact tables, charts as PNG
 *   findings.json   every query's rows, as `refscope query --format json` prints them
 *   charts/         <id>.vl.json (Vega-Lite spec with its data), <id>.svg, <id>.png
 * into a folder beside --out renamed into place at the end (reports/publish.ts): a killed report leaves the old
 * report or the new one.
 */

/** What a report folder holds. */
const REPORT_ENTRIES = ['index.html', 'report.md', 'findings.json', 'charts'];

export const REPORT_FORMATS = ['html', 'md', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface ReportOptions extends LoadOptions {
  traceId?: number;
  outDir: string;
  formats?: ReportFormat[];
  /** Render charts to SVG/PNG files (default true; the HTML renders them itself in the browser). */
  chartFiles?: boolean;
}

export interface ReportResult {
  traceId: number;
  outDir: string;
  files: string[];
  charts: { id: string; drawn: boolean; points: number; note?: string }[];
  verdict: VerdictLine[];
}

export function parseFormats(s: string): ReportFormat[] {
  const fs = s.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
  for (const f of fs) if (!(REPORT_FORMATS as readonly string[]).includes(f)) throw new Error(`unknown report format '${f}' (known: ${REPORT_FORMATS.join(', ')})`);
  if (!fs.length) throw new Error('no report format given');
  return [...new Set(fs)] as ReportFormat[];
}

/** The pfns to chart refcounts for: those named by the findings, in the order of their queries' @refcounts. */
export function suspiciousPfns(data: ReportData): number[] {
  const charted = [...data.queries, data.anomalies].filter((q) => q.refcounts !== null).sort((a, b) => a.refcounts! - b.refcounts!);
  const out: number[] = [];
  for (const q of charted) out.push(...pfnsOf(q.rows.slice(0, 50)));
  return [...new Set(out)];
}

export function findingsJson(data: ReportData, charts: Chart[]): unknown {
  const rows = (rs: Row[]) => rs.map((r) => jsonValue(r as Record<string, Value>));
  return {
    refscope: 'findings/1',
    generated_at: data.generatedAt,
    trace: jsonValue(data.trace as Record<string, Value>),
    replay: data.replay ? jsonValue(data.replay as Record<string, Value>) : null,
    queries: Object.fromEntries(data.queries.map((q) => [q.name, q.error ? { error: q.error, rows: [] } : rows(q.rows)])),
    anomalies: rows(data.anomalies.rows),
    charts: charts.map((c) => ({ id: c.id, title: c.title, drawn: !!c.spec, points: c.points, note: c.note ?? null, spec: c.spec ? `charts/${c.id}.vl.json` : null })),
  };
}

export async function writeReport(db: Db, opts: ReportOptions): Promise<ReportResult> {
  const traceId = await pickTrace(db, opts.traceId);
  const formats = opts.formats ?? [...REPORT_FORMATS];
  const data = await loadReportData(db, traceId, opts);
  const charts = await buildCharts(db, traceId, suspiciousPfns(data));
  const pgmaps = (await runQuery(db, 'pgmap-imbalance', { trace_id: traceId, all: true, include_uncertain: true }).catch(() => ({ rows: [] }))).rows as Row[];

  const stage = new Staging(opts.outDir, REPORT_ENTRIES);
  const files: string[] = [];
  try {
    const write = (name: string, content: string | Buffer) => {
      writeFileSync(join(stage.dir, name), content);
      files.push(join(opts.outDir, name));
    };
    if (charts.some((c) => c.spec)) mkdirSync(join(stage.dir, 'charts'));
    for (const c of charts) {
      if (!c.spec) continue;
      write(`charts/${c.id}.vl.json`, JSON.stringify(c.spec, null, 1) + '\n');
      if (opts.chartFiles !== false) {
        const svg = await renderSvg(c.spec);
        write(`charts/${c.id}.svg`, svg);
        if (formats.includes('md')) write(`charts/${c.id}.png`, svgToPng(svg));
      }
    }
    if (formats.includes('json')) write('findings.json', JSON.stringify(findingsJson(data, charts), null, 1) + '\n');
    if (formats.includes('md')) write('report.md', renderMarkdown(data, charts));
    if (formats.includes('html')) write('index.html', renderHtml({ data, charts, pgmaps }));
    stage.publish();
  } catch (e) {
    stage.discard();
    throw e;
  }
  return {
    traceId,
    outDir: opts.outDir,
    files,
    charts: charts.map((c) => ({ id: c.id, drawn: !!c.spec, points: c.points, note: c.note })),
    verdict: verdictLines(data),
  };
}
