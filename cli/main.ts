import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { escapeControlKeepNewlines } from '../db/escape.js';
import { InputError } from '../ingest/source.js';
import { checkCommand } from './commands/check.js';
import { demoCommand } from './commands/demo.js';
import { diffCommand } from './commands/diff.js';
import { exportCommand } from './commands/export.js';
import { generateCommand } from './commands/generate.js';
import { ingestCommand } from './commands/ingest.js';
import { probesCommand } from './commands/probes.js';
import { queryCommand } from './commands/query.js';
import { replayCommand } from './commands/replay.js';
import { reportCommand } from './commands/report.js';
import { ReportUsageError, UsageError } from './common.js';
import { packageRoot } from './package-root.js';

/**
 * refscope's command line: the program, its global options and error handling; each command is declared in
 * cli/commands/ and loads its modules only when it runs (the report stack alone takes most of a second).
 */

// `refscope query ... | head`: a closed pipe ends the output, not the program with a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };

const program = new Command('refscope')
  .description('Leaked pages, GUP pins blocking CMA and dev_pagemap reference imbalance, from kernel traces.')
  .version(version)
  .showHelpAfterError();

for (const declare of [ingestCommand, generateCommand, exportCommand, probesCommand, demoCommand, queryCommand, checkCommand, reportCommand, replayCommand, diffCommand])
  declare(program);

/** Errors a user can act on print as one line; anything else is a bug and keeps its stack. */
async function isUserError(e: unknown): Promise<boolean> {
  if (e instanceof InputError || e instanceof UsageError || e instanceof ReportUsageError) return true;
  const { DuplicateTraceError } = await import('../ingest/ingest.js');
  return e instanceof DuplicateTraceError;
}

/**
 * Errors quote input (lines, comms, file names, a binary file's first bytes): control characters are escaped, not
 * sent to the terminal, and each line is cut at MAX_ERROR_LINE characters.
 */
const MAX_ERROR_LINE = 400;
const shown = (msg: string): string =>
  escapeControlKeepNewlines(msg)
    .split('\n')
    .map((l) => (l.length > MAX_ERROR_LINE ? l.slice(0, MAX_ERROR_LINE - 1) + '…' : l))
    .join('\n');

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (await isUserError(e)) {
    console.error(`refscope: ${shown((e as Error).message)}`);
    process.exitCode = 2;
  } else {
    const msg = e instanceof Error ? e.message : String(e);
    console.error(`refscope: ${shown(msg)}`);
    if (process.env.REFSCOPE_DEBUG) console.error(e);
    process.exitCode = 2;
  }
}
