import type { Command } from 'commander';
import { collect, commandOutput, dbOption, openReadOnly, quietErrors, traceId } from '../common.js';

/** `refscope check`: the CI gate over the finding queries. */
export function checkCommand(program: Command): void {
  quietErrors(program.command('check'))
    .description('exit 1 when a finding kind exceeds its limit (CI gate); 0 otherwise, 2 on usage or data errors')
    .addOption(dbOption())
    .option('--trace <id>', 'trace id (default: every trace, counts summed)')
    .option('--fail-on <kinds>', 'comma-separated: leaks,pin-leaks,cma-blockers,pgmap-imbalance,use-after-free (default: all)')
    .option('--max <name=n>', 'allowed count of a kind (default 0; repeat for more)', collect, [])
    .option('--include-uncertain', 'count findings that cross lost-event windows too')
    .option('--json', 'print the result as JSON')
    .action(async (o: CheckCommandOptions) => {
      process.exitCode = await runCheck(o);
    });
}

export interface CheckCommandOptions {
  db: string;
  trace?: string;
  failOn?: string;
  max?: string[];
  json?: boolean;
  includeUncertain?: boolean;
}

/** Prints the result; returns the exit code: 0 all within limits, 1 a gated kind over its limit. */
async function runCheck(o: CheckCommandOptions): Promise<number> {
  const { check, findingKinds, formatCheck, parseFailOn, parseMax } = await import('../../queries/check.js');
  const failOn = o.failOn === undefined ? findingKinds() : parseFailOn(o.failOn);
  const max = parseMax(o.max ?? []);
  const t = traceId(o.trace);
  const db = await openReadOnly(o.db);
  try {
    const rep = await check(db, { traceId: t, failOn, max, includeUncertain: o.includeUncertain });
    commandOutput.write(o.json ? JSON.stringify(rep, null, 2) + '\n' : formatCheck(rep, o.includeUncertain));
    return rep.ok ? 0 : 1;
  } finally {
    db.close();
  }
}
