import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * A folder of output files written beside its target and renamed into place, so that a killed command leaves the
 * old folder or the new one, never a mix of two runs' files.
 */
export class Staging {
  readonly target: string;
  readonly dir: string;
  private readonly prefix: string;

  /** `entries`: the names a folder of this kind holds; a target with anything else is updated file by file. */
  constructor(target: string, private readonly entries: readonly string[]) {
    this.target = resolve(target);
    const parent = dirname(this.target);
    mkdirSync(parent, { recursive: true });
    this.prefix = `.${basename(this.target)}.`;
    // Leftovers of a killed run (its staging folder, or the old folder between the two renames).
    for (const e of readdirSync(parent)) if (e.startsWith(this.prefix) && /\.(tmp|old)-\d+$/.test(e)) rmSync(join(parent, e), { recursive: true, force: true });
    this.dir = join(parent, `${this.prefix}tmp-${process.pid}`);
    mkdirSync(this.dir);
  }

  /** Put the staged folder in place of the target. */
  publish(): void {
    if (!existsSync(this.target)) return renameSync(this.dir, this.target);
    const have = readdirSync(this.target);
    if (have.every((e) => this.entries.includes(e))) {
      const old = join(dirname(this.target), `${this.prefix}old-${process.pid}`);
      renameSync(this.target, old);
      renameSync(this.dir, this.target);
      rmSync(old, { recursive: true, force: true });
      return;
    }
    // The target holds other files too (e.g. --out .): replace ours only, each entry by one rename.
    for (const e of readdirSync(this.dir)) {
      const to = join(this.target, e);
      if (existsSync(to)) rmSync(to, { recursive: true, force: true });
      renameSync(join(this.dir, e), to);
    }
    for (const e of this.entries) if (!existsSync(join(this.dir, e)) && e !== 'charts') rmSync(join(this.target, e), { force: true });
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The command failed: drop the staged files, leave the target as it was. */
  discard(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
