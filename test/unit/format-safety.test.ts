/**
 * Output channels (issue #22): text from a trace reaches terminals (query tables, the ingest summary, error
 * messages) with its control characters escaped, and CSV cells a spreadsheet would run as formulas get a leading '
 * (plain negative numbers stay numbers), in JavaScript (query) and in SQL (export's COPY) alike.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { formatIngestSummary } from '../../cli/commands/ingest.js';
import { lockConflict } from '../../cli/common.js';
import { csvSafeText, escapeControl } from '../../db/escape.js';
import { csvSafeSqlExpr } from '../../queries/csv-safe.js';
import { formatCsv, formatTable } from '../../queries/format.js';
import type { QueryResult } from '../../queries/runner.js';
import type { IngestSummary } from '../../ingest/ingest.js';

const ESC = '\x1b';
const TITLE = `${ESC}]0;pwned\x07`; // set the terminal's title
const CLEAR = `${ESC}[2J`; // clear the screen
const FORMULA = "=cmd|' /C calc'!A0";
/** Anything that can drive or fool a terminal: C0 but newline, DEL, C1, line separators, bidi overrides. */
const RAW = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

const result = (rows: Record<string, string | number | null>[]): QueryResult => ({
  columns: Object.keys(rows[0]!).map((name) => ({ name, type: 'VARCHAR' })),
  rows,
  truncated: false,
});

test('escapeControl: escape sequences, C1, line separators and bidi overrides print as text', () => {
  assert.equal(escapeControl(`a${TITLE}b${CLEAR}`), 'a\\x1b]0;pwned\\x07b\\x1b[2J');
  assert.equal(escapeControl('\x9b31m\x7f\r\n\t'), '\\x9b31m\\x7f\\r\\n\\t');
  assert.equal(escapeControl('x\u2028y\u202ez\u2066'), 'x\\u2028y\\u202ez\\u2066');
  assert.equal(escapeControl('plain comm-1 ü →'), 'plain comm-1 ü →');
});

test('query table output escapes comms and unparsed lines', () => {
  const out = formatTable(result([{ comm: `evil${TITLE}${CLEAR}`, text: `x\u202eexe.txt` }]));
  assert.doesNotMatch(out, RAW);
  assert.match(out, /evil\\x1b\]0;pwned\\x07\\x1b\[2J/);
  assert.match(out, /x\\u202eexe\.txt/);
});

test('CSV: formulas get a leading quote, negative numbers do not, control characters are escaped, --csv-raw is exact', () => {
  const r = result([{ comm: FORMULA, n: '-5', f: '-1.5e3', p: '-> 0x100000', a: '@SUM(A1)', plus: '+1', t: '\tx', e: `t${ESC}[2J` }]);
  const [header, row] = formatCsv(r).split('\r\n');
  assert.equal(header, 'comm,n,f,p,a,plus,t,e');
  assert.equal(row, `'${FORMULA},-5,-1.5e3,'-> 0x100000,'@SUM(A1),'+1,'\\tx,t\\x1b[2J`);
  const raw = formatCsv(r, { raw: true }).split('\r\n')[1];
  assert.equal(raw, `${FORMULA},-5,-1.5e3,-> 0x100000,@SUM(A1),+1,\tx,t${ESC}[2J`);
  // Numbers are never text: a negative BIGINT stays as it is; column names from --sql are cells too.
  const num: QueryResult = { columns: [{ name: '=x', type: 'BIGINT' }], rows: [{ '=x': -7n }], truncated: false };
  assert.equal(formatCsv(num), "'=x\r\n-7\r\n");
});

test("export's SQL expression makes the same cells as csvSafeText", async () => {
  const cases = [FORMULA, '-5', '-0.25', '-.5', '-5e', '-', '--x', '+1', '@a', '\tx', '\rx', 'ok', '', `a${TITLE}${CLEAR}`,
    'line\nbreak', '\x00\x01\x7f\x85\x9f', 'x\u2028\u2029\u202a\u202e\u2066\u2069', "it's", '=', 'ü=→'];
  const inst = await DuckDBInstance.create(':memory:');
  const conn = await inst.connect();
  try {
    await conn.run('CREATE TABLE t (i INTEGER, "c" VARCHAR)');
    const app = await conn.createAppender('t');
    cases.forEach((c, i) => {
      app.appendInteger(i);
      app.appendVarchar(c);
      app.endRow();
    });
    app.closeSync();
    const rows = (await conn.runAndReadAll(`SELECT ${csvSafeSqlExpr('"c"')} AS s FROM t ORDER BY i`)).getRowObjectsJS();
    assert.deepEqual(rows.map((r) => r.s), cases.map(csvSafeText));
  } finally {
    conn.closeSync();
    inst.closeSync();
  }
});

test('the ingest summary escapes unparsed lines, event names and the file name', () => {
  const s = {
    trace_id: 1, source: `t${ESC}[2J.txt`, format: 'ftrace', lines: 3, events: 1, stacks: 0, unparsed_lines: 1, lost_events: 0,
    seconds: 0.1, lines_per_second: 30, event_counts: { [`ev${ESC}]0;x\x07`]: 1 }, replaced: [],
    unparsed_examples: [{ line: 3, reason: 'no ftrace layout matches', text: `garbage ${TITLE} ${CLEAR} \x00\x01\x02` }],
  } as unknown as IngestSummary;
  const out = formatIngestSummary(s);
  assert.doesNotMatch(out, RAW);
  assert.match(out, /unparsed line 3 \(no ftrace layout matches\): garbage \\x1b\]0;pwned\\x07 \\x1b\[2J \\x00\\x01\\x02/);
  assert.match(out, /t\\x1b\[2J\.txt/);
  assert.match(out, /ev\\x1b\]0;x\\x07 1/);
});

test("DuckDB's lock conflict becomes one sentence naming the process", () => {
  const msg =
    'IO Error: Could not set lock on file "/tmp/x.duckdb": Conflicting lock is held in /usr/bin/node (PID 8811). ' +
    'See also https://duckdb.org/docs/stable/connect/concurrency';
  assert.equal(
    lockConflict('x.duckdb', new Error(msg)),
    'x.duckdb is in use by another process (PID 8811, node: e.g. a running refscope ingest or replay); wait for it to finish or use another --db',
  );
  assert.equal(lockConflict('x.duckdb', new Error('IO Error: Cannot open file "x.duckdb": No such file')), undefined);
});
