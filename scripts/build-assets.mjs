// Second step of `npm run build` (after `tsc -p tsconfig.build.json`): the SQL files of queries/ go beside the
// JavaScript in dist/queries/ (db/sql.ts and queries/runner.ts read them relative to their own module), and
// files of dist/ whose source is gone (a module moved or renamed) are removed. Plain node, no shell globs.
import { copyFileSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');

const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));

// A built file's source: x.js from x.ts, an .sql from the same .sql.
for (const f of walk(dist)) {
  const rel = relative(dist, f);
  const source = join(root, rel.endsWith('.js') ? rel.slice(0, -3) + '.ts' : rel);
  if (!existsSync(source)) rmSync(f);
}
const dropEmpty = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) dropEmpty(join(dir, e.name));
  if (dir !== dist && readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
};
dropEmpty(dist);

let copied = 0;
for (const f of walk(join(root, 'queries')).filter((f) => f.endsWith('.sql'))) {
  const to = join(dist, relative(root, f));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(f, to);
  copied++;
}
console.log(`dist/: ${copied} SQL files of queries/ copied`);
