import { Option, type Command } from 'commander';
import { escapeControl } from '../../db/escape.js';
import { FORMATS } from '../../ingest/detect.js';
import type { IngestSummary } from '../../ingest/ingest.js';
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
    .option('--no-replay', 'skip replaying each trace after it is loaded')
    .option('--json', 'print the summary as JSON')
    .action(async (files: string[], o) => {
      const { ingest } = await import('../../ingest/ingest.js');
      const { formatSummary, replay } = await import('../../replay/replay.js');
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
          if (!o.json) console.log(formatIngestSummary(s));
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
}

/** The summary echoes trace content (event names, unparsed lines, the file name): control characters escaped. */
export function formatIngestSummary(s: IngestSummary): string {
  const out: string[] = [];
  const top = Object.entries(s.event_counts)
    .slice(0, 12)
    .map(([e, n]) => `${escapeControl(e)} ${n}`)
    .join(', ');
  out.push(
    `trace ${s.trace_id}: ${escapeControl(s.source)} (${s.format}) ${s.lines} lines, ${s.events} events, ${s.stacks} stacks, ` +
      `${s.unparsed_lines} unparsed, ${s.lost_events} lost in ${s.seconds.toFixed(2)} s (${Math.round(s.lines_per_second)} lines/s)`,
  );
  out.push(`  events: ${top}${Object.keys(s.event_counts).length > 12 ? ', ...' : ''}`);
  if (s.replaced.length) out.push(`  replaced trace ${s.replaced.join(', ')}`);
  for (const n of s.notes ?? []) out.push(`  note: ${n}`);
  // Escaped, a line of binary is one bounded line on the terminal whatever it held.
  for (const u of s.unparsed_examples.slice(0, 3))
    out.push(`  unparsed line ${u.line} (${escapeControl(u.reason)}): ${escapeControl(u.text.slice(0, 120))}`);
  return out.join('\n');
}
