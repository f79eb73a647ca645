import { Command, Option } from 'commander';
import { Db } from './db/duckdb.js';
import { FORMATS } from './ingest/detect.js';
import { DuplicateTraceError, ingest, type IngestSummary } from './ingest/ingest.js';
import { InputError } from './ingest/source.js';
import { generateToFile, SCENARIOS, type Scenario } from './samples/generate/file.js';

/** refscope's command line: wires commander commands to the modules; no analysis here. */

export class UsageError extends Error {}

const program = new Command('refscope')
  .description('Leaked pages, GUP pins blocking CMA and dev_pagemap reference imbalance, from kernel traces.')
  .showHelpAfterError();

const dbOption = () => new Option('--db <file>', 'DuckDB database file').default('refscope.duckdb');

program
  .command('ingest')
  .description('read trace files (or - for stdin) into the database, one trace per input')
  .argument('<files...>', 'trace files (.gz ok) or - for stdin')
  .addOption(dbOption())
  .addOption(new Option('--format <format>', 'input format').choices(['auto', ...FORMATS]).default('auto'))
  .option('--replace', 'replace a trace already ingested with the same content')
  .option('--kernel <version>', 'kernel release of the traced machine (decides mapcount semantics)')
  .addOption(new Option('--mt-layout <layout>', 'migratetype numbering').choices(['mainline', 'nocma', 'pre4.4']).default('mainline'))
  .option('--json', 'print the summary as JSON')
  .action(async (files: string[], o) => {
    const db = await Db.open(o.db);
    const summaries: IngestSummary[] = [];
    try {
      for (const f of files) {
        const s = await ingest(db, f, {
          format: o.format,
          replace: o.replace,
          progress: !o.json && process.stderr.isTTY,
          kernel: o.kernel,
          mtLayout: o.mtLayout,
        });
        summaries.push(s);
        if (!o.json) printIngestSummary(s);
      }
    } finally {
      db.close();
    }
    if (o.json) console.log(JSON.stringify(summaries.length === 1 ? summaries[0] : summaries, null, 2));
  });

program
  .command('generate')
  .description('write a scenario trace with known answers (FILE) and its truth (FILE.truth.json)')
  .argument('<scenario>', `one of: ${SCENARIOS.map((s) => s.name).join(', ')}`)
  .requiredOption('-o, --output <file>', 'trace file to write')
  .option('--scale <n>', 'background traffic multiplier (noise: 50k lines per unit)', '1')
  .option('--seed <n>', 'random seed (same seed, same bytes)', '1')
  .addOption(new Option('--format <format>', 'output layout').choices(['ftrace', 'trace-cmd', 'perf']).default('ftrace'))
  .action(async (scenario: string, o) => {
    if (!SCENARIOS.some((s) => s.name === scenario)) throw new UsageError(`unknown scenario '${scenario}'`);
    const scale = Number(o.scale);
    const seed = Number(o.seed);
    if (!(scale > 0) || !Number.isInteger(seed)) throw new UsageError('--scale must be > 0 and --seed an integer');
    const truth = await generateToFile(scenario as Scenario, o.output, { scale, seed, format: o.format });
    console.log(`${o.output}: ${truth.lines} lines (${scenario}, ${o.format}); truth in ${o.output}.truth.json`);
  });

function printIngestSummary(s: IngestSummary): void {
  const top = Object.entries(s.event_counts)
    .slice(0, 12)
    .map(([e, n]) => `${e} ${n}`)
    .join(', ');
  console.log(
    `trace ${s.trace_id}: ${s.source} (${s.format}) ${s.lines} lines, ${s.events} events, ${s.stacks} stacks, ` +
      `${s.unparsed_lines} unparsed, ${s.lost_events} lost in ${s.seconds.toFixed(2)} s (${Math.round(s.lines_per_second)} lines/s)`,
  );
  console.log(`  events: ${top}${Object.keys(s.event_counts).length > 12 ? ', ...' : ''}`);
  if (s.replaced.length) console.log(`  replaced trace ${s.replaced.join(', ')}`);
  for (const u of s.unparsed_examples.slice(0, 3)) console.log(`  unparsed line ${u.line} (${u.reason}): ${u.text.slice(0, 120)}`);
}

/** Errors a user can act on print as one line; anything else is a bug and keeps its stack. */
function isUserError(e: unknown): e is Error {
  return e instanceof InputError || e instanceof DuplicateTraceError || e instanceof UsageError;
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (isUserError(e)) {
    console.error(`refscope: ${e.message}`);
    process.exitCode = 2;
  } else {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`refscope: ${msg}`);
    if (process.env.REFSCOPE_DEBUG) console.error(e);
    process.exitCode = 2;
  }
}
