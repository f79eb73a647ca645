/**
 * The binary readers hand their records over in steps (ingest/readers/steps.ts), so that ingest lets DuckDB take
 * the batches while the reader goes on instead of queueing the whole capture first: a reader that stops yielding
 * fails here.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import { unxzSync } from 'node-liblzma';
import { EventBuilder } from '../../ingest/builder.js';
import { checkPerfData, perfDataSteps } from '../../ingest/readers/perfdata.js';
import { drainAsync, STEP, type Steps } from '../../ingest/readers/steps.js';
import { checkTraceDat, readTraceDat, traceDatSteps } from '../../ingest/readers/tracedat.js';

/** Records read, and how often the reader paused for room. */
async function run(steps: Steps<number>): Promise<{ records: number; pauses: number }> {
  let pauses = 0;
  const records = await drainAsync(steps, async () => void pauses++);
  return { records, pauses };
}

describe('binary readers read in steps', () => {
  it('trace.dat: a pause for room every STEP records, the same records as reading straight through', async () => {
    const buf = unxzSync(readFileSync(new URL('../../samples/real/binary/trace-cmd-v7-zstd-lost.dat.xz', import.meta.url)));
    const r = await run(traceDatSteps(checkTraceDat(buf), new EventBuilder(1, () => undefined)));
    assert.equal(r.records, readTraceDat(buf, new EventBuilder(1, () => undefined)));
    assert.equal(r.pauses, Math.floor(r.records / STEP));
    assert.ok(r.pauses >= 4, `${r.pauses} pauses`);
  });

  it('perf.data: pauses while perf\'s ordered queue delivers', async () => {
    const buf = gunzipSync(readFileSync(new URL('../fixtures/perfdata/lost.data.gz', import.meta.url)));
    const r = await run(perfDataSteps(buf, new EventBuilder(1, () => undefined), checkPerfData(buf), null));
    assert.ok(r.records > STEP, `${r.records} records`);
    assert.ok(r.pauses >= 1, `${r.pauses} pauses`);
  });
});
