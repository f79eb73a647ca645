import { Option, type Command } from 'commander';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dbOption, openReadOnly, quietErrors, traceId, UsageError } from '../common.js';

/** `refscope diff A B`: findings new / fixed / unchanged and per call site changes between two replayed traces. */
export function diffCommand(program: Command): void {
  quietErrors(program.command('diff'))
    .description('compare two replayed traces (before / after a patch): findings new, fixed, unchanged; changes per call site')
    .argument('<a>', 'trace id of A (the before) in --db')
    .argument('<b>', 'trace id of B (the after) in --db, or in --db-b when given')
    .addOption(dbOption())
    .option('--db-b <file>', 'database holding trace B (default: --db)')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--out <dir>', 'also write the comparison as an HTML page, DIR/diff.html')
    .option('--fail-on-new', 'exit 1 when B has certain findings of a gated kind that A lacks')
    .action(async (a: string, b: string, o: DiffCommandOptions) => {
      process.exitCode = await runDiff(a, b, o);
    });
}

export interface DiffCommandOptions {
  db: string;
  dbB?: string;
  format?: string;
  out?: string;
  failOnNew?: boolean;
}

async function runDiff(a: string, b: string, o: DiffCommandOptions): Promise<number> {
  const ta = traceId(a)!;
  const tb = traceId(b)!;
  const { diffTraces } = await import('../../queries/diff.js');
  const { renderDiffHtml, renderDiffJson, renderDiffText } = await import('../../reports/diff.js');
  const pathB = o.dbB ?? o.db;
  const dbA = await openReadOnly(o.db);
  try {
    const dbB = pathB === o.db ? dbA : await openReadOnly(pathB);
    try {
      const d = await diffTraces(dbA, o.db, ta, dbB, pathB, tb);
      process.stdout.write(o.format === 'json' ? renderDiffJson(d) : renderDiffText(d));
      if (o.out !== undefined) {
        try {
          mkdirSync(o.out, { recursive: true });
          writeFileSync(join(o.out, 'diff.html'), renderDiffHtml(d));
        } catch (e) {
          throw new UsageError(`${o.out}: cannot write diff.html: ${(e as Error).message.split('\n')[0]}`);
        }
        console.error(`diff page in ${join(o.out, 'diff.html')}`);
      }
      return o.failOnNew && d.new_certain > 0 ? 1 : 0;
    } finally {
      if (dbB !== dbA) dbB.close();
    }
  } finally {
    dbA.close();
  }
}
