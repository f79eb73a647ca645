import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandLine, commands, EXAMPLES, withExamples, withReference } from './query-examples.js';

// Regenerates the query examples of docs/queries.md: runs each example's refscope commands (scripts/query-examples.ts)
// in a scratch directory where samples/ points at the bundled captures, and writes the query output between the
// example's markers, and each query's reference (parameters, columns, role in reports and check) from its header.
const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'refscope-readme-'));
symlinkSync(join(root, 'samples'), join(dir, 'samples'));
const tsx = import.meta.resolve('tsx');

function refscope(args: string[]): string {
  const r = spawnSync(process.execPath, ['--import', tsx, join(root, 'cli', 'main.ts'), ...args], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${commandLine(args)}: exit ${r.status}\n${r.stderr}`);
  return r.stdout;
}

try {
  const done = new Set<string>(); // generate / ingest commands already run (examples share inputs)
  const outputs = new Map<string, string>();
  for (const ex of EXAMPLES) {
    const cmds = commands(ex);
    for (const c of cmds.slice(0, -1)) {
      const key = c.join(' ');
      if (!done.has(key)) refscope(c);
      done.add(key);
    }
    outputs.set(ex.id, refscope(cmds.at(-1)!));
    console.log(`${ex.id}: ${commandLine(cmds.at(-1)!)}`);
  }
  const path = join(root, 'docs', 'queries.md');
  writeFileSync(path, withReference(withExamples(readFileSync(path, 'utf8'), outputs)));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
