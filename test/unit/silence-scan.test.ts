/**
 * replay/gaps.ts SilenceScan finds the candidate silences while the event stream passes; it replaced a window query
 * over the events. The query is kept here as the rule's reference: on timestamp sequences with out-of-order merges,
 * ties, jumps at and around the threshold and a median above 1 ms, both must give the same silences (seq, ts,
 * evidence text).
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { SILENCE_FACTOR, SILENCE_MIN_NS, SilenceScan } from '../../replay/gaps.js';

/** The window query findSilences ran before SilenceScan (replay/gaps.ts at 7f27693). */
const RULE = `WITH d AS (
    SELECT seq, ts_ns, greatest(ts_ns - max(ts_ns) OVER (ORDER BY seq ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS jump
    FROM e),
  m AS (SELECT quantile_disc(jump, 0.5) AS median FROM d WHERE jump IS NOT NULL)
  SELECT d.seq, d.ts_ns, d.jump, m.median::DOUBLE AS median FROM d, m
  WHERE d.jump > greatest(${SILENCE_MIN_NS}, ${SILENCE_FACTOR} * m.median) ORDER BY d.seq`;

const fmtNs = (ns: number): string => (ns >= 1e6 ? `${(ns / 1e6).toFixed(1)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(1)} us` : `${ns} ns`);

/** Deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Timestamps (ns, relative) of n events: small gaps, merges going back, ties, a few long jumps. */
function timestamps(seed: number, n: number, gap: number): number[] {
  const r = rng(seed);
  const ts: number[] = [];
  let t = 5_000_000_000;
  for (let i = 0; i < n; i++) {
    const x = r();
    if (x < 0.1) t -= Math.floor(r() * 20 * gap); // another CPU's buffer merged behind
    else if (x < 0.15) t += 0; // same timestamp
    else if (x < 0.16) t += Math.floor(r() * 4e9); // long jump, often past 1 s
    else t += Math.floor(r() * 2 * gap) + 1;
    ts.push(t);
  }
  return ts;
}

describe('SilenceScan', () => {
  let inst: DuckDBInstance;
  let c: DuckDBConnection;
  before(async () => {
    inst = await DuckDBInstance.create(':memory:');
    c = await inst.connect();
  });
  after(() => {
    c.closeSync();
    inst.closeSync();
  });

  /** The rule's silences over ts (absolute = base + relative), then the scan's, as comparable rows. */
  async function both(ts: number[], base: bigint): Promise<[string[], string[]]> {
    await c.run('CREATE OR REPLACE TABLE e (seq BIGINT, ts_ns BIGINT)');
    for (let i = 0; i < ts.length; i += 1000)
      await c.run(`INSERT INTO e VALUES ${ts.slice(i, i + 1000).map((t, j) => `(${i + j}, ${base + BigInt(t)})`).join(',')}`);
    const rows = (await c.runAndReadAll(RULE)).getRowObjectsJS();
    const want = rows.map((r) =>
      `${r.seq} ${r.ts_ns} no event for ${(Number(r.jump) / 1e9).toFixed(3)} s (median gap ${fmtNs(Number(r.median))})`);
    const scan = new SilenceScan();
    ts.forEach((t, seq) => scan.add(seq, t));
    const got = scan.silences(base).map((g) => `${g.seq} ${g.ts} ${g.evidence.replace(/\): .*/, ')')}`);
    return [got, want];
  }

  it('finds the silences the window query found', async () => {
    let found = 0;
    for (const [seed, n, gap] of [[1, 3000, 1000], [2, 2000, 3_000_000], [3, 999, 50], [4, 1, 10], [5, 2, 10], [6, 4000, 1_500_000]]) {
      const [got, want] = await both(timestamps(seed, n, gap), 0n);
      assert.deepEqual(got, want, `seed ${seed}`);
      found += want.length;
    }
    assert.ok(found > 20, `the sequences have silences to find (${found})`);
  });

  it('keeps the exact threshold: a jump equal to 1000 x the median is not a silence, one ns more is', async () => {
    // 9 gaps of 2 ms (median 2 ms: threshold 2 s), then jumps of exactly 2 s and of 2 s + 1 ns.
    const ts = [0];
    for (let i = 0; i < 9; i++) ts.push(ts[ts.length - 1] + 2_000_000);
    ts.push(ts[ts.length - 1] + 2_000_000_000, ts[ts.length - 1] + 4_000_000_001);
    const [got, want] = await both(ts, 0n);
    assert.deepEqual(got, want);
    assert.equal(got.length, 1);
  });

  it('takes the lower middle jump as the median of an even count', async () => {
    // Jumps 0 (the first event), 10, 20, 30, 40 ns and 5 s: quantile_disc gives 20 ns, not 30.
    const [got, want] = await both([0, 10, 30, 60, 100, 5_000_000_100], 0n);
    assert.deepEqual(got, want);
    assert.match(got[0] ?? '', /median gap 20 ns/);
  });

  it('finds the median among jumps past 2^32 ns when most are', async () => {
    // Events 5 s and 6 s apart (median 5 s: threshold 5000 s), one jump of 5001 s, one of 4999 s.
    const ts = [0];
    for (let i = 0; i < 20; i++) ts.push(ts[ts.length - 1] + (i % 3 === 0 ? 6e9 : 5e9));
    ts.push(ts[ts.length - 1] + 5001e9, ts[ts.length - 1] + 5001e9 + 4999e9);
    const [got, want] = await both(ts, 0n);
    assert.deepEqual(got, want);
    assert.equal(got.length, 1);
    assert.match(got[0], /median gap 5000\.0 ms/);
  });

  it('finds the median among whole-microsecond jumps merged with the others (text captures print microseconds)', async () => {
    // SilenceScan counts jumps below 2^16 ns and whole microseconds below 2^16 us, and keeps the others one by one:
    // medians in each store, with every event, every other or third event, or none rounded to 1 us. Rising timestamps
    // (few ties, no merge going back: the median is well above 0).
    const rising = (seed: number, n: number, gap: number, every: number): number[] => {
      const r = rng(seed);
      const ts: number[] = [];
      let t = 5_000_000_000;
      for (let i = 0; i < n; i++) {
        const x = r();
        t += x < 0.02 ? Math.floor(r() * Math.max(4e9, 3000 * gap)) : x < 0.05 ? 0 : Math.floor(r() * 2 * gap) + 1;
        ts.push(every && i % every === 0 ? Math.round(t / 1000) * 1000 : t);
      }
      return ts;
    };
    let found = 0;
    for (const [seed, n, gap, every] of [[8, 3000, 150_000, 1], [9, 2500, 200_000, 2], [10, 3000, 40_000, 3], [11, 2000, 400_000, 0], [12, 2000, 33_000, 1], [13, 2000, 90_000, 1], [14, 2000, 100_000_000, 0], [15, 2000, 100_000_000, 1]]) {
      const [got, want] = await both(rising(seed, n, gap, every), 0n);
      assert.deepEqual(got, want, `seed ${seed}`);
      found += want.length;
    }
    assert.ok(found > 10, `the sequences have silences to find (${found})`);
    // Jumps of 70 us and 80 us (counted) around one of 75.5 us (kept): the median is the kept one.
    const ts = [0];
    for (const j of [70_000, 80_000, 75_500, 80_000, 70_000, 5_000_000_000]) ts.push(ts[ts.length - 1] + j);
    const [got, want] = await both(ts, 0n);
    assert.deepEqual(got, want);
    assert.match(got[0] ?? '', /median gap 75\.5 us/);
  });

  it('gives absolute timestamps past 2^53 from relative ones', async () => {
    const [got, want] = await both(timestamps(7, 1500, 2000), 1n << 60n);
    assert.deepEqual(got, want);
    assert.ok(got.length > 0);
  });
});
