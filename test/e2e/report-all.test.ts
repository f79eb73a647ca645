/**
 * `refscope report` and `refscope export --perfetto` on EVERY input we have: each real capture in samples/real/*.gz
 * and each generator scenario (samples/generate). Each input's database comes from the fixture cache (test/lib/
 * fixtures.ts: the real captures of CAPTURES in replay.test's ALL_REAL database, perf-kmem-a in kmem.test's, each
 * scenario in the one queries-scenarios.test builds, test/lib/scenario-cases.ts); each is reported and checked:
 *  - findings.json carries exactly the rows the query library returns for that trace (re-run here on every real
 *    capture; on a scenario, queries-scenarios.test checks the library's rows against the scenario's truth, and
 *    findings.json is the same rows: its report.md and index.html are checked against findings.json), and the
 *    anomalies table;
 *  - report.md states the same counts (verdict lines, section headers) and links the charts it drew;
 *  - the chart files (SVG, PNG: rendered by resvg, ~1 s a capture) are written and linked for CHART_FILES, one real
 *    capture of each text layout that together draw every chart any real capture draws (checked at the end);
 *    every case's chart specs (.vl.json) are checked for their colours, and drawn where index.html is opened;
 *  - index.html, in one headless Chromium (a new page per report), loads from file:// with no console error and no
 *    request, has every section, renders every drawn chart as an SVG with data marks, and shows as many table rows
 *    as findings.json has (up to the HTML cap): opened for a set of reports that together show everything any of
 *    the 27 shows (htmlFeatures: each chart drawn and omitted, each table empty, with rows and capped, each verdict
 *    box's level, a failed CMA call), real captures chosen first;
 *  - the perfetto export of each real capture is valid Chrome trace-event JSON whose slices are exactly the rows of
 *    pins, holds and cma_attempts, on named tracks (one thread per pfn inside one process per holder).
 * Full-page screenshots of the reports opened in Chromium go to $REFSCOPE_SCREENSHOTS (a directory) when set.
 * Cases run two at a time: each has its own (read-only) connection, directory and browser page, and while one waits
 * on DuckDB or Chromium the other gets the JS thread.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { Db, type Row } from '../../db/duckdb.js';
import { jsonValue } from '../../queries/format.js';
import { listQueries, type Value } from '../../queries/runner.js';
import { libraryRunner } from '../../reports/data.js';
import { buildPerfetto, type TraceEvent } from '../../export/perfetto.js';
import { writeReport } from '../../reports/report.js';
import { SCENARIOS, type Format, type Truth } from '../../samples/generate/index.js';
import { CAPTURES } from '../lib/captures.js';
import { ALL_REAL, openFixture, realIds, replayedDb, type Fixture } from '../lib/fixtures.js';
import { launch, open } from '../lib/report-fixtures.js';
import { SCENARIO_CASES, scenarioInput, type ScenarioCase } from '../lib/scenario-cases.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const REAL_DIR = join(ROOT, 'samples', 'real');
const FORMATS: Format[] = ['ftrace', 'trace-cmd', 'perf'];
/** Rows per query table in index.html (reports/html.ts MAX_HTML_ROWS). */
const HTML_ROWS = 200;
/**
 * The real captures whose chart files are rendered: c and d draw every chart (cma-attempts, pgmap-refs and the five
 * the others draw), perf-task and trace-cmd-extract are the perf and trace-cmd layouts. The last test checks that
 * these still draw every chart some real capture draws, in every layout the real captures have.
 */
const CHART_FILES = ['c-cma-blocked.trace', 'd-pgmap-hmm.trace', 'perf-task.script', 'trace-cmd-extract.report'];

interface Case {
  name: string;
  real?: string;
  scenario?: ScenarioCase;
}

/** Each scenario once, in a layout of its queries-scenarios cases (rotated over the three where it has them). */
const scenarioCase = (name: string, i: number): ScenarioCase => {
  const of = SCENARIO_CASES.filter((c) => c.name === name && !c.seed);
  return of.find((c) => c.format === FORMATS[i % FORMATS.length]) ?? of.find((c) => c.format === 'ftrace')!;
};

const CASES: Case[] = [
  ...readdirSync(REAL_DIR)
    .filter((f) => f.endsWith('.gz'))
    .sort()
    .map((f) => ({ name: f.replace(/\.txt\.gz$|\.gz$/, ''), real: join(REAL_DIR, f) })),
  ...SCENARIOS.map(({ name }, i) => scenarioCase(name, i)).map((sc) => ({ name: `${sc.name}.${sc.format}`, scenario: sc })),
];

let dir: string;
let browser: Browser;
/** Report directory (and scenario truth) of each case that got as far as writing its report. */
const reports = new Map<string, { out: string; truth?: Truth }>();
/** Each case's report directory, findings.json and report.md, for the Chromium checks. */
const pages = new Map<string, { out: string; f: Findings; md: string }>();
/** Drawn charts and layout of each real capture's report. */
const drawn = new Map<string, { format: string; charts: string[] }>();
const shots = process.env.REFSCOPE_SCREENSHOTS;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-report-all-'));
  if (shots) mkdirSync(shots, { recursive: true });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  if (dir && !process.env.REFSCOPE_KEEP_TEST_OUTPUT) rmSync(dir, { recursive: true, force: true });
});

/** The fixture holding a case's trace, and its trace id there. */
async function fixtureOf(c: Case): Promise<{ fx: Fixture; traceId: number }> {
  const cap = c.real ? (Object.keys(CAPTURES) as (keyof typeof CAPTURES)[]).find((k) => join(REAL_DIR, CAPTURES[k]) === c.real) : undefined;
  if (cap) {
    const fx = await replayedDb(ALL_REAL);
    return { fx, traceId: realIds(fx)[cap] };
  }
  const fx = await replayedDb([c.real ? { file: c.real } : scenarioInput(c.scenario!)]);
  return { fx, traceId: fx.ids[0]! };
}

/** A row as findings.json (and `refscope query --format json`) writes it. */
const asJson = (rows: Row[]) => JSON.parse(JSON.stringify(rows.map((r) => jsonValue(r as Record<string, Value>)))) as unknown[];

/** The verdict lines of report.md: summary column, label (the boxes of index.html say the same). */
const VERDICT: [string, string][] = [
  ['cma_blockers', 'CMA allocation blockers'],
  ['leaks', 'leaked pages'],
  ['pin_leaks', 'pins never released'],
  ['use_after_free', 'use-after-free / refcount errors'],
  ['pgmap_imbalance', 'dev_pagemap imbalances'],
  ['long_pins', 'pins / refs held > 1 s'],
  ['divergences', 'model divergences'],
  ['lost_events', 'events lost by the tracer'],
];
const ANOMALIES_LINE = 'replay anomalies (all kinds)';
/** The level (FAIL, warn, `ok  `) of report.md's verdict line of `label`. */
const mdLevel = (md: string, label: string) => md.split('\n').find((l) => l.includes(` ${label}: `))?.slice(2, 6);

/**
 * What index.html shows of a report, as checkHtml checks it: each chart drawn or omitted (with its note), each table
 * empty, with rows or capped at HTML_ROWS (rows: the severity stripes), each verdict box's colour, a failed CMA
 * call's row. A report whose features all show in the reports opened adds no check kind: it is not opened.
 */
function htmlFeatures(f: Findings, md: string): string[] {
  const size = (n: number) => (n === 0 ? 'empty' : n > HTML_ROWS ? 'capped' : 'rows');
  return [
    ...f.charts.map((ch) => `chart ${ch.id} ${ch.drawn ? 'drawn' : 'omitted'}`),
    ...Object.entries(f.queries).map(([q, rows]) => `table ${q} ${Array.isArray(rows) ? size(rows.length) : 'error'}`),
    `table anomalies ${size(f.anomalies.length)}`,
    ...[...VERDICT.map(([, label]) => label), ANOMALIES_LINE].map((label) => `verdict ${label} ${mdLevel(md, label)}`),
    ...(Array.isArray(f.queries['cma-blockers']) && f.queries['cma-blockers'].some((r) => r.succeeded === false) ? ['failed cma call row'] : []),
  ];
}

interface Findings {
  queries: Record<string, Record<string, unknown>[] | { error: string }>;
  anomalies: Record<string, unknown>[];
  charts: { id: string; drawn: boolean; points: number; spec: string | null }[];
}

describe('report of every real capture and every scenario', { concurrency: 2 }, () => {
  for (const c of CASES) {
    it(c.name, async () => {
      // Databases ingested and replayed once for the suite (test/lib/fixtures.ts), opened read-only: a real capture
      // in the database of every capture of CAPTURES (replay.test builds it; ingest, queries, story, charts and
      // report.test read it), one that is not (perf-kmem-a) alone (kmem.test builds it), a scenario alone
      // (queries-scenarios.test builds it). Ingest and replay of the real captures are tested in ingest.test,
      // replay.test and kmem.test, of the scenarios in queries-scenarios.test.
      const { fx, traceId } = await fixtureOf(c);
      const truth = c.real ? undefined : fx.truths[0];
      const s = { trace_id: traceId };
      const out = join(dir, c.name);
      const chartFiles = CHART_FILES.includes(c.name);
      const db = await openFixture(fx);
      let library: Map<string, Row[]> | undefined;
      let anomalies: number;
      try {
        await writeReport(db, { traceId: s.trace_id, outDir: out, chartFiles });
        reports.set(c.name, { out, truth });
        if (c.real) {
          const run = libraryRunner(db);
          library = new Map();
          for (const q of listQueries()) library.set(q.name, await run(q.name, s.trace_id));
          await checkPerfetto(db, s.trace_id);
        }
        anomalies = Number((await db.one('SELECT count(*) AS n FROM anomalies WHERE trace_id = $1', [s.trace_id]))!.n);
      } finally {
        db.close();
      }

      // findings.json: the library's rows, query by query, in its order.
      const f = JSON.parse(readFileSync(join(out, 'findings.json'), 'utf8')) as Findings;
      assert.deepEqual(Object.keys(f.queries).sort(), listQueries().map((q) => q.name).sort());
      if (library) for (const [name, rows] of library) assert.deepEqual(f.queries[name], asJson(rows), `findings.json ${name}`);
      assert.equal(f.anomalies.length, Math.min(anomalies, 1000), 'findings.json anomalies');
      // report.md and index.html are checked against findings.json's rows (the library's, above; every query ran).
      const rowsOf = (name: string): Record<string, unknown>[] => {
        const rows = f.queries[name];
        if (!Array.isArray(rows)) assert.fail(`findings.json ${name}: ${JSON.stringify(rows)}`);
        return rows;
      };
      if (c.real) drawn.set(c.name, { format: String((f as unknown as { trace: { format: string } }).trace.format), charts: f.charts.filter((x) => x.drawn).map((x) => x.id) });

      // report.md: the verdict counts are the summary query's; red (FAIL) exactly for certain errors, amber (warn)
      // for what may be legitimate or is only uncertain; every finding section has its row count.
      const md = readFileSync(join(out, 'report.md'), 'utf8');
      const summary = rowsOf('summary')[0]!;
      // Pins still held at the end are an error when their holder exited; CMA blockers when the call failed.
      const exitedPins = rowsOf('pin-leaks').some((r) => r.holder_exited === true && r.certain === true);
      const failedCma = rowsOf('cma-blockers').some((r) => r.succeeded === false || r.what === 'longterm_migrate_failed');
      const error: Record<string, boolean> = { cma_blockers: failedCma, pin_leaks: exitedPins, use_after_free: true, leaks: true, pgmap_imbalance: true };
      const verdict = VERDICT.map(([col, label]) => [col, label, error[col] ?? false] as const);
      const level = (label: string) => mdLevel(md, label);
      for (const [col, label, error] of verdict) {
        const n = Number(summary[col]);
        const unc = Number(summary[col === 'lost_events' ? 'lost_markers' : `${col}_uncertain`] ?? 0);
        assert.ok(md.includes(` ${label}: ${n}`), `report.md: ${label} ${n}`);
        assert.equal(level(label), n > 0 ? (error ? 'FAIL' : 'warn') : unc > 0 ? 'warn' : 'ok  ', `report.md level of ${label}`);
      }
      const certainErrors = f.anomalies.some((a) => a.certain === true && a.severity === 'error');
      assert.equal(level(ANOMALIES_LINE), certainErrors ? 'FAIL' : f.anomalies.length ? 'warn' : 'ok  ', 'anomalies level');
      for (const name of Object.keys(f.queries)) {
        const rows = rowsOf(name);
        if (rows.length && !['summary', 'top-callers', 'divergence', 'outstanding'].includes(name))
          assert.ok(md.includes(`(${name}, ${rows.length} row${rows.length === 1 ? '' : 's'})`), `report.md section ${name}`);
      }
      // References outstanding at the end: one sentence of information under the verdict (docs/model.md §15).
      const outstanding = ['outstanding_pins', 'outstanding_holds', 'outstanding_pgmap_refs'].reduce((a, c) => a + Number(summary[c]), 0);
      assert.equal(md.includes(`- info ${outstanding} reference${outstanding === 1 ? '' : 's'} outstanding at the end of the capture`), outstanding > 0, 'report.md outstanding sentence');
      for (const ch of f.charts) assert.equal(md.includes(`](charts/${ch.id}.png)`), ch.drawn, `report.md chart ${ch.id}`);
      for (const ch of f.charts.filter((x) => x.drawn))
        for (const ext of ['svg', 'png']) assert.equal(existsSync(join(out, 'charts', `${ch.id}.${ext}`)), chartFiles, `${ch.id}.${ext}`);

      checkChartColours(out, f);
      pages.set(c.name, { out, f, md });
    });
  }
});

// After the reports above (top-level suites run one after the other), whatever order they finished in.
describe('index.html in Chromium', () => {
  it('of reports that together show everything any report shows (real captures first)', async (t) => {
    assert.deepEqual([...pages.keys()].sort(), CASES.map((c) => c.name).sort(), 'every case reported');
    // Greedy cover of htmlFeatures: among the real captures, then among the scenarios, the report showing most
    // that no report chosen yet shows (the first in CASES on a tie), until none shows anything new.
    const covered = new Set<string>();
    const chosen: string[] = [];
    const features = new Map(CASES.map((c) => [c.name, htmlFeatures(pages.get(c.name)!.f, pages.get(c.name)!.md)]));
    for (const group of [CASES.filter((c) => c.real), CASES.filter((c) => !c.real)])
      for (;;) {
        const gain = (c: Case) => new Set(features.get(c.name)!.filter((x) => !covered.has(x))).size;
        const best = group.reduce<Case | undefined>((b, c) => (gain(c) > (b ? gain(b) : 0) ? c : b), undefined);
        if (!best) break;
        for (const x of features.get(best.name)!) covered.add(x);
        chosen.push(best.name);
      }
    assert.deepEqual(CASES.flatMap((c) => features.get(c.name)!.filter((x) => !covered.has(x))), [], 'shown by no report opened');
    // Every chart is drawn in one of the reports opened (the real captures draw them all).
    const charts = pages.get(CASES[0]!.name)!.f.charts.map((ch) => ch.id);
    assert.deepEqual(charts.filter((id) => !covered.has(`chart ${id} drawn`)), [], 'charts drawn in no report opened');
    t.diagnostic(`${chosen.length} of ${CASES.length} reports opened: ${chosen.join(', ')}`);
    const queue = [...chosen];
    await Promise.all(
      [0, 1].map(async () => {
        for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
          const { out, f, md } = pages.get(name)!;
          await t.test(name, () => checkHtml(out, name, f, md));
        }
      }),
    );
  });
});

describe('report of the vmsplice-cma scenario', () => {
  it('report.md of the vmsplice-cma scenario names the blocking pid and its stack in its first 40 lines', () => {
    const name = CASES.find((c) => c.scenario?.name === 'vmsplice-cma')!.name;
    const r = reports.get(name);
    assert.ok(r?.truth, `no report of ${name}`);
    checkCmaFirstScreen(readFileSync(join(r.out, 'report.md'), 'utf8'), r.truth);
  });
});

describe('chart files', () => {
  it('CHART_FILES draw every chart some real capture draws, in every layout of the real captures', () => {
    assert.deepEqual([...drawn.keys()].sort(), CASES.filter((c) => c.real).map((c) => c.name).sort(), 'every real capture reported');
    const chosen = CHART_FILES.map((n) => drawn.get(n)!);
    const all = [...drawn.values()];
    assert.deepEqual([...new Set(chosen.flatMap((d) => d.charts))].sort(), [...new Set(all.flatMap((d) => d.charts))].sort(), 'charts');
    assert.deepEqual([...new Set(chosen.map((d) => d.format))].sort(), [...new Set(all.map((d) => d.format))].sort(), 'layouts');
  });
});

/** report.md names each blocking holder of the truth (pid, comm) with its vmsplice stack on the first screen. */
function checkCmaFirstScreen(md: string, truth: Truth): void {
  const first = md.split('\n').slice(0, 40).join('\n');
  const holders = new Map(truth.expect.cma_blockers!.map((b) => [b.holder_pid, b.holder_comm]));
  assert.ok(holders.size > 0);
  for (const [pid, comm] of holders) {
    const line = first.split('\n').find((l) => l.includes(`held by pid ${pid} (\`${comm}\`)`));
    assert.ok(line, `pid ${pid} (${comm}) not on the first screen:\n${first}`);
    assert.match(line, /via vmsplice \(FOLL_GET\).*stack: `try_grab_folio <- internal_get_user_pages_fast <- .*__do_sys_vmsplice`/, line);
  }
}

/**
 * Colours mean severity only: a failed cma_alloc and pgmap imbalances are red, long holds amber, pins (normal,
 * FOLL_LONGTERM or not) neither red nor amber; categorical series (call sites, pgmaps) use neither.
 */
function checkChartColours(out: string, f: Findings): void {
  const RED = /^#(d62728|c62828|ff0000|e41a1c)$/i;
  const AMBER = /^#(e69f00|ff7f0e|ffa500|f0a30a)$/i;
  for (const ch of f.charts.filter((c) => c.drawn)) {
    const spec = readFileSync(join(out, 'charts', `${ch.id}.vl.json`), 'utf8');
    const scales: { domain: unknown[]; range: unknown[] }[] = [];
    JSON.parse(spec, (_k, v) => {
      if (v && typeof v === 'object' && Array.isArray(v.domain) && Array.isArray(v.range)) scales.push(v);
      return v;
    });
    for (const sc of scales)
      sc.domain.forEach((d, i) => {
        const col = String(sc.range[i % sc.range.length]);
        if (!/^#/.test(col)) return;
        const what = `${ch.id}: ${String(d)} is ${col}`;
        if (d === 'cma_alloc failed') assert.match(col, RED, what);
        else if (d === 'long hold') assert.match(col, AMBER, what);
        else assert.ok(!RED.test(col) && !AMBER.test(col), what);
      });
  }
}

async function checkHtml(out: string, name: string, f: Findings, md: string): Promise<void> {
  const { page, watch } = await open(browser, join(out, 'index.html'));
  try {
    for (const id of ['verdict', 'summary', 'cma', 'q-anomalies', 'pgmaps', 'charts', ...Object.keys(f.queries).filter((q) => q !== 'summary').map((q) => `q-${q}`)])
      assert.equal(await page.locator(`#${id}`).count(), 1, `section #${id}`);
    // Every drawn chart: an SVG of some size with data marks (not only axes); every other one says why it is not drawn.
    const charts = await page.$$eval('figure.chart', (figs) =>
      figs.map((fig) => {
        const svg = fig.querySelector('svg');
        const box = svg?.getBoundingClientRect();
        return {
          id: fig.id.replace(/^fig-/, ''),
          rendered: fig.querySelector('[data-chart]')?.getAttribute('data-rendered') ?? null,
          width: box?.width ?? 0,
          height: box?.height ?? 0,
          marks: fig.querySelectorAll('svg g.role-mark > path, svg g.role-mark > line, svg g.role-mark > rect').length,
          note: fig.querySelector('.note')?.textContent ?? null,
        };
      }),
    );
    assert.deepEqual(charts.map((c) => c.id), f.charts.map((c) => c.id));
    for (const ch of f.charts) {
      const got = charts.find((x) => x.id === ch.id)!;
      if (ch.drawn) assert.ok(got.rendered === 'ok' && got.marks > 0 && got.width > 200 && got.height > 50, `${name}: chart ${JSON.stringify(got)}`);
      else assert.ok(got.rendered === null && got.note && /^Not drawn: ./.test(got.note), `${name}: omitted chart ${JSON.stringify(got)}`);
    }
    // Tables show the rows of findings.json (up to the cap), the anomalies table those of the anomalies table.
    for (const [q, rows] of Object.entries(f.queries)) {
      if (q === 'summary' || !Array.isArray(rows)) continue;
      const shown = await page.locator(`#q-${q} > .scroll > table.t > tbody > tr`).count();
      assert.equal(shown, Math.min(rows.length, HTML_ROWS), `${name}: rows of #q-${q}`);
    }
    assert.equal(await page.locator('#q-anomalies > .scroll > table.t > tbody > tr').count(), Math.min(f.anomalies.length, HTML_ROWS), `${name}: anomalies rows`);
    // The verdict boxes say what report.md says (FAIL = red box, warn = amber).
    const boxes = await page.$$eval('#verdict li a', (as) => as.map((a) => ({ cls: a.className, text: a.textContent ?? '' })));
    assert.ok(boxes.length >= 9);
    for (const b of boxes) {
      // The label without its count and its parenthesised notes ((+N uncertain), loss markers without a count).
      const label = b.text.replace(/^\d+/, '').replace(/\(\+\d+ uncertain\)/, '').replace(/\(and \d+ loss markers? without a count\)/, '').trim();
      const line = md.split('\n').find((l) => l.includes(` ${label}: `));
      assert.ok(line, `report.md has no verdict line for ${label}`);
      assert.equal(b.cls, { FAIL: 'k-bad', warn: 'k-warn', 'ok  ': 'k-ok' }[line.slice(2, 6)], `${name}: verdict box ${label}`);
    }
    // Finding rows: certain errors have the red stripe, long pins the amber one, never the other way round.
    for (const [q, sev] of [['use-after-free', 'error'], ['leaks', 'error'], ['pgmap-imbalance', 'error'], ['long-pins', 'warning'], ['divergence', 'warning']]) {
      const rows = f.queries[q!];
      if (!Array.isArray(rows) || !rows.length) continue;
      const wrong = await page.locator(`#q-${q} > .scroll > table.t > tbody > tr:not(.sev-${sev})`).count();
      assert.equal(wrong, 0, `${name}: rows of #q-${q} not sev-${sev}`);
    }
    const cma = f.queries['cma-blockers'];
    if (Array.isArray(cma))
      for (const [i, r] of cma.slice(0, HTML_ROWS).entries())
        if (r.succeeded === false) assert.match((await page.locator(`#q-cma-blockers > .scroll > table.t > tbody > tr`).nth(i).getAttribute('class')) ?? '', /sev-error/);
    if (shots) await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
    assert.deepEqual(watch.errors, [], `${name}: console errors`);
    assert.deepEqual(watch.warnings, [], `${name}: console warnings (vega warns about broken data)`);
    assert.deepEqual(watch.requests, [], `${name}: requests`);
  } finally {
    await page.close();
  }
}

// ---------------------------------------------------------------- perfetto

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-3; // 1 ns in µs
const us = (ns: unknown) => Number(ns) / 1000;

/** The export of one trace against the replay tables it comes from. */
async function checkPerfetto(db: Db, traceId: number): Promise<void> {
  const trace = JSON.parse(JSON.stringify(await buildPerfetto(db, traceId))) as { traceEvents: TraceEvent[]; displayTimeUnit?: string };
  assert.ok(Array.isArray(trace.traceEvents));
  const ev = trace.traceEvents;
  const t = (await db.one('SELECT first_ts_ns, last_ts_ns FROM traces WHERE trace_id = $1', [traceId]))!;
  const t0 = us(t.first_ts_ns);
  const t1 = us(t.last_ts_ns);

  // Shape: known phases only; numeric µs times inside the trace window; integer pid/tid.
  const phases = new Set(ev.map((e) => e.ph as string));
  for (const p of phases) assert.ok(['X', 'i', 'M', 'B', 'E'].includes(p), `phase ${p}`);
  for (const e of ev) {
    assert.ok(Number.isInteger(e.pid) && Number.isInteger(e.tid), JSON.stringify(e));
    assert.equal(typeof e.name, 'string');
    if (e.ph === 'M') continue;
    assert.ok(typeof e.ts === 'number' && Number.isFinite(e.ts), JSON.stringify(e));
    assert.ok(e.ts >= t0 - 1e-3 && e.ts <= t1 + 1e-3, `ts ${e.ts} outside ${t0}..${t1}: ${JSON.stringify(e)}`);
    if (e.ph === 'X') {
      assert.ok(typeof e.dur === 'number' && e.dur >= 0, JSON.stringify(e));
      assert.ok(e.ts + e.dur <= t1 + 1e-3, `slice ends after the trace: ${JSON.stringify(e)}`);
    }
    if (e.ph === 'i') assert.ok(e.s === 't' || e.s === 'p' || e.s === 'g');
  }
  // B/E (if ever used) balance per thread.
  const depth = new Map<string, number>();
  for (const e of ev.filter((x) => (x.ph as string) === 'B' || (x.ph as string) === 'E')) {
    const k = `${e.pid}/${e.tid}`;
    const d = (depth.get(k) ?? 0) + ((e.ph as string) === 'B' ? 1 : -1);
    assert.ok(d >= 0, `E before B on ${k}`);
    depth.set(k, d);
  }
  for (const [k, d] of depth) assert.equal(d, 0, `unbalanced B/E on ${k}`);

  // Every track is named: a process_name per pid, a thread_name per (pid, tid) that has events.
  const procName = new Map(ev.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => [e.pid, String(e.args!.name)]));
  const threadName = new Map(ev.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => [`${e.pid}/${e.tid}`, String(e.args!.name)]));
  for (const e of ev.filter((x) => x.ph !== 'M')) {
    assert.ok(procName.has(e.pid), `no process_name for pid ${e.pid}`);
    assert.ok(threadName.has(`${e.pid}/${e.tid}`), `no thread_name for ${e.pid}/${e.tid}`);
  }

  // Pins and holds: one slice per row, on the thread of its pfn, in the process of its holder.
  const slices = ev.filter((e) => e.ph === 'X');
  for (const [cat, table, idCol] of [
    ['pin', 'pins', 'pin_id'],
    ['hold', 'holds', 'hold_id'],
  ] as const) {
    const rows = await db.all(
      `SELECT ${idCol} AS id, pfn, holder_pid, holder_comm, start_ts_ns, coalesce(end_ts_ns, start_ts_ns + duration_ns) AS end_ns, end_ts_ns IS NULL AS open
       FROM ${table} WHERE trace_id = $1 ORDER BY ${idCol}`,
      [traceId],
    );
    const got = slices.filter((e) => e.cat === cat).sort((a, b) => Number(a.args!.id) - Number(b.args!.id));
    assert.equal(got.length, rows.length, `${table}: ${got.length} slices for ${rows.length} rows`);
    rows.forEach((r, i) => {
      const e = got[i]!;
      const pfn = `0x${Number(r.pfn).toString(16)}`;
      const where = `${table} ${r.id}: ${JSON.stringify(e)}`;
      assert.equal(Number(e.args!.id), Number(r.id), where);
      assert.equal(e.args!.pfn, pfn, where);
      assert.ok(close(e.ts!, us(r.start_ts_ns)) && close(e.ts! + e.dur!, us(r.end_ns)), where);
      assert.equal(e.args!.held_to_end, r.open, where);
      assert.equal(e.args!.holder, `${r.holder_comm ?? '?'} (pid ${r.holder_pid ?? '?'})`, where);
      assert.ok(procName.get(e.pid)!.startsWith(`${r.holder_comm ?? '?'} (pid ${r.holder_pid ?? '?'})`), where);
      assert.match(threadName.get(`${e.pid}/${e.tid}`)!, new RegExp(`^pfn ${pfn}( #\\d+)?$`), where);
    });
  }

  // CMA calls: one slice per cma_attempts row, on the thread of its area.
  const attempts = await db.all(
    `SELECT attempt_id, kind, cma_name, request_count, succeeded, start_ts_ns, end_ts_ns FROM cma_attempts WHERE trace_id = $1 ORDER BY attempt_id`,
    [traceId],
  );
  const cma = slices.filter((e) => e.cat === 'cma').sort((a, b) => Number(a.args!.attempt_id) - Number(b.args!.attempt_id));
  assert.equal(cma.length, attempts.length, 'cma_attempts');
  attempts.forEach((a, i) => {
    const e = cma[i]!;
    const where = `attempt ${a.attempt_id}: ${JSON.stringify(e)}`;
    assert.equal(Number(e.args!.attempt_id), Number(a.attempt_id), where);
    assert.ok(close(e.ts!, us(a.start_ts_ns)), where);
    if (a.end_ts_ns !== null) assert.ok(close(e.ts! + e.dur!, us(a.end_ts_ns)), where);
    assert.equal(threadName.get(`${e.pid}/${e.tid}`), `cma area ${a.cma_name ?? '(unknown area)'}`, where);
    if (a.kind === 'alloc') assert.ok(e.name.endsWith(a.succeeded === true ? ': ok' : a.succeeded === false ? ': FAILED' : ': unfinished'), where);
  });
}
