import { Option, type Command } from 'commander';
import { release } from 'node:os';

/** `refscope probes`: the tracefs setup script for the events, kprobes and stacks refscope reads. */
export function probesCommand(program: Command): void {
  program
    .command('probes')
    .description('print a shell script that captures what refscope understands (events, kprobes, stacks) through tracefs, trace-cmd or perf')
    .option('--kernel <version>', 'kernel release of the machine to trace (default: this machine, uname -r)')
    .option('--tracefs <dir>', 'tracefs mount point', '/sys/kernel/tracing')
    .addOption(
      new Option('--as <tool>', 'capture with: tracefs (writes trace text), trace-cmd record (trace.dat) or perf record (perf.data)')
        .choices(['tracefs', 'trace-cmd', 'perf'])
        .default('tracefs'),
    )
    .action(async (o) => {
      const { probesScript } = await import('../../ingest/probes.js');
      process.stdout.write(probesScript({ kernel: o.kernel ?? release(), tracefs: o.tracefs, as: o.as }));
    });
}
