import { Option, type Command } from 'commander';
import { SCENARIO_NAMES, type Scenario } from '../../samples/generate/types.js';
import { UsageError } from '../common.js';

/** `refscope generate`: a scenario trace with known answers, and its truth beside it. */
export function generateCommand(program: Command): void {
  program
    .command('generate')
    .description('write a scenario trace with known answers (FILE) and its truth (FILE.truth.json)')
    .argument('<scenario>', `one of: ${SCENARIO_NAMES.join(', ')}`)
    .requiredOption('-o, --output <file>', 'trace file to write')
    .option('--scale <n>', 'background traffic multiplier (noise: 50k lines per unit)', '1')
    .option('--seed <n>', 'random seed (same seed, same bytes)', '1')
    .addOption(new Option('--format <format>', 'output layout').choices(['ftrace', 'trace-cmd', 'perf']).default('ftrace'))
    .addOption(new Option('--era <era>', 'kernel era, any scenario: 6.18 prints mapcount= raw (-1 = unmapped), and operations take the era\'s shape where a scenario imitates several (default: by the seed, 6.1 formats)').choices(['5.15', '6.1', '6.18']))
    .action(async (scenario: string, o) => {
      if (!(SCENARIO_NAMES as readonly string[]).includes(scenario)) throw new UsageError(`unknown scenario '${scenario}'`);
      const scale = Number(o.scale);
      const seed = Number(o.seed);
      if (!(scale > 0) || !Number.isInteger(seed)) throw new UsageError('--scale must be > 0 and --seed an integer');
      const { generateToFile } = await import('../../samples/generate/file.js');
      const truth = await generateToFile(scenario as Scenario, o.output, { scale, seed, format: o.format, era: o.era });
      console.log(`${o.output}: ${truth.lines} lines (${scenario}, ${o.format}); truth in ${o.output}.truth.json`);
    });
}
