/**
 * `events.payload` is computed by the view `events`: ingest stores no text (event_rows.payload_text NULL) for a
 * page_ref payload in the kernel's exact format, and the view renders it from the decoded columns (db/tables/
 * ingest.ts PAYLOAD, decode/scan.ts refScan.canonical). The rendering must give back the text byte for byte, and
 * the text must be stored for every form the rendering would not reproduce. Checked on seeded page_ref and kmem
 * payloads built from each field's printed forms (leading zeros, signs, `-0`, hex widths and case, decimal pfns,
 * perf's `0x…` / `(nil)`, values beyond a column's type, empty words, trailing blanks), through the text byte
 * path, the string path (a comm that is not ASCII) and CSV input (with and without typed columns); on a real
 * capture; and on a database made before event_rows.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createTableSql } from '../../db/columns.js';
import { Db } from '../../db/duckdb.js';
import { ensureSchema } from '../../db/setup.js';
import { EVENT_ROWS, EVENTS, TRACES } from '../../db/tables/ingest.js';
import { ingest } from '../../ingest/ingest.js';
import { Rng } from '../../samples/generate/prng.js';

const FORMS = {
  pfn: ['0x0', '0x1f', '0x7f0eb', '0x00ab', '0xABC', '123', '0', '0xfffffffffffff', '0x1fffffffffffff'],
  flags: ['lru', 'uptodate|lru|mappedtodisk|swapbacked', 'none', '0x10', ''],
  count: ['1', '0', '-1', '01', '2147483647', '2147483648', '-0', '-2147483648'],
  mapcount: ['0', '1', '-1', '-128', '007', '65536'],
  mapping: ['0000000000000000', 'ff11000003c6737d', '0', '0x0', '(nil)', '0xff11000003c6737d', '00000000abcdef01', 'ff11000003c6737d0'],
  mt: ['0', '1', '4', '-1', '32767', '32768', '05'],
  val: ['1', '-1', '1024', '-1024', '0', '-0', '00'],
  ret: [null, '0', '1', '-1', '9999999999', '01'],
  page: ['ffd400000070d2c0', '000000002c49ac86', '0x000000002c49ac86', '2c49ac86', '(____ptrval____)', 'FFD400000070D2C0', 'ffd400000070d2c01'],
  order: ['0', '3', '10', '-1', '00', '32768', '-0'],
  gfp: [null, 'GFP_KERNEL', 'GFP_HIGHUSER_MOVABLE|__GFP_COMP', '0x0', ''],
};

/**
 * Whether the view renders the text (an independent statement of the rule refscope follows): a page_ref payload in
 * the kernel's rendering. kmem page payloads are always stored (their page pointer has no column).
 */
const N = '(0|-?[1-9]\\d*)';
const REF = new RegExp(`^pfn=0x(0|[1-9a-f][0-9a-f]{0,12}) flags=[^\\s,(]+ count=${N} mapcount=${N} mapping=[0-9a-f]{16} mt=${N} val=${N}( ret=${N})?$`);
const num = (p: string, k: string): number => Number(new RegExp(` ${k}=(-?\\d+)`).exec(p)?.[1] ?? 0);
const i32 = (v: number) => v >= -(2 ** 31) && v < 2 ** 31;
const i16 = (v: number) => v >= -32768 && v < 32768;
const canonical = (e: Sent): boolean =>
  e.event.startsWith('page_ref') &&
  REF.test(e.payload) && i32(num(e.payload, 'count')) && i32(num(e.payload, 'mapcount')) && i32(num(e.payload, 'val')) && i16(num(e.payload, 'mt'));

interface Sent {
  event: string;
  payload: string;
}

function payloads(seed: number, n: number): Sent[] {
  const rng = new Rng(seed);
  const pick = (a: (string | null)[]) => a[rng.int(0, a.length - 1)];
  const out: Sent[] = [];
  for (let i = 0; i < n; i++) {
    // Half the rows keep every field in its usual form, so that both outcomes are common.
    const usual = rng.chance(0.5);
    const f = (k: keyof typeof FORMS, d: string | null) => (usual ? d : pick(FORMS[k]));
    const blank = !usual && rng.chance(0.05) ? ' ' : '';
    if (rng.chance(0.5)) {
      const ret = f('ret', rng.chance(0.5) ? null : '0');
      const payload =
        `pfn=${f('pfn', '0x7f0eb')} flags=${f('flags', 'lru')} count=${f('count', '2')} mapcount=${f('mapcount', '1')} ` +
        `mapping=${f('mapping', 'ff11000003c6737d')} mt=${f('mt', '1')} val=${f('val', '1')}${ret === null ? '' : ` ret=${ret}`}${blank}`;
      out.push({ event: ret === null ? 'page_ref_mod' : 'page_ref_mod_and_test', payload });
    } else {
      // Never rendered: mm_page_free (no migratetype), mm_page_pcpu_drain (no gfp_flags), mm_page_alloc (both).
      const kind = rng.int(0, 2);
      const gfp = kind === 2 ? f('gfp', 'GFP_KERNEL') : null;
      const tail = kind === 0 ? '' : ` migratetype=${f('mt', '1')}${gfp === null ? '' : ` gfp_flags=${gfp}`}`;
      const payload = `page=${f('page', 'ffd400000070d2c0')} pfn=${f('pfn', '0x1c34b')} order=${f('order', '0')}${tail}${blank}`;
      out.push({ event: ['mm_page_free', 'mm_page_pcpu_drain', 'mm_page_alloc'][kind], payload });
    }
  }
  return out;
}

let dir: string;
let db: Db;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-payload-'));
  db = await Db.open(join(dir, 'db.duckdb'));
});
after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Ingest a file; rows of its events: line, payload, whether its text is stored. */
async function rows(file: string): Promise<{ line: number; payload: string; stored: boolean }[]> {
  const { trace_id } = await ingest(db, file, {});
  const r = await db.all<{ line: bigint; payload: string; stored: boolean }>(
    `SELECT e.line_no AS line, e.payload, r.payload_text IS NOT NULL AS stored
     FROM events e JOIN event_rows r USING (trace_id, seq) WHERE trace_id = $1 ORDER BY seq`,
    [trace_id],
  );
  return r.map((x) => ({ line: Number(x.line), payload: x.payload, stored: x.stored }));
}

function check(got: { line: number; payload: string; stored: boolean }[], sent: Sent[], lineOf: (i: number) => number): void {
  const byLine = new Map(got.map((g) => [g.line, g]));
  const seen = { ref: [0, 0], kmem: [0, 0] };
  sent.forEach((e, i) => {
    const g = byLine.get(lineOf(i));
    if (g === undefined) return; // refused (a value beyond its column): counted unparsed, not an event
    assert.equal(g.payload, e.payload, `line ${lineOf(i)}`);
    assert.equal(g.stored, !canonical(e), `line ${lineOf(i)}: ${e.event}: ${e.payload}`);
    seen[e.event.startsWith('page_ref') ? 'ref' : 'kmem'][g.stored ? 1 : 0]++;
  });
  assert.ok(seen.ref[0] > sent.length / 8 && seen.ref[1] > sent.length / 8, `page_ref: rendered ${seen.ref[0]}, stored ${seen.ref[1]}`);
  assert.ok(seen.kmem[1] > sent.length / 4, `kmem: stored ${seen.kmem[1]}`);
}

describe('events.payload rendered from the columns', () => {
  const sent = payloads(7, 1200);
  const line = (comm: string, e: Sent, i: number) => `${comm.padStart(16)}-${100 + i}   [001] .....   ${100 + i}.000001: ${e.event}: ${e.payload}`;

  it('ftrace text, byte path: the payload comes back exactly, stored unless the kernel rendered it', async () => {
    const file = join(dir, 'bytes.txt');
    writeFileSync(file, sent.map((e, i) => line('bash', e, i)).join('\n') + '\n');
    check(await rows(file), sent, (i) => i + 1);
  });

  it('ftrace text, string path (a comm that is not ASCII): the same', async () => {
    const file = join(dir, 'string.txt');
    writeFileSync(file, sent.map((e, i) => line('bäsh', e, i)).join('\n') + '\n');
    check(await rows(file), sent, (i) => i + 1);
  });

  it('CSV input: the same', async () => {
    const file = join(dir, 'in.csv');
    const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
    writeFileSync(file, ['ts_ns,event,payload', ...sent.map((e, i) => `${1000 + i},${e.event},${q(e.payload)}`)].join('\n') + '\n');
    check(await rows(file), sent, (i) => i + 2);
  });

  it('CSV input with typed columns (which the view would render from): the payload is stored as given', async () => {
    const file = join(dir, 'typed.csv');
    const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
    writeFileSync(file, ['ts_ns,event,payload,pfn', ...sent.map((e, i) => `${1000 + i},${e.event},${q(e.payload)},${i % 2 ? 77 : ''}`)].join('\n') + '\n');
    const got = await rows(file);
    assert.ok(got.length > sent.length / 2);
    for (const g of got) {
      assert.equal(g.payload, sent[g.line - 2].payload, `line ${g.line}`);
      assert.equal(g.stored, true, `line ${g.line}`);
    }
  });

  it('a real capture: most page_ref rows store no text, and render their line\'s text', async () => {
    const file = new URL('../../samples/real/b-vmsplice.trace.txt.gz', import.meta.url).pathname;
    const { trace_id } = await ingest(db, file, {});
    const r = await db.one<{ pages: number; rendered: number; bad: number }>(
      `SELECT count(*) FILTER (WHERE e.event LIKE 'page_ref%')::INTEGER AS pages,
         count(*) FILTER (WHERE r.payload_text IS NULL)::INTEGER AS rendered,
         count(*) FILTER (WHERE e.payload IS NULL OR (r.payload_text IS NULL AND e.event NOT LIKE 'page_ref%'))::INTEGER AS bad
       FROM events e JOIN event_rows r USING (trace_id, seq) WHERE trace_id = $1`,
      [trace_id],
    );
    assert.equal(r!.bad, 0);
    assert.ok(r!.pages > 2000 && r!.rendered > 0.9 * r!.pages, JSON.stringify(r));
    // Each rendered payload is its line's text after the event name.
    const lines = gunzipSync(readFileSync(file)).toString('latin1').split('\n');
    const got = await db.all<{ line: bigint; event: string; payload: string }>(
      'SELECT e.line_no AS line, e.event, e.payload FROM events e JOIN event_rows r USING (trace_id, seq) WHERE trace_id = $1 AND r.payload_text IS NULL',
      [trace_id],
    );
    assert.equal(got.length, r!.rendered);
    for (const g of got) {
      const l = lines[Number(g.line) - 1];
      assert.equal(g.payload, l.slice(l.indexOf(`${g.event}: `) + g.event.length + 2), `line ${g.line}`);
    }
  });

  it('a database made before: its table events becomes event_rows, its text kept as stored', async () => {
    const path = join(dir, 'old.duckdb');
    const old = await Db.open(path);
    // events as a table, payload its last column.
    const plain = EVENTS.columns.map((c) => (c.generated !== undefined ? { name: c.name, type: 'VARCHAR NOT NULL', doc: c.doc } : c));
    await old.run(createTableSql(TRACES) + ';\n' + createTableSql({ ...EVENTS, columns: plain }));
    await old.run("CREATE VIEW events_readable AS SELECT * FROM events");
    await old.run(
      `INSERT INTO traces BY NAME SELECT 1 AS trace_id, 'old' AS source, 0 AS size_bytes, '' AS sha256, 'ftrace' AS format, now() AS ingested_at,
         3000 AS lines, 3000 AS events, 0 AS stacks, 0 AS unparsed_lines, 0 AS lost_events, 0 AS lost_markers, false AS has_tgid, 'mainline' AS mt_layout`,
    );
    await old.run(
      "INSERT INTO events (trace_id, seq, line_no, ts_ns, event, pfn, payload) SELECT 1, i, i + 1, i, 'page_ref_mod', i, 'pfn=0x' || printf('%x', i) || ' text' FROM range(3000) t(i)",
    );
    old.close();
    const db2 = await Db.open(path);
    try {
      await ensureSchema(db2);
      const r = await db2.one<{ n: number; stored: number; same: number }>(
        "SELECT count(*)::INTEGER AS n, count(payload_text)::INTEGER AS stored, count(*) FILTER (WHERE e.payload = 'pfn=0x' || printf('%x', e.pfn) || ' text')::INTEGER AS same FROM events e JOIN event_rows r USING (trace_id, seq)",
      );
      assert.deepEqual(r, { n: 3000, stored: 3000, same: 3000 });
      assert.deepEqual(
        (await db2.all<{ c: string }>("SELECT column_name AS c FROM duckdb_columns() WHERE table_name = 'event_rows' ORDER BY column_index")).map((x) => x.c),
        EVENT_ROWS.columns.map((c) => c.name),
      );
      const file = join(dir, 'after.txt');
      writeFileSync(file, line('bash', sent[0], 0) + '\n');
      const { trace_id } = await ingest(db2, file, {});
      assert.equal((await db2.one<{ p: string }>('SELECT payload AS p FROM events WHERE trace_id = $1', [trace_id]))!.p, sent[0].payload);
    } finally {
      db2.close();
    }
  });
});
