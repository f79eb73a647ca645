import { Option, type Command } from 'commander';
import type { ReplayOptions, ReplaySummary } from '../../replay/replay.js';
import { dbOption, openDb, UsageError } from '../common.js';

/** `refscope replay`: (re)run the model over ingested traces with the thresholds and ranges given. */
export function replayCommand(program: Command): void {
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
      const { formatSummary, parseDuration, parsePfnRange, replay, replayAll } = await import('../../replay/replay.js');
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
          const { rowOf } = await import('../../queries/statements.js');
          const known = (await db.tableExists('traces')) && ((await rowOf<{ n: number }>(db, 'common/trace-exists.sql', { trace_id: Number(o.trace) }))?.n ?? 0) > 0;
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
}
