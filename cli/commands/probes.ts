import type { Command } from 'commander';
import { release } from 'node:os';

/** `refscope probes`: the tracefs setup script for the events, kprobes and stacks refscope reads. */
export function probesCommand(program: Command): void {
  program
    .command('probes')
    .description('print a shell script that sets up tracefs to capture what refscope understands (events, kprobes, stacks)')
    .option('--kernel <version>', 'kernel release of the machine to trace (default: this machine, uname -r)')
    .option('--tracefs <dir>', 'tracefs mount point', '/sys/kernel/tracing')
    .action(async (o) => {
      const { probesScript } = await import('../../ingest/probes.js');
      process.stdout.write(probesScript({ kernel: o.kernel ?? release(), tracefs: o.tracefs }));
    });
}
