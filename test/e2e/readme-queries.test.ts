/**
 * docs/queries.md shows every library query with real output (scripts/query-examples.ts, `npm run readme:queries`):
 * each query has an example block, each block shows the input and the commands the examples define, and the
 * outputs of the examples on generated scenarios are re-run in-process and must match docs/queries.md byte for byte
 * (the ones on real captures are not re-run here: ingesting them takes most of a minute).
 */
import { strict as assert } from 'node:assert';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { queryOutput } from '../../cli/commands/query.js';
import { listQueries } from '../../queries/runner.js';
import {
  block, commandLine, commands, EXAMPLES, inputFile, queryOptions, readmeBlock, referenceBlock, referenceText,
} from '../../scripts/query-examples.js';
import { replayedDb } from '../lib/fixtures.js';

const readme = readFileSync(new URL('../../docs/queries.md', import.meta.url), 'utf8');
const FENCE = '```';

/** The query output part of a docs/queries.md block (after the command lines, inside the fence). */
function outputOf(text: string): string {
  const lines = text.split('\n');
  const last = lines.lastIndexOf(FENCE);
  const body = lines.slice(lines.indexOf(FENCE) + 1, last);
  return body.filter((l) => !l.startsWith('$ npx refscope ')).join('\n') + '\n';
}

describe('docs/queries.md query examples', () => {
  it('every query file has at least one example, and every example a block in docs/queries.md', () => {
    for (const q of listQueries()) assert.ok(EXAMPLES.some((e) => e.query === q.name), `no example of query ${q.name} in scripts/query-examples.ts`);
    assert.equal(new Set(EXAMPLES.map((e) => e.id)).size, EXAMPLES.length, 'example ids are unique');
    for (const ex of EXAMPLES) assert.ok(readmeBlock(readme, ex.id), `docs/queries.md has no block for example ${ex.id}: run npm run readme:queries`);
  });

  it("each query's reference (role, parameters, columns) is what its file's header says", () => {
    for (const q of listQueries()) {
      const text = referenceText(readme, q.name);
      assert.ok(text, `docs/queries.md has no reference block for ${q.name}: run npm run readme:queries`);
      assert.equal(text, referenceBlock(q), `docs/queries.md reference of ${q.name} is stale: run npm run readme:queries`);
      for (const c of q.columns) assert.ok(text.includes(`| \`${c.name}\` |`), `${q.name}.${c.name}`);
    }
  });

  it('each block names its input and shows the commands the example runs', () => {
    for (const ex of EXAMPLES) {
      const text = readmeBlock(readme, ex.id)!;
      assert.equal(text, block(ex, outputOf(text)), `docs/queries.md block ${ex.id} is stale: run npm run readme:queries`);
      const cmds = commands(ex);
      assert.deepEqual(cmds.at(-1)!.slice(0, 2), ['query', ex.query]);
      for (const c of cmds) assert.ok(text.includes(commandLine(c)), `${ex.id}: ${commandLine(c)}`);
      for (const i of ex.inputs) assert.ok(text.includes(inputFile(i)), `${ex.id}: input ${inputFile(i)}`);
      assert.match(outputOf(text), /\(\d+ rows?(, limited: more rows exist)?\)\n$/, `${ex.id}: a table with its row count`);
    }
  });

  describe('outputs of the examples on generated scenarios match docs/queries.md', () => {
    const generated = EXAMPLES.filter((ex) => ex.inputs.every((i) => 'scenario' in i));
    let dir: string;
    /** Each example's database: its scenarios generated (seed 1, ftrace, as `npm run readme:queries` does), ingested
     * and replayed, from test/lib/fixtures.ts's cache (queries-scenarios.test.ts builds the single-scenario ones). */
    const dbs = new Map<string, string>();
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'refscope-readmeq-'));
      for (const ex of generated) {
        const inputs = ex.inputs.flatMap((i) => ('scenario' in i ? [{ scenario: i.scenario, opts: { seed: 1, scale: 1, format: 'ftrace' as const } }] : []));
        dbs.set(ex.id, (await replayedDb(inputs)).path);
      }
    });
    after(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('at least half of the examples are checked this way', () => assert.ok(generated.length * 2 >= EXAMPLES.length, `${generated.length} of ${EXAMPLES.length}`));
    for (const ex of generated)
      it(ex.id, async () => {
        const got = await queryOutput(ex.query, queryOptions(ex, dbs.get(ex.id)!));
        assert.equal(got, outputOf(readmeBlock(readme, ex.id)!));
      });
  });
});
