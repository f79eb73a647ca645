/**
 * loadSide (replay/source.ts) reads the rare events' side columns as typed vectors: ENUM codes for event and name,
 * 64-bit halves for the pgmap / addr pointers (hex as printf('%x') prints them), doubles for the ranges. On the cma
 * and pgmap traces of test/diff it must give what the plain row-object read of the same columns gives.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { isSideCode } from '../../replay/event.js';
import { replayCode } from '../../ingest/decode/catalogue.js';
import { loadSide, loadStrings } from '../../replay/source.js';
import { ROOT } from '../lib/cli.js';

let dir: string;
let db: Db;
const ids: number[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-side-'));
  db = await Db.open(join(dir, 's.duckdb'));
  for (const t of ['finding-pgmap-imbalance', 'finding-cma-blockers'])
    ids.push((await ingest(db, join(ROOT, 'test', 'diff', t, 'trace.txt'), {})).trace_id);
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The side columns as row objects, the way loadSide read them before (printf for the pointers). */
async function reference(id: number) {
  const rows = await db.all<Record<string, unknown>>(
    `SELECT seq::DOUBLE AS seq, event, pfn::DOUBLE AS pfn, mt, pfn_end::DOUBLE AS pfn_end, fin_pfn::DOUBLE AS fin_pfn,
       nr_pages::DOUBLE AS nr_pages, nr_succeeded::DOUBLE AS nr_succeeded, nr_failed::DOUBLE AS nr_failed, name,
       CASE WHEN pgmap IS NOT NULL THEN printf('%x', pgmap) END AS pgmap,
       CASE WHEN addr IS NOT NULL THEN printf('%x', addr) END AS addr, (ptr <> 0)::INTEGER AS page
     FROM events WHERE trace_id = $1 ORDER BY seq`,
    [id],
  );
  const nn = (v: unknown): number => (v === null ? NaN : Number(v));
  return rows
    .filter((r) => isSideCode(replayCode(String(r.event))))
    .map((r) => ({
      seq: Number(r.seq), event: r.event, pfn: nn(r.pfn), mt: nn(r.mt), pfnEnd: nn(r.pfn_end), finPfn: nn(r.fin_pfn),
      nrPages: nn(r.nr_pages), nrSucceeded: nn(r.nr_succeeded), nrFailed: nn(r.nr_failed), name: (r.name as string | null) ?? null,
      pgmap: (r.pgmap as string | null) ?? null, addr: (r.addr as string | null) ?? null, page: r.page === null ? -1 : Number(r.page),
    }));
}

describe('side rows read as typed vectors', () => {
  it('match the row-object read of the same columns (pointers past 2^53, names, ranges, NULLs)', async () => {
    let pointers = 0;
    for (const id of ids) {
      const rows = await loadSide(db.conn, id, await loadStrings(db.conn, id));
      const got = Array.from({ length: rows.length }, (_, i) => rows.row(i)).map(({ payload: _, ...s }) => s);
      const want = await reference(id);
      assert.ok(want.length > 0);
      assert.deepEqual(got, want);
      pointers += want.filter((s) => s.pgmap !== null && s.pgmap.length > 13).length;
    }
    assert.ok(pointers > 0, 'some pgmap pointer needs more than 53 bits');
  });
});
