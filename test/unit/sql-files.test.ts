/**
 * All SQL the product runs lives in queries/: reports/, export/ and cli/ hold no statement in a string, and each
 * statement file of the report, evidence, charts and export folders has a header that declares exactly the
 * parameters its SQL uses (so statements.ts can check what the TypeScript binds).
 */
import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Db } from '../../db/duckdb.js';
import { ensureSchema } from '../../db/setup.js';
import { listQueries, QUERIES_DIR } from '../../queries/runner.js';
import { statement } from '../../queries/statements.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

function files(dir: string, ext: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p, ext) : p.endsWith(ext) ? [p] : [];
  });
}

/** String literals of a TypeScript source ('...', "...", `...`), comments skipped. */
function literals(src: string): string[] {
  const out: string[] = [];
  const re = /\/\/[^\n]*|\/\*[\s\S]*?\*\/|'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g;
  for (const m of src.matchAll(re)) if (!m[0].startsWith('/')) out.push(m[0]);
  return out;
}

const STATEMENT = /\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+\w+\s+SET\b|\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP\s+)?(?:TABLE|VIEW|MACRO)\b/;

test('reports/, export/ and cli/ hold no SQL statement in a string', () => {
  const bad: string[] = [];
  for (const layer of ['reports', 'export', 'cli'])
    for (const f of files(join(ROOT, layer), '.ts'))
      for (const l of literals(readFileSync(f, 'utf8'))) if (STATEMENT.test(l)) bad.push(`${relative(ROOT, f)}: ${l.slice(0, 70)}`);
  assert.deepEqual(bad, []);
});

test('the statement check finds a statement where there is one', () => {
  // A pattern that matched nothing would pass the test above.
  assert.equal(literals("const a = `SELECT x\n FROM t`; // SELECT y FROM z\nconst b = 'SELECT 1';").filter((l) => STATEMENT.test(l)).length, 1);
  assert.ok(literals(readFileSync(join(ROOT, 'db', 'select.ts'), 'utf8')).some((l) => STATEMENT.test(l)));
});

test('query --list shows only the top-level queries', () => {
  const top = readdirSync(QUERIES_DIR).filter((f) => f.endsWith('.sql') && !f.startsWith('_')).map((f) => f.slice(0, -4)).sort();
  assert.deepEqual(listQueries().map((q) => q.name), top);
  assert.ok(files(QUERIES_DIR, '.sql').length > top.length + 30);
});

test('every statement file declares the parameters its SQL uses', async () => {
  const db = await Db.open(':memory:');
  try {
    await ensureSchema(db);
    const paths = ['charts', 'common', 'diff', 'evidence', 'export', 'report'].flatMap((d) => files(join(QUERIES_DIR, d), '.sql'));
    assert.ok(paths.length >= 30, String(paths.length));
    for (const p of paths) {
      const rel = relative(QUERIES_DIR, p);
      const def = statement(rel);
      assert.ok(def.description.length > 10, `${rel}: no description`);
      assert.ok(def.columns.length > 0, `${rel}: no @column`);
      const ps = await db.conn.prepare(def.sql);
      const used = Array.from({ length: ps.parameterCount }, (_, i) => ps.parameterName(i + 1)).sort();
      assert.deepEqual(used, def.params.map((x) => x.name).sort(), rel);
    }
  } finally {
    db.close();
  }
});
