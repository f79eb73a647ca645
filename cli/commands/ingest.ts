import { InvalidArgumentError, Option, type Command } from 'commander';
import { escapeControl } from '../../db/escape.js';
import { FORMATS } from '../../ingest/detect.js';
import type { IngestSummary } from '../../ingest/ingest.js';
import { callsiteRule } from '../../ingest/stack.js';
import type { ReplaySummary } from '../../replay/replay.js';
import { dbOption, openDb } from '../common.js';

/** `refscope ingest`: trace files into the database, each replayed after it is loaded (unless --no-replay). */
export function ingestCommand(program: Command): void {
  program
    .command('ingest')
    .description('read trace files (or - for stdin) into the database, one trace per input')
    .argument('<files...>', 'trace files (.gz ok) or - for stdin')
    .addOption(dbOption())
    .addOption(new Option('--format <format>', 'input format').choices(['auto', ...FORMATS]).default('auto'))
    .option('--replace', 'replace a trace already ingested with the same content')
    .option('--kernel <version>', 'kernel release of the traced machine (decides mapcount semantics)')
    .addOption(new Option('--mt-layout <layout>', 'migratetype numbering').choices(['mainline', 'nocma', 'pre4.4']).default('mainline'))
    .addOption(
      new Option('--callsite-skip <regex>', 'more function names the call site passes over (regular expression, matched whole), on top of the documented list')
        .env('REFSCOPE_CALLSITE_SKIP')
        .argParser((v: string) => {
          try {
            return callsiteRule(v).extra;
          } catch (e) {
            throw new InvalidArgumentError((e as Error).message);
          }
        }),
    )
    .option(
      '--kallsyms <file>',
      "perf.data kernel frames: symbols from this copy of the traced machine's /proc/kallsyms ('none': raw addresses; default: this machine's when it recorded the file)",
    )
    .option('--no-replay', 'skip replaying each trace after it is loaded')
    .option('--json', 'print the summary as JSON')
    .action(async (files: string[], o) => {
      const { ingest, IngestAborted } = await import('../../ingest/ingest.js');
      const { formatSummary, replay } = await import('../../replay/replay.js');
      const db = await openDb(o.db);
      const summaries: (IngestSummary & { replay?: ReplaySummary })[] = [];
      const signals = new StopSignals();
      try {
        for (const f of files) {
          if (signals.stop.signal.aborted) break; // the inputs after a stopped one are not read
          signals.ingesting = true;
          const s = await ingest(db, f, {
            format: o.format,
            replace: o.replace,
            progress: !o.json && process.stderr.isTTY,
            kernel: o.kernel,
            mtLayout: o.mtLayout,
            callsiteSkip: o.callsiteSkip,
            kallsyms: o.kallsyms === 'none' ? false : o.kallsyms,
            stop: signals.stop.signal,
            cancel: signals.cancel.signal,
          }).catch((e: unknown) => {
            if (!(e instanceof IngestAborted)) throw e;
            console.error(`refscope: ${escapeControl(e.message)}`);
            return null;
          });
          signals.ingesting = false;
          if (s === null) {
            process.exitCode = 130;
            return;
          }
          if (s.truncated !== null)
            console.error(`trace ${s.trace_id}: stopped by ${escapeControl(s.truncated)} after ${s.lines} lines: kept as a truncated trace`);
          if (!o.json) console.log(formatIngestSummary(s));
          // Replay runs after the ingest committed (it reads events on its own connection).
          const r = o.replay ? await replay(db, s.trace_id, { mtLayout: o.mtLayout }) : undefined;
          if (r && !o.json) console.log(formatSummary(r));
          summaries.push(r ? { ...s, replay: r } : s);
        }
      } finally {
        signals.remove();
        db.close();
      }
      if (o.json) console.log(JSON.stringify(summaries.length === 1 ? summaries[0] : summaries, null, 2));
    });
}

/**
 * SIGINT/SIGTERM while ingesting: the first stops reading (what was read is committed as a truncated trace and
 * replayed; later inputs are skipped), a second rolls the ingest back (exit 130). A second signal outside an ingest
 * (during a replay) exits at once: replay's recovery removes what it leaves (db/recover.ts).
 */
class StopSignals {
  readonly stop = new AbortController();
  readonly cancel = new AbortController();
  ingesting = false;
  private readonly on = (sig: NodeJS.Signals) => {
    if (!this.stop.signal.aborted) {
      const what = this.ingesting ? 'stopping the input, keeping what was read' : 'no more inputs after this one';
      process.stderr.write(`refscope: ${sig}: ${what} (${sig} again to abort)\n`);
      this.stop.abort(sig);
    } else if (this.ingesting) this.cancel.abort(sig);
    else process.exit(130);
  };

  constructor() {
    process.on('SIGINT', this.on);
    process.on('SIGTERM', this.on);
  }

  remove(): void {
    process.off('SIGINT', this.on);
    process.off('SIGTERM', this.on);
  }
}

/** The summary echoes trace content (event names, unparsed lines, the file name): control characters escaped. */
export function formatIngestSummary(s: IngestSummary): string {
  const out: string[] = [];
  const top = Object.entries(s.event_counts)
    .slice(0, 12)
    .map(([e, n]) => `${escapeControl(e)} ${n}`)
    .join(', ');
  // Binary captures count records (samples, ring-buffer entries), not lines.
  const unit = s.format === 'perf-data' || s.format === 'trace-dat' ? 'records' : 'lines';
  out.push(
    `trace ${s.trace_id}: ${escapeControl(s.source)} (${s.format}) ${s.lines} ${unit}, ${s.events} events, ${s.stacks} stacks, ` +
      `${s.unparsed_lines} unparsed, ${s.lost_events} lost in ${s.seconds.toFixed(2)} s (${Math.round(s.lines_per_second)} ${unit}/s)`,
  );
  out.push(`  events: ${top}${Object.keys(s.event_counts).length > 12 ? ', ...' : ''}`);
  if (s.replaced.length) out.push(`  replaced trace ${s.replaced.join(', ')}`);
  for (const n of s.notes ?? []) out.push(`  note: ${n}`);
  // Escaped, a line of binary is one bounded line on the terminal whatever it held.
  for (const u of s.unparsed_examples.slice(0, 3))
    out.push(`  unparsed line ${u.line} (${escapeControl(u.reason)}): ${escapeControl(u.text.slice(0, 120))}`);
  return out.join('\n');
}
