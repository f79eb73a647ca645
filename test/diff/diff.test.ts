/**
 * Diff tests, after Perfetto's: each folder of test/diff/ holds a tiny trace (`trace.*`), one or more queries
 * (`<name>.json`: a queries/ name and its parameters; or `<name>.sql`: SQL) and each query's expected result
 * (`<name>.csv`, as `refscope query --format csv` prints it, with \n line ends). The trace is ingested and
 * replayed in-process into an in-memory database, every query runs and its CSV must equal the expectation
 * byte for byte; a mismatch prints a unified diff. REFSCOPE_UPDATE_DIFF=1 rewrites the expectations instead
 * (read the diff of the .csv files before committing them: they document behaviour).
 * An optional `case.json` gives ingest options ({"ingest": {"format": "csv"}}) and replay options ({"replay": {...}}).
 * How each case was made: test/diff/README.md.
 */
import { strict as assert } from 'node:assert';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest, type IngestOptions } from '../../ingest/ingest.js';
import { replay, type ReplayOptions } from '../../replay/replay.js';
import { formatCsv } from '../../queries/format.js';
import { runQuery, runSql } from '../../queries/runner.js';
import { unifiedDiff } from '../lib/udiff.js';

const DIR = fileURLToPath(new URL('.', import.meta.url));
const UPDATE = process.env.REFSCOPE_UPDATE_DIFF === '1';

interface Case {
  name: string;
  trace: string;
  options: { ingest?: IngestOptions; replay?: ReplayOptions };
  queries: { name: string; file: string; expected: string }[];
}

function cases(dir = DIR): Case[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => {
      const at = join(dir, d.name);
      const files = readdirSync(at).sort();
      const traces = files.filter((f) => f.startsWith('trace.'));
      assert.equal(traces.length, 1, `${d.name}: one trace.* file`);
      const queries = files
        .filter((f) => /\.(sql|json)$/.test(f) && f !== 'case.json')
        .map((f) => ({ name: f.replace(/\.(sql|json)$/, ''), file: join(at, f), expected: join(at, f.replace(/\.(sql|json)$/, '.csv')) }));
      assert.ok(queries.length > 0, `${d.name}: no query`);
      const options = existsSync(join(at, 'case.json')) ? JSON.parse(readFileSync(join(at, 'case.json'), 'utf8')) : {};
      return { name: d.name, trace: join(at, traces[0]!), options, queries };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** The CSV of one query on the database, with \n line ends and the case's folder cut from paths (traces.source). */
async function run(db: Db, file: string, caseDir: string): Promise<string> {
  const text = readFileSync(file, 'utf8');
  const r = file.endsWith('.sql')
    ? await runSql(db, text)
    : await (async () => {
        const { query, params } = JSON.parse(text) as { query: string; params?: Record<string, unknown> };
        return runQuery(db, query, params ?? {});
      })();
  return formatCsv(r).replace(/\r\n/g, '\n').replaceAll(caseDir + sep, '');
}

describe('diff tests (test/diff/*/)', { concurrency: true }, () => {
  for (const c of cases()) {
    it(c.name, async () => {
      const db = await Db.open(':memory:');
      try {
        const s = await ingest(db, c.trace, c.options.ingest ?? {});
        await replay(db, s.trace_id, c.options.replay ?? {});
        const failures: string[] = [];
        for (const q of c.queries) {
          const actual = await run(db, q.file, dirname(c.trace));
          if (UPDATE) {
            writeFileSync(q.expected, actual);
            continue;
          }
          assert.ok(existsSync(q.expected), `${q.expected} is missing (REFSCOPE_UPDATE_DIFF=1 writes it)`);
          const expected = readFileSync(q.expected, 'utf8');
          if (actual !== expected) failures.push(unifiedDiff(expected, actual, `${c.name}/${q.name}.csv`));
        }
        assert.ok(failures.length === 0, `\n${failures.join('\n')}\n(REFSCOPE_UPDATE_DIFF=1 rewrites the expectations)`);
      } finally {
        db.close();
      }
    });
  }
});
