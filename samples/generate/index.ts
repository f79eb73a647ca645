/**
 * Scenario trace generators: realistic 6.1 kernel traces (ftrace, trace-cmd report, perf script) of page
 * refcount / GUP pin / CMA / dev_pagemap workloads embedded in background noise, each with the truth a correct
 * replay must reproduce (types.ts). Deterministic for a seed; memory bounded for any scale (output is streamed
 * in ~64 KiB chunks with backpressure).
 *
 * The ftrace header states the number of entries that follow, so generate() to a stream runs an ftrace scenario
 * twice: a counting pass (nothing formatted) and the writing pass. Both draw the same random numbers, so they agree.
 * generateToFile runs it once: it writes the body first and puts the header in front afterwards.
 */
import { Emitter, headerLines, type Format } from './emit.js';
import { hash32 } from './kallsyms.js';
import { Mm } from './mm.js';
import { Rng } from './prng.js';
import { daxPgmap } from './scenarios/dax-pgmap.js';
import { daxPgmapLeak } from './scenarios/dax-pgmap-leak.js';
import { exitWithPins } from './scenarios/exit-with-pins.js';
import { gupFastSplit } from './scenarios/gup-fast-split.js';
import { gupInterleaved } from './scenarios/gup-interleaved.js';
import { iouringLongterm } from './scenarios/iouring-longterm.js';
import { iouringLongtermCma } from './scenarios/iouring-longterm-cma.js';
import { lostWindow } from './scenarios/lost-window.js';
import { migrateInterleaved } from './scenarios/migrate-interleaved.js';
import { noise } from './scenarios/noise.js';
import { pinLeak } from './scenarios/pin-leak.js';
import { tracingGap } from './scenarios/tracing-gap.js';
import { vmallocRemap } from './scenarios/vmalloc-remap.js';
import { vmallocUaf } from './scenarios/vmalloc-uaf.js';
import { vmspliceCma } from './scenarios/vmsplice-cma.js';
import { cmaLruDrain } from './scenarios/cma-lru-drain.js';
import { ERA_KERNEL, KERNEL, SCENARIO_NAMES, type Ctx, type Era, type Scenario, type ScenarioDef, type Truth } from './types.js';

export type { Format } from './emit.js';
export type {
  Expect, Scenario, Truth, TruthAnomaly, TruthCmaAttempt, TruthCmaBlocker, TruthGap, TruthHold, TruthOutstanding, TruthPgmap, TruthPin,
} from './types.js';
export { FINDINGS } from './types.js';

const DEFS: ScenarioDef[] = [
  vmallocRemap, vmallocUaf, vmspliceCma, iouringLongterm, iouringLongtermCma, daxPgmap, daxPgmapLeak, gupFastSplit,
  gupInterleaved, pinLeak, lostWindow, noise, tracingGap, cmaLruDrain, exitWithPins, migrateInterleaved,
];

if (DEFS.map((d) => d.name).join() !== SCENARIO_NAMES.join()) throw new Error('samples/generate: SCENARIO_NAMES (types.ts) and DEFS differ');

export const SCENARIOS: { name: Scenario; summary: string }[] = DEFS.map(({ name, summary }) => ({ name, summary }));

export interface GenerateOptions {
  seed?: number;
  /** Multiplies the background traffic: its rate in the scenarios, the length of the noise scenario (~50k lines per unit). */
  scale?: number;
  format?: Format;
  /**
   * The kernel era (types.ts Era): the operations' shapes in the scenarios that imitate several, and for every
   * scenario the line formats (6.18: raw mapcount=) and the truth's kernel. Absent: drawn from the seed where a
   * scenario imitates several eras, 6.1 formats.
   */
  era?: Era;
}

function context(em: Emitter, format: Format, seed: number, scale: number, scenario: Scenario, era?: Era): Ctx {
  return { em, mm: new Mm(em, era === '6.18'), rng: new Rng((seed ^ hash32(scenario)) >>> 0), format, scale, seed, era };
}

function scenarioDef(scenario: Scenario): ScenarioDef {
  const def = DEFS.find((d) => d.name === scenario);
  if (!def) throw new Error(`unknown scenario '${scenario}' (known: ${SCENARIOS.map((s) => s.name).join(', ')})`);
  return def;
}

function settings(opts: GenerateOptions): { seed: number; scale: number; format: Format } {
  const scale = opts.scale ?? 1;
  if (!(scale > 0)) throw new Error('scale must be > 0');
  return { seed: opts.seed ?? 1, scale, format: opts.format ?? 'ftrace' };
}

/** Stream `scenario`'s trace to `out` (respecting backpressure) and return its truth. */
export async function generate(scenario: Scenario, out: NodeJS.WritableStream, opts: GenerateOptions = {}): Promise<Truth> {
  const def = scenarioDef(scenario);
  const { seed, scale, format } = settings(opts);
  let header = headerLines(format, 0, 0);
  if (format === 'ftrace') {
    // The header states how many entries follow: a counting pass (nothing formatted) first.
    const dry = new Emitter(format, null);
    await def.run(context(dry, format, seed, scale, scenario, opts.era));
    header = headerLines(format, dry.entries, dry.entries + dry.lost);
  }
  if (header.length > 0) out.write(header.join('\n') + '\n');
  const body = await generateBody(scenario, out, opts);
  if (body.header.join('\n') !== header.join('\n')) throw new Error('generator bug: the counting pass disagrees with the written trace');
  return body.truth;
}

/**
 * One pass: stream the events of `scenario` to `out` WITHOUT the header block, and return the truth (its line
 * count includes the header) with the header lines to put in front. For a file this halves the work of an ftrace
 * trace, whose header needs the number of entries that follow (generateToFile).
 */
export async function generateBody(scenario: Scenario, out: NodeJS.WritableStream, opts: GenerateOptions = {}): Promise<{ truth: Truth; header: string[] }> {
  const def = scenarioDef(scenario);
  const { seed, scale, format } = settings(opts);
  const em = new Emitter(format, out);
  const res = await def.run(context(em, format, seed, scale, scenario, opts.era));
  await em.end();
  const header = headerLines(format, em.entries, em.entries + em.lost);
  const truth: Truth = {
    scenario,
    seed,
    format,
    kernel: opts.era ? ERA_KERNEL[opts.era] : KERNEL,
    scale,
    description: res.description,
    lines: header.length + em.lines,
    events: Object.fromEntries([...em.counts.entries()].sort(([a], [b]) => (a < b ? -1 : 1))),
    expect: res.expect,
    forbid: res.forbid,
  };
  return { truth, header };
}
