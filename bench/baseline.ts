import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The previous release, for the old/new rows: the sources of commit REV (`--baseline REV`, default
 * DEFAULT_BASELINE) extracted with `git archive` into bench/out/baseline-<commit>/, once, beside this tree's
 * node_modules (a symlink: `npm ci` there would take minutes). Not a `git worktree`: nothing is registered in the
 * shared .git, and deleting bench/out/ leaves nothing behind. Its modules run from source through tsx, loaded
 * before the clock starts (child.ts), as this tree's are: the same harness on both sides.
 */

/** The first commit of the last session (docs/README.md: npm test's tiers), 2026-12-07 13:09 UTC. */
export const DEFAULT_BASELINE = '9678dfe';

export interface Baseline {
  rev: string;
  commit: string;
  root: string;
}

export function baselineTree(rev: string, outDir: string): Baseline | { rev: string; error: string } {
  const repo = new URL('..', import.meta.url).pathname;
  let commit: string;
  try {
    commit = execFileSync('git', ['-C', repo, 'rev-parse', '--verify', `${rev}^{commit}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch {
    return { rev, error: `no commit ${rev} in ${repo}` };
  }
  const root = join(outDir, `baseline-${commit.slice(0, 10)}`);
  if (!existsSync(join(root, 'package.json'))) {
    const tmp = `${root}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    execFileSync('sh', ['-c', 'git -C "$1" archive "$2" | tar -x -C "$3"', 'sh', repo, commit, tmp]);
    symlinkSync(join(repo, 'node_modules'), join(tmp, 'node_modules'));
    rmSync(root, { recursive: true, force: true });
    renameSync(tmp, root);
  }
  return { rev, commit, root };
}
