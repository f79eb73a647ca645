import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import type { Row } from '../db/duckdb.js';
import type { Chart } from './charts.js';
import { agreement, isAllocatorQuery, KMEM_GROUPINGS, MAX_MARKERS, type EventInfo, type QueryResult, type ReportData } from './data.js';
import { escapeHtml, jsonForScript } from './escape.js';
import { columnKind, columnTitle, duration, formatValue, hex, seconds, toNum, type ColumnKind } from './format.js';
import { gapSentence } from './gaps.js';
import { outstandingSentence, rowSeverity, tableColumns, verdictLines, verdictTitle, type VerdictLine } from './model.js';
import { allocatorSentences, cmaSentences, kmemOnlyVerdict, longRefsInfo, sessionSentences, type Segment } from './story.js';
import { meaningfulFrames, splitFrames } from './stackfmt.js';

/**
 * index.html: one self-contained file (CSS, the vega / vega-lite / vega-embed UMD builds and the chart specs
 * inlined) that works from file:// with no network at all; a Content-Security-Policy forbids any request.
 *
 * Every piece of markup is built with the `html` tagged template, which escapes every interpolated value with
 * escapeHtml unless it is already markup built the same way. Chart data goes in as JSON inside
 * <script type="application/json"> blocks (jsonForScript), never as markup.
 */

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

function piece(v: unknown): string {
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(piece).join('');
  if (v === null || v === undefined || v === false) return '';
  return escapeHtml(v);
}

/** Markup from a template: every `${value}` is escaped unless it is SafeHtml (or an array of them). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += piece(values[i]) + strings[i + 1]!;
  return new SafeHtml(out);
}

const require = createRequire(import.meta.url);

/** Directory of an installed package (its package.json), found from its entry point. */
function packageDir(name: string): string {
  let dir = dirname(require.resolve(name));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === name) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the directory of package ${name}`);
    dir = up;
  }
}

/** The UMD builds of vega, vega-lite and vega-embed, read from node_modules. */
export function vendorScripts(): { name: string; code: string }[] {
  return [
    ['vega', 'build/vega.min.js'],
    ['vega-lite', 'build/vega-lite.min.js'],
    ['vega-embed', 'build/vega-embed.min.js'],
  ].map(([name, path]) => {
    const file = join(packageDir(name!), path!);
    // A `</script` or `<!--` inside the code would end or change the script element: neutralize (none today).
    const code = readFileSync(file, 'utf8').replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
    return { name: name!, code };
  });
}

const CSS = `
:root{--bad:#c62828;--badbg:#fdecea;--ok:#2e7d32;--okbg:#edf7ed;--warn:#a15c00;--warnbg:#fff4e0;--line:#ddd;--mute:#666}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#111;margin:0;background:#fafafa}
main{max-width:1240px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:20px;margin:4px 0 2px}h2{font-size:17px;margin:28px 0 6px;border-bottom:1px solid var(--line);padding-bottom:3px}
h3{font-size:15px;margin:16px 0 4px}
.sub{color:var(--mute);font-size:12.5px}
code,pre,.mono{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
code{background:#f0f0f0;padding:0 3px;border-radius:3px}
.verdict{border:2px solid var(--line);border-radius:6px;background:#fff;padding:10px 14px;margin:12px 0}
.verdict.bad{border-color:var(--bad)}.verdict.warn{border-color:#e0a030}.verdict.ok{border-color:var(--ok)}
.verdict h2{margin:0 0 6px;border:0;font-size:16px}
.verdict ul{list-style:none;margin:0;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(270px,1fr));gap:6px}
.verdict li a{display:flex;gap:8px;align-items:baseline;padding:5px 9px;border-radius:4px;text-decoration:none;color:inherit}
.verdict .n{font-weight:700;font-size:18px;min-width:2.2em;text-align:right}
.k-bad{background:var(--badbg)}.k-bad .n{color:var(--bad)}.k-ok{background:var(--okbg)}.k-ok .n{color:var(--ok)}
.k-warn{background:var(--warnbg)}.k-warn .n{color:var(--warn)}
.verdict .unc{color:var(--mute);font-size:12px}
.verdict .gaps{margin:8px 0 0;font-size:13px}.verdict .gaps a{color:inherit}
.verdict .outstanding{margin:8px 0 0;font-size:13px}.verdict .outstanding a{color:inherit}
.story{background:#fff;border-left:4px solid var(--bad);padding:8px 12px;margin:8px 0;list-style:none}
.story.warning{border-color:var(--warn)}.story.info{border-color:#4e79a7}.story ul{margin:4px 0 0 0;padding-left:18px}
.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(225px,1fr));gap:0 22px;background:#fff;border:1px solid var(--line);padding:8px 12px;border-radius:4px;margin:0}
.facts div{display:flex;justify-content:space-between;gap:10px;border-bottom:1px dotted #e5e5e5;padding:2px 0;min-width:0}
.facts div.wide{grid-column:1/-1;justify-content:flex-start}
.facts dt{color:var(--mute);white-space:nowrap}.facts dd{margin:0;text-align:right;min-width:0;overflow-wrap:anywhere}
.facts .wide dd{white-space:normal;word-break:break-all;text-align:left;font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
.scroll{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:4px}
table.t{border-collapse:collapse;width:100%;font-size:12.5px}
.t th{background:#f3f3f3;text-align:left;font-weight:600;padding:4px 7px;border-bottom:1px solid #ccc;white-space:nowrap;cursor:pointer;user-select:none;position:sticky;top:0}
.t th[aria-sort=ascending]::after{content:" \\25B2";font-size:9px}.t th[aria-sort=descending]::after{content:" \\25BC";font-size:9px}
.t td{padding:3px 7px;border-bottom:1px solid #eee;vertical-align:top}
.t td.task{white-space:nowrap}
.t td.mono{word-break:break-all;min-width:260px}
.t td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.t>tbody>tr.sev-error>td:first-child{box-shadow:inset 3px 0 var(--bad)}.t>tbody>tr.sev-warning>td:first-child{box-shadow:inset 3px 0 var(--warn)}
.t>tbody>tr.uncertain>td{color:#777;font-style:italic}
.t td.long{min-width:22em}
details summary{cursor:pointer;color:#1a5fb4;white-space:nowrap}
.ev{padding:6px 0 4px;max-width:1100px}
.ev dl{display:grid;grid-template-columns:max-content 1fr;gap:0 12px;margin:0 0 6px}.ev dt{color:var(--mute)}.ev dd{margin:0;word-break:break-all}
pre.stack{background:#f6f8fa;border:1px solid #e3e3e3;padding:4px 8px;margin:4px 0;white-space:pre-wrap;max-height:260px;overflow:auto}
.note{color:var(--mute);font-style:italic}
.same{font-size:12.5px;margin:2px 0 4px}.same .k{color:var(--mute)}
.err{color:var(--bad)}
figure.chart{background:#fff;border:1px solid var(--line);border-radius:4px;margin:12px 0;padding:8px 10px;overflow-x:auto}
figure.chart figcaption{color:var(--mute);font-size:12.5px;margin-top:4px}
.vis{min-height:60px}
nav.toc{font-size:12.5px;color:var(--mute)}nav.toc a{margin-right:10px}
`;

/** Inline script: render every chart from its JSON block, then make tables sortable by clicking a header. */
const BOOT = `
(function () {
  'use strict';
  var charts = document.querySelectorAll('[data-chart]');
  var jobs = [];
  Array.prototype.forEach.call(charts, function (el) {
    var block = document.getElementById('spec-' + el.getAttribute('data-chart'));
    var spec;
    try { spec = JSON.parse(block.textContent); } catch (e) { el.textContent = 'chart data unreadable: ' + e; console.error(e); return; }
    if (typeof vegaEmbed !== 'function') { el.textContent = 'vega-embed did not load'; return; }
    jobs.push(vegaEmbed(el, spec, { renderer: 'svg', actions: false }).then(function () {
      el.setAttribute('data-rendered', 'ok');
    }, function (err) {
      el.textContent = 'chart failed: ' + (err && err.message ? err.message : err);
      el.setAttribute('data-rendered', 'error');
      console.error(err);
    }));
  });
  Promise.all(jobs).then(function () { document.body.setAttribute('data-charts-done', String(jobs.length)); });

  function key(td) {
    var v = td.getAttribute('data-v');
    return v === null ? td.textContent : v;
  }
  function cmp(a, b) {
    var x = Number(a), y = Number(b);
    if (a !== '' && b !== '' && isFinite(x) && isFinite(y)) return x - y;
    if (a === '') return b === '' ? 0 : 1;
    if (b === '') return -1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.t'), function (table) {
    var ths = table.tHead ? table.tHead.rows[0].cells : [];
    Array.prototype.forEach.call(ths, function (th, col) {
      if (th.hasAttribute('data-nosort')) return;
      th.title = (th.title ? th.title + ' ' : '') + '(click to sort)';
      th.addEventListener('click', function () {
        var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
        Array.prototype.forEach.call(ths, function (o) { o.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (r1, r2) { return dir * cmp(key(r1.cells[col]), key(r2.cells[col])); });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
})();
`;

function segmentsHtml(segs: Segment[]): SafeHtml {
  return html`${segs.map((s) =>
    typeof s === 'string' ? html`${s}` : 'code' in s ? html`<code>${s.code}</code>` : html`<code>${s.frames.join(' <- ')}</code>`,
  )}`;
}

function cellValue(kind: ColumnKind, name: string, v: unknown): { text: string; sort: string } {
  if (Array.isArray(v)) {
    const items = v.map((x) => (/pfn/.test(name) ? hex(x) : formatValue(columnKind(name, x), x)));
    return { text: items.join(', '), sort: items.join(', ') };
  }
  if (name === 'stack' && typeof v === 'string') return { text: v.split('\n').slice(0, 3).join(' <- '), sort: v };
  const text = formatValue(kind, v);
  const n = toNum(v);
  return { text, sort: n !== null && kind !== 'text' ? String(n) : text };
}

function kinds(rows: Row[], cols: string[]): Map<string, ColumnKind> {
  const m = new Map<string, ColumnKind>();
  for (const c of cols) {
    const sample = rows.find((r) => r[c] !== null && r[c] !== undefined)?.[c];
    m.set(c, columnKind(c, sample));
  }
  return m;
}

function eventTable(evs: EventInfo[], data: ReportData): SafeHtml {
  if (!evs.length) return html``;
  return html`<table class="t"><thead><tr><th>line</th><th>time (s)</th><th>cpu</th><th>task</th><th>event</th><th>payload</th></tr></thead><tbody>${evs.map((e) => {
    const st = e.stack_id !== null ? data.stacks.get(e.stack_id) : undefined;
    return html`<tr><td class="num" data-v="${e.line_no}">${e.line_no}</td><td class="num" data-v="${e.ts_ns}">${seconds(e.ts_ns)}</td><td class="num">${e.cpu ?? ''}</td><td class="task">${e.comm ?? ''}-${e.pid ?? ''}</td><td class="mono">${e.event}</td><td class="mono">${e.payload}${
      st ? html`<details><summary>stack (${st.frames.length} frames)</summary><pre class="stack">${meaningfulFrames(st.frames).join('\n')}</pre></details>` : ''
    }</td></tr>`;
  })}</tbody></table>`;
}

function evidenceCell(q: QueryResult, row: Row, i: number, data: ReportData, shown: Set<string>): SafeHtml {
  const seqs = q.evidence[i] ?? [];
  const evs = seqs.map((s) => data.events.get(s)).filter((e): e is EventInfo => !!e);
  const frames = splitFrames(row.stack);
  const sid = toNum(row.stack_id);
  const stack = frames.length ? frames : sid !== null ? (data.stacks.get(sid)?.frames ?? []) : [];
  const fields = Object.entries(row).filter(([k, v]) => v !== null && v !== undefined && k !== 'stack' && k !== 'trace_id' && !shown.has(k));
  const label = [evs.length ? `${evs.length} event${evs.length > 1 ? 's' : ''}` : '', stack.length ? 'stack' : '', fields.length ? 'fields' : '']
    .filter(Boolean)
    .join(' · ');
  if (!label) return html``;
  return html`<details><summary>${label}</summary><div class="ev">${
    fields.length
      ? html`<dl>${fields.map(([k, v]) => {
          const kind = columnKind(k, v);
          const c = cellValue(kind, k, v);
          return html`<dt>${columnTitle(k, kind)}</dt><dd>${c.text}</dd>`;
        })}</dl>`
      : ''
  }${stack.length ? html`<pre class="stack">${meaningfulFrames(stack).join('\n')}</pre>` : ''}${eventTable(evs, data)}</div></details>`;
}

const MAX_HTML_ROWS = 200;
const MAX_SENTENCES = 20;

function queryTable(q: QueryResult, data: ReportData, withEvidence = true): SafeHtml {
  if (q.error) return html`<p class="err">query failed: ${q.error}</p>`;
  if (!q.rows.length) return html`<p class="note">None.</p>`;
  const rows = q.rows.slice(0, MAX_HTML_ROWS);
  const all = tableColumns(q, rows, 'html');
  const ks = kinds(rows, all);
  // Columns with one value in every row are said once above the table instead of repeated.
  const same = (c: string) => rows.length > 1 && rows.every((r) => cellValue(ks.get(c)!, c, r[c]).text === cellValue(ks.get(c)!, c, rows[0]![c]).text);
  const constant = all.filter(same);
  const cols = all.filter((c) => !constant.includes(c));
  const shown = new Set(all);
  return html`${
    constant.length
      ? html`<p class="same">Every row: ${constant.map((c, i) => html`${i ? ', ' : ''}<span class="k">${columnTitle(c, ks.get(c)!)}</span> ${cellValue(ks.get(c)!, c, rows[0]![c]).text}`)}</p>`
      : ''
  }<div class="scroll"><table class="t"><thead><tr>${cols.map((c) => {
    const k = ks.get(c)!;
    return html`<th title="${q.columnDocs.get(c) ?? ''}">${columnTitle(c, k)}</th>`;
  })}${withEvidence ? html`<th data-nosort>evidence</th>` : ''}</tr></thead><tbody>${rows.map((r, i) => {
    const sev = rowSeverity(q, r);
    const cls = [sev ? `sev-${sev}` : '', r.certain === false || r.uncertain === true ? 'uncertain' : ''].filter(Boolean).join(' ');
    return html`<tr class="${cls}">${cols.map((c) => {
      const k = ks.get(c)!;
      const v = cellValue(k, c, r[c]);
      const numeric = k === 'number' || k === 'duration' || k === 'ts' || k === 'hex';
      return html`<td class="${numeric ? 'num' : v.text.length > 40 ? 'long' : ''}" data-v="${v.sort}">${v.text}</td>`;
    })}${withEvidence ? html`<td>${evidenceCell(q, r, i, data, shown)}</td>` : ''}</tr>`;
  })}</tbody></table></div>${
    q.rows.length > rows.length ? html`<p class="note">${q.rows.length - rows.length} more rows in findings.json.</p>` : ''
  }`;
}

function verdictBox(lines: VerdictLine[], data: ReportData): SafeHtml {
  const bad = lines.filter((l) => l.level === 'bad');
  const warn = lines.filter((l) => l.level === 'warn');
  const title = !data.replay ? 'Not replayed: no findings' : verdictTitle(lines).replace(/^./, (c) => c.toUpperCase());
  const outstanding = outstandingSentence(data);
  const gaps = gapSentence(data.gaps);
  return html`<section class="verdict ${bad.length ? 'bad' : warn.length ? 'warn' : 'ok'}" id="verdict"><h2>Verdict: ${title}</h2><ul>${lines.map(
    (l) =>
      html`<li><a class="k-${l.level}" href="#${l.anchor ?? `q-${l.query}`}"><span class="n">${l.count}</span><span>${l.label}${
        l.uncertain ? html` <span class="unc">(+${l.uncertain} uncertain)</span>` : ''
      }${
        l.note ? html` <span class="unc">(${l.note})</span>` : ''
      }</span></a></li>`,
  )}</ul>${kmemOnly(data) ? html`<p class="outstanding"><a href="#allocator">${kmemOnlyVerdict(data.allocator!.summary)}</a></p>` : ''}${
    outstanding ? html`<p class="outstanding"><a href="#q-outstanding">${outstanding}</a></p>` : ''}${
    gaps ? html`<p class="gaps"><a href="#q-divergence">${gaps}</a></p>` : ''
  }</section>`;
}

function fact(name: string, value: unknown, wide = false): SafeHtml {
  const v = value instanceof Date ? value.toISOString().replace(/\.\d+Z$/, 'Z') : value;
  return html`<div class="${wide ? 'wide' : ''}"><dt>${name}</dt><dd>${v === null || v === undefined || v === '' ? '—' : String(v)}</dd></div>`;
}

function summarySection(data: ReportData): SafeHtml {
  const t = data.trace;
  const r = data.replay;
  const a = agreement(r);
  const span = toNum(t.last_ts_ns) !== null && toNum(t.first_ts_ns) !== null ? duration(toNum(t.last_ts_ns)! - toNum(t.first_ts_ns)!) : '';
  const pct = (x: number | null) => (x === null ? 'nothing checked' : `${(x * 100).toFixed(2)} %`);
  return html`<section id="summary"><h2>Trace</h2><dl class="facts">
${fact('source', t.source, true)}${fact('format', t.format)}${fact('kernel', t.kernel_version)}${fact('cpus', t.cpus)}
${fact('lines', t.lines)}${fact('events', t.events)}${fact('stacks', t.stacks)}${fact('unparsed lines', t.unparsed_lines)}
${fact('first event (s)', seconds(t.first_ts_ns))}${fact('last event (s)', seconds(t.last_ts_ns))}${fact('window', span)}${fact('clock', t.clock)}
${fact('lost events', `${t.lost_events ?? 0} (${t.lost_markers ?? 0} marker${toNum(t.lost_markers) === 1 ? '' : 's'})`)}${fact('mapcount semantics', t.mapcount_semantics)}
${a ? html`${fact('model agreement', pct(a.ratio))}${fact('count= agreed', `${a.agreed}/${a.checked}`)}${fact('outside lost windows', pct(a.outside))}` : fact('model agreement', 'not replayed')}
${r ? html`${fact('page lifetimes', r.pages)}${fact('pins', r.pins)}${fact('long holds', r.holds)}${fact('cma_alloc calls', `${r.cma_allocs ?? 0}${toNum(r.cma_alloc_failed) ? ` (${r.cma_alloc_failed} failed)` : ''}`)}${fact('cma_release calls', r.cma_releases ?? 0)}${fact('dev_pagemaps', r.pgmaps)}${fact('anomalies', r.anomalies)}${fact('replayed at', r.replayed_at)}` : ''}
</dl></section>`;
}

function cmaSection(data: ReportData): SafeHtml {
  const q = data.queries.find((x) => x.name === 'cma-blockers');
  if (!q || !q.rows.length) return html`<section id="cma"><h2>CMA blockers</h2><p class="note">No CMA allocation failed or needed a retry in this trace.</p></section>`;
  const all = cmaSentences(q.rows);
  const ss = all.slice(0, MAX_SENTENCES);
  const more = all.length - ss.length;
  return html`<section id="cma"><h2>CMA blockers</h2>${more > 0 ? html`<p class="sub">First ${ss.length} of ${all.length} blocked allocations; all rows in the cma-blockers table below.</p>` : ''}<ul style="padding:0">${ss.map(
    (s) => html`<li class="story ${s.severity}">${segmentsHtml(s.segments)}${s.details.length ? html`<ul>${s.details.map((d) => html`<li>${segmentsHtml(d)}</li>`)}</ul>` : ''}</li>`,
  )}</ul></section>`;
}

const MAX_SESSIONS = 12;

/**
 * The story under the verdict: one paragraph per pin / reference session (sessions.sql) that no mapping explains,
 * warnings (on CMA / ZONE_MOVABLE) first, then information; the long references the verdict does not count in one
 * line. The certain findings come before it (the verdict and the CMA blockers).
 */
function storySection(data: ReportData): SafeHtml {
  const q = data.queries.find((x) => x.name === 'sessions');
  if (!q || q.error) return html``;
  const all = sessionSentences(q.rows).sort((a, b) => Number(b.severity === 'warning') - Number(a.severity === 'warning'));
  const shown = all.slice(0, MAX_SESSIONS);
  const summary = data.queries.find((x) => x.name === 'summary')?.rows.find((r) => toNum(r.trace_id) === data.traceId);
  const info = longRefsInfo(summary, q.rows);
  if (!shown.length && !info) return html``;
  return html`<section id="story"><h2>What happened</h2><ul style="padding:0">${shown.map(
    (s) => html`<li class="story ${s.severity}">${segmentsHtml(s.segments)}${s.details.length ? html`<ul>${s.details.map((d) => html`<li>${segmentsHtml(d)}</li>`)}</ul>` : ''}</li>`,
  )}</ul>${all.length > shown.length ? html`<p class="sub">and ${all.length - shown.length} more sessions in the <a href="#q-sessions">sessions table</a>.</p>` : ''}${
    info ? html`<p class="sub"><a href="#q-sessions">${info}</a></p>` : ''
  }</section>`;
}

function chartSection(charts: Chart[]): SafeHtml {
  return html`<section id="charts"><h2>Charts</h2>${charts.map(figure)}</section>`;
}

/** A trace with page-allocator events and no page_ref events: the allocator is all it can tell. */
function kmemOnly(data: ReportData): boolean {
  return !!data.allocator && !data.allocator.pageRefs;
}

const KMEM_TITLES: Record<string, string> = { callsite: 'by call site', gfp: 'by gfp flags', order: 'by order', migratetype: 'by migratetype', comm: 'by task' };

function figure(c: Chart): SafeHtml {
  return c.spec
    ? html`<figure class="chart" id="fig-${c.id}"><div class="vis" id="chart-${c.id}" data-chart="${c.id}"></div><figcaption>${c.caption}</figcaption><script type="application/json" id="spec-${c.id}">${new SafeHtml(jsonForScript(c.spec))}</script></figure>`
    : html`<figure class="chart omitted" id="fig-${c.id}"><h3>${c.title}</h3><p class="note">Not drawn: ${c.note ?? 'no data'}</p></figure>`;
}

/** One table of the Allocator section: a kmem* query's rows under its own anchor. */
function allocatorTable(id: string, title: string, q: QueryResult, data: ReportData): SafeHtml {
  return html`<section id="${id}"><h3>${title} <span class="sub">(${q.name}: ${q.rows.length} row${q.rows.length === 1 ? '' : 's'})</span></h3><p class="sub">${q.description || q.summary}</p>${queryTable(q, data, false)}</section>`;
}

/**
 * The page allocator's story (kmem events): totals against what perf kmem --page stat counts, allocations by call
 * site / gfp / order / migratetype / task, the lifetime histogram, window edges and allocations on live pfns. Every
 * kmem* query keeps its q-<name> anchor; a trace without page-allocator events lists them folded, empty.
 */
function allocatorSection(data: ReportData, chart: Chart | undefined): SafeHtml {
  const qs = data.queries.filter((q) => isAllocatorQuery(q.name));
  const a = data.allocator;
  if (!a) {
    if (!qs.length) return chart ? html`<section id="allocator"><h2>Page lifetimes</h2>${figure(chart)}</section>` : html``;
    return html`<section id="allocator"><h2>Page allocator</h2><p class="note">No page-allocator events (mm_page_alloc / mm_page_free) in this trace.</p><details><summary>${qs.length} allocator queries, no rows</summary>${qs.map((q) => allocatorTable(`q-${q.name}`, q.title, q, data))}</details>${chart ? figure(chart) : ''}</section>`;
  }
  const get = (n: string) => qs.find((q) => q.name === n);
  const summary = get('kmem-summary');
  const kmem = get('kmem-allocs');
  const s = allocatorSentences(a.summary);
  return html`<section id="allocator"><h2>Page allocator</h2>${
    a.pageRefs ? '' : html`<p class="sub">No page_ref events in this trace: the page allocator's events are what it can tell.</p>`
  }<ul style="padding:0">${s.map((x) => html`<li class="story ${x.severity}">${segmentsHtml(x.segments)}</li>`)}</ul>${
    summary ? allocatorTable('q-kmem-summary', summary.title, summary, data) : ''
  }${chart ? figure(chart) : ''}${KMEM_GROUPINGS.map((g) => {
    const q = a.by.get(g);
    if (!q) return '';
    // The `kmem-allocs` query as the library runs it (default: by call site) keeps its q-kmem-allocs anchor.
    const id = g === 'callsite' && kmem ? 'q-kmem-allocs' : `kmem-by-${g}`;
    return allocatorTable(id, `Allocations ${KMEM_TITLES[g]}`, q, data);
  })}${allocatorTable('q-kmem-orders', a.orders.title, a.orders, data)}${allocatorTable('q-kmem-alive', a.alive.title, a.alive, data)}${allocatorTable(
    'q-kmem-live-pfn',
    a.livePfn.title,
    a.livePfn,
    data,
  )}${qs.filter((q) => !['kmem-allocs', 'kmem-summary', 'kmem-orders', 'kmem-alive', 'kmem-live-pfn'].includes(q.name)).map((q) => allocatorTable(`q-${q.name}`, q.title, q, data))}</section>`;
}

function pgmapSection(rows: Row[]): SafeHtml {
  if (!rows.length) return html`<section id="pgmaps"><h2>dev_pagemap balance</h2><p class="note">No dev_pagemap in this trace.</p></section>`;
  const cols = ['name', 'pgmap', 'pfn_start', 'pfn_end', 'source', 'gets', 'puts', 'outstanding_end', 'outstanding_at_unmap', 'max_outstanding', 'unmap_ts_ns', 'released_ts_ns', 'problems'].filter((c) =>
    rows.some((r) => c in r),
  );
  const ks = kinds(rows, cols);
  return html`<section id="pgmaps"><h2>dev_pagemap balance</h2><div class="scroll"><table class="t"><thead><tr>${cols.map((c) => html`<th>${columnTitle(c, ks.get(c)!)}</th>`)}</tr></thead><tbody>${rows.map(
    (r) =>
      html`<tr class="${r.problems ? 'sev-error' : ''}">${cols.map((c) => {
        const v = cellValue(ks.get(c)!, c, r[c]);
        return html`<td class="${ks.get(c) === 'text' ? '' : 'num'}" data-v="${v.sort}">${c === 'problems' && !r[c] ? 'balanced' : v.text}</td>`;
      })}</tr>`,
  )}</tbody></table></div></section>`;
}

function markersSection(data: ReportData): SafeHtml {
  if (!data.markers.length) return html``;
  return html`<section id="markers"><h2>Trace markers</h2><details><summary>${data.markers.length} tracing_mark_write lines${
    data.markers.length >= MAX_MARKERS ? ' (first ones)' : ''
  } written by the traced workload</summary>${eventTable(data.markers, data)}</details></section>`;
}

export interface HtmlInput {
  data: ReportData;
  charts: Chart[];
  /** All dev_pagemaps (pgmap-imbalance with all=true). */
  pgmaps: Row[];
}

export function renderHtml({ data, charts, pgmaps }: HtmlInput): string {
  const nonce = randomBytes(16).toString('base64');
  const lines = verdictLines(data);
  const findings = data.queries.filter((q) => q.finding);
  const info = data.queries.filter((q) => !q.finding && q.name !== 'summary' && !isAllocatorQuery(q.name));
  // The page-allocator lifetime chart is drawn in the Allocator section (which precedes the Charts section).
  const kmemChart = charts.find((c) => c.id === 'kmem-lifetimes');
  const otherCharts = charts.filter((c) => c !== kmemChart);
  const allocator = allocatorSection(data, kmemChart);
  const lead = kmemOnly(data);
  const csp =
    `default-src 'none'; script-src 'nonce-${nonce}' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; ` +
    `font-src 'none'; connect-src 'none'; media-src 'none'; object-src 'none'; frame-src 'none'; base-uri 'none'; form-action 'none'`;
  const body = html`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>refscope report: ${String(data.trace.source)}</title>
<style>${new SafeHtml(CSS)}</style>
</head><body><main>
<h1>refscope report</h1>
<div class="sub">trace ${data.traceId}: <span class="mono">${String(data.trace.source)}</span> · generated ${data.generatedAt}</div>
<nav class="toc">${lead ? html`<a href="#allocator">page allocator</a>` : ''}<a href="#summary">trace</a><a href="#cma">CMA blockers</a>${findings.map((q) => html`<a href="#q-${q.name}">${q.name}</a>`)}<a href="#q-anomalies">anomalies</a><a href="#pgmaps">pgmaps</a>${lead ? '' : html`<a href="#allocator">page allocator</a>`}<a href="#charts">charts</a></nav>
${verdictBox(lines, data)}
${lead ? allocator : ''}
${!data.replay ? html`<p class="err">This trace has not been replayed: run <code>refscope replay</code> first; only trace facts are shown.</p>` : ''}
${cmaSection(data)}
${storySection(data)}
${summarySection(data)}
<h2>Findings</h2>
${findings.map(
  (q) => html`<section id="q-${q.name}"><h3>${q.title} <span class="sub">(${q.name}: ${q.rows.length} row${q.rows.length === 1 ? '' : 's'})</span></h3><p class="sub">${q.summary || q.description}</p>${queryTable(q, data)}</section>`,
)}
<section id="q-anomalies"><h3>${data.anomalies.title} <span class="sub">(${data.anomalies.rows.length} row${data.anomalies.rows.length === 1 ? '' : 's'})</span></h3><p class="sub">${data.anomalies.summary}</p>${queryTable(data.anomalies, data)}</section>
${pgmapSection(pgmaps)}
${markersSection(data)}
${lead ? '' : allocator}
${info.map((q) => html`<section id="q-${q.name}"><h2>${q.title}</h2><p class="sub">${q.summary || q.description}</p>${queryTable(q, data, false)}</section>`)}
${chartSection(otherCharts)}
<p class="sub">Generated by refscope from ${String(data.trace.source)}. Machine-readable findings: findings.json. Text: report.md.</p>
</main>
${vendorScripts().map((v) => html`<script nonce="${nonce}" data-lib="${v.name}">${new SafeHtml(v.code)}</script>\n`)}
<script nonce="${nonce}">${new SafeHtml(BOOT)}</script>
</body></html>
`;
  return body.value;
}
