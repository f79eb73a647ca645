/**
 * CSV and Arrow IPC input (ingest/readers/structured.ts) and `refscope export` (ingest/export.ts): the canonical
 * events schema round-trips (ingest a real capture, export Arrow and CSV, ingest those into a fresh database:
 * identical events, compared with EXCEPT ALL over every column but trace_id), bad CSV rows become unparsed
 * lines, inputs without the required columns are refused, and export accepts only known tables.
 */
import { strict as assert } from 'node:assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  RecordBatchFileWriter,
  RecordBatchStreamWriter,
  tableFromArrays,
  tableFromIPC,
  Utf8,
  vectorFromArray,
  Table,
} from 'apache-arrow';
import { Db } from '../../db/duckdb.js';
import { EXPORTABLE_TABLES, exportTable, ExportError } from '../../export/tables.js';
import { ingest } from '../../ingest/ingest.js';
import { EVENTS } from '../../db/tables/ingest.js';
import { InputError } from '../../ingest/source.js';
import { runCli } from '../lib/cli.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const REAL = (f: string) => join(ROOT, 'samples', 'real', f);
const COLS = EVENTS.columns.filter((c) => c.name !== 'trace_id').map((c) => `"${c.name}"`).join(', ');

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-structured-test-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function withDb<T>(name: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const db = await Db.open(join(dir, name));
  try {
    return await fn(db);
  } finally {
    db.close();
  }
}

/** Rows of events of trace `a` in db A missing from trace `b` in db B, and the other way round. */
async function eventsDiff(dbA: string, a: number, dbB: string, b: number): Promise<[number, number, number]> {
  const db = await Db.open(':memory:');
  try {
    await db.run(`ATTACH '${dbA}' AS a (READ_ONLY)`);
    await db.run(`ATTACH '${dbB}' AS b (READ_ONLY)`);
    const q = (x: string, tx: number, y: string, ty: number) =>
      `SELECT count(*)::INTEGER AS n FROM (SELECT ${COLS} FROM ${x}.events WHERE trace_id = ${tx} EXCEPT ALL SELECT ${COLS} FROM ${y}.events WHERE trace_id = ${ty})`;
    const ab = (await db.one<{ n: number }>(q('a', a, 'b', b)))!.n;
    const ba = (await db.one<{ n: number }>(q('b', b, 'a', a)))!.n;
    const n = (await db.one<{ n: number }>(`SELECT count(*)::INTEGER AS n FROM a.events WHERE trace_id = ${a}`))!.n;
    return [ab, ba, n];
  } finally {
    db.close();
  }
}

async function stacksOf(db: Db, trace: number): Promise<string[]> {
  const r = await db.all<{ s: string }>(`SELECT stack_id || ':' || kind || ':' || frames AS s FROM stacks WHERE trace_id = $1 ORDER BY stack_id`, [trace]);
  return r.map((x) => x.s);
}

describe('export -> ingest round trip of the canonical events schema', () => {
  const src = () => join(dir, 'src.duckdb');
  // b-vmsplice: kprobes (pointers mapped to pfns), stacks, syscalls, markers, unknown events with args;
  // a-iouring-longterm: 6156 events sharing a few stacks, io_uring events; perf-task: perf (system from perf, no tgid).
  const inputs = ['b-vmsplice.trace.txt.gz', 'a-iouring-longterm.trace.txt.gz', 'perf-task.script.txt.gz'];

  before(async () => {
    await withDb('src.duckdb', async (db) => {
      for (const f of inputs) await ingest(db, REAL(f));
    });
  });

  for (const [i, f] of inputs.entries()) {
    it(`${f}: Arrow and CSV exports ingest back to identical events and stacks`, async () => {
      const trace = i + 1;
      const arrow = join(dir, `t${trace}.arrow`);
      const csv = join(dir, `t${trace}.csv`);
      const srcStacks = await withDb('src.duckdb', async (db) => {
        const a = await exportTable(db, { traceId: trace, format: 'arrow', target: arrow });
        const c = await exportTable(db, { traceId: trace, format: 'csv', target: csv });
        const n = (await db.one<{ n: number }>('SELECT count(*)::INTEGER AS n FROM events WHERE trace_id = $1', [trace]))!.n;
        assert.equal(a.rows, n);
        assert.equal(c.rows, n);
        return stacksOf(db, trace);
      });
      const dst = `dst${trace}.duckdb`;
      await withDb(dst, async (db) => {
        const sa = await ingest(db, arrow);
        const sc = await ingest(db, csv);
        assert.equal(sa.format, 'arrow');
        assert.equal(sc.format, 'csv');
        assert.equal(sa.unparsed_lines, 0);
        assert.equal(sc.unparsed_lines, 0);
        // stacks come back with the same ids and frames (uses may differ: only events' references travel)
        // (every stack of these captures is referenced by an event, so all of them travel)
        assert.deepEqual(await stacksOf(db, 1), srcStacks);
        assert.deepEqual(await stacksOf(db, 2), srcStacks);
      });
      for (const t of [1, 2]) {
        const [ab, ba, n] = await eventsDiff(src(), trace, join(dir, dst), t);
        assert.ok(n > 1000);
        assert.equal(ab, 0, `${t === 1 ? 'arrow' : 'csv'}: source rows missing after the round trip`);
        assert.equal(ba, 0, `${t === 1 ? 'arrow' : 'csv'}: rows that were not in the source`);
      }
    });
  }

  it('the Arrow export is a standard IPC file (footer) and also readable as a stream (gzipped)', async () => {
    const arrow = join(dir, 't1.arrow');
    const t = tableFromIPC(readFileSync(arrow));
    assert.deepEqual(
      t.schema.fields.map((f) => f.name),
      [...EVENTS.columns.map((c) => c.name), 'stack', 'user_stack'],
    );
    assert.equal(String(t.schema.fields.find((f) => f.name === 'ts_ns')!.type), 'Int64');
    assert.equal(String(t.schema.fields.find((f) => f.name === 'ptr')!.type), 'Uint64');
    const gz = join(dir, 't1.arrow.gz');
    writeFileSync(gz, gzipSync(readFileSync(arrow)));
    await withDb('gz.duckdb', async (db) => {
      const s = await ingest(db, gz);
      assert.equal(s.format, 'arrow');
      assert.equal(s.events, t.numRows);
    });
    const [ab, ba] = await eventsDiff(src(), 1, join(dir, 'gz.duckdb'), 1);
    assert.deepEqual([ab, ba], [0, 0]);
  });

  it('Parquet (DIR/<table>.parquet) and other tables; all traces when --trace is omitted', async () => {
    await withDb('src.duckdb', async (db) => {
      const pq = join(dir, 'pq');
      const e = await exportTable(db, { format: 'parquet', target: pq });
      const s = await exportTable(db, { format: 'parquet', target: pq, table: 'stacks', traceId: 1 });
      const total = (await db.one<{ n: number }>('SELECT count(*)::INTEGER AS n FROM events'))!.n;
      assert.equal(e.rows, total);
      assert.equal(e.file, join(pq, 'events.parquet'));
      const back = await db.one<{ n: number; t: number }>(`SELECT count(*)::INTEGER AS n, count(DISTINCT trace_id)::INTEGER AS t FROM read_parquet('${e.file}')`);
      assert.deepEqual(back, { n: total, t: inputs.length });
      const st = await db.one<{ n: number }>(`SELECT count(*)::INTEGER AS n FROM read_parquet('${s.file}')`);
      assert.equal(st!.n, (await db.one<{ n: number }>('SELECT count(*)::INTEGER AS n FROM stacks WHERE trace_id = 1'))!.n);
      const tr = await exportTable(db, { format: 'arrow', target: join(dir, 'traces.arrow'), table: 'traces' });
      const tt = tableFromIPC(readFileSync(tr.file));
      assert.equal(tt.numRows, inputs.length);
      assert.equal(String(tt.schema.fields.find((f) => f.name === 'ingested_at')!.type), 'Timestamp<MICROSECOND>');
      assert.ok(existsSync(join(dir, 'traces.arrow')) && !existsSync(join(dir, `traces.arrow.tmp-${process.pid}`)));
      const mt = await exportTable(db, { format: 'csv', target: join(dir, 'mt.csv'), table: 'migratetypes' });
      assert.ok(mt.rows >= 17);
    });
  });

  it('refuses unknown tables (no SQL from the command line), missing traces, and per-trace export of global tables', async () => {
    await withDb('src.duckdb', async (db) => {
      for (const table of ['events; DROP TABLE traces', 'nosuch', '"events"', 'Events'])
        await assert.rejects(exportTable(db, { table, format: 'csv', target: join(dir, 'x.csv') }), ExportError);
      await assert.rejects(exportTable(db, { traceId: 99, format: 'csv', target: join(dir, 'x.csv') }), /no trace 99/);
      await assert.rejects(exportTable(db, { traceId: 1, table: 'migratetypes', format: 'csv', target: join(dir, 'x.csv') }), /not per trace/);
      assert.equal((await db.one<{ n: number }>('SELECT count(*)::INTEGER AS n FROM traces'))!.n, inputs.length);
      assert.ok(!existsSync(join(dir, 'x.csv')));
    });
    assert.ok(EXPORTABLE_TABLES.includes('pins') && EXPORTABLE_TABLES.includes('events'));
  });

  it('the CLI: `refscope export --csv`, and one-line errors for bad --table / no target', () => {
    const cli = (...args: string[]) => runCli(args);
    const out = join(dir, 'cli.csv');
    const ok = cli('export', '--db', src(), '--trace', '3', '--csv', out);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stderr, /exported 8244 rows of events/);
    assert.equal(readFileSync(out, 'utf8').split('\n')[0], [...EVENTS.columns.map((c) => c.name), 'stack', 'user_stack'].join(','));
    const bad = cli('export', '--db', src(), '--table', 'events;drop', '--csv', out);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /events;drop/);
    const none = cli('export', '--db', src());
    assert.equal(none.status, 2);
    assert.equal(none.stderr.trim().split('\n').length, 1);
    assert.match(none.stderr, /^refscope: export: give exactly one of --arrow FILE, --parquet DIR, --csv FILE/);
  });
});

describe('CSV input', () => {
  async function ingestCsv(name: string, text: string | Buffer) {
    const f = join(dir, name);
    writeFileSync(f, text);
    return withDb(`${name}.duckdb`, async (db) => {
      const s = await ingest(db, f, { format: 'csv' });
      const ev = await db.all('SELECT * FROM events ORDER BY seq');
      const un = await db.all('SELECT line_no::INTEGER AS line_no, reason, text FROM unparsed_lines ORDER BY line_no');
      const tr = await db.one('SELECT * FROM traces');
      return { s, ev, un, tr };
    });
  }

  it('payload-only rows are decoded like text lines (ts in seconds, cpu/pid/comm optional)', async () => {
    const r = await ingestCsv(
      'payload.csv',
      [
        'ts,cpu,pid,comm,event,payload',
        '12.910350,1,261,vmsplice_hold,try_grab_folio,(try_grab_folio+0x0/0x170) page=0xffd4000001e53700 refs=1 flags=0x4',
        '69.605460,1,352,cma_block,test_pages_isolated,start_pfn=0x7bc00 end_pfn=0x7fbfc fin_pfn=0x7dc00 ret=fail',
        '5.973365,,,,page_ref_mod_and_test,pfn=0x3dc8 flags=none count=0 mapcount=0 mapping=0000000000000000 mt=0 val=-1 ret=1',
        '6.0,0,1,init,tracing_mark_write,"a marker, with a comma and ""quotes"""',
      ].join('\n'),
    );
    assert.equal(r.s.format, 'csv');
    assert.equal(r.s.unparsed_lines, 0);
    assert.equal(r.ev.length, 4);
    const [g, iso, ref, mark] = r.ev as Record<string, unknown>[];
    assert.deepEqual([g.system, g.ptr, g.refs, g.gup_flags, g.ts_ns, g.line_no, g.comm], ['gup', 0xffd4000001e53700n, 1, 4n, 12910350000n, 2n, 'vmsplice_hold']);
    assert.deepEqual([iso.ret, iso.fin_pfn, iso.pfn], [1n, 0x7dc00n, 0x7bc00n]);
    assert.deepEqual([ref.cpu, ref.pid, ref.comm, ref.pfn, ref.val, ref.ret], [null, null, null, 0x3dc8n, -1, 1n]);
    assert.equal(mark.payload, 'a marker, with a comma and "quotes"');
    assert.equal((r.tr as Record<string, unknown>).clock, 'us');
  });

  it('typed columns without a payload are taken as given; ts_ns keeps int64 precision', async () => {
    const r = await ingestCsv(
      'typed.csv',
      ['ts_ns,event,pfn,count,val,mapcount,ptr', '9007199254740993123,page_ref_mod,1234,1025,1024,-1,18446744073709551615', '1,page_ref_mod,0x10,,1,,'].join('\n'),
    );
    assert.equal(r.s.unparsed_lines, 0);
    const [a, b] = r.ev as Record<string, unknown>[];
    assert.deepEqual([a.ts_ns, a.pfn, a.count, a.val, a.mapcount, a.ptr, a.payload, a.system], [9007199254740993123n, 1234n, 1025, 1024, -1, 18446744073709551615n, '', 'page_ref']);
    assert.deepEqual([b.ts_ns, b.pfn, b.count, b.mapcount, b.ptr], [1n, 16n, null, null, null]);
    assert.equal((r.tr as Record<string, unknown>).clock, 'ns');
  });

  it('bad rows (wrong field count, non-numeric ts or values) are unparsed lines with their line numbers', async () => {
    const r = await ingestCsv(
      'bad.csv',
      [
        'ts_ns,event,payload,pfn',
        '1000,mm_page_free,page=0000000012345678 pfn=0x1234 order=0,', // 2 ok: pfn decoded from the payload? no: pfn column is present and empty -> NULL
        '2000,mm_page_free,"multi',
        'line payload",', // 3-4: one record over two lines
        '3000,mm_page_free', // 5: too few fields
        'abc,mm_page_free,page=0 pfn=0x1 order=0,', // 6: ts not a number
        '4000,mm_page_free,page=0 pfn=0x1 order=0,12x', // 7: pfn not a number
        '5000,mm_page_free,page=0 pfn=0x1 order=0,5,extra', // 8: too many fields
        '', // 9: blank
        '6000,,x,', // 10: no event
        '7000,mm_page_free,page=0 pfn=0x2 order=0,2', // 11
      ].join('\r\n'),
    );
    assert.deepEqual(
      (r.un as { line_no: number; reason: string }[]).map((u) => [u.line_no, u.reason.split(':')[0]]),
      [
        [5, 'CSV row has 2 fields, the header 4'],
        [6, 'ts_ns'],
        [7, 'pfn'],
        [8, 'CSV row has 5 fields, the header 4'],
        [10, 'event'],
      ],
    );
    assert.equal(r.s.unparsed_lines, 5);
    assert.deepEqual(
      (r.ev as Record<string, unknown>[]).map((e) => [e.line_no, e.pfn, e.order, e.payload]),
      [
        [2n, null, 0, 'page=0000000012345678 pfn=0x1234 order=0'],
        [3n, null, null, 'multi\r\nline payload'],
        [11n, 2n, 0, 'page=0 pfn=0x2 order=0'],
      ],
    );
    assert.equal(r.s.lines, 11);
  });

  it('a header without the required columns is refused up front, naming the file and the columns', async () => {
    const f = join(dir, 'nohdr.csv');
    writeFileSync(f, 'time,what,cpu\n1,mm_page_free,0\n');
    await withDb('nohdr.duckdb', async (db) => {
      await assert.rejects(ingest(db, f, { format: 'csv' }), (e: unknown) => {
        assert.ok(e instanceof InputError);
        assert.match(e.message, new RegExp(`^${f}: CSV header lacks required columns ts_ns \\(or ts\\), event, payload`));
        return true;
      });
      assert.equal(await db.tableExists('traces') ? (await db.one<{ n: number }>('SELECT count(*)::INTEGER AS n FROM traces'))!.n : 0, 0);
    });
  });

  it('gzipped CSV, detected without --format', async () => {
    const f = join(dir, 'auto.csv.gz');
    writeFileSync(f, gzipSync('ts_ns,event,payload\n1000,mm_page_free,page=0 pfn=0x1234 order=1\n'));
    await withDb('auto.duckdb', async (db) => {
      const s = await ingest(db, f);
      assert.equal(s.format, 'csv');
      assert.deepEqual(await db.one('SELECT pfn::INTEGER AS pfn, nr_pages::INTEGER AS n FROM events'), { pfn: 0x1234, n: 2 });
    });
  });
});

describe('Arrow IPC input', () => {
  it('stream format, built by apache-arrow from typed columns; a footer-only file from disk too', async () => {
    const table = tableFromArrays({
      ts_ns: BigInt64Array.from([1000n, 2000n]),
      event: ['mm_page_alloc', 'page_ref_mod'],
      payload: ['page=0 pfn=0x10 order=3 migratetype=1 gfp_flags=GFP_KERNEL', 'pfn=0x10 flags=none count=2 mapcount=0 mapping=0000000000000000 mt=1 val=1'],
      cpu: Int16Array.from([0, 1]),
    });
    const stream = join(dir, 'in.arrows');
    writeFileSync(stream, RecordBatchStreamWriter.writeAll(table).toUint8Array(true));
    const file = join(dir, 'in.arrow');
    writeFileSync(file, RecordBatchFileWriter.writeAll(table).toUint8Array(true)); // apache-arrow JS: schema only in the footer
    await withDb('arrow-in.duckdb', async (db) => {
      for (const f of [stream, file]) {
        const s = await ingest(db, f, { replace: true });
        assert.equal(s.format, 'arrow');
        assert.equal(s.events, 2);
        const ev = await db.all<{ pfn: bigint; order: number; nr_pages: bigint; count: number; cpu: number }>(
          'SELECT pfn, "order", nr_pages, count, cpu FROM events WHERE trace_id = $1 ORDER BY seq',
          [s.trace_id],
        );
        assert.deepEqual(ev, [
          { pfn: 16n, order: 3, nr_pages: 8n, count: null, cpu: 0 },
          { pfn: 16n, order: null, nr_pages: null, count: 2, cpu: 1 },
        ]);
      }
    });
  });

  it('refuses a schema without the required columns, and columns of the wrong type', async () => {
    const noEvent = join(dir, 'noevent.arrows');
    writeFileSync(noEvent, RecordBatchStreamWriter.writeAll(tableFromArrays({ ts_ns: BigInt64Array.from([1n]), what: ['x'] })).toUint8Array(true));
    const badType = join(dir, 'badtype.arrows');
    const t = new Table({ ts_ns: vectorFromArray(['1'], new Utf8()), event: vectorFromArray(['x'], new Utf8()), payload: vectorFromArray(['p'], new Utf8()) });
    writeFileSync(badType, RecordBatchStreamWriter.writeAll(t).toUint8Array(true));
    await withDb('arrow-bad.duckdb', async (db) => {
      await assert.rejects(ingest(db, noEvent), (e: unknown) => {
        assert.ok(e instanceof InputError);
        assert.match(e.message, /noevent\.arrows: Arrow schema lacks required columns event, payload/);
        return true;
      });
      await assert.rejects(ingest(db, badType), /badtype\.arrows: Arrow column ts_ns has type Utf8/);
      assert.equal((await db.one<{ n: number }>('SELECT count(*)::INTEGER AS n FROM traces'))!.n, 0);
    });
  });
});
