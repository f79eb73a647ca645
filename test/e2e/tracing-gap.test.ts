/**
 * tracing-gap under seeds 1..9, which cover every kernel era (5.15, 6.1, 6.18: the GUP pin and get forms) x every
 * gap form (tracing_on pause, a wrapped per-CPU buffer, a restarted trace_pipe reader) in ftrace, and every gap
 * form in the trace-cmd and perf layouts too (the layout changes the markers, not the era's operations):
 * pages freed before the gap, allocated again inside it and put/freed after it are never a use-after-free (count= shows them alive); the one real use-after-free stays certain; the
 * untraced windows replay infers are exactly the truth's; `check` fails on the real bug only; the summary names
 * the windows; the GUP pin after the gap is exactly the truth's.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { check } from '../../queries/check.js';
import { runQuery } from '../../queries/runner.js';
import { formatSummary, replay, type ReplaySummary } from '../../replay/replay.js';
import { writeReport } from '../../reports/report.js';
import { generateToFile } from '../../samples/generate/file.js';
import type { Format, Truth } from '../../samples/generate/index.js';

const SEEDS = [1, 2, 3, 4, 5, 6, 7, 8, 9];
const FORMATS: Format[] = ['ftrace', 'trace-cmd', 'perf'];
const sorted = <T>(xs: T[]): T[] => [...xs].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));

let dir: string;
let db: Db;
const runs: { seed: number; format: Format; id: number; truth: Truth; s: ReplaySummary }[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'refscope-gap-'));
  db = await Db.open(join(dir, 'gap.duckdb'));
  const formOf = (t: Truth) => t.description.split(',')[0];
  for (const seed of SEEDS)
    for (const format of FORMATS) {
      const file = join(dir, `tracing-gap.${seed}.${format}.txt`);
      const truth = await generateToFile('tracing-gap', file, { seed, scale: 1, format });
      // Other layouts: the first seed of each gap form only.
      if (format !== 'ftrace' && runs.some((r) => r.format === format && formOf(r.truth) === formOf(truth))) continue;
      const { trace_id } = await ingest(db, file);
      runs.push({ seed, format, id: trace_id, truth, s: await replay(db, trace_id, {}) });
    }
});

after(() => {
  db?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('tracing-gap: a gap in the trace is never a use-after-free', () => {
  it('covers every kernel era x gap form (ftrace) and every gap form in every layout, with and without a marker', () => {
    const combos = new Set(runs.map((r) => `${/kernel era (\S+):/.exec(r.truth.description)![1]} ${r.truth.description.split(',')[0]} ${r.format}`));
    for (const era of ['5.15', '6.1', '6.18'])
      for (const form of ['buffer-wrap', 'pipe-reader', 'tracing-on']) {
        assert.ok(combos.has(`${era} ${form} ftrace`), `${era} ${form} ftrace`);
        for (const format of FORMATS) assert.ok([...combos].some((c) => c.endsWith(` ${form} ${format}`)), `${form} ${format}`);
      }
    assert.ok(runs.some((r) => r.truth.expect.gaps!.some((g) => g.kind === 'double-free')), 'some seed puts a page\'s last put inside the gap');
  });

  for (const seed of SEEDS) it(`seed ${seed}, ftrace`, () => checkRun(runs.find((r) => r.seed === seed && r.format === 'ftrace')!));
  for (const format of FORMATS.filter((f) => f !== 'ftrace'))
    it(`${format}: every gap form`, async () => {
      const mine = runs.filter((r) => r.format === format);
      assert.equal(mine.length, 3);
      for (const r of mine) await checkRun(r);
    });

  it('the report says how many untraced windows the trace has and what they mean (and says nothing when it has none)', async () => {
    const inferred = runs.find((r) => r.truth.expect.gaps!.some((g) => g.kind === 'alive-on-free'))!;
    const marked = runs.find((r) => r.truth.expect.gaps!.length === 0 && r.format === 'ftrace')!;
    const file = join(dir, 'pin-leak.txt');
    await generateToFile('pin-leak', file, { seed: 1, scale: 0.05, format: 'ftrace' });
    const { trace_id: none } = await ingest(db, file);
    await replay(db, none, {});
    const n = inferred.truth.expect.gaps!.length;
    for (const [id, want] of [
      [inferred.id, new RegExp(`This trace has ${n} untraced windows: ${n} inferred from the events \\(\\d+ alive-on-free.*; \\d+ pages whose count= showed them alive after their free were allocated again unseen, not used after free`)],
      [marked.id, /This trace has 1 untraced window: 1 marked by the tracer \(1 buffer-started\)\. Events are missing there: findings resting on state that crosses one are uncertain \(query divergence\)\./],
      [none, null],
    ] as [number, RegExp | null][]) {
      const out = join(dir, `report-${id}`);
      await writeReport(db, { traceId: id, outDir: out, formats: ['md', 'html'], chartFiles: false });
      const md = readFileSync(join(out, 'report.md'), 'utf8');
      const html = readFileSync(join(out, 'index.html'), 'utf8');
      if (want) {
        assert.match(md, want);
        assert.match(html, /This trace has \d+ untraced window/);
      } else {
        assert.doesNotMatch(md, /This trace has \d+ untraced window/);
        assert.doesNotMatch(html, /This trace has \d+ untraced window/);
      }
    }
  });
});

/** One run against its truth: anomalies, gaps, explained divergences, the pin after the gap, pages, check, summary. */
async function checkRun({ id, truth, s }: (typeof runs)[number]): Promise<void> {
    const ex = truth.expect;
    const a = await db.all<{ kind: string; pfn: bigint; certain: boolean; pid: number }>(
      'SELECT kind, pfn, certain, pid FROM anomalies WHERE trace_id = $1', [id]);
    assert.deepEqual(
      sorted(a.map((x) => [x.kind, Number(x.pfn), x.certain, x.pid])),
      sorted(ex.anomalies!.map((x) => [x.kind, x.pfn, x.certain, x.pid])),
      'anomalies: only the real use-after-free, certain',
    );
    const g = await db.all<{ kind: string; pfn: bigint | null }>('SELECT kind, pfn FROM gaps WHERE trace_id = $1', [id]);
    assert.deepEqual(sorted(g.map((x) => [x.kind, x.pfn === null ? null : Number(x.pfn)])), sorted(ex.gaps!.map((x) => [x.kind, x.pfn])), 'gaps');
    const unknown = (await runQuery(db, 'divergence', { trace_id: id, explanation: 'unknown' })).rows;
    assert.deepEqual(unknown, [], 'no unexplained divergence');
    // The pin taken and dropped after the gap in the era's form: exactly the truth's, and no GUP get is a pin.
    const pins = await db.all<{ pfn: bigint; refs: number; holder_pid: number; start_ts_ns: bigint; end_ts_ns: bigint | null }>(
      'SELECT pfn, refs, holder_pid, start_ts_ns, end_ts_ns FROM pins WHERE trace_id = $1', [id]);
    assert.deepEqual(
      sorted(pins.map((p) => [Number(p.pfn), p.refs, p.holder_pid, Number(p.start_ts_ns), p.end_ts_ns === null ? null : Number(p.end_ts_ns)])),
      sorted(ex.pins!.map((p) => [p.pfn, p.refs, p.holder_pid, p.start_ts_ns, p.end_ts_ns])),
      'pins',
    );
    // The pages reallocated in the gap: lifetimes that start at their first event after it, uncertain when only
    // their own evidence shows the gap.
    for (const x of ex.gaps!.filter((x) => x.kind === 'alive-on-free')) {
      const p = await db.all<{ start_edge: boolean; uncertain: boolean }>(
        'SELECT start_edge, uncertain FROM pages WHERE trace_id = $1 AND pfn = $2 ORDER BY first_seq DESC LIMIT 1', [id, x.pfn]);
      assert.deepEqual(p.map((r) => [r.start_edge, r.uncertain]), [[true, true]], `page 0x${x.pfn!.toString(16)}`);
    }
    const rep = await check(db, { traceId: id });
    assert.deepEqual(rep.lines.filter((l) => !l.ok).map((l) => [l.kind, l.count]), [['use-after-free', 1]], 'check fails on the real bug only');
    assert.equal(s.gaps, ex.gaps!.length);
    if (s.gaps) assert.match(formatSummary(s), /untraced windows inferred: \d+ \(/);
    else assert.doesNotMatch(formatSummary(s), /untraced windows/);
}
