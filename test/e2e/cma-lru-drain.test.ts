/**
 * cma-lru-drain under several seeds and the three layouts: the blockers of the failed cma_alloc are exactly the
 * GUP holder's references (pfn, pid, 1 reference each, attribution exact, certain), never the requester (its own
 * isolation and putback LRU batch references) nor the kworker that drained the LRU batches; every vmsplice
 * reference is a hold of the holder, ended exactly when the truth says the pipe was read. The seeds cover the
 * three kernel eras the generator draws (5.15, 6.1, 6.18) and the drain orders it varies.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { replay } from '../../replay/replay.js';
import { runQuery } from '../../queries/runner.js';
import { generateToFile } from '../../samples/generate/file.js';
import type { Format, Truth } from '../../samples/generate/index.js';

const SEEDS = [1, 2, 3, 5, 8, 13];
const FORMATS: Format[] = ['ftrace', 'trace-cmd', 'perf'];

let dir: string;
let db: Db;
const runs: { seed: number; format: Format; id: number; truth: Truth }[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-lrudrain-'));
  db = await Db.open(join(dir, 'x.duckdb'));
  for (const seed of SEEDS)
    for (const format of FORMATS) {
      // Every layout of every seed, but only ftrace for the later seeds (the era/interleaving coverage).
      if (format !== 'ftrace' && seed > 3) continue;
      const file = join(dir, `${seed}.${format}.txt`);
      const truth = await generateToFile('cma-lru-drain', file, { seed, scale: 0.5, format });
      const s = await ingest(db, file);
      await replay(db, s.trace_id, {});
      runs.push({ seed, format, id: s.trace_id, truth });
    }
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('cma-lru-drain: blockers are the GUP holder only', () => {
  it('the seeds cover the three kernel eras', () => {
    const eras = new Set(runs.map((r) => r.truth.description.split(':')[0]));
    assert.deepEqual([...eras].sort(), ['5.15', '6.1', '6.18']);
  });

  it('every seed and layout', async () => {
    for (const { seed, format, id, truth } of runs) {
      const where = `seed ${seed} ${format}: ${truth.description}`;
      const rows = (await runQuery(db, 'cma-blockers', { trace_id: id, include_uncertain: true })).rows.filter((r) => r.what === 'cma_blocker');
      const got = rows.map((r) => [Number(r.pfn as bigint), r.holder_kind, r.holder_pid, r.refs, r.attribution, r.certain]).sort();
      const want = truth.expect.cma_blockers!.map((b) => [b.pfn, b.holder_kind, b.holder_pid, b.refs, 'exact', true]).sort();
      assert.deepEqual(got, want, where);
      // The requester (attempt_pid) and the kworkers never hold anything that blocked.
      assert.ok(rows.every((r) => r.holder_pid !== r.attempt_pid && !String(r.holder_comm).startsWith('kworker')), where);
      const holds = (await runQuery(db, 'long-pins', { trace_id: id, min_duration_ns: 0, kind: 'hold', include_uncertain: true })).rows;
      for (const h of truth.expect.holds!) {
        const r = holds.filter((x) => Number(x.pfn as bigint) === h.pfn && x.holder_pid === h.holder_pid);
        assert.equal(r.length, 1, `${where}: hold on ${h.pfn}`);
        assert.equal(r[0]!.end_ts_ns === null ? null : Number(r[0]!.end_ts_ns as bigint), h.end_ts_ns, `${where}: end of ${h.pfn}`);
        assert.equal(r[0]!.refs, h.refs, where);
      }
      const anomalies = await db.all<{ kind: string }>('SELECT kind FROM anomalies WHERE trace_id = $1', [id]);
      assert.deepEqual(anomalies, [], where);
    }
  });
});
