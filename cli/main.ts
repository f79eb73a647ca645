import { Command, Option } from 'commander';
import { release } from 'node:os';
import type { Db } from '../db/duckdb.js';
import { FORMATS } from '../ingest/detect.js';
import { ALL_TABLES } from '../db/setup.js';
import type { ExportFormat } from '../export/tables.js';
import type { IngestSummary } from '../ingest/ingest.js';
import { InputError } from '../ingest/source.js';
import { SCENARIOS, type Scenario } from '../samples/generate/file.js';
import { collect, quietErrors } from './query.js';
import type { ReplayOptions, ReplaySummary } from '../replay/replay.js';

/**
 * refscope's command line: wires commander commands to the modules; no analysis here. Each command loads its
 * modules when it runs: the report stack (vega) alone takes most of a second to load.
 */

// `refscope query ... | head`: a closed pipe ends the output, not the program with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

const openDb = async (...a: Parameters<typeof Db.open>): Promise<Db> => (await import('../db/duckdb.js')).Db.open(...a);

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
  .option('--no-replay', 'skip replaying each trace after it is loaded')
  .option('--json', 'print the summary as JSON')
  .action(async (files: string[], o) => {
    const { ingest } = await import('../ingest/ingest.js');
    const { formatSummary, replay } = await import('../replay/replay.js');
    const db = await openDb(o.db);
    const summaries: (IngestSummary & { replay?: ReplaySummary })[] = [];
    try {
      for (const f of files) {
        const s = await ingest(db, f, {
          format: o.format,
          replace: o.replace,
          progress: !o.json && process.stderr.isTTY,
          kernel: o.kernel,
          mtLayout: o.mtLayout,
        });
        if (!o.json) printIngestSummary(s);
        // Replay runs after the ingest committed (it reads events on its own connection).
        const r = o.replay ? await replay(db, s.trace_id, { mtLayout: o.mtLayout }) : undefined;
        if (r && !o.json) console.log(formatSummary(r));
        summaries.push(r ? { ...s, replay: r } : s);
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
    const { generateToFile } = await import('../samples/generate/file.js');
    const truth = await generateToFile(scenario as Scenario, o.output, { scale, seed, format: o.format });
    console.log(`${o.output}: ${truth.lines} lines (${scenario}, ${o.format}); truth in ${o.output}.truth.json`);
  });

program
  .command('export')
  .description('write a table of one trace (or of all traces) as an Arrow IPC file, Parquet or CSV')
  .addOption(dbOption())
  .option('--trace <id>', 'trace id (default: every trace)')
  .option('--arrow <file>', 'Arrow IPC file (refscope ingest reads it back)')
  .option('--parquet <dir>', 'directory for <table>.parquet')
  .option('--csv <file>', 'CSV file with a header (refscope ingest reads it back)')
  .option('--perfetto <file>', 'pins, holds, page lifetimes and CMA calls of one trace (default: the last) as Chrome trace-event JSON for ui.perfetto.dev')
  .addOption(new Option('--table <table>', 'table to export').choices(ALL_TABLES.map((t) => t.name)).default('events'))
  .action(async (o) => {
    if (o.perfetto !== undefined) {
      if (['arrow', 'parquet', 'csv'].some((f) => o[f] !== undefined)) throw new UsageError('export: --perfetto cannot be combined with --arrow, --parquet or --csv');
      return (await import('./report.js')).perfettoCommand(o);
    }
    const { exportTable } = await import('../export/tables.js');
    const targets = (['arrow', 'parquet', 'csv'] as ExportFormat[]).filter((f) => o[f] !== undefined);
    if (targets.length !== 1) throw new UsageError('export: give exactly one of --arrow FILE, --parquet DIR, --csv FILE, --perfetto FILE');
    if (o.trace !== undefined && !/^\d+$/.test(o.trace)) throw new UsageError(`export: --trace ${o.trace}: not a trace id`);
    const db = await openDb(o.db, { readOnly: true }).catch((e: Error) => {
      throw new UsageError(`${o.db}: cannot open database: ${e.message.split('\n')[0]}`);
    });
    try {
      const format = targets[0];
      const r = await exportTable(db, { table: o.table, traceId: o.trace === undefined ? undefined : Number(o.trace), format, target: o[format] });
      console.error(`exported ${r.rows} rows of ${r.table} to ${r.file}`);
    } finally {
      db.close();
    }
  });

program
  .command('probes')
  .description('print a shell script that sets up tracefs to capture what refscope understands (events, kprobes, stacks)')
  .option('--kernel <version>', 'kernel release of the machine to trace (default: this machine, uname -r)')
  .option('--tracefs <dir>', 'tracefs mount point', '/sys/kernel/tracing')
  .action(async (o) => {
    const { probesScript } = await import('../ingest/probes.js');
    process.stdout.write(probesScript({ kernel: o.kernel ?? release(), tracefs: o.tracefs }));
  });

program
  .command('demo')
  .description('run the whole pipeline on bundled samples: generate, ingest, replay, report')
  .option('--out <dir>', 'where the database and the report go', 'refscope-demo')
  .action(async (o) => {
    await (await import('./demo.js')).demo(o.out);
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

quietErrors(program.command('query'))
  .description('run a query of the library (queries/*.sql), or --sql on a read-only connection, or --list them')
  .argument('[name]', 'query name (see --list)')
  .addOption(dbOption())
  .option('--trace <id>', 'trace id (default: every trace)')
  .option('--param <key=value>', 'query parameter (repeat for more)', collect, [])
  .addOption(new Option('--format <format>', 'output format').choices(['table', 'json', 'csv']).default('table'))
  .option('--limit <n>', 'print at most n rows')
  .option('--columns <list>', 'print only these columns, in this order (comma-separated)')
  .option('--sql <sql>', 'run this SQL on a READ-ONLY connection instead of a library query')
  .option('--list', 'list the queries with their parameters and defaults')
  .action(async (name: string | undefined, o) => {
    await (await import('./query.js')).queryCommand(name, o);
  });

quietErrors(program.command('check'))
  .description('exit 1 when a finding kind exceeds its limit (CI gate); 0 otherwise, 2 on usage or data errors')
  .addOption(dbOption())
  .option('--trace <id>', 'trace id (default: every trace, counts summed)')
  .option('--fail-on <kinds>', 'comma-separated: leaks,pin-leaks,cma-blockers,pgmap-imbalance,use-after-free (default: all)')
  .option('--max <name=n>', 'allowed count of a kind (default 0; repeat for more)', collect, [])
  .option('--include-uncertain', 'count findings that cross lost-event windows too')
  .option('--json', 'print the result as JSON')
  .action(async (o) => {
    process.exitCode = await (await import('./query.js')).checkCommand(o);
  });

program
  .command('report')
  .description('write an offline HTML report, a Markdown summary, findings.json and charts for one replayed trace')
  .addOption(dbOption())
  .option('--trace <id>', 'trace id (default: the last ingested)')
  .option('--out <dir>', 'output directory', 'refscope-report')
  .option('--format <formats>', 'comma-separated: html,md,json', 'html,md,json')
  .action(async (o) => {
    await (await import('./report.js')).reportCommand(o);
  });

program
  .command('replay')
  .description('replay traces: page lifetimes, pins, holds, CMA blockers, pgmap balance, anomalies, count= check')
  .addOption(dbOption())
  .option('--trace <id>', 'trace id (default: every trace)')
  .option('--longterm-threshold <duration>', 'a pin of unknown FOLL_LONGTERM held this long on a CMA page is reported', '1s')
  .option('--hold-threshold <duration>', 'plain references held at least this long are written to holds', '100ms')
  .addOption(new Option('--mt-layout <layout>', 'migratetype numbering (default: the one ingest recorded)').choices(['mainline', 'nocma', 'pre4.4']))
  .option('--cma-range <start-end>', 'a CMA pfn range, END exclusive (hex 0x.. or decimal; repeat for more)', (v: string, prev: string[]) => [...prev, v], [] as string[])
  .option('--movable-range <start-end>', 'a ZONE_MOVABLE pfn range, END exclusive (from /proc/zoneinfo; repeat for more)', (v: string, prev: string[]) => [...prev, v], [] as string[])
  .option('--json', 'print the summary as JSON')
  .action(async (o) => {
    const { formatSummary, parseDuration, parsePfnRange, replay, replayAll } = await import('../replay/replay.js');
    const duration = (flag: string, v: string): number => {
      const ns = parseDuration(v);
      if (!(ns >= 0)) throw new UsageError(`replay: ${flag} ${v}: not a duration (e.g. 1s, 100ms, 250us)`);
      return ns;
    };
    const ranges = (flag: string, vs: string[]) =>
      vs.map((r) => {
        const range = parsePfnRange(r);
        if (!range) throw new UsageError(`replay: ${flag} ${r}: expected START-END pfns with END > START`);
        return range;
      });
    const opts: ReplayOptions = {
      longtermThresholdNs: duration('--longterm-threshold', o.longtermThreshold),
      holdThresholdNs: duration('--hold-threshold', o.holdThreshold),
      mtLayout: o.mtLayout,
      cmaRanges: ranges('--cma-range', o.cmaRange),
      movableRanges: ranges('--movable-range', o.movableRange),
    };
    if (o.trace !== undefined && !/^\d+$/.test(o.trace)) throw new UsageError(`replay: --trace ${o.trace}: not a trace id`);
    const db = await openDb(o.db);
    let out: ReplaySummary[];
    try {
      if (o.trace !== undefined) {
        const known = await db.tableExists('traces') && (await db.one('SELECT 1 AS x FROM traces WHERE trace_id = $1', [Number(o.trace)]));
        if (!known) throw new UsageError(`replay: no trace ${o.trace} in ${o.db}`);
        out = [await replay(db, Number(o.trace), opts)];
      } else out = await replayAll(db, opts);
    } finally {
      db.close();
    }
    if (o.json) console.log(JSON.stringify(out.length === 1 ? out[0] : out, null, 2));
    else if (out.length === 0) console.log(`no traces in ${o.db}`);
    else for (const s of out) console.log(formatSummary(s));
  });

/** Errors a user can act on print as one line; anything else is a bug and keeps its stack. */
async function isUserError(e: unknown): Promise<boolean> {
  if (e instanceof InputError || e instanceof UsageError) return true;
  const [{ DuplicateTraceError }, { ReportUsageError }] = await Promise.all([import('../ingest/ingest.js'), import('./report.js')]);
  return e instanceof DuplicateTraceError || e instanceof ReportUsageError;
}

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (await isUserError(e)) {
    console.error(`refscope: ${(e as Error).message}`);
    process.exitCode = 2;
  } else {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`refscope: ${msg}`);
    if (process.env.REFSCOPE_DEBUG) console.error(e);
    process.exitCode = 2;
  }
}
