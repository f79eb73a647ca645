/**
 * The interleaving property (issue #18 item 6): the same per-CPU event streams merged in other valid orders
 * (samples/generate/interleave.ts: every CPU's order kept, timestamp order kept, ties between CPUs drawn at random,
 * so other CPUs' events land between the halves of an operation) must give the same findings: pins, holds, CMA
 * blockers, anomalies and inferred gaps compared as sets, and each interleaving must still match the scenario's truth
 * (with no hold left by half of a pin: 1023k refs, or one the pinning task still holds at the end) and have no count=
 * divergence (count= is recomputed in each order, so the model must predict every one).
 * migrate-interleaved (samples/generate/scenarios/migrate-interleaved.ts)
 * does the same for page-cache migration (page_ref_freeze / unfreeze with other CPUs' speculative gets failing on the
 * frozen page) and kcompactd's isolation / putback at the same µs.
 * A fixed budget: INTERLEAVINGS draws of each case (gup-interleaved in its three eras, gup-fast-split, vmsplice-cma,
 * migrate-interleaved in two seeds).
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { replay } from '../../replay/replay.js';
import { generate, type Scenario, type Truth } from '../../samples/generate/index.js';
import { interleave } from '../../samples/generate/interleave.js';
import { ftraceLine } from '../lib/ftrace.js';
import { compareWithTruth } from '../lib/replay-truth.js';

const INTERLEAVINGS = 6;
/** gup-interleaved's era follows the seed (seed % 3): 3 -> 5.15, 1 -> 6.1, 2 -> 6.18. */
const CASES: { scenario: Scenario; seed: number }[] = [
  { scenario: 'gup-interleaved', seed: 3 },
  { scenario: 'gup-interleaved', seed: 1 },
  { scenario: 'gup-interleaved', seed: 2 },
  { scenario: 'gup-fast-split', seed: 1 },
  { scenario: 'vmsplice-cma', seed: 1 },
  { scenario: 'migrate-interleaved', seed: 1 },
  { scenario: 'migrate-interleaved', seed: 2 },
];

class Sink extends Writable {
  chunks: string[] = [];
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(chunk.toString());
    cb();
  }
}

let dir: string;
let db: Db;
let n = 0;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-interleave-'));
  db = await Db.open(join(dir, 'x.duckdb'));
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type R = Record<string, unknown>;
const s = (v: unknown): string => (v === null || v === undefined ? '-' : String(v));

/** Replay `text`; its findings as sorted lines, and the differences from the truth. */
async function findings(text: string, truth: Truth): Promise<{ rows: string[]; diffs: string[] }> {
  const file = join(dir, `t${n++}.txt`);
  writeFileSync(file, text);
  const { trace_id: id } = await ingest(db, file, {});
  await replay(db, id, {});
  const q = (sql: string) => db.all<R>(sql, [id]);
  const rows = [
    ...(await q('SELECT pfn, holder_pid, refs, start_ts_ns, end_ts_ns, large_folio, uncertain FROM pins WHERE trace_id = $1')).map(
      (r) => `pin ${s(r.pfn)} ${s(r.holder_pid)} x${s(r.refs)} ${s(r.start_ts_ns)}..${s(r.end_ts_ns)} large=${s(r.large_folio)} uncertain=${s(r.uncertain)}`,
    ),
    ...(await q('SELECT pfn, holder_pid, refs, end_ts_ns IS NULL AS open, uncertain FROM holds WHERE trace_id = $1')).map(
      (r) => `hold ${s(r.pfn)} ${s(r.holder_pid)} x${s(r.refs)} open=${s(r.open)} uncertain=${s(r.uncertain)}`,
    ),
    ...(await q('SELECT DISTINCT pfn, holder_kind, holder_pid FROM cma_blockers WHERE trace_id = $1')).map(
      (r) => `blocker ${s(r.pfn)} ${s(r.holder_kind)} ${s(r.holder_pid)}`,
    ),
    ...(await q('SELECT kind, pfn, certain FROM anomalies WHERE trace_id = $1')).map((r) => `anomaly ${s(r.kind)} ${s(r.pfn)} certain=${s(r.certain)}`),
    ...(await q('SELECT kind, pfn FROM gaps WHERE trace_id = $1')).map((r) => `gap ${s(r.kind)} ${s(r.pfn)}`),
  ].sort();
  const diffs = await compareWithTruth(db, id, truth);
  // count= follows the order of every interleaving: the model must predict each one (set, freeze, unfreeze included).
  for (const r of await q('SELECT pfn, event, expected, printed, explanation FROM divergences WHERE trace_id = $1'))
    diffs.push(`divergence: pfn ${s(r.pfn)} ${s(r.event)} expected ${s(r.expected)} printed ${s(r.printed)} (${s(r.explanation)})`);
  // No half of a pin left as a plain reference: a hold of 1023k refs, or one the pinning task still has at the end.
  const pinners = [...new Set((truth.expect.pins ?? []).map((p) => p.holder_pid))];
  for (const r of await q('SELECT pfn, holder_pid, refs, end_ts_ns FROM holds WHERE trace_id = $1')) {
    if (Number(r.refs) % 1024 === 1023 || (r.end_ts_ns === null && pinners.includes(Number(r.holder_pid))))
      diffs.push(`spurious hold: pfn ${s(r.pfn)} by ${s(r.holder_pid)} x${s(r.refs)}`);
  }
  return { rows, diffs };
}

/** Times another task's event comes right before a `val=1023` (the second half of a GUP-fast pin) in the output. */
function splitHalves(text: string): number {
  let k = 0;
  let prev = '';
  for (const l of text.split('\n')) {
    if (l.startsWith('#') || l.startsWith(' => ') || l.endsWith('<stack trace>') || l.startsWith('CPU:')) continue;
    if (/: page_ref_mod: .* val=1023$/.test(l) && prev && prev.slice(0, 24) !== l.slice(0, 24)) k++;
    prev = l;
  }
  return k;
}

/** Events of another CPU between a page_ref_freeze and the page_ref_unfreeze of the same pfn in the output. */
function frozenSplits(text: string): number {
  let k = 0;
  const frozen = new Map<string, string>();
  for (const l of text.split('\n')) {
    const m = /\[(\d{3})\].*: page_ref_(\w+): pfn=(0x[0-9a-f]+) /.exec(l);
    if (!m) continue;
    if (m[2] === 'freeze' && / ret=1$/.test(l)) frozen.set(m[3]!, m[1]!);
    else if (m[2] === 'unfreeze') frozen.delete(m[3]!);
    for (const cpu of frozen.values()) if (cpu !== m[1]) k++;
  }
  return k;
}

describe('interleavings of the same per-CPU streams give the same findings', () => {
  for (const c of CASES) {
    it(`${c.scenario} seed ${c.seed}`, async () => {
      const sink = new Sink();
      const truth = await generate(c.scenario, sink, { seed: c.seed, format: 'ftrace' });
      const text = sink.chunks.join('');
      const base = await findings(text, truth);
      assert.deepEqual(base.diffs, [], 'the generated order matches the truth');
      let moved = 0;
      let split = 0;
      const seen = new Set([text]);
      for (let i = 0; i < INTERLEAVINGS; i++) {
        const x = interleave(text, c.seed * 1000 + i);
        moved += x.moved;
        const migration = c.scenario === 'migrate-interleaved';
        split += migration ? frozenSplits(x.text) : splitHalves(x.text);
        // A draw that reproduces an order already replayed has the same findings (and DuckDB refuses the same content twice).
        if (seen.has(x.text)) continue;
        seen.add(x.text);
        const got = await findings(x.text, truth);
        assert.deepEqual(got.diffs, [], `interleaving ${i}: truth`);
        assert.deepEqual(got.rows, base.rows, `interleaving ${i}: findings`);
      }
      assert.ok(moved > 0, 'the draws reorder ties');
      if (c.scenario === 'gup-interleaved') assert.ok(split > 0, 'other tasks\' events between the halves of a pin');
      if (c.scenario === 'migrate-interleaved') assert.ok(split > 0, 'other CPUs\' events between a freeze and its unfreeze');
    });
  }
});

describe('interleave recomputes what the new order changes', () => {
  // Two CPUs' page_ref_mod_and_return (ret = the new count) and puts on one pfn at the same µs: when the draw swaps
  // them, count= and ret= must both follow the new order (and page_ref_mod_and_test's ret= stays 1 only at 0).
  const ref = (comm: string, pid: number, cpu: number, us: number, ev: string, count: number, val: number, ret?: number) =>
    ftraceLine(comm, pid, pid, cpu, us, ev, `pfn=0x70000 flags=none count=${count} mapcount=0 mapping=0000000000000000 mt=1 val=${val}${ret === undefined ? '' : ` ret=${ret}`}`);
  const text = [
    '# tracer: nop',
    ref('alloc_one', 10001, 0, 1000, 'page_ref_set', 1, 1),
    ref('getter_a', 10002, 0, 2000, 'page_ref_mod_and_return', 2, 1, 2),
    ref('getter_a', 10002, 0, 2000, 'page_ref_mod_and_test', 1, -1, 0),
    ref('getter_b', 10003, 1, 2000, 'page_ref_mod_and_return', 2, 1, 2),
    ref('getter_b', 10003, 1, 2000, 'page_ref_mod_and_return', 3, 1, 3),
    ref('getter_b', 10003, 1, 2000, 'page_ref_mod_and_test', 2, -1, 0),
    ref('getter_b', 10003, 1, 2000, 'page_ref_mod_and_test', 1, -1, 0),
    ref('alloc_one', 10001, 0, 3000, 'page_ref_mod_and_test', 0, -1, 1),
    '',
  ].join('\n');

  it('ret= of page_ref_mod_and_return and page_ref_mod_and_test follows count=', () => {
    let changed = 0;
    for (let seed = 1; seed <= 20; seed++) {
      const x = interleave(text, seed);
      if (x.moved === 0) continue;
      const lines = x.text.split('\n').filter((l) => l.includes(': page_ref_mod_and_'));
      const rets = lines.map((l) => /count=(\d+) .* ret=(\d+)$/.exec(l)!).map((m) => [Number(m[1]), Number(m[2])]);
      for (const [l, [count, ret]] of lines.map((l, i) => [l, rets[i]!] as const)) {
        if (l.includes('page_ref_mod_and_return')) assert.equal(ret, count, l);
        else assert.equal(ret, count === 0 ? 1 : 0, l);
      }
      if (x.text !== text) changed++;
    }
    assert.ok(changed > 0, 'some draw reorders the two CPUs\' operations');
  });
});
