/**
 * scripts/check-traces.ts reads the NOTES tables of binary-6.18's layout (files and globs in the file cell,
 * `a N / b M` shorthand, `same data as X`, text renderings without counts, `...`, lost markers quoted or counted)
 * and checks them against tiny ftrace traces: shorthand resolved against the event names found, an ambiguous one
 * reported, a rendering compared event for event with the capture it renders.
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkTraces, parseNotes } from '../../scripts/check-traces.js';

let root: string;
before(() => {
  root = mkdtempSync(join(tmpdir(), 'check-traces-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

/** binary-6.18/NOTES.md's two tables, cut down (captured 2026-12-07, ../shared/traces/binary-6.18). */
const BINARY_TABLES = `
| file | file format | what | events (from the text rendering) |
|---|---|---|---|
| trace-cmd-v6.dat.xz | version 6, uncompressed | 8 MiB/cpu buffers, no loss | mm_page_free 73829, mm_filemap_add_to_page_cache 16418, markers 2 |
| trace-cmd-v7-none.dat.xz | version 7, compression none | same data as v6 | same |
| trace-cmd-v7-zstd-stacktrace.dat | version 7, zstd | stacks | mm_page_free 23279, filemap add 307 / delete 306, marker 1; 1 DROPPED marker |
| trace-cmd-v7-zstd-lost.dat | version 7, zstd | 64 KiB/cpu | mm_page_free 1361, ...; \`CPU:1 [49849 EVENTS DROPPED]\`, \`CPU:0 [52028 EVENTS DROPPED]\` |
| trace-cmd.report.txt.xz, trace-cmd-v7-zstd-stacktrace.report.txt.xz, trace-cmd-v7-zstd-lost.report.txt.xz | \`trace-cmd report\` text of the files above | | |

| file | how | events |
|---|---|---|
| perf-kmem-lost.data.xz | \`-a -m 1\` | filemap delete 7522 / add 3733, mm_page_free_batched 2853; 337 PERF_RECORD_LOST records |
| *.script.txt.xz | \`perf script --show-lost-events\` of each | |
| config.txt | the kernel's | |
`;

describe('parseNotes: the binary-6.18 layout', () => {
  it('reads counts, shorthand, same, renderings, globs and lost markers', () => {
    const dir = join(root, 'binary');
    mkdirSync(dir);
    for (const f of ['trace-cmd-v6.dat.xz', 'trace-cmd-v7-none.dat.xz', 'trace-cmd-v7-zstd-stacktrace.dat', 'trace-cmd-v7-zstd-lost.dat', 'trace-cmd.report.txt.xz', 'trace-cmd-v7-zstd-stacktrace.report.txt.xz', 'trace-cmd-v7-zstd-lost.report.txt.xz', 'perf-kmem-lost.data.xz', 'perf-kmem-lost.script.txt.xz', 'config.txt'])
      writeFileSync(join(dir, f), '');
    const rows = new Map(parseNotes(BINARY_TABLES, dir).map((r) => [r.file, r]));
    assert.deepEqual([...rows.keys()], ['trace-cmd-v6.dat.xz', 'trace-cmd-v7-none.dat.xz', 'trace-cmd-v7-zstd-stacktrace.dat', 'trace-cmd-v7-zstd-lost.dat', 'trace-cmd.report.txt.xz', 'trace-cmd-v7-zstd-stacktrace.report.txt.xz', 'trace-cmd-v7-zstd-lost.report.txt.xz', 'perf-kmem-lost.data.xz', 'perf-kmem-lost.script.txt.xz']);
    for (const r of rows.values()) assert.equal(r.error, null, r.file);
    const v6 = rows.get('trace-cmd-v6.dat.xz')!;
    assert.deepEqual(v6.expects.map((e) => [e.kind, e.events, e.counts]), [
      ['event', ['mm_page_free'], [73829]],
      ['event', ['mm_filemap_add_to_page_cache'], [16418]],
      ['event', ['tracing_mark_write'], [2]],
      ['lost', [], [0]], // `no loss`
    ]);
    assert.deepEqual(rows.get('trace-cmd-v7-none.dat.xz')!.expects, v6.expects);
    const st = rows.get('trace-cmd-v7-zstd-stacktrace.dat')!.expects;
    assert.deepEqual(st.filter((e) => e.kind === 'resolve').map((e) => [e.words, e.counts[0]]), [[['filemap', 'add'], 307], [['filemap', 'delete'], 306]]);
    assert.deepEqual(st.find((e) => e.kind === 'lost'), { label: 'lost markers', events: [], counts: [1], kind: 'lost', lostSum: null, lostByCpu: [] });
    const lost = rows.get('trace-cmd-v7-zstd-lost.dat')!;
    assert.equal(lost.open, true);
    assert.deepEqual(lost.expects.find((e) => e.kind === 'lost'), { label: 'lost markers', events: [], counts: [2], kind: 'lost', lostSum: 101877, lostByCpu: [[1, 49849], [0, 52028]] });
    assert.deepEqual(rows.get('trace-cmd-v7-zstd-lost.report.txt.xz')!.renders, ['trace-cmd-v7-zstd-lost.dat']);
    assert.deepEqual(rows.get('trace-cmd-v7-zstd-lost.report.txt.xz')!.expects, lost.expects);
    // trace-cmd.report.txt renders the captures without a rendering of their own, whose facts are one.
    assert.deepEqual(rows.get('trace-cmd.report.txt.xz')!.renders, ['trace-cmd-v6.dat.xz', 'trace-cmd-v7-none.dat.xz']);
    const perf = rows.get('perf-kmem-lost.data.xz')!.expects;
    assert.deepEqual(perf.map((e) => e.label), ['filemap delete', 'filemap add', 'mm_page_free_batched', 'lost markers']);
    assert.equal(perf[3].counts[0], 337);
    assert.deepEqual(rows.get('perf-kmem-lost.script.txt.xz')!.renders, ['perf-kmem-lost.data.xz']);
  });

  it('names what it cannot resolve instead of guessing', () => {
    const dir = join(root, 'unresolved');
    mkdirSync(dir);
    for (const f of ['a-one.dat', 'a-two.dat', 'a-three.dat', 'a.report.txt']) writeFileSync(join(dir, f), '');
    const rows = parseNotes(
      ['| file | what | events |', '|---|---|---|', '| a-one.dat | | mm_page_free 1 |', '| a-two.dat | | mm_page_free 2 |', '| a-three.dat | same data as v9 | same |', '| a.report.txt | text | |'].join('\n'),
      dir,
    );
    assert.match(rows.find((r) => r.file === 'a-three.dat')!.error ?? '', /"same data as v9" names no listed file/);
    assert.match(rows.find((r) => r.file === 'a.report.txt')!.error ?? '', /a rendering of a-one.dat, a-two.dat, whose facts differ/);
  });
});

const HEAD = '# tracer: nop\n#\n';
const ev = (cpu: number, us: number, what: string) => `              sh-100   [00${cpu}] .....    10.${String(us).padStart(6, '0')}: ${what}\n`;
const ALLOC = 'mm_page_alloc: page=00000000ccc5cb1a pfn=0x1000 order=0 migratetype=1 gfp_flags=GFP_KERNEL';
const LOCKED = 'mm_page_alloc_zone_locked: page=0000000080e863dd pfn=0x1001 order=0 migratetype=1 percpu_refill=1';
const ADD = 'mm_filemap_add_to_page_cache: dev 254:0 ino 20d03c pfn=0x1002 ofs=0 order=0';
const DEL = 'mm_filemap_delete_from_page_cache: dev 254:0 ino 20d03c pfn=0x1002 ofs=0 order=0';
const TRACE =
  HEAD + ev(0, 1, 'tracing_mark_write: start') + ev(0, 2, ALLOC) + ev(0, 3, LOCKED) + 'CPU:1 [LOST 5 EVENTS]\n' + ev(1, 4, ADD) + ev(1, 5, DEL) + ev(1, 6, ADD);

describe('checkTraces on tiny traces', () => {
  it('passes the facts that hold and marks each that does not', async () => {
    const good = join(root, 'traces', 'good');
    const bad = join(root, 'traces', 'bad');
    mkdirSync(good, { recursive: true });
    mkdirSync(bad, { recursive: true });
    writeFileSync(join(good, 'cap-one.txt'), TRACE);
    writeFileSync(join(good, 'cap-two.txt'), TRACE.replace('start', 'begin'));
    writeFileSync(join(good, 'cap.report.txt'), TRACE.replace('start', 'again'));
    writeFileSync(
      join(good, 'NOTES.md'),
      [
        '| file | what | events (from the text rendering) |',
        '|---|---|---|',
        '| cap-one.txt | | mm_page_alloc 1, filemap add 2 / delete 1, markers 1, ...; `CPU:1 [LOST 5 EVENTS]` |',
        '| cap-two.txt | same data as one | same |',
        '| cap.report.txt | text of the files above | |',
      ].join('\n'),
    );
    writeFileSync(join(bad, 'b-cap.txt'), TRACE);
    writeFileSync(join(bad, 'b-cap.report.txt'), TRACE + ev(1, 7, DEL));
    writeFileSync(
      join(bad, 'NOTES.md'),
      ['| file | events |', '|---|---|', '| b-cap.txt | page alloc 1, mm_filemap_add_to_page_cache 2, delete from 1, tracing_mark_write 1; `CPU:1 [LOST 6 EVENTS]` |', '| b-cap.report.txt | |'].join('\n'),
    );
    const out: string[] = [];
    const ok = await checkTraces(join(root, 'traces'), (s) => out.push(s));
    const text = out.join('\n');
    const row = (file: string, event: string) => {
      const hit = text.split('\n').find((l) => l.startsWith(file + ' ') && l.includes(`| ${event} `));
      assert.ok(hit, `${file} | ${event}\n${text}`);
      return hit.split('|').map((x) => x.trim());
    };
    assert.equal(ok, false);
    // good/: every fact holds, the unlisted zone_locked event is shown (the list ends with `...`).
    for (const f of ['cap-one.txt', 'cap-two.txt', 'cap.report.txt']) {
      assert.deepEqual(row(f, 'filemap add (mm_filemap_add_to_page_cache)').slice(2), ['2', '2', 'ok']);
      assert.deepEqual(row(f, 'filemap delete (mm_filemap_delete_from_page_cache)').slice(2), ['1', '1', 'ok']);
      assert.deepEqual(row(f, 'events lost (sum)').slice(2), ['5', '5', 'ok']);
      assert.deepEqual(row(f, 'events lost on CPU 1').slice(2), ['5', '5', 'ok']);
      assert.deepEqual(row(f, 'mm_page_alloc_zone_locked').slice(2), ['...', '1', 'ok']);
    }
    assert.deepEqual(row('cap.report.txt', 'events as in cap-one.txt').slice(2), ['6', '6', 'ok']);
    assert.deepEqual(row('cap.report.txt', 'lost markers as in cap-two.txt').slice(4), ['ok']);
    // bad/: `page alloc` fits two events, `delete from` one; the rendering has an event more than its capture.
    assert.deepEqual(row('b-cap.txt', 'page alloc (unresolved)').slice(2), ['1', '?', 'MISMATCH']);
    assert.match(text, /"page alloc" names several events refscope found: mm_page_alloc, mm_page_alloc_zone_locked/);
    assert.deepEqual(row('b-cap.txt', 'delete from (mm_filemap_delete_from_page_cache)').slice(2), ['1', '1', 'ok']);
    assert.deepEqual(row('b-cap.txt', 'events lost (sum)').slice(2), ['6', '5', 'MISMATCH']);
    assert.deepEqual(row('b-cap.report.txt', 'events as in b-cap.txt').slice(2), ['6', '7', 'MISMATCH']);
    assert.match(text, /b-cap.report.txt: mm_filemap_delete_from_page_cache: 2, b-cap.txt: 1/);
  });
});
