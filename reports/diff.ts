import { escapeControl } from '../db/escape.js';
import { CALLSITE_COUNTS, type CallsiteDiff, type DiffResult, type DiffSide, type FindingDiff } from '../queries/diff.js';
import { jsonReplacer } from './escape.js';
import { html, SafeHtml } from './html.js';

/**
 * How `refscope diff` prints (queries/diff.ts computes): text for a terminal, JSON, and one self-contained HTML
 * page. comm and call sites come from the traced machines: the page escapes them with the `html` template
 * (reports/escape.ts), the text escapes control characters (db/escape.ts) so a comm cannot drive the terminal.
 */

/** A comm can carry terminal escapes, line separators or bidi overrides: escaped (db/escape.ts). */
const safe = (s: string | null | undefined): string => escapeControl(s ?? '');

const side = (s: DiffSide): string => `trace ${s.trace_id} of ${s.db} (${s.source})`;

const identity = (f: FindingDiff): string[] => [
  f.kind + (f.sub ? ` ${f.sub}` : ''),
  f.comm ?? '-',
  f.callsite ?? '(no stack)',
  f.certain ? 'certain' : 'uncertain',
];

const signed = (n: number): string => (n > 0 ? `+${n}` : String(n));

/** Call sites whose counts changed, and how many did not. */
function changed(d: DiffResult): [CallsiteDiff[], number] {
  const moved = d.callsites.filter((c) => CALLSITE_COUNTS.some((k) => c.delta[k] !== 0));
  return [moved, d.callsites.length - moved.length];
}

/** Columns of the call-site table that are not zero on both sides somewhere. */
const usedCounts = (cs: CallsiteDiff[]) => CALLSITE_COUNTS.filter((k) => cs.some((c) => c.a[k] !== 0 || c.b[k] !== 0));

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((v, i) => v.padEnd(w[i]!)).join('  ').trimEnd();
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

export function renderDiffText(d: DiffResult): string {
  const out = [`A: ${safe(side(d.a))}`, `B: ${safe(side(d.b))}`, ''];
  const by = (s: string) => d.findings.filter((f) => f.status === s).length;
  out.push(`Findings: ${by('new')} new, ${by('fixed')} fixed, ${by('unchanged')} unchanged (${d.new_certain} new certain of a gated kind)`);
  if (d.findings.length)
    out.push(table(['status', 'finding', 'comm', 'callsite', 'certainty', 'A', 'B'], d.findings.map((f) => [f.status, ...identity(f).map(safe), String(f.count_a), String(f.count_b)])));
  const [moved, same] = changed(d);
  out.push('', `Call sites: ${moved.length} changed, ${same} unchanged`);
  if (moved.length) {
    const cols = usedCounts(moved);
    out.push(table(['callsite', ...cols], moved.map((c) => [safe(c.callsite), ...cols.map((k) => (c.delta[k] ? `${c.a[k]}->${c.b[k]} (${signed(c.delta[k])})` : String(c.a[k])))])));
  }
  return out.join('\n') + '\n';
}

export function renderDiffJson(d: DiffResult): string {
  return JSON.stringify(d, jsonReplacer, 2) + '\n';
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#111;margin:0;background:#fafafa}
main{max-width:1240px;margin:0 auto;padding:16px 20px 40px}h1{font-size:20px}h2{font-size:17px;border-bottom:1px solid #ddd}
.sub{color:#666;font-size:12.5px}.mono{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12px}
table{border-collapse:collapse;width:100%;font-size:12.5px;background:#fff}
th{background:#f3f3f3;text-align:left;padding:4px 7px;border-bottom:1px solid #ccc}td{padding:3px 7px;border-bottom:1px solid #eee}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.new td:first-child{box-shadow:inset 3px 0 #c62828}tr.fixed td:first-child{box-shadow:inset 3px 0 #2e7d32}
tr.uncertain td{color:#777;font-style:italic}.up{color:#c62828}.down{color:#2e7d32}
`;

function findingRow(f: FindingDiff): SafeHtml {
  const [what, comm, callsite, cert] = identity(f);
  return html`<tr class="${f.status}${f.certain ? '' : ' uncertain'}"><td>${f.status}</td><td>${what}</td><td class="mono">${comm}</td><td class="mono">${callsite}</td><td>${cert}</td><td class="num">${f.count_a}</td><td class="num">${f.count_b}</td></tr>`;
}

function callsiteCell(c: CallsiteDiff, k: (typeof CALLSITE_COUNTS)[number]): SafeHtml {
  if (!c.delta[k]) return html`<td class="num">${c.a[k]}</td>`;
  return html`<td class="num">${c.a[k]} → ${c.b[k]} <span class="${c.delta[k] > 0 ? 'up' : 'down'}">(${signed(c.delta[k])})</span></td>`;
}

/** One self-contained page: no script, no request (the CSP forbids both). */
export function renderDiffHtml(d: DiffResult): string {
  const [moved, same] = changed(d);
  const cols = usedCounts(moved);
  const by = (s: string) => d.findings.filter((f) => f.status === s).length;
  const csp = `default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'`;
  return html`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<title>refscope diff: ${d.a.source} → ${d.b.source}</title>
<style>${new SafeHtml(CSS)}</style>
</head><body><main>
<h1>refscope diff</h1>
<div class="sub">A: <span class="mono">${side(d.a)}</span><br>B: <span class="mono">${side(d.b)}</span></div>
<h2>Findings</h2>
<p>${by('new')} new, ${by('fixed')} fixed, ${by('unchanged')} unchanged; ${d.new_certain} new certain finding${d.new_certain === 1 ? '' : 's'} of a kind <code>refscope check</code> gates. A finding is the same in both traces when its kind, holder comm, call site and certainty match; counts are rows of its query.</p>
<table><thead><tr><th>status</th><th>finding</th><th>comm</th><th>call site</th><th>certainty</th><th>A</th><th>B</th></tr></thead>
<tbody>${d.findings.map(findingRow)}</tbody></table>
<h2>Call sites</h2>
<p>${moved.length} changed, ${same} unchanged (A → B, change in brackets).</p>
${moved.length ? html`<table><thead><tr><th>call site</th>${cols.map((k) => html`<th>${k}</th>`)}</tr></thead>
<tbody>${moved.map((c) => html`<tr><td class="mono">${c.callsite}</td>${cols.map((k) => callsiteCell(c, k))}</tr>`)}</tbody></table>` : ''}
</main></body></html>
`.value;
}
