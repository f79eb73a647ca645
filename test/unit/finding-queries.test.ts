/**
 * Which queries are findings is answered by the query files' headers alone: a finding added as one more SQL file
 * (in a copy of the library) shows up in `refscope check`'s kinds and lines and in the report's findings, verdict
 * lines and Markdown, with the title, order, severity and columns its header gives.
 */
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ensureSchema } from '../../db/setup.js';
import { INGEST_TABLES } from '../../db/tables/ingest.js';
import { REPLAY_TABLES } from '../../db/tables/replay.js';
import { check, findingKinds, formatCheck, parseFailOn } from '../../queries/check.js';
import { listQueries, matches, parseQuery, QUERIES_DIR } from '../../queries/runner.js';
import { loadReportData } from '../../reports/data.js';
import { renderMarkdown } from '../../reports/markdown.js';
import { rowSeverity, tableColumns, verdictLines } from '../../reports/model.js';
import { suspiciousPfns } from '../../reports/report.js';

const STUCK = `-- Pages alive at the end of the trace with more than one reference (a finding added for this test).
--
-- @title Stuck pages
-- @meaning A page still referenced twice at the end.
-- @finding 3
-- @verdict stuck_pages error stuck pages
-- @gate 9
-- @severity warning when refcount_end=2 else error
-- @columns md pfn,refcount_end
-- @refcounts 9
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
--
-- @column pfn The page.
-- @column refcount_end Its refcount at the end.
-- @column certain No lost-event window crossed the page's lifetime.
SELECT pfn, refcount_end, NOT uncertain AS certain FROM pages WHERE ($trace_id IS NULL OR trace_id = $trace_id) AND end_edge AND refcount_end > 1 ORDER BY pfn
`;

/** Insert a row, filling the NOT NULL columns the test does not care about. */
async function put(db: Db, table: string, row: Record<string, unknown>): Promise<void> {
  const t = [...INGEST_TABLES, ...REPLAY_TABLES].find((x) => x.name === table)!;
  const cols: string[] = [];
  const vals: (string | number | boolean | null)[] = [];
  for (const c of t.columns) {
    let v = row[c.name];
    if (v === undefined) {
      if (!c.type.includes('NOT NULL')) continue;
      v = /INT|DOUBLE/.test(c.type) ? 0 : c.type.startsWith('BOOLEAN') ? false : c.type.startsWith('TIMESTAMP') ? '2026-01-01 00:00:00' : c.type.startsWith('JSON') ? '{}' : '';
    }
    cols.push(`"${c.name}"`);
    vals.push(v as string);
  }
  await db.run(`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${vals.map((_, i) => `$${i + 1}`).join(', ')})`, vals);
}

let tmp: string;
let lib: string;
let db: Db;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'refscope-findings-'));
  lib = join(tmp, 'queries');
  mkdirSync(lib);
  for (const f of readdirSync(QUERIES_DIR)) if (f.endsWith('.sql')) copyFileSync(join(QUERIES_DIR, f), join(lib, f));
  writeFileSync(join(lib, 'stuck-pages.sql'), STUCK);
  db = await Db.open(':memory:');
  await ensureSchema(db);
  await put(db, 'traces', { trace_id: 1, source: 't1', sha256: 'h1', format: 'ftrace', mapcount_semantics: 'page_mapcount', mt_layout: 'mainline', events: 10, first_ts_ns: 0, last_ts_ns: 10_000 });
  await put(db, 'replay_runs', { trace_id: 1, checked: 10, agreed: 10 });
  const page = { trace_id: 1, order: 0, first_seq: 1, last_seq: 9, end_edge: true, start_edge: true, uncertain: false, in_cma: false, zone_device: false, ref_events: 2 };
  await put(db, 'pages', { ...page, pfn: 0x100, refcount_end: 2 });
  await put(db, 'pages', { ...page, pfn: 0x200, refcount_end: 3 });
  await put(db, 'pages', { ...page, pfn: 0x300, refcount_end: 1 });
});

after(() => {
  db.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('a finding is one SQL file', () => {
  it('check gates on it, after the kinds of lower @gate, counting its rows when summary.sql has no column for it', async () => {
    assert.deepEqual(findingKinds(lib), [...findingKinds(), 'stuck-pages']);
    assert.ok(!findingKinds().includes('stuck-pages'));
    assert.throws(() => parseFailOn('stuck-pages'), /unknown finding kind 'stuck-pages'/);
    assert.deepEqual(parseFailOn('stuck-pages', lib), ['stuck-pages']);
    const rep = await check(db, { dir: lib });
    const line = rep.lines.at(-1)!;
    assert.deepEqual({ ...line }, { kind: 'stuck-pages', count: 2, uncertain: 0, max: 0, gated: true, ok: false });
    assert.equal(rep.ok, false);
    assert.match(formatCheck(rep), /\nstuck-pages: 2 \(max 0\) FAIL\n$/);
    const limited = await check(db, { dir: lib, max: { 'stuck-pages': 2 } });
    assert.equal(limited.ok, true);
  });

  it('the report lists it among the findings, in its @finding order, with a verdict line and its columns', async () => {
    const data = await loadReportData(db, 1, { dir: lib });
    const names = data.queries.map((q) => q.name);
    assert.ok(names.indexOf('pin-leaks') < names.indexOf('stuck-pages') && names.indexOf('stuck-pages') < names.indexOf('use-after-free'), names.join());
    const q = data.queries.find((x) => x.name === 'stuck-pages')!;
    assert.equal(q.title, 'Stuck pages');
    assert.equal(q.finding, true);
    assert.equal(q.description, 'A page still referenced twice at the end.');
    assert.deepEqual(q.rows.map((r) => [Number(r.pfn), rowSeverity(q, r)]), [[0x100, 'warning'], [0x200, 'error']]);
    assert.deepEqual(tableColumns(q, q.rows, 'md'), ['pfn', 'refcount_end']);
    const v = verdictLines(data).find((l) => l.query === 'stuck-pages');
    assert.deepEqual(v, { query: 'stuck-pages', label: 'stuck pages', count: 2, uncertain: 0, level: 'bad' });
    assert.match(renderMarkdown(data, []), /## Stuck pages \(stuck-pages, 2 rows\)/);
    assert.deepEqual(suspiciousPfns(data), [0x100, 0x200]);
    // The library's own report has none of it.
    const plain = await loadReportData(db, 1);
    assert.ok(!plain.queries.some((x) => x.name === 'stuck-pages'));
    assert.ok(!verdictLines(plain).some((l) => l.query === 'stuck-pages'));
    assert.deepEqual(suspiciousPfns(plain), []);
  });
});

describe('header tags', () => {
  it('the library answers which queries are findings, gated, and in which order', () => {
    const defs = listQueries();
    const findings = defs.filter((d) => d.finding !== null).sort((a, b) => a.finding! - b.finding!).map((d) => d.name);
    assert.deepEqual(findings, ['cma-blockers', 'leaks', 'pin-leaks', 'use-after-free', 'pgmap-imbalance', 'long-pins', 'divergence']);
    assert.deepEqual(findingKinds(), ['leaks', 'pin-leaks', 'cma-blockers', 'pgmap-imbalance', 'use-after-free']);
    for (const d of defs) if (d.verdict) assert.ok(d.finding !== null, `${d.name}: a verdict but no @finding`);
  });

  it('parses conditions and rejects what it does not know', () => {
    const d = parseQuery('x', 'x.sql', '-- X.\n-- @severity error when a=1 or b else none\n-- @context what=lost\nSELECT 1');
    assert.deepEqual(d.severity, { level: 'error', when: [{ column: 'a', value: '1' }, { column: 'b' }], otherwise: null });
    assert.equal(rowSeverity(d, { a: 1 }), 'error');
    assert.equal(rowSeverity(d, { a: 2, b: '' }), null);
    assert.equal(rowSeverity(d, { b: 'x' }), 'error');
    assert.equal(rowSeverity(d, { a: 2, severity: 'warning' }), 'warning');
    assert.ok(matches(d.context!, { what: 'lost' }) && !matches(d.context!, { what: null }));
    assert.equal(parseQuery('y', 'y.sql', '-- Y.\nSELECT 1').finding, null);
    assert.throws(() => parseQuery('z', 'z.sql', '-- Z.\n-- @severity fatal\nSELECT 1'), /unknown severity fatal/);
    assert.throws(() => parseQuery('z', 'z.sql', '-- Z.\n-- @gate 1\nSELECT 1'), /@gate needs a @verdict/);
    assert.throws(() => parseQuery('z', 'z.sql', '-- Z.\n-- @verdict x fatal y\nSELECT 1'), /expected <summary_column>/);
    assert.throws(() => parseQuery('z', 'z.sql', '-- Z.\n-- @columns pdf a,b\nSELECT 1'), /html\|md/);
  });
});
