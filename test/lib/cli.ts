import { spawnSync, type SpawnSyncOptionsWithStringEncoding, type SpawnSyncReturns } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * How the tests run refscope's command line from source: node with tsx on cli/main.ts (tsx is found from here, so
 * any cwd works). test/e2e/package.test.ts runs the built package instead.
 */

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Node arguments that start the CLI from source; the command's own arguments follow. */
export const CLI = ['--import', import.meta.resolve('tsx'), join(ROOT, 'cli', 'main.ts')];

/** Run the CLI from source and wait for it (cwd: the repository, unless given). */
export function runCli(args: string[], opts: Omit<SpawnSyncOptionsWithStringEncoding, 'encoding'> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [...CLI, ...args], { cwd: ROOT, timeout: 60_000, ...opts, encoding: 'utf8' });
}
