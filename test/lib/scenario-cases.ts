/**
 * The generated scenario traces the e2e tests replay, one database each in test/lib/fixtures.ts's cache:
 * queries-scenarios.test.ts builds them (fresh: each against its truth is its subject) and checks every query
 * against the truth; report-all.test.ts reports one case of each scenario from the same cache entries (same inputs,
 * same options: same key), so a scenario is ingested and replayed once per run, not once per file.
 */
import { SCENARIOS, type Format, type GenerateOptions, type Scenario } from '../../samples/generate/index.js';
import type { Input } from './fixtures.js';

export interface ScenarioCase {
  name: Scenario;
  format: Format;
  seed?: number;
}

/**
 * Every scenario as raw ftrace; the format-sensitive ones (lost markers, kprobe pointers) in the other layouts too;
 * exit-with-pins also with the seeds whose leaker forks a child that outlives it (3: not certain) or exits just
 * after it (4: certain).
 */
export const SCENARIO_CASES: ScenarioCase[] = [
  ...SCENARIOS.map(({ name }) => ({ name, format: 'ftrace' as Format })),
  ...(['lost-window', 'vmsplice-cma', 'dax-pgmap-leak', 'exit-with-pins', 'tracing-gap'] as Scenario[]).flatMap((name) =>
    (['trace-cmd', 'perf'] as Format[]).map((format) => ({ name, format })),
  ),
  { name: 'exit-with-pins', format: 'ftrace', seed: 3 },
  { name: 'exit-with-pins', format: 'ftrace', seed: 4 },
];

/** Generator options of a case: full scale (scale barely changes the cost of a case: its fixed costs dominate). */
export const scenarioOpts = (c: ScenarioCase): GenerateOptions => ({ seed: c.seed ?? 1, scale: 1, format: c.format });

/** The fixture input of a case. */
export const scenarioInput = (c: ScenarioCase): Input => ({ scenario: c.name, opts: scenarioOpts(c) });

export const caseKey = (c: ScenarioCase): string => `${c.name} (${c.format}${c.seed ? `, seed ${c.seed}` : ''})`;
