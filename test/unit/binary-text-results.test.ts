/**
 * Issue #20: "all result tables identical for text and binary of the same capture". Each pair below (a trace.dat or
 * perf.data and the text trace-cmd report / perf script made of it; samples/real/binary/README.md,
 * test/fixtures/perfdata/README.md) is ingested and replayed into one database, and every replay table of the two
 * traces is compared row for row, both ways. What the two inputs do not carry alike is compared as docs/formats.md
 * §1.10-1.11 says it differs, and nothing else is left out:
 * - `trace-cmd report` prints times in us (rounded): times are compared in us, durations not (start and end are).
 * - Stack ids number every distinct stack, user stacks included, and perf.data's user frames stay raw while perf
 *   script names them: a stack id column is compared as the frames of the kernel stack it names.
 * - A PERF_RECORD_LOST record carries its CPU, perf script's line does not: the binary's lost windows are per CPU,
 *   the text's cover every CPU. So uncertainty is compared as a subset (all the binary calls uncertain, the text
 *   does too) and the other columns must be equal.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { unxzSync } from 'node-liblzma';
import { Db } from '../../db/duckdb.js';
import { REPLAY_TABLES } from '../../db/tables/replay.js';
import { ingest } from '../../ingest/ingest.js';
import { replay } from '../../replay/replay.js';

const BIN = new URL('../../samples/real/binary/', import.meta.url);
const PERF = new URL('../../test/fixtures/perfdata/', import.meta.url);

interface Pair {
  name: string;
  binary: URL;
  text: URL;
  /** Times in the text at us precision. */
  us?: boolean;
  kallsyms?: URL;
}

const PAIRS: Pair[] = [
  { name: 'trace.dat v7 zstd, lost events', binary: new URL('trace-cmd-v7-zstd-lost.dat.xz', BIN), text: new URL('trace-cmd-v7-zstd-lost.report.txt.xz', BIN), us: true },
  { name: 'trace.dat v7 zstd, kernel stacks', binary: new URL('trace-cmd-v7-zstd-stacktrace.dat.xz', BIN), text: new URL('trace-cmd-v7-zstd-stacktrace.report.txt.xz', BIN), us: true },
  { name: 'perf.data with PERF_RECORD_LOST', binary: new URL('a.data.gz', PERF), text: new URL('a.script.txt.gz', PERF) },
  { name: 'perf.data, lost samples', binary: new URL('lost.data.gz', PERF), text: new URL('lost.script.txt.gz', PERF) },
  { name: 'perf.data, no loss', binary: new URL('plain.data.gz', PERF), text: new URL('plain.script.txt.gz', PERF) },
  { name: 'perf.data -g with its kallsyms', binary: new URL('g.data.gz', PERF), text: new URL('g.kallsyms.script.txt.gz', PERF), kallsyms: new URL('g.kallsyms', PERF) },
];

const unpack = (u: URL): Buffer => (u.pathname.endsWith('.xz') ? unxzSync(readFileSync(u)) : u.pathname.endsWith('.gz') ? gunzipSync(readFileSync(u)) : readFileSync(u));
const NOT_RESULTS = new Set(['trace_id', 'replayed_at', 'seconds', 'options']);
const UNCERTAINTY = new Set(['uncertain', 'certain', 'in_lost_window']);

/** A replay table's rows of one trace, as SQL over comparable columns. */
function rowsOf(table: (typeof REPLAY_TABLES)[number], trace: number, p: Pair, withUncertainty: boolean): string {
  const cols = table.columns
    .filter((c) => !NOT_RESULTS.has(c.name) && (withUncertainty || !UNCERTAINTY.has(c.name)) && !(p.us && c.name === 'duration_ns'))
    .map((c) => {
      const q = `t."${c.name}"`;
      if (/stack_id$/.test(c.name))
        return `(SELECT s.frames FROM stacks s WHERE s.trace_id = t.trace_id AND s.stack_id = ${q} AND s.kind = 'kernel') AS "${c.name}"`;
      if (p.us && /_ns$/.test(c.name)) return `round(${q} / 1000.0) AS "${c.name}"`;
      return q;
    });
  return `SELECT ${cols.join(', ')} FROM ${table.name} t WHERE t.trace_id = ${trace}`;
}

describe('replay results of a binary capture and of its text rendering', () => {
  let dir: string;
  let db: Db;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-bintext-'));
    db = await Db.open(join(dir, 'db.duckdb'));
  });
  after(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const p of PAIRS) {
    it(p.name, async () => {
      const ids: number[] = [];
      for (const [i, u] of [p.binary, p.text].entries()) {
        const file = join(dir, `${i}-${u.pathname.split('/').pop()!.replace(/\.(gz|xz)$/, '')}`);
        writeFileSync(file, unpack(u));
        const s = await ingest(db, file, i === 0 ? { kallsyms: p.kallsyms ? p.kallsyms.pathname : false } : {});
        await replay(db, s.trace_id);
        ids.push(s.trace_id);
      }
      const [b, t] = ids;
      const lostCpu = await db.one<{ n: number }>('SELECT count(*)::INTEGER AS n FROM lost_events WHERE trace_id = $1 AND cpu IS NOT NULL', [b]);
      // Uncertainty may differ only where the binary knows a lost record's CPU.
      const exact = lostCpu!.n === 0;
      let rows = 0;
      for (const table of REPLAY_TABLES) {
        const [x, y] = [rowsOf(table, b, p, exact), rowsOf(table, t, p, exact)];
        for (const [l, r, what] of [[x, y, 'binary only'], [y, x, 'text only']]) {
          const d = await db.all(`${l} EXCEPT ALL ${r} LIMIT 3`);
          assert.deepEqual(d, [], `${table.name}: rows of the ${what}`);
        }
        rows += (await db.one<{ n: number }>(`SELECT count(*)::INTEGER AS n FROM (${x})`))!.n;
        if (!exact && table.columns.some((c) => c.name === 'uncertain')) {
          const key = table.columns.filter((c) => !NOT_RESULTS.has(c.name) && !UNCERTAINTY.has(c.name) && !/stack_id$/.test(c.name)).map((c) => `"${c.name}"`);
          const wider = await db.one<{ n: number }>(
            `SELECT count(*)::INTEGER AS n FROM ${table.name} a WHERE a.trace_id = ${b} AND a.uncertain AND NOT EXISTS (
               SELECT 1 FROM ${table.name} z WHERE z.trace_id = ${t} AND z.uncertain AND ${key.map((k) => `z.${k} IS NOT DISTINCT FROM a.${k}`).join(' AND ')})`,
          );
          assert.equal(wider!.n, 0, `${table.name}: rows uncertain in the binary's replay but not in the text's`);
        }
      }
      assert.ok(rows > 100, `${p.name}: only ${rows} result rows compared`);
    });
  }
});
