import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { withSchema } from '../../db/schema-doc.js';
import { EVENTS, INGEST_TABLES } from '../../db/tables/ingest.js';
import { REPLAY_TABLES } from '../../db/tables/replay.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const schemaDoc = readFileSync(new URL('../../docs/schema.md', import.meta.url), 'utf8');

test('docs/schema.md documents every column of every table, as generated from the schema', () => {
  assert.equal(schemaDoc, withSchema(schemaDoc), 'docs/schema.md is stale: run `npm run readme:schema`');
  for (const t of [...INGEST_TABLES, EVENTS, ...REPLAY_TABLES]) {
    assert.ok(schemaDoc.includes(`### \`${t.name}\``), `table ${t.name} missing`);
    for (const c of t.columns) assert.ok(schemaDoc.includes(`| \`${c.name}\` |`), `${t.name}.${c.name} missing`);
  }
});

test('README names the test command that .ci/run runs', () => {
  const ci = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');
  assert.match(ci, /^npm ci/m);
  assert.match(ci, /^npm test$/m);
  assert.match(readme, /npm ci/);
  assert.match(readme, /npm test/);
});
