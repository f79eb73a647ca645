// After `tsc -p tsconfig.check.json` (npm test: one type check of everything, emitting into dist/): remove from dist/
// what is not part of the package, i.e. every file outside the directories tsconfig.build.json compiles (the
// tests, bench/, scripts/), so dist/ holds exactly what `npm run build` writes.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const { include } = JSON.parse(readFileSync(join(root, 'tsconfig.build.json'), 'utf8'));
const keep = (rel) => include.some((dir) => rel === dir || rel.startsWith(dir + '/'));

const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
let removed = 0;
for (const f of walk(dist)) {
  if (keep(relative(dist, f).split(sep).join('/'))) continue;
  rmSync(f);
  removed++;
}
const dropEmpty = (dir) => {
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) dropEmpty(join(dir, e.name));
  if (dir !== dist && readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
};
dropEmpty(dist);
console.log(`dist/: ${removed} files outside tsconfig.build.json removed`);
