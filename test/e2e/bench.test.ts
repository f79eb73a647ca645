/**
 * The benchmark's own guarantees (the bench itself is not a test): the complete DuckDB regex baseline holds
 * the same information as refscope's events, so the speedup it prints is a fair one, and docs/benchmark.md
 * describes every metric the bench prints.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { compareWithRefscope, runBaseline } from '../../bench/compare.js';
import { BINARY, METRICS, STARTUP } from '../../bench/metrics.js';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { generateToFile } from '../../samples/generate/file.js';

describe('bench', () => {
  it('the DuckDB regex baseline writes what refscope ingest writes, row for row', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'refscope-bench-'));
    try {
      const trace = join(dir, 'noise.trace');
      await generateToFile('noise', trace, { scale: 1, seed: 3, format: 'ftrace' });
      const ref = await Db.open(join(dir, 'refscope.duckdb'));
      await ingest(ref, trace, {});
      ref.close();
      const base = await Db.open(join(dir, 'baseline.duckdb'));
      await runBaseline(base, 'full', trace);
      const stacks = await base.one<{ n: bigint }>('SELECT count(stack) AS n FROM events');
      base.close();
      const c = await compareWithRefscope(join(dir, 'refscope.duckdb'), join(dir, 'baseline.duckdb'));
      assert.ok(c.refscope_rows > 20_000, `rows ${c.refscope_rows}`);
      assert.ok(Number(stacks!.n) > 500, 'events with a stack');
      assert.deepEqual(c, { refscope_rows: c.refscope_rows, baseline_rows: c.refscope_rows, only_refscope: 0, only_baseline: 0, differing: {}, same: true });

      // The comparison sees a changed value, a changed stack and a missing row.
      const bad = await Db.open(join(dir, 'baseline.duckdb'));
      await bad.run(`UPDATE events SET pfn = pfn + 1, stack = stack || 'x' WHERE line_no = (SELECT min(line_no) FROM events WHERE stack IS NOT NULL)`);
      await bad.run('DELETE FROM events WHERE line_no = (SELECT max(line_no) FROM events)');
      bad.close();
      const d = await compareWithRefscope(join(dir, 'refscope.duckdb'), join(dir, 'baseline.duckdb'));
      assert.deepEqual([d.same, d.only_refscope, d.only_baseline, d.differing], [false, 1, 0, { pfn: 1, stack: 1 }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('docs/benchmark.md describes every metric the bench prints', () => {
    const doc = readFileSync(new URL('../../docs/benchmark.md', import.meta.url), 'utf8');
    const at = doc.indexOf('\n## Metrics');
    const end = doc.indexOf('\n## ', at + 1);
    const section = doc.slice(at, end < 0 ? undefined : end);
    assert.ok(at >= 0 && section.length > 100, 'docs/benchmark.md has a Metrics section');
    for (const m of [...METRICS, ...STARTUP, ...BINARY]) assert.match(section, new RegExp(`\\| \`${m.name}\` \\|`), `${m.name} described`);
    assert.match(section, /`query_<name>_s`/);
  });
});
