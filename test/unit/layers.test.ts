/**
 * The layering rule: storage (db/) at the bottom, then ingest -> replay -> queries -> reports -> export -> cli; a
 * module imports only from its own layer or below, and no runtime import cycle exists anywhere. The scenario
 * generators (samples/generate) stand apart: they import no product code.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LAYERS = ['db', 'ingest', 'replay', 'queries', 'reports', 'export', 'cli'];
const PRODUCT = [...LAYERS, 'samples/generate'];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const layerOf = (file: string): string => {
  const rel = relative(ROOT, file);
  return PRODUCT.find((l) => rel.startsWith(l + '/')) ?? '';
};

/** Relative imports of a file: [target file, type-only]. An inline `import('./x.js').T` type counts as a runtime import: write `import type`. */
function imports(file: string): [string, boolean][] {
  const src = readFileSync(file, 'utf8');
  const out: [string, boolean][] = [];
  for (const m of src.matchAll(/(?:^|\n)\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    const spec = m[3] ?? m[4];
    out.push([resolve(dirname(file), spec.replace(/\.js$/, '.ts')), m[2] !== undefined]);
  }
  return out;
}

const all = PRODUCT.flatMap((l) => files(join(ROOT, l)));

test('every import goes to the same layer or one below', () => {
  const bad: string[] = [];
  for (const f of all) {
    const from = layerOf(f);
    for (const [target] of imports(f)) {
      const to = layerOf(target);
      const ok =
        from === 'samples/generate' ? to === from
        : to === 'samples/generate' ? from === 'cli'
        : LAYERS.indexOf(to) <= LAYERS.indexOf(from);
      if (!ok) bad.push(`${relative(ROOT, f)} -> ${relative(ROOT, target)}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('no runtime import cycle', () => {
  const graph = new Map(all.map((f) => [f, imports(f).filter(([, typeOnly]) => !typeOnly).map(([t]) => t)]));
  const state = new Map<string, 1 | 2>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 2) return;
    if (state.get(f) === 1) {
      cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(ROOT, p)).join(' -> '));
      return;
    }
    state.set(f, 1);
    for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
    state.set(f, 2);
  };
  for (const f of all) visit(f, []);
  assert.deepEqual(cycles, []);
});

test('the check sees the layers it is meant to', () => {
  // A regex that matched nothing would pass both tests above.
  for (const l of PRODUCT) assert.ok(all.some((f) => layerOf(f) === l), l);
  assert.ok(imports(join(ROOT, 'replay', 'driver.ts')).length > 5);
});
