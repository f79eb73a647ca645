/**
 * The interleaving property (issue #18 item 6): the same per-CPU event streams merged in other valid orders
 * (samples/generate/interleave.ts: every CPU's order kept, timestamp order kept, ties between CPUs drawn at random,
 * so other CPUs' events land between the halves of an operation) must give the same findings: pins, holds, CMA
 * blockers, anomalies and inferred gaps compared as sets, and each interleaving must still match the scenario's truth
 * (with no hold left by half of a pin: 1023k refs, or one the pinning task still holds at the end) and have no count=
 * divergence (count= is recomputed in each order, so the model must predict every one).
 * migrate-interleaved (samples/generate/scenarios/migrate-interleaved.ts, run here directly: it is not a CLI scenario)
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
import { Emitter, headerLines } from '../../samples/generate/emit.js';
import { generate, type Scenario, type Truth } from '../../samples/generate/index.js';
import { interleave } from '../../samples/generate/interleave.js';
import { hash32 } from '../../samples/generate/kallsyms.js';
import { Mm } from '../../samples/generate/mm.js';
import { Rng } from '../../samples/generate/prng.js';
import { migrateInterleaved } from '../../samples/generate/scenarios/migrate-interleaved.js';
import { KERNEL, type ScenarioDef } from '../../samples/generate/types.js';
import { compareWithTruth } from '../lib/replay-truth.js';

const INTERLEAVINGS = 6;
/** gup-interleaved's era follows the seed (seed % 3): 3 -> 5.15, 1 -> 6.1, 2 -> 6.18. */
const CASES: { scenario: Scenario; seed: number; def?: ScenarioDef }[] = [
  { scenario: 'gup-interleaved', seed: 3 },
  { scenario: 'gup-interleaved', seed: 1 },
  { scenario: 'gup-interleaved', seed: 2 },
  { scenario: 'gup-fast-split', seed: 1 },
  { scenario: 'vmsplice-cma', seed: 1 },
  { scenario: migrateInterleaved.name, seed: 1, def: migrateInterleaved },
  { scenario: migrateInterleaved.name, seed: 2, def: migrateInterleaved },
];

/** An unregistered scenario's ftrace trace and truth, as generate() makes them (a counting pass for the header). */
async function generateDef(def: ScenarioDef, seed: number, out: Sink): Promise<Truth> {
  const ctx = (em: Emitter) => ({ em, mm: new Mm(em), rng: new Rng((seed ^ hash32(def.name)) >>> 0), format: 'ftrace' as const, scale: 1, seed });
  const dry = new Emitter('ftrace', null);
  await def.run(ctx(dry));
  const header = headerLines('ftrace', dry.entries, dry.entries + dry.lost);
  out.write(header.join('\n') + '\n');
  const em = new Emitter('ftrace', out);
  const res = await def.run(ctx(em));
  await em.end();
  return {
    scenario: def.name, seed, format: 'ftrace', kernel: KERNEL, scale: 1, description: res.description, lines: header.length + em.lines,
    events: Object.fromEntries(em.counts), expect: res.expect, forbid: res.forbid,
  };
}

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
      const truth = c.def ? await generateDef(c.def, c.seed, sink) : await generate(c.scenario, sink, { seed: c.seed, format: 'ftrace' });
      const text = sink.chunks.join('');
      const base = await findings(text, truth);
      assert.deepEqual(base.diffs, [], 'the generated order matches the truth');
      let moved = 0;
      let split = 0;
      const seen = new Set([text]);
      for (let i = 0; i < INTERLEAVINGS; i++) {
        const x = interleave(text, c.seed * 1000 + i);
        moved += x.moved;
        split += c.def ? frozenSplits(x.text) : splitHalves(x.text);
        // A draw that reproduces an order already replayed has the same findings (and DuckDB refuses the same content twice).
        if (seen.has(x.text)) continue;
        seen.add(x.text);
        const got = await findings(x.text, truth);
        assert.deepEqual(got.diffs, [], `interleaving ${i}: truth`);
        assert.deepEqual(got.rows, base.rows, `interleaving ${i}: findings`);
      }
      assert.ok(moved > 0, 'the draws reorder ties');
      if (c.scenario === 'gup-interleaved') assert.ok(split > 0, 'other tasks\' events between the halves of a pin');
      if (c.def) assert.ok(split > 0, 'other CPUs\' events between a freeze and its unfreeze');
    });
  }
});
