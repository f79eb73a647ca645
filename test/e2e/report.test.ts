/**
 * `refscope report` and `refscope export --perfetto`:
 *  (a) units: escaping, chart aggregation limits on a large synthetic database, Markdown tables, perfetto JSON shape;
 *  (b) end to end on the REAL capture samples/real/c-cma-blocked.trace.txt.gz: ingest, replay, report; report.md
 *      must name pid 352 and the vmsplice stack on its first screen, findings.json must carry the cma-blockers rows;
 *  (c) in a REAL browser (Debian's /usr/bin/chromium through playwright-core): index.html from file:// renders every
 *      chart with no console error and no request other than file://; and a hostile trace (task named
 *      `<img src=x onerror=alert(1)>`, a `<script>` trace marker, a `<b>` file name, a markup stack frame) shows
 *      all of it as text without running anything.
 */
import { strict as assert } from 'node:assert';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { replay } from '../../replay/replay.js';
import { buildCharts, dataPoints, MAX_POINTS, renderSvg, svgToPng } from '../../reports/charts.js';
import { escapeHtml, escapeMdCell, jsonForScript, mdCode } from '../../reports/escape.js';
import { html } from '../../reports/html.js';
import { mdTable, segmentsMd } from '../../reports/markdown.js';
import { buildPerfetto } from '../../export/perfetto.js';
import { writeReport } from '../../reports/report.js';
import { cmaSentences } from '../../reports/story.js';
import { HOSTILE_COMM, HOSTILE_MARKER, hostileTrace, launch, open, syntheticDb } from '../lib/report-fixtures.js';
import { runCli } from '../lib/cli.js';
import { ALL_REAL, openFixture, privateCopy, realIds, replayedDb, type Fixture } from '../lib/fixtures.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let dir: string;
/** One Chromium for the file's browser tests, started by the first that needs it. */
let browser: Promise<Browser> | undefined;
const chromium = (): Promise<Browser> => (browser ??= launch());
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-report-'));
});
after(async () => {
  await (await browser?.catch(() => undefined))?.close();
  if (dir && !process.env.REFSCOPE_KEEP_TEST_OUTPUT) rmSync(dir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- (a) units

describe('report: escaping', () => {
  it('escapes HTML special characters with one function, everywhere in templates', () => {
    assert.equal(escapeHtml(`<img src=x onerror="alert(1)">&'\``), '&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;&#39;&#96;');
    assert.equal(escapeHtml(null), '');
    assert.equal(escapeHtml(12n), '12');
    const out = html`<td title="${'" onmouseover="x'}">${HOSTILE_COMM}</td>${[HOSTILE_MARKER, html`<b>ok</b>`]}`.value;
    assert.equal(out, '<td title="&quot; onmouseover=&quot;x">&lt;img src=x onerror=alert(1)&gt;</td>&lt;script&gt;alert(2)&lt;/script&gt;<b>ok</b>');
  });

  it('JSON for a script block cannot close the block and parses back to the same data', () => {
    const data = { comm: '</script><script>alert(1)</script>', c: '<!-- -->', amp: 'a&b', ls: '\u2028', big: 2n ** 60n, n: 5n };
    const s = jsonForScript(data);
    assert.ok(!/[<>&\u2028]/.test(s), s);
    assert.deepEqual(JSON.parse(s), { ...data, big: (2n ** 60n).toString(), n: 5 });
  });

  it('Markdown cells and code spans neutralize |, `, <, > and newlines', () => {
    assert.equal(escapeMdCell('a|b`c<d>e\nf*g_h'), 'a\\|b&#96;c&lt;d&gt;e f\\*g\\_h');
    const code = mdCode('x` | <img src=x>\ny');
    assert.ok(code.startsWith('`') && code.endsWith('`'));
    assert.ok(!/[|<>\n]/.test(code.slice(1, -1)) && !code.slice(1, -1).includes('`'), code);
    const t = mdTable(['comm', 'n'], [[HOSTILE_COMM + ' | x', 1], ['a`b', 2]]);
    const lines = t.split('\n');
    assert.equal(lines.length, 4);
    for (const l of lines) assert.equal(l.split(/(?<!\\)\|/).length, 4, `cell count of: ${l}`); // 2 cells -> 3 bars + ends
    assert.ok(!t.includes('<img') && !t.includes('a`b'), t);
  });

  it('CMA sentences keep machine text in code spans', () => {
    const row = {
      trace_id: 1, what: 'cma_blocker', attempt_id: 0, cma_name: 'reserved`|', request_count: 16380, busy_retries: 5, succeeded: false,
      pfn: 0x7dc00, is_fin_pfn: true, holder_kind: 'hold', ref_type: 'plain ref (FOLL_GET)', refs: 4, holder_pid: 352,
      holder_comm: HOSTILE_COMM, since_ts_ns: 69_073_294_000n, released_ts_ns: 70_122_887_000n, stack_id: 1,
      stack: 'kprobe_trace_func\ntry_grab_folio\ninternal_get_user_pages_fast\n__do_sys_vmsplice\ndo_syscall_64',
    };
    const [s] = cmaSentences([row, { ...row, pfn: 0x7e000, is_fin_pfn: false, refs: 1 }]);
    const md = segmentsMd(s!.segments);
    assert.match(md, /^cma_alloc of 16380 pages from `reserved.*` failed after 5 busy retries: pfn 0x7dc00 \(4 refs\) held by pid 352 \(`.*`\) since 69\.073 s via vmsplice \(FOLL_GET\)/);
    assert.match(md, /stack: `try_grab_folio <- internal_get_user_pages_fast <- __do_sys_vmsplice`/);
    assert.ok(!md.includes('<img'), md);
    assert.equal(segmentsMd(s!.details[0]!), 'also pfns 0x7e000: same holder and stack');
  });

  it('CMA sentences: FOLL_LONGTERM pins kept on CMA make one sentence per holder and stack', () => {
    const pin = {
      trace_id: 1, what: 'longterm_pin_in_cma', attempt_id: null, pfn: 0x7c8b1, holder_kind: 'pin', ref_type: 'longterm pin', refs: 1,
      holder_pid: 3260, holder_comm: 'iouring_pin', since_ts_ns: 20_133_200_000n, released_ts_ns: 21_209_567_000n, stack_id: 12,
      stack: 'try_grab_page\nfollow_page_pte\n__gup_longterm_locked\nio_pin_pages',
    };
    const ss = cmaSentences([pin, { ...pin, pfn: 0x7c00b }, { ...pin, pfn: 0x7cfd0, holder_pid: 99, holder_comm: 'other' }]);
    assert.deepEqual(ss.map((s) => s.severity), ['error', 'error']);
    const md = segmentsMd(ss[0]!.segments);
    assert.match(md, /^FOLL_LONGTERM pins on CMA pfns 0x7c00b, 0x7c8b1 \(not migrated out first\) held by pid 3260 \(`iouring_pin`\) since 20\.133 s .*\(FOLL_PIN\|FOLL_LONGTERM\), released at 21\.210 s/);
    assert.match(segmentsMd(ss[1]!.segments), /^FOLL_LONGTERM pin on CMA pfn 0x7cfd0 /);
  });
});

describe('report: charts of a large trace are aggregated', () => {
  it(`no spec holds more than ${MAX_POINTS} data points (200k pins, events, pages, pgmap refs)`, async () => {
    const db = await syntheticDb(200_000);
    try {
      const charts = await buildCharts(db, 1, [500000, 500001, 500002, 500003, 500004, 500005, 500006, 500007]);
      assert.equal(charts.length, 7);
      for (const c of charts) {
        assert.ok(c.spec, `${c.id} drawn`);
        const n = dataPoints(c.spec);
        assert.ok(n > 0 && n <= MAX_POINTS && n <= 5000, `${c.id}: ${n} points`);
        assert.ok(JSON.stringify(c.spec).length < 1_000_000, `${c.id} spec size`);
      }
      // Rendering headless works and the PNG is a PNG.
      const svg = await renderSvg(charts[0]!.spec!);
      assert.match(svg, /^<svg/);
      assert.deepEqual([...svgToPng(svg).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    } finally {
      db.close();
    }
  });

  it('charts without data are omitted with a note', async () => {
    const db = await syntheticDb(0);
    try {
      const charts = await buildCharts(db, 1, []);
      // The synthetic trace always has its cma_alloc calls: the CMA chart draws them.
      for (const c of charts.filter((x) => x.id !== 'cma-attempts')) {
        assert.equal(c.spec, null, c.id);
        assert.ok(c.note && c.note.length > 5, c.id);
      }
    } finally {
      db.close();
    }
  });
});

describe('report: perfetto export shape', () => {
  it('writes complete events with µs times, lanes that never overlap, and name metadata', async () => {
    const db = await syntheticDb(3000);
    try {
      const t = await buildPerfetto(db, 1, { maxPages: 50 });
      const text = JSON.stringify(t);
      const back = JSON.parse(text) as typeof t;
      assert.ok(Array.isArray(back.traceEvents) && back.traceEvents.length > 100);
      const x = back.traceEvents.filter((e) => e.ph === 'X');
      const m = back.traceEvents.filter((e) => e.ph === 'M');
      assert.ok(x.length > 0 && m.length > 0);
      for (const e of x) {
        assert.equal(typeof e.name, 'string');
        assert.ok(Number.isFinite(e.ts) && Number.isFinite(e.dur) && e.dur! >= 0, JSON.stringify(e));
        assert.ok(Number.isInteger(e.pid) && Number.isInteger(e.tid));
      }
      for (const e of m) assert.ok(['process_name', 'thread_name', 'process_sort_index', 'thread_sort_index'].includes(e.name));
      // Named processes for CMA, pages and holders; the hostile comm is data, JSON-encoded.
      const names = m.filter((e) => e.name === 'process_name').map((e) => String(e.args!.name));
      assert.ok(names.includes('CMA allocations'));
      assert.ok(names.some((n) => n.startsWith('page lifetimes')));
      assert.ok(names.some((n) => n.includes(HOSTILE_COMM)));
      assert.ok(!text.includes('</script'));
      // Slices on one thread never overlap (required for chrome://tracing nesting).
      const byThread = new Map<string, { ts: number; end: number }[]>();
      for (const e of x.filter((e) => e.pid !== 1)) {
        const k = `${e.pid}/${e.tid}`;
        byThread.set(k, [...(byThread.get(k) ?? []), { ts: e.ts!, end: e.ts! + e.dur! }]);
      }
      for (const [k, list] of byThread) {
        list.sort((a, b) => a.ts - b.ts);
        for (let i = 1; i < list.length; i++) assert.ok(list[i]!.ts >= list[i - 1]!.end - 1e-6, `overlap on ${k}`);
      }
      const pages = new Set(x.filter((e) => e.cat === 'page').map((e) => e.tid));
      assert.ok(pages.size <= 50);
    } finally {
      db.close();
    }
  });
});

// ---------------------------------------------------------------- (b) end to end on a real capture, (c) browser

async function ingestAndReport(file: string, name: string): Promise<string> {
  const dbPath = join(dir, `${name}.duckdb`);
  const db = await Db.open(dbPath);
  const out = join(dir, name);
  try {
    const s = await ingest(db, file);
    await replay(db, s.trace_id, {});
    await writeReport(db, { traceId: s.trace_id, outDir: out });
  } finally {
    db.close();
  }
  return out;
}

describe('report: end to end on the real c-cma-blocked capture, in Chromium', () => {
  let out: string;
  let fx: Fixture;
  let traceId: number;
  before(async () => {
    // c-cma-blocked in the database of every real capture, ingested and replayed once for the suite (replay.test
    // builds it; test/lib/fixtures.ts).
    fx = await replayedDb(ALL_REAL);
    traceId = realIds(fx).c;
    out = join(dir, 'c-cma');
    const db = await openFixture(fx);
    try {
      await writeReport(db, { traceId, outDir: out });
    } finally {
      db.close();
    }
  });

  it('report.md names pid 352 and the vmsplice stack on its first screen', () => {
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    const first = md.split('\n').slice(0, 25).join('\n');
    assert.match(first, /FAIL CMA allocation blockers: [1-9]/);
    const line = first.split('\n').find((l) => l.includes('cma_alloc of 16380 pages'));
    assert.ok(line, first);
    assert.match(line, /from `reserved` failed after 5 busy retries: pfn 0x7dc00 \(4 refs\) held by pid 352 \(`cma_block`\) since 69\.073 s via vmsplice \(FOLL_GET\)/);
    assert.match(line, /stack: `try_grab_folio <- internal_get_user_pages_fast <- .*__do_sys_vmsplice`/);
    assert.match(first, /0x7e000.*0x7e800.*0x7f000.*0x7f800/);
    for (const c of ['pin-timeline', 'cma-attempts', 'refcounts', 'outstanding-pages']) {
      assert.ok(md.includes(`](charts/${c}.png)`), c);
      assert.ok(existsSync(join(out, 'charts', `${c}.png`)) && existsSync(join(out, 'charts', `${c}.vl.json`)), c);
    }
  });

  it('findings.json has the cma-blockers rows of the query library', () => {
    const f = JSON.parse(readFileSync(join(out, 'findings.json'), 'utf8')) as { queries: Record<string, Record<string, unknown>[]> };
    const rows = f.queries['cma-blockers']!;
    assert.ok(Array.isArray(rows) && rows.length >= 5, JSON.stringify(rows).slice(0, 300));
    const pfns = new Set(rows.filter((r) => r.holder_pid === 352).map((r) => r.pfn));
    for (const p of [0x7dc00, 0x7e000, 0x7e800, 0x7f000, 0x7f800]) assert.ok(pfns.has(p), `pfn 0x${p.toString(16)}`);
    assert.ok(rows.every((r) => r.cma_name === 'reserved' && r.request_count === 16380));
    for (const q of ['leaks', 'pin-leaks', 'long-pins', 'pgmap-imbalance', 'use-after-free', 'top-callers', 'divergence', 'summary'])
      assert.ok(Array.isArray(f.queries[q]), q);
  });

  it('index.html is self-contained, renders every chart offline, with no console error', async () => {
    const text = readFileSync(join(out, 'index.html'), 'utf8');
    assert.ok(!/<(script|link|img|iframe)[^>]+(src|href)=["']?(https?:)?\/\//i.test(text), 'no external resource');
    const browser = await chromium();
    const { page, watch } = await open(browser, join(out, 'index.html'));
    const charts = await page.$$eval('[data-chart]', (els) =>
      els.map((e) => ({ id: e.id, state: e.getAttribute('data-rendered'), marks: e.querySelectorAll('svg .mark-rect path, svg .mark-symbol path, svg .mark-line path, svg .mark-area path, svg .mark-rule line, svg path').length })),
    );
    assert.ok(charts.length >= 3, JSON.stringify(charts));
    for (const c of charts) assert.ok(c.state === 'ok' && c.marks > 0, JSON.stringify(c));
    assert.deepEqual(watch.errors, []);
    assert.deepEqual(watch.requests, []);
    const verdict = await page.textContent('#verdict');
    assert.match(verdict ?? '', /CMA allocation blockers/);
    const story = await page.textContent('#cma');
    assert.match(story ?? '', /pid 352 \(cma_block\) since 69\.073 s via vmsplice \(FOLL_GET\)/);
    // A click on a header sorts the table.
    const th = page.locator('#q-cma-blockers th', { hasText: 'pfn' }).first();
    await th.click();
    assert.equal(await th.getAttribute('aria-sort'), 'ascending');
    // Screenshots for the README, when asked for ($REFSCOPE_SCREENSHOT: the small one is copied there; both stay in
    // the report's folder). Nothing here reads them: without the variable they are not taken (a second page load and
    // two renderings of the whole report, ~2 s of Chromium).
    const shot = process.env.REFSCOPE_SCREENSHOT;
    if (shot) {
      await page.screenshot({ path: join(out, 'screenshot-full.png'), fullPage: true });
      const small = await browser.newPage({ viewport: { width: 1000, height: 1100 } });
      await small.goto(pathToFileURL(join(out, 'index.html')).href);
      await small.waitForSelector('body[data-charts-done]', { timeout: 30_000 });
      await small.screenshot({ path: join(out, 'screenshot.png') });
      await small.close();
      copyFileSync(join(out, 'screenshot.png'), shot);
    }
    await page.close();
  });

  it('export --perfetto writes the CMA calls and the vmsplice holds of pid 352 (CLI)', () => {
    const file = join(dir, 'c.perfetto.json');
    // The CLI gets its own copy: the cached database is shared with other test files.
    const dbCopy = privateCopy(fx, join(dir, 'c-cma-copy.duckdb'));
    const r = runCli(['export', '--db', dbCopy, '--trace', String(traceId), '--perfetto', file]);
    assert.equal(r.status, 0, r.stderr);
    const t = JSON.parse(readFileSync(file, 'utf8')) as { traceEvents: { ph: string; name: string; args?: Record<string, unknown>; cat?: string }[] };
    const x = t.traceEvents.filter((e) => e.ph === 'X');
    assert.ok(x.some((e) => e.cat === 'cma' && /^cma_alloc 16380 pages: FAILED/.test(e.name)));
    assert.ok(x.some((e) => e.cat === 'cma' && /^cma_alloc 16380 pages: ok/.test(e.name)));
    assert.ok(x.some((e) => e.cat === 'hold' && String(e.args?.holder) === 'cma_block (pid 352)' && e.args?.pfn === '0x7dc00'));
    assert.ok(t.traceEvents.some((e) => e.ph === 'M' && e.name === 'process_name' && String(e.args?.name).startsWith('cma_block (pid 352)')));
  });
});

describe('report: hostile text from the traced machine (XSS), in Chromium', () => {
  it('shows a task named <img src=x onerror=alert(1)>, a <script> marker and a <b> file name as text', async () => {
    const plain = join(dir, 'b-vmsplice.trace.txt');
    writeFileSync(plain, gunzipSync(readFileSync(join(ROOT, 'samples', 'real', 'b-vmsplice.trace.txt.gz'))));
    const text = hostileTrace(plain);
    assert.ok(text.includes(HOSTILE_COMM) && text.includes(HOSTILE_MARKER));
    const file = join(dir, 'x<b>bold.trace.txt'); // a file name cannot hold the '/' of </b>
    writeFileSync(file, text);
    const out = await ingestAndReport(file, 'hostile');
    const page1 = readFileSync(join(out, 'index.html'), 'utf8');
    assert.ok(!page1.includes(HOSTILE_COMM) && !page1.includes(HOSTILE_MARKER) && !page1.includes('<svg/onload'), 'raw markup in index.html');
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    assert.ok(!md.includes('<img') && !md.includes('<script') && !md.includes('<b>'), md.slice(0, 2000));

    const { page, watch } = await open(await chromium(), join(out, 'index.html'));
    // Expand every <details> so evidence (events, stacks, markers) is part of the visible text.
    await page.$$eval('details', (ds) => ds.forEach((d) => ((d as HTMLDetailsElement).open = true)));
    await page.waitForTimeout(300);
    assert.deepEqual(watch.dialogs, [], 'a dialog fired');
    assert.equal(await page.locator('img[src="x"]').count(), 0);
    assert.equal(await page.locator('main img, main b, main svg[onload]').count(), 0);
    // The chart tooltip of the hold shows the comm as text too (vega-tooltip sanitizes its HTML).
    const bar = page.locator('#chart-pin-timeline svg .mark-rect path').first();
    await bar.hover({ force: true });
    await page.waitForSelector('#vg-tooltip-element.visible', { timeout: 5000 });
    assert.ok(((await page.textContent('#vg-tooltip-element')) ?? '').includes(HOSTILE_COMM), 'tooltip text');
    assert.equal(await page.locator('#vg-tooltip-element img').count(), 0);
    const visible = await page.innerText('body');
    assert.ok(visible.includes(HOSTILE_COMM), 'the hostile comm is shown as text');
    assert.ok(visible.includes(HOSTILE_MARKER), 'the hostile marker is shown as text');
    assert.ok(visible.includes('x<b>bold.trace.txt'), 'the file name is shown as text');
    assert.deepEqual(watch.errors, []);
    assert.deepEqual(watch.requests, []);
  });
});
