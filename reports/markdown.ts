import type { Row } from '../db/duckdb.js';
import type { Chart } from './charts.js';
import { agreement, type QueryInfo, type ReportData } from './data.js';
import { escapeMdCell, mdCode } from './escape.js';
import { columnKind, columnTitle, duration, formatValue, hex, seconds, toNum } from './format.js';
import { gapSentence } from './gaps.js';
import { OUTSTANDING_QUERY, outstandingSentence, trustedColumns, verdictLines, verdictTitle } from './model.js';
import { allocatorSentences, cmaSentences, kmemOnlyVerdict, longRefsInfo, sessionSentences, type Segment } from './story.js';

/**
 * report.md: the findings as text short enough to paste into a mail or an issue. The first screen holds the
 * verdict lines and one sentence per blocked CMA allocation; then compact tables (10 rows each: the finding
 * queries with their trust columns, the references outstanding at the end, the anomalies) and the charts as PNG files. Text from the traced machine only appears in code spans (mdCode) or escaped table cells
 * (escapeMdCell); everything else is refscope's own words and numbers.
 */

const MD_ROWS = 10;
const MD_SENTENCES = 5;
const MD_DETAILS = 4;

/** A code span whose parts are joined with a trusted separator (e.g. ` <- ` between stack frames). */
function codeJoin(parts: string[], sep: string): string {
  const inner = parts.map((p) => mdCode(p).slice(1, -1)).join(sep);
  return '`' + inner + '`';
}

export function segmentsMd(segs: Segment[]): string {
  return segs.map((s) => (typeof s === 'string' ? s : 'code' in s ? mdCode(s.code) : codeJoin(s.frames, ' <- '))).join('');
}

/** A Markdown table; every cell goes through escapeMdCell, or mdCode for Code cells. */
export function mdTable(header: string[], rows: unknown[][]): string {
  const line = (cells: unknown[]) => '| ' + cells.map((c) => (c instanceof Code ? mdCode(c.text) : escapeMdCell(c))).join(' | ') + ' |';
  return [line(header), '|' + header.map(() => '---').join('|') + '|', ...rows.map(line)].join('\n');
}

/** A table cell as text: numbers, pfns, times as refscope prints them; names from the trace as code spans. */
function cell(name: string, v: unknown): string | Code {
  if (Array.isArray(v)) {
    const items = v.map((x) => (/pfn/.test(name) ? hex(x) : formatValue(columnKind(name, x), x)));
    return /pfn/.test(name) ? items.join(', ') : new Code(items.join(', '));
  }
  const kind = columnKind(name, v);
  const s = formatValue(kind, v);
  return kind === 'text' && s !== '' ? new Code(s) : s;
}

/** A cell that goes out as a code span (mdCode) rather than escaped text. */
export class Code {
  constructor(readonly text: string) {}
}

function queryTable(rows: Row[], q: Pick<QueryInfo, 'show'>): string {
  const shown = rows.slice(0, MD_ROWS);
  const cols = trustedColumns(q, shown, 'md');
  const kinds = cols.map((c) => columnKind(c, shown.find((r) => r[c] !== null && r[c] !== undefined)?.[c]));
  const t = mdTable(
    cols.map((c, i) => columnTitle(c, kinds[i]!)),
    shown.map((r) => cols.map((c) => cell(c, r[c]))),
  );
  return rows.length > shown.length ? `${t}\n\n${rows.length - shown.length} more rows in findings.json.` : t;
}

const ALLOCATOR_TABLES = ['kmem-summary', 'kmem-allocs', 'kmem-orders', 'kmem-alive', 'kmem-live-pfn'];

/** The page allocator's sentences and its tables (the kmem-* queries, default parameters: kmem-allocs by call site). */
function allocatorSection(data: ReportData): string[] {
  const out = ['## Page allocator', ''];
  for (const s of allocatorSentences(data.allocator!.summary)) out.push(`- ${s.severity === 'warning' ? 'warn ' : ''}${segmentsMd(s.segments)}`);
  out.push('');
  for (const name of ALLOCATOR_TABLES) {
    const q = data.queries.find((x) => x.name === name);
    if (!q || (!q.rows.length && !q.error)) continue;
    out.push(`### ${q.title} (${q.name}, ${q.rows.length} row${q.rows.length === 1 ? '' : 's'})`, '');
    out.push(q.error ? `query failed: ${mdCode(q.error)}` : queryTable(q.rows, q), '');
  }
  return out;
}

const MD_SESSIONS = 6;

/** The sessions of pins and references as paragraphs (as index.html's What happened), warnings first. */
function storyMd(data: ReportData): string[] {
  const q = data.queries.find((x) => x.name === 'sessions');
  if (!q || q.error) return [];
  const all = sessionSentences(q.rows).sort((a, b) => Number(b.severity === 'warning') - Number(a.severity === 'warning'));
  const summary = data.queries.find((x) => x.name === 'summary')?.rows.find((r) => toNum(r.trace_id) === data.traceId);
  const info = longRefsInfo(summary, q.rows);
  if (!all.length && !info) return [];
  const out = ['## What happened', ''];
  for (const s of all.slice(0, MD_SESSIONS)) {
    out.push(`- ${s.severity === 'warning' ? 'warn ' : ''}${segmentsMd(s.segments)}`);
    for (const d of s.details) out.push(`  - ${segmentsMd(d)}`);
  }
  if (all.length > MD_SESSIONS) out.push(`- and ${all.length - MD_SESSIONS} more sessions (sessions table below)`);
  if (info) out.push(`- info ${escapeMdCell(info)}`);
  out.push('');
  return out;
}

export function renderMarkdown(data: ReportData, charts: Chart[], chartDir = 'charts'): string {
  const out: string[] = [];
  const t = data.trace;
  const lines = verdictLines(data);
  out.push(`# refscope report: trace ${data.traceId} (${mdCode(t.source)})`);
  out.push('');
  if (!data.replay) out.push('**Not replayed**: run `refscope replay` first; no findings below.', '');
  out.push(`**Verdict: ${verdictTitle(lines)}**`, '');
  for (const l of lines)
    out.push(`- ${l.level === 'bad' ? 'FAIL' : l.level === 'warn' ? 'warn' : 'ok  '} ${l.label}: ${l.count}${l.uncertain ? ` (+${l.uncertain} uncertain)` : ''}${l.note ? ` (${l.note})` : ''}`);
  const outstanding = outstandingSentence(data);
  if (outstanding) out.push(`- info ${escapeMdCell(outstanding)}`);
  const gaps = gapSentence(data.gaps);
  if (gaps) out.push(`- warn ${escapeMdCell(gaps)}`);
  const alloc = data.allocator;
  if (alloc && !alloc.pageRefs) out.push(`- info ${escapeMdCell(kmemOnlyVerdict(alloc.summary))}`);
  out.push('');
  // Without page_ref events the page allocator is the whole story: it leads.
  if (alloc && !alloc.pageRefs) out.push(...allocatorSection(data));

  const cma = data.queries.find((q) => q.name === 'cma-blockers');
  if (cma?.rows.length) {
    out.push('## CMA blockers', '');
    const ss = cmaSentences(cma.rows);
    for (const s of ss.slice(0, MD_SENTENCES)) {
      out.push(`- ${segmentsMd(s.segments)}`);
      for (const d of s.details.slice(0, MD_DETAILS)) out.push(`  - ${segmentsMd(d)}`);
      if (s.details.length > MD_DETAILS) out.push(`  - and ${s.details.length - MD_DETAILS} more holders (index.html)`);
    }
    if (ss.length > MD_SENTENCES) out.push(`- and ${ss.length - MD_SENTENCES} more blocked CMA allocations (index.html, findings.json)`);
    out.push('');
  }
  out.push(...storyMd(data));

  const a = agreement(data.replay);
  const span = toNum(t.last_ts_ns) !== null && toNum(t.first_ts_ns) !== null ? duration(toNum(t.last_ts_ns)! - toNum(t.first_ts_ns)!) : '?';
  out.push('## Trace', '');
  out.push(
    `${mdCode(t.source)}: ${t.format}, ${t.cpus ?? '?'} CPUs, ${t.lines} lines, ${t.events} events, ` +
      `${seconds(t.first_ts_ns, 3)} .. ${seconds(t.last_ts_ns, 3)} s (${span}), ${t.lost_events ?? 0} events lost` +
      (a ? `; model agreement ${a.ratio === null ? 'n/a' : `${(a.ratio * 100).toFixed(2)} %`} (${a.agreed}/${a.checked} page_ref counts)` : '') +
      '.',
    '',
  );

  for (const q of data.queries.filter((x) => x.finding && x.name !== 'divergence')) {
    if (!q.rows.length && !q.error) continue;
    out.push(`## ${q.title} (${q.name}, ${q.rows.length} row${q.rows.length === 1 ? '' : 's'})`, '');
    out.push(q.error ? `query failed: ${mdCode(q.error)}` : queryTable(q.rows, q), '');
  }
  // What is still held at the end (information, not findings): the table behind the verdict's outstanding line.
  const held = data.queries.find((q) => q.name === OUTSTANDING_QUERY);
  if (held && (held.rows.length || held.error)) {
    out.push(`## ${held.title} (${held.name}, ${held.rows.length} row${held.rows.length === 1 ? '' : 's'})`, '');
    out.push(held.error ? `query failed: ${mdCode(held.error)}` : queryTable(held.rows, held), '');
  }
  const sessions = data.queries.find((q) => q.name === 'sessions');
  if (sessions && (sessions.rows.length || sessions.error)) {
    out.push(`## ${sessions.title} (${sessions.name}, ${sessions.rows.length} row${sessions.rows.length === 1 ? '' : 's'})`, '');
    out.push(sessions.error ? `query failed: ${mdCode(sessions.error)}` : queryTable(sessions.rows, sessions), '');
  }
  if (alloc?.pageRefs) out.push(...allocatorSection(data));
  const an = data.anomalies.rows;
  if (an.length) {
    const kinds = new Map<string, Row[]>();
    for (const r of an) kinds.set(`${r.kind}\u0000${r.severity}`, [...(kinds.get(`${r.kind}\u0000${r.severity}`) ?? []), r]);
    out.push(`## Replay anomalies (${an.length}${an.length >= 1000 ? '+' : ''})`, '');
    out.push(
      mdTable(
        ['kind', 'severity', 'count', 'certain', 'first example'],
        [...kinds.values()].map((rs) => [new Code(String(rs[0]!.kind)), String(rs[0]!.severity), rs.length, rs.filter((r) => r.certain === true).length, rs[0]!.detail]),
      ),
      '',
    );
  }
  const top = data.queries.find((q) => q.name === 'top-callers');
  if (top?.rows.length) out.push('## Top call sites', '', queryTable(top.rows.slice(0, 5), top), '');
  const div = data.queries.find((q) => q.name === 'divergence');
  if (div?.rows.length) out.push(`## Model divergences (${div.rows.length} row${div.rows.length === 1 ? '' : 's'})`, '', queryTable(div.rows, div), '');

  const drawn = charts.filter((c) => c.spec);
  if (charts.length) {
    out.push('## Charts', '');
    for (const c of drawn) out.push(`![${c.title}](${chartDir}/${c.id}.png)`, '');
    for (const c of charts.filter((x) => !x.spec)) out.push(`- ${c.title}: not drawn (${c.note ?? 'no data'})`);
    out.push('');
  }
  out.push(`Full report: index.html; all rows: findings.json. Generated ${data.generatedAt}.`);
  return out.join('\n') + '\n';
}
