import { spawnSync, type SpawnSyncOptionsWithStringEncoding, type SpawnSyncReturns } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * How the tests run refscope's command line: the built dist/cli/main.js when dist/ is current (every source file of
 * tsconfig.build.json has its built file, written after it: what `npm test`'s build:checked leaves), else node with
 * tsx on cli/main.ts (tsx is found from here, so any cwd works). Both run the same sources; the built one starts in
 * a quarter of the CPU time (tsx compiles at every start), and the suite starts the CLI ~100 times.
 * REFSCOPE_TEST_CLI=source forces tsx. test/e2e/package.test.ts runs the packed package.
 */

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** dist/ has a built file for every .ts and .sql of the build's folders, none older than its source. */
export function builtIsCurrent(): boolean {
  try {
    const { include } = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    for (const dir of include)
      for (const rel of readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
        const src = join(dir, rel);
        const out = src.endsWith('.ts') ? src.slice(0, -3) + '.js' : src.endsWith('.sql') ? src : null;
        if (out === null) continue; // a folder, or a file only the sources use (ingest/parse-worker.mjs)
        if (statSync(join(ROOT, 'dist', out)).mtimeMs < statSync(join(ROOT, src)).mtimeMs) return false;
      }
    return true;
  } catch {
    return false; // a built file missing
  }
}

const BUILT = process.env.REFSCOPE_TEST_CLI !== 'source' && builtIsCurrent();

/** Node arguments that start the CLI (built or from source, above); the command's own arguments follow. */
export const CLI = BUILT ? [join(ROOT, 'dist', 'cli', 'main.js')] : ['--import', import.meta.resolve('tsx'), join(ROOT, 'cli', 'main.ts')];

/** Run the CLI and wait for it (cwd: the repository, unless given). */
export function runCli(args: string[], opts: Omit<SpawnSyncOptionsWithStringEncoding, 'encoding'> = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [...CLI, ...args], { cwd: ROOT, timeout: 60_000, ...opts, encoding: 'utf8' });
}

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

let inProcessQueue: Promise<unknown> = Promise.resolve();

/**
 * `refscope query` / `refscope check` run in this process: the command as cli/main.ts declares it (commander, the
 * command's options and action), its output captured (cli/common.ts commandOutput), an error as cli/main.ts
 * reports it (`refscope: <message>` on stderr, exit 2), the exit code the action sets. What it does not run is the
 * process itself: cli/main.ts's error printing, the exit, a closed pipe. A test keeps at least one runCli() of each
 * command and of each kind of refusal for those; the other option combinations run here (a CLI start costs ~0.4 s
 * CPU). Runs one at a time (commandOutput and process.exitCode are the process's).
 */
export function runCliInProcess(args: string[]): Promise<CliRun> {
  const run = inProcessQueue.then(() => inProcess(args));
  inProcessQueue = run.catch(() => undefined);
  return run;
}

async function inProcess(args: string[]): Promise<CliRun> {
  const { Command } = await import('commander');
  const { queryCommand } = await import('../../cli/commands/query.js');
  const { checkCommand } = await import('../../cli/commands/check.js');
  const { commandOutput } = await import('../../cli/common.js');
  if (args[0] !== 'query' && args[0] !== 'check') throw new Error(`runCliInProcess runs query and check, not ${args[0]}`);
  const program = new Command('refscope').exitOverride();
  queryCommand(program);
  checkCommand(program);
  let stdout = '';
  let stderr = '';
  // Not process.stdout: the test runner reports through it while the command awaits (a report written into the
  // capture is lost: a test went missing from the count that way).
  const write = commandOutput.write;
  const saved = process.exitCode;
  process.exitCode = undefined;
  commandOutput.write = (s: string) => void (stdout += s);
  let status: number | null;
  try {
    await program.parseAsync(args, { from: 'user' });
    status = Number(process.exitCode ?? 0);
  } catch (e) {
    stderr = `refscope: ${e instanceof Error ? e.message : String(e)}\n`;
    status = 2;
  } finally {
    commandOutput.write = write;
    process.exitCode = saved;
  }
  return { status, stdout, stderr };
}
