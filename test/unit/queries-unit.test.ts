/**
 * Unit tests of the query library on a small hand-made database (no replay needed): header parsing, every
 * documented column present, parameter binding and validation, the leak / pin-leak / CMA / pgmap / UAF rules,
 * summary + check, and the three output formats.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Papa from 'papaparse';
import { Db } from '../../db/duckdb.js';
import { ensureSchema } from '../../db/setup.js';
import { INGEST_TABLES } from '../../db/tables/ingest.js';
import { REPLAY_TABLES } from '../../db/tables/replay.js';
import { check, formatCheck, parseFailOn, parseMax } from '../../queries/check.js';
import { formatCsv, formatJson, formatTable, nsToSeconds } from '../../queries/format.js';
import {
  listQueries, parseQuery, QueryError, QUERIES_DIR, runQuery, runSql, type QueryResult, type ResultRow,
} from '../../queries/runner.js';

const TABLES = [...INGEST_TABLES, ...REPLAY_TABLES];

/** Insert a row, filling NOT NULL columns that the test does not care about. */
async function put(db: Db, table: string, row: Record<string, unknown>): Promise<void> {
  const t = TABLES.find((x) => x.name === table)!;
  const cols: string[] = [];
  const vals: (string | number | boolean | null | bigint)[] = [];
  for (const c of t.columns) {
    let v = row[c.name];
    if (v === undefined) {
      if (!c.type.includes('NOT NULL')) continue;
      v = /INT/.test(c.type) ? 0 : c.type.startsWith('BOOLEAN') ? false : c.type.startsWith('TIMESTAMP') ? '2026-01-01 00:00:00' : c.type.startsWith('JSON') ? '{}' : c.type.startsWith('DOUBLE') ? 0 : '';
    }
    cols.push(`"${c.name}"`);
    vals.push(v as string);
  }
  for (const k of Object.keys(row)) if (!t.columns.some((c) => c.name === k)) throw new Error(`${table}.${k}?`);
  await db.run(`INSERT INTO ${table} (${cols.join(', ')}) VALUES (${vals.map((_, i) => `$${i + 1}`).join(', ')})`, vals);
}

const page = (o: Record<string, unknown>) => ({
  trace_id: 1, order: 0, alloc_seq: 10, alloc_ts_ns: 1_000_000_000, first_seq: 10, last_seq: 90, alloc_pid: 50,
  alloc_comm: 'leaker', alloc_stack_id: 2, refcount_end: 1, mapcount_end: 0, ref_events: 4, holds_end: 1, pins_end: 0,
  start_edge: false, end_edge: true, uncertain: false, in_cma: false, zone_device: false, ...o,
});
const hold = (o: Record<string, unknown>) => ({
  trace_id: 1, refs: 1, start_seq: 20, start_ts_ns: 2_000_000_000, duration_ns: 8_000_000_000, holder_pid: 50,
  holder_tgid: 50, holder_comm: 'leaker', stack_id: 1, via: 'get', in_cma: false, uncertain: false, ...o,
});
const pin = (o: Record<string, unknown>) => ({
  trace_id: 1, folio_pfn: o.pfn, large_folio: false, refs: 1, start_seq: 40, start_ts_ns: 4_000_000_000,
  duration_ns: 6_000_000_000, holder_pid: 70, holder_tgid: 70, holder_comm: 'pinner', stack_id: 3, longterm: true,
  source: 'probe', in_cma: false, movable_zone: false, uncertain: false, ...o,
});

let dir: string;
let db: Db;
let dbPath: string;

async function q(name: string, params: Record<string, unknown> = {}): Promise<ResultRow[]> {
  return (await runQuery(db, name, params)).rows;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-qunit-'));
  dbPath = join(dir, 'u.duckdb');
  db = await Db.open(dbPath);
  await ensureSchema(db);
  for (const id of [1, 2])
    await put(db, 'traces', { trace_id: id, source: `t${id}`, sha256: `h${id}`, format: 'ftrace', mapcount_semantics: 'page_mapcount', mt_layout: 'mainline', events: 100 });
  await put(db, 'replay_runs', { trace_id: 1, checked: 200, agreed: 199, checked_outside_lost: 150, agreed_outside_lost: 150 });
  for (let seq = 0; seq < 100; seq++)
    await put(db, 'event_rows', { trace_id: 1, seq, line_no: seq + 1, ts_ns: seq * 100_000_000, pid: 1, comm: 'x', event: 'page_ref_mod', payload_text: '' });
  await db.run(`UPDATE event_rows SET event = 'sched_process_exit', pid = 50, args = '{"comm":"leaker","pid":"50","prio":"120"}' WHERE seq = 30`);
  await db.run(`UPDATE event_rows SET event = 'mm_migrate_pages', name = 'longterm_pin', nr_failed = 3, nr_succeeded = 1, pid = 80, comm = 'pinme' WHERE seq = 60`);
  await db.run(`UPDATE event_rows SET pid = 90, comm = 'uaf', stack_id = 1, payload_text = 'pfn=0x900 count=1' WHERE seq = 70`);
  await put(db, 'stacks', { trace_id: 1, stack_id: 1, kind: 'kernel', depth: 2, frames: 'get_page\nleaky_ioctl', callsite: 'leaky_ioctl', uses: 1 });
  await put(db, 'stacks', { trace_id: 1, stack_id: 2, kind: 'kernel', depth: 2, frames: '__alloc_pages\ndo_anonymous_page', callsite: 'do_anonymous_page', uses: 1 });
  await put(db, 'stacks', { trace_id: 1, stack_id: 3, kind: 'kernel', depth: 2, frames: 'try_grab_page\nio_pin_pages', callsite: 'io_pin_pages', uses: 1 });

  // A 0x100: leaked (holder exited, unmapped, refcount 1). B 0x200: holder alive. C 0x300: start edge.
  // D 0x400: uncertain. E 0x500: kmem-only. F 0x600: order-2 page leaked by a subpage get.
  await put(db, 'pages', page({ pfn: 0x100 }));
  await put(db, 'holds', hold({ hold_id: 1, pfn: 0x100 }));
  await put(db, 'pages', page({ pfn: 0x200 }));
  await put(db, 'holds', hold({ hold_id: 2, pfn: 0x200, holder_pid: 60, holder_tgid: 60, holder_comm: 'alive' }));
  await put(db, 'pages', page({ pfn: 0x300, alloc_seq: null, alloc_ts_ns: null, start_edge: true }));
  await put(db, 'holds', hold({ hold_id: 3, pfn: 0x300 }));
  await put(db, 'pages', page({ pfn: 0x400, uncertain: true }));
  await put(db, 'holds', hold({ hold_id: 4, pfn: 0x400 }));
  await put(db, 'pages', page({ pfn: 0x500, ref_events: 0, holds_end: 0, refcount_end: null }));
  await put(db, 'pages', page({ pfn: 0x600, order: 2 }));
  await put(db, 'holds', hold({ hold_id: 5, pfn: 0x602, refs: 2 }));
  // G 0x800: a page-cache page (file mapping, fs private data: refcount 2 = cache + private) is cached, not leaked;
  // H 0x810: the same with one reference more is leaked.
  for (const [pfn, seq, count] of [[0x800, 15, 2], [0x810, 16, 3]] as const) {
    await put(db, 'pages', page({ pfn, refcount_end: count }));
    await put(db, 'holds', hold({ hold_id: 100 + seq, pfn }));
    await db.run(`UPDATE event_rows SET system = 'page_ref', pfn = $1, mapping = 18379190079349532112, page_flags = 'uptodate|dirty|lru|private', count = $2 WHERE seq = $3`, [pfn, count, seq]);
  }
  // A freed page with a closed hold (not a leak, a long hold).
  await put(db, 'pages', page({ pfn: 0x900, free_seq: 50, free_ts_ns: 5_000_000_000, free_pid: 91, free_comm: 'freer', free_event: 'mm_page_free', end_edge: false, holds_end: 0 }));
  await put(db, 'holds', hold({ hold_id: 6, pfn: 0x900, end_seq: 45, end_ts_ns: 4_500_000_000, duration_ns: 2_500_000_000, holder_pid: 51, holder_comm: 'vmsplice', via: 'gup', in_cma: true, mt: 4 }));

  // A FOLL_GET reference held to the end on a CMA page (no page lifetime: not a leak candidate).
  await put(db, 'holds', hold({ hold_id: 7, pfn: 0x910, via: 'gup', in_cma: true, mt: 4, holder_pid: 52, holder_comm: 'getter', duration_ns: 1_000_000_000 }));

  await put(db, 'pins', pin({ pin_id: 1, pfn: 0x700 }));
  await put(db, 'pins', pin({ pin_id: 2, pfn: 0x701, uncertain: true }));
  await put(db, 'pins', pin({ pin_id: 3, pfn: 0x702, end_seq: 80, end_ts_ns: 8_000_000_000, duration_ns: 400_000_000 }));
  // Pins of a holder that exits at 9.2 s (0.7 s before the end), still held: a certain and an uncertain pin leak.
  await db.run(`UPDATE event_rows SET event = 'sched_process_exit', pid = 72, args = '{"comm":"exiter","pid":"72","prio":"120"}' WHERE seq = 92`);
  await put(db, 'pins', pin({ pin_id: 4, pfn: 0x703, holder_pid: 72, holder_tgid: 72, holder_comm: 'exiter', stack_id: null }));
  await put(db, 'pins', pin({ pin_id: 5, pfn: 0x704, holder_pid: 72, holder_tgid: 72, holder_comm: 'exiter', stack_id: null, uncertain: true }));

  await put(db, 'cma_attempts', { trace_id: 1, attempt_id: 1, kind: 'alloc', cma_name: 'reserved', pid: 352, comm: 'cma_block', start_seq: 55, start_ts_ns: 5_500_000_000, request_count: 16380, busy_retries: 2, ranges_tried: 3, failed_ranges: 3, succeeded: false, blockers: 3 });
  await put(db, 'cma_attempts', { trace_id: 1, attempt_id: 2, kind: 'alloc', cma_name: 'reserved', pid: 352, comm: 'cma_block', start_seq: 85, start_ts_ns: 8_500_000_000, succeeded: true, blockers: 1 });
  const blk = { trace_id: 1, attempt_id: 1, range_start: 0x7bc00, range_end: 0x7fbfc, pfn: 0x7dc00, is_fin_pfn: true, holder_kind: 'hold', holder_id: 6, refs: 4, holder_pid: 352, holder_tgid: 352, holder_comm: 'cma_block', stack_id: 1, since_ts_ns: 4_000_000_000, refcount: 5, uncertain: false };
  await put(db, 'cma_blockers', { ...blk, range_seq: 56, range_ts_ns: 5_600_000_000 });
  await put(db, 'cma_blockers', { ...blk, range_seq: 57, range_ts_ns: 5_700_000_000, range_start: 0x7bc01, range_end: 0x7fbfd });
  await put(db, 'cma_blockers', { ...blk, range_seq: 57, range_ts_ns: 5_700_000_000, pfn: 0x7e000, is_fin_pfn: false, holder_kind: 'unknown', holder_id: null, holder_pid: null, holder_tgid: null, holder_comm: null, stack_id: null, refs: null });
  await put(db, 'cma_blockers', { ...blk, attempt_id: 2, range_seq: 86, range_ts_ns: 8_600_000_000 });

  await put(db, 'pgmaps', { trace_id: 1, pgmap: 0xff11000003c2f9c0n, pfn_start: 0xfcf0000, pfn_end: 0xfd00000, gets: 128, puts: 128, outstanding_end: 0, outstanding_at_unmap: 0, unmap_ts_ns: 9_000_000_000, unmap_ret_ts_ns: 9_100_000_000, source: 'probe', max_outstanding: 64 });
  await put(db, 'pgmaps', { trace_id: 1, pgmap: 0xff11000003cbb000n, pfn_start: 0xfce0000, pfn_end: 0xfcf0000, gets: 32, puts: 31, outstanding_end: 1, outstanding_at_unmap: 1, unmap_ts_ns: 9_000_000_000, source: 'probe', max_outstanding: 32 });

  await put(db, 'anomalies', { trace_id: 1, anomaly_id: 1, kind: 'ref_after_free', severity: 'error', certain: true, pfn: 0x900, seq: 70, ts_ns: 7_000_000_000, pid: 90, comm: 'uaf', stack_id: 1, detail: 'get on a freed page' });
  await put(db, 'anomalies', { trace_id: 1, anomaly_id: 2, kind: 'freed_while_mapped', severity: 'error', certain: false, pfn: 0x901, seq: 71, detail: 'x' });
  await put(db, 'anomalies', { trace_id: 1, anomaly_id: 3, kind: 'longterm_pin_in_cma', severity: 'error', certain: true, pfn: 0x700, pin_id: 1, detail: 'y' });

  await put(db, 'divergences', { trace_id: 1, seq: 75, ts_ns: 7_500_000_000, pfn: 0x100, event: 'page_ref_mod', expected: 2, printed: 3, in_lost_window: false, explanation: 'concurrent' });
  await put(db, 'lost_events', { trace_id: 1, seq: 74, line_no: 75, cpu: 1, lost: 12, kind: 'lost' });
  db.close();
  db = await Db.open(dbPath, { readOnly: true });
});

after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('query library files', () => {
  it('every query has a description, documented parameters and trace_id', () => {
    const qs = listQueries();
    const names = qs.map((d) => d.name);
    for (const n of ['leaks', 'pin-leaks', 'long-pins', 'cma-blockers', 'pgmap-imbalance', 'use-after-free', 'top-callers', 'divergence', 'summary'])
      assert.ok(names.includes(n), n);
    for (const d of qs) {
      assert.ok(d.description.length > 20, d.name);
      assert.equal(d.params[0]?.name, 'trace_id', `${d.name}: trace_id first`);
      assert.equal(d.params[0]?.default, null);
      assert.ok(d.columns.length > 0 && d.columns[0]!.name === 'trace_id', `${d.name}: trace_id column first`);
      for (const p of d.params) assert.ok(d.sql.includes('$' + p.name), `${d.name}: $${p.name} declared but unused`);
      for (const c of d.columns) assert.ok(c.description.length > 0, `${d.name}.${c.name} undocumented`);
    }
  });

  it('every output column is documented, in order', async () => {
    for (const d of listQueries()) {
      const r = await runQuery(db, d, {});
      assert.deepEqual(r.columns.map((c) => c.name), d.columns.map((c) => c.name), d.name);
    }
  });

  it('parses the header syntax', () => {
    const d = parseQuery('x', 'x.sql', [
      '-- Finds x.',
      '-- @param trace_id INTEGER NULL Trace.',
      "-- @param comm VARCHAR 'it''s here' A name.",
      '-- @param min_duration_ns BIGINT 1000000000 Minimum.',
      '-- @param all BOOLEAN false Everything.',
      '-- @column trace_id Trace.',
      'SELECT 1',
    ].join('\n'));
    assert.equal(d.description, 'Finds x.');
    assert.deepEqual(d.params.map((p) => [p.name, p.type, p.default]), [
      ['trace_id', 'INTEGER', null], ['comm', 'VARCHAR', "it's here"], ['min_duration_ns', 'BIGINT', 1000000000n], ['all', 'BOOLEAN', false],
    ]);
    assert.equal(d.params[1]!.description, 'A name.');
    assert.throws(() => parseQuery('y', 'y.sql', '-- y\n-- @param a FLOAT 1 x\nSELECT 1'), /unknown type/);
    // A gated finding must say which rows are certain: check counts nothing else.
    const gated = '-- z\n-- @verdict z error zs\n-- @gate 1\n-- @column pfn The page.\n';
    assert.throws(() => parseQuery('z', 'z.sql', gated + 'SELECT 1 AS pfn'), /needs a 'certain' column/);
    assert.equal(parseQuery('z', 'z.sql', gated + '-- @column certain Observed.\nSELECT 1 AS pfn, true AS certain').gate, 1);
  });
});

describe('parameters', () => {
  it('rejects unknown parameters and bad values with QueryError', async () => {
    await assert.rejects(runQuery(db, 'leaks', { nope: 1 }), (e) => e instanceof QueryError && /unknown parameter 'nope'/.test(e.message));
    await assert.rejects(runQuery(db, 'nope'), (e) => e instanceof QueryError && /unknown query 'nope'/.test(e.message));
    await assert.rejects(runQuery(db, 'leaks', { trace_id: '1; DROP TABLE pages' }), QueryError);
    await assert.rejects(runQuery(db, 'long-pins', { min_duration_ns: 'soon' }), QueryError);
    await assert.rejects(runQuery(db, 'pgmap-imbalance', { all: 'maybe' }), QueryError);
    await assert.rejects(runQuery(db, 'leaks', { trace_id: 99 }), (e) => e instanceof QueryError && /no trace 99/.test(e.message));
  });

  it('binds hostile strings as values', async () => {
    const before = await db.one<{ n: bigint }>('SELECT count(*) AS n FROM pages');
    for (const comm of ["x'; DROP TABLE pages; --", "' OR 1=1 --", '$trace_id', '\u0000']) {
      assert.deepEqual(await q('long-pins', { comm }), []);
      assert.deepEqual(await q('pin-leaks', { comm }), []);
    }
    assert.deepEqual(await db.one('SELECT count(*) AS n FROM pages'), before);
  });

  it('accepts durations with units for *_ns parameters', async () => {
    const a = await q('long-pins', { min_duration_ns: '2.4s' });
    const b = await q('long-pins', { min_duration_ns: 2_400_000_000 });
    assert.deepEqual(a, b);
    assert.ok(a.some((r) => r.kind === 'hold' && r.pfn === 0x900n));
    assert.ok(!(await q('long-pins', { min_duration_ns: '2600ms' })).some((r) => r.pfn === 0x900n));
  });
});

describe('findings on the hand-made trace', () => {
  it('leaks: only the orphaned, certain, in-window, refcounted pages', async () => {
    const rows = await q('leaks', { max_examples: 100 });
    const alloc = rows.filter((r) => r.grouping === 'alloc');
    const get = rows.filter((r) => r.grouping === 'get');
    assert.equal(alloc.length, 1);
    assert.deepEqual(alloc[0]!.example_pfns, [0x100n, 0x600n, 0x810n]);
    assert.equal(alloc[0]!.callsite, 'do_anonymous_page');
    assert.equal(alloc[0]!.pages, 3n);
    assert.equal(alloc[0]!.bytes, 4096n + 16384n + 4096n);
    assert.equal(alloc[0]!.refs_outstanding, 4n);
    assert.deepEqual(alloc[0]!.holders, ['leaker/50']);
    assert.equal(get.length, 1);
    assert.equal(get[0]!.callsite, 'leaky_ioctl');
    assert.equal(get[0]!.stack, 'get_page\nleaky_ioctl');
    // Rows are grouped by certainty: the uncertain page and the live holder's page come in rows of their own.
    const pfnsOf = (rows: ResultRow[]) => rows.filter((r) => r.grouping === 'alloc').flatMap((r) => r.example_pfns as bigint[]).sort((a, b) => (a < b ? -1 : 1));
    const unc = await q('leaks', { include_uncertain: true, max_examples: 100 });
    assert.deepEqual(pfnsOf(unc), [0x100n, 0x400n, 0x600n, 0x810n]);
    assert.deepEqual(unc.filter((r) => r.certain === false).map((r) => [r.grouping, r.example_pfns]), [['alloc', [0x400n]], ['get', [0x400n]]]);
    const live = await q('leaks', { include_live_holders: true, max_examples: 100 });
    assert.deepEqual(pfnsOf(live), [0x100n, 0x200n, 0x600n, 0x810n]);
    assert.ok(live.filter((r) => (r.holders as string[]).includes('alive/60')).every((r) => r.certain === false), 'a live holder is never certain');
    assert.deepEqual((await q('leaks', { max_examples: 1 }))[0]!.example_pfns, [0x100n]);
    // The holder exited 6.9 s before the end: with a longer exit grace its leaks are only uncertain.
    assert.deepEqual(await q('leaks', { exit_grace_ns: '7s' }), []);
    const late = await q('leaks', { exit_grace_ns: '7s', include_uncertain: true, max_examples: 100 });
    assert.deepEqual(pfnsOf(late), [0x100n, 0x400n, 0x600n, 0x810n]);
    assert.ok(late.every((r) => r.certain === false));
    const s7 = (await q('summary', { trace_id: 1, exit_grace_ns: '7s' }))[0]!;
    assert.deepEqual([s7.leaks, s7.leaks_uncertain], [0n, 4n]);
    assert.deepEqual(await q('leaks', { trace_id: 2 }), []);
  });

  it('pin-leaks: open pins of exited holders, certain outside lost windows and the exit grace', async () => {
    const rows = await q('pin-leaks');
    assert.deepEqual(rows.map((r) => [r.holder_pid, r.holder_state, r.certain, r.example_pfns]), [[72, 'exited', true, [0x703n]]]);
    const unc = await q('pin-leaks', { include_uncertain: true });
    assert.deepEqual(unc.map((r) => [r.example_pfns, r.certain, r.lost]), [[[0x703n], true, false], [[0x704n], false, true]]);
    // The holder exited 0.7 s before the end: with a 1 s grace even 0x703 is uncertain.
    assert.deepEqual(await q('pin-leaks', { exit_grace_ns: '1s' }), []);
    // Pins of the live holder (pid 70) are outstanding, never certain, listed only when asked.
    const live = await q('pin-leaks', { include_live_holders: true, include_uncertain: true, max_examples: 10 });
    assert.deepEqual(live.filter((r) => r.holder_pid === 70).map((r) => [r.holder_state, r.certain, r.example_pfns]), [['alive', false, [0x700n, 0x701n]]]);
    assert.equal((await q('pin-leaks', { pid: 71 })).length, 0);
    // outstanding lists every open pin and the live holder's hold, each with its holder's state.
    const o = await q('outstanding', { kind: 'pin', max_examples: 10 });
    assert.deepEqual(o.map((r) => [r.holder_pid, r.holder_state, r.leak, r.certain, r.example_pfns]), [
      [72, 'exited', true, true, [0x703n]],
      [72, 'exited', true, false, [0x704n]],
      [70, 'alive', false, false, [0x700n]],
      [70, 'alive', false, false, [0x701n]],
    ]);
  });

  it('long-pins ranks FOLL_GET held for ever on CMA first, then FOLL_LONGTERM pins on CMA, and filters', async () => {
    const rows = await q('long-pins', { min_duration_ns: 0 });
    assert.deepEqual(rows.slice(0, 3).map((r) => [r.priority, r.kind, r.pfn, r.longterm_in_cma]), [
      [1, 'hold', 0x910n, false], // FOLL_GET, on CMA, still held at the end
      [2, 'pin', 0x700n, true], // FOLL_LONGTERM pin replay flagged longterm_pin_in_cma
      [3, 'hold', 0x900n, false], // on CMA but dropped
    ]);
    assert.equal(rows[0]!.foll_get, true);
    assert.equal(rows[2]!.mt_name, 'CMA');
    assert.equal(rows.filter((r) => r.longterm_in_cma === true).length, 1);
    assert.ok(rows.every((r, i) => i === 0 || (r.priority as number) >= (rows[i - 1]!.priority as number)));
    assert.ok((await q('long-pins', { kind: 'pin', min_duration_ns: 0 })).every((r) => r.kind === 'pin'));
    assert.ok((await q('long-pins', { longterm: true, min_duration_ns: 0 })).every((r) => r.longterm === true));
  });

  it('cma-blockers merges ranges per holder and skips clean attempts', async () => {
    const rows = await q('cma-blockers');
    const blockers = rows.filter((r) => r.what === 'cma_blocker');
    assert.deepEqual(blockers.map((r) => [r.pfn, r.holder_kind, r.ranges_blocked]), [[0x7dc00n, 'hold', 2n], [0x7e000n, 'unknown', 1n]]);
    assert.equal(blockers[0]!.ref_type, 'plain ref (FOLL_GET)');
    assert.equal(blockers[0]!.holder_comm, 'cma_block');
    assert.equal(blockers[0]!.released_ts_ns, 4_500_000_000n);
    const lt = rows.filter((r) => r.what === 'longterm_migrate_failed');
    assert.deepEqual(lt.map((r) => [r.attempt_pid, r.nr_failed]), [[80, 3n]]);
    const inCma = rows.filter((r) => r.what === 'longterm_pin_in_cma');
    assert.deepEqual(inCma.map((r) => [r.pfn, r.holder_kind, r.ref_type, r.holder_comm, r.since_ts_ns, r.released_ts_ns, r.certain]), [
      [0x700n, 'pin', 'longterm pin', 'pinner', 4_000_000_000n, null, true],
    ]);
    assert.equal((await q('cma-blockers', { comm: 'pinner' })).length, 1);
    assert.equal((await q('cma-blockers', { comm: 'cma_block' })).length, 1);
  });

  it('pgmap-imbalance lists problems only unless all', async () => {
    const rows = await q('pgmap-imbalance');
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.pgmap, '0xff11000003cbb000');
    assert.equal(rows[0]!.problems, 'refs_at_unmap,unmap_never_returned');
    const all = await q('pgmap-imbalance', { all: true });
    assert.deepEqual(all.map((r) => [r.gets, r.puts]), [[32n, 31n], [128n, 128n]]);
  });

  it('use-after-free shows the evidence event and the previous free', async () => {
    const rows = await q('use-after-free');
    assert.equal(rows.length, 1);
    const r = rows[0]!;
    assert.deepEqual([r.kind, r.pfn, r.seq, r.comm, r.event, r.callsite, r.prev_free_comm, r.prev_free_ts_ns], ['ref_after_free', 0x900n, 70n, 'uaf', 'page_ref_mod', 'leaky_ioctl', 'freer', 5_000_000_000n]);
    assert.equal((await q('use-after-free', { include_uncertain: true })).length, 2);
    assert.equal((await q('use-after-free', { kind: 'refcount_underflow' })).length, 0);
  });

  it('top-callers and divergence', async () => {
    const tc = await q('top-callers', { trace_id: 1 });
    const io = tc.find((r) => r.callsite === 'io_pin_pages')!;
    assert.equal(io.pins_open, 2n);
    assert.equal(io.pins, 3n);
    assert.equal(io.pin_seconds, 6 + 6 + 0.4);
    const dv = await q('divergence');
    assert.deepEqual(dv.map((r) => [r.what, r.seq]), [['lost', 74n], ['divergence', 75n]]);
    assert.equal(dv[1]!.delta, 1);
    assert.equal((await q('divergence', { what: 'lost' })).length, 1);
  });

  it('summary counts what the queries list', async () => {
    const s = await q('summary');
    assert.equal(s.length, 2);
    const [t1, t2] = s as [ResultRow, ResultRow];
    assert.deepEqual(
      [t1.replayed, t1.leaks, t1.leaks_uncertain, t1.pin_leaks, t1.pin_leaks_uncertain, t1.cma_failed_allocs, t1.cma_blockers, t1.pgmap_imbalance, t1.use_after_free, t1.use_after_free_uncertain, t1.anomalies, t1.divergences],
      // Open pins: 0x703 of an exited holder (certain), 0x704 the same crossing a lost window (uncertain); 0x700 and
      // 0x701 of a live holder are outstanding, not pin leaks.
      [true, 3n, 1n, 1n, 1n, 1n, 4n, 1n, 1n, 1n, 3n, 1n],
    );
    // Outstanding: 4 open pins, 8 open holds (6 of the exited leaker/50, and getter/52 of its thread group), no
    // pgmap reference (no pgmap_refs rows).
    assert.deepEqual([t1.outstanding_pins, t1.outstanding_holds, t1.outstanding_pgmap_refs, t1.outstanding_exited, t1.outstanding_holders],
      [4n, 8n, 0n, 9n, 'leaker/50 (6, exited), pinner/70 (2), exiter/72 (2, exited)']);
    assert.equal(t1.agreement, 0.995);
    assert.equal(t2.replayed, false);
    assert.equal(t2.leaks, null);
  });

  it('check compares counts with limits', async () => {
    await assert.rejects(check(db), /not replayed/);
    const rep = await check(db, { traceId: 1 });
    assert.equal(rep.ok, false);
    assert.match(formatCheck(rep), /^leaks: 3 \(max 0\) FAIL \[\+1 uncertain\]$/m);
    const ok = await check(db, { traceId: 1, failOn: parseFailOn('leaks,pin-leaks'), max: parseMax(['leaks=3', 'pin-leaks=1']) });
    assert.equal(ok.ok, true);
    const unc = await check(db, { traceId: 1, failOn: ['leaks'], max: { leaks: 3 }, includeUncertain: true });
    assert.equal(unc.lines[0]!.count, 4);
    assert.equal(unc.ok, false);
    assert.throws(() => parseFailOn('leaks,bogus'), QueryError);
    assert.throws(() => parseMax(['leaks']), QueryError);
  });
});

describe('--sql and output formats', () => {
  it('runs arbitrary SQL read-only', async () => {
    const r = await runSql(db, 'SELECT 1 AS a, _hex(255) AS h');
    assert.deepEqual(r.rows, [{ a: 1, h: '0xff' }]);
    await assert.rejects(runSql(db, 'DROP TABLE pages'), /read-only|READ_ONLY/i);
    const lim = await runSql(db, 'SELECT * FROM range(10)', { limit: 3 });
    assert.equal(lim.rows.length, 3);
    assert.equal(lim.truncated, true);
  });

  const sample: QueryResult = {
    columns: ['trace_id', 'pfn', 'example_pfns', 'start_ts_ns', 'big', 'comm', 'stack', 'ratio', 'gone'].map((name) => ({ name, type: '' })),
    rows: [
      { trace_id: 1, pfn: 0x7dc00n, example_pfns: [0x7dc00n, 0x7e000n], start_ts_ns: 69_073_294_000n, big: 2n ** 60n, comm: 'a,"b"\nc', stack: 'f\ng', ratio: 0.5, gone: null },
    ],
    truncated: false,
  };

  it('json: one array, safe integers as numbers, big ones as strings', () => {
    const parsed = JSON.parse(formatJson(sample));
    assert.ok(Array.isArray(parsed));
    assert.deepEqual(parsed[0], { trace_id: 1, pfn: 0x7dc00, example_pfns: [0x7dc00, 0x7e000], start_ts_ns: 69073294000, big: (2n ** 60n).toString(), comm: 'a,"b"\nc', stack: 'f\ng', ratio: 0.5, gone: null });
    assert.equal(formatJson({ ...sample, rows: [] }), '[]\n');
  });

  it('csv: RFC 4180 quoting, round-trips through papaparse', () => {
    const text = formatCsv(sample);
    const back = Papa.parse<string[]>(text.trimEnd(), { header: false }).data;
    assert.deepEqual(back[0], sample.columns.map((c) => c.name));
    assert.deepEqual(back[1], ['1', String(0x7dc00), `[${0x7dc00},${0x7e000}]`, '69073294000', (2n ** 60n).toString(), 'a,"b"\nc', 'f\ng', '0.5', '']);
  });

  it('table: hex pfns, seconds, escaped text', () => {
    const t = formatTable(sample);
    assert.match(t, /start_ts_s/);
    assert.match(t, /0x7dc00,0x7e000/);
    assert.match(t, /69\.073294/);
    assert.match(t, /a,"b"\\nc/);
    assert.match(t, /f <- g/);
    assert.match(t, /\(1 row\)/);
    assert.equal(nsToSeconds(-1_500_000n), '-0.001500');
    assert.equal(nsToSeconds(9_223_372_036_854_775_807n), '9223372036.854776');
  });
});

it('queries directory holds the helpers', () => {
  assert.match(readFileSync(join(QUERIES_DIR, '_helpers.sql'), 'utf8'), /CREATE OR REPLACE TEMP VIEW _leak_refs/);
});
