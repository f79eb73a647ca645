/**
 * `events.payload` is computed by the view `events`: ingest stores no text (event_rows.payload_text NULL) for a
 * page_ref payload in the kernel's exact layout and the view renders it from the decoded columns (db/tables/ingest.ts PAYLOAD, decode/scan.ts refScan.canonical). The
 * rendering must give back the text byte for byte, and the text must be stored for every form the rendering would
 * not reproduce. Checked on seeded payloads built from each field's printed forms (leading zeros, signs, `-0`, hex
 * widths, decimal pfns, perf's `0x…` / `(nil)` mapping, values beyond a column's type, empty flags, trailing
 * blanks), through the text byte path, the string path (a comm that is not ASCII) and CSV input; and on a real
 * capture, where most page_ref rows must store no text.
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
import { EVENT_ROWS, TRACES } from '../../db/tables/ingest.js';
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
};

/** Whether the text is the kernel's rendering (an independent statement of the rule refscope follows). */
const CANONICAL = new RegExp(
  '^pfn=0x(0|[1-9a-f][0-9a-f]{0,12}) flags=[^\\s,(]+ count=(0|-?[1-9]\\d*) mapcount=(0|-?[1-9]\\d*) mapping=[0-9a-f]{16} ' +
    'mt=(0|-?[1-9]\\d*) val=(0|-?[1-9]\\d*)( ret=(0|-?[1-9]\\d*))?$',
);
const fitsTypes = (p: string): boolean => {
  const n = (k: string) => Number(new RegExp(` ${k}=(-?\\d+)`).exec(p)![1]);
  const i32 = (v: number) => v >= -(2 ** 31) && v < 2 ** 31;
  return i32(n('count')) && i32(n('mapcount')) && i32(n('val')) && n('mt') >= -32768 && n('mt') < 32768;
};

function payloads(seed: number, n: number): string[] {
  const rng = new Rng(seed);
  const pick = (a: (string | null)[]) => a[rng.int(0, a.length - 1)];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    // Half the rows keep every field in its usual form, so that both outcomes are common.
    const usual = rng.chance(0.5);
    const f = (k: keyof typeof FORMS, d: string | null) => (usual ? d : pick(FORMS[k]));
    const ret = f('ret', rng.chance(0.5) ? null : '0');
    out.push(
      `pfn=${f('pfn', '0x7f0eb')} flags=${f('flags', 'lru')} count=${f('count', '2')} mapcount=${f('mapcount', '1')} ` +
        `mapping=${f('mapping', 'ff11000003c6737d')} mt=${f('mt', '1')} val=${f('val', '1')}${ret === null ? '' : ` ret=${ret}`}${!usual && rng.chance(0.05) ? ' ' : ''}`,
    );
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
    'SELECT line_no AS line, payload, payload_text IS NOT NULL AS stored FROM events WHERE trace_id = $1 ORDER BY seq',
    [trace_id],
  );
  return r.map((x) => ({ line: Number(x.line), payload: x.payload, stored: x.stored }));
}

function check(got: { line: number; payload: string; stored: boolean }[], sent: string[], lineOf: (i: number) => number): void {
  const byLine = new Map(got.map((g) => [g.line, g]));
  let rendered = 0;
  let stored = 0;
  sent.forEach((p, i) => {
    const g = byLine.get(lineOf(i));
    if (g === undefined) return; // refused (a value beyond its column): counted unparsed, not an event
    assert.equal(g.payload, p, `line ${lineOf(i)}`);
    const canonical = CANONICAL.test(p) && fitsTypes(p);
    assert.equal(g.stored, !canonical, `line ${lineOf(i)}: ${p}`);
    if (g.stored) stored++;
    else rendered++;
  });
  assert.ok(rendered > sent.length / 4 && stored > sent.length / 4, `rendered ${rendered}, stored ${stored}`);
}

describe('events.payload rendered from the columns', () => {
  const sent = payloads(7, 600);
  const ctx = (comm: string, i: number) => `${comm.padStart(16)}-${100 + i}   [001] .....   ${100 + i}.000001: page_ref_mod: `;

  it('ftrace text, byte path: the payload comes back exactly, stored unless the kernel rendered it', async () => {
    const file = join(dir, 'bytes.txt');
    writeFileSync(file, sent.map((p, i) => ctx('bash', i) + p).join('\n') + '\n');
    check(await rows(file), sent, (i) => i + 1);
  });

  it('ftrace text, string path (a comm that is not ASCII): the same', async () => {
    const file = join(dir, 'string.txt');
    writeFileSync(file, sent.map((p, i) => ctx('bäsh', i) + p).join('\n') + '\n');
    check(await rows(file), sent, (i) => i + 1);
  });

  it('CSV input: the same', async () => {
    const file = join(dir, 'in.csv');
    const q = (s: string) => `"${s.replace(/"/g, '""')}"`;
    writeFileSync(file, ['ts_ns,event,payload', ...sent.map((p, i) => `${1000 + i},page_ref_mod,${q(p)}`)].join('\n') + '\n');
    check(await rows(file), sent, (i) => i + 2);
  });

  it('a real capture: most page_ref rows store no text, and render their line\'s text', async () => {
    const file = new URL('../../samples/real/c-cma-blocked.trace.txt.gz', import.meta.url).pathname;
    const { trace_id } = await ingest(db, file, {});
    const r = await db.one<{ refs: number; rendered: number; bad: number }>(
      `SELECT count(*) FILTER (WHERE event LIKE 'page_ref%')::INTEGER AS refs, count(*) FILTER (WHERE payload_text IS NULL)::INTEGER AS rendered,
         count(*) FILTER (WHERE payload IS NULL OR (payload_text IS NULL AND event NOT LIKE 'page_ref%'))::INTEGER AS bad
       FROM events WHERE trace_id = $1`,
      [trace_id],
    );
    assert.equal(r!.bad, 0);
    assert.ok(r!.refs > 10000 && r!.rendered > 0.9 * r!.refs, JSON.stringify(r));
    // Each rendered payload is its line's text after the event name.
    const lines = gunzipSync(readFileSync(file)).toString('latin1').split('\n');
    const got = await db.all<{ line: bigint; event: string; payload: string }>(
      'SELECT line_no AS line, event, payload FROM events WHERE trace_id = $1 AND payload_text IS NULL',
      [trace_id],
    );
    for (const g of got) {
      const l = lines[Number(g.line) - 1];
      assert.equal(g.payload, l.slice(l.indexOf(`${g.event}: `) + g.event.length + 2), `line ${g.line}`);
    }
  });

  it('a database made before: its table events becomes event_rows, its text kept as stored', async () => {
    const path = join(dir, 'old.duckdb');
    const old = await Db.open(path);
    const plain = EVENT_ROWS.columns.map((c) => (c.name === 'payload_text' ? { ...c, name: 'payload', type: 'VARCHAR NOT NULL' } : c));
    await old.run(createTableSql(TRACES) + ';\n' + createTableSql({ ...EVENT_ROWS, name: 'events', columns: plain }));
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
        "SELECT count(*)::INTEGER AS n, count(payload_text)::INTEGER AS stored, count(*) FILTER (WHERE payload = 'pfn=0x' || printf('%x', pfn) || ' text')::INTEGER AS same FROM events",
      );
      assert.deepEqual(r, { n: 3000, stored: 3000, same: 3000 });
      assert.equal((await db2.one<{ n: number }>("SELECT count(*)::INTEGER AS n FROM event_rows"))!.n, 3000);
      const file = join(dir, 'after.txt');
      writeFileSync(file, ctx('bash', 0) + sent[0] + '\n');
      const { trace_id } = await ingest(db2, file, {});
      assert.equal((await db2.one<{ p: string }>('SELECT payload AS p FROM events WHERE trace_id = $1', [trace_id]))!.p, sent[0]);
    } finally {
      db2.close();
    }
  });
});
