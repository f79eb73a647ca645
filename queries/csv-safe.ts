import { DuckDBTypeId } from '../db/duckdb-api.js';
import type { Db } from '../db/duckdb.js';
import { CONTROL_CHARS, escapeChar, FORMULA_START, NEGATIVE_NUMBER } from '../db/escape.js';

/* ---- CSV safe for spreadsheets and terminals: db/escape.ts csvSafeText, in SQL so that COPY still writes it ---- */

/** A JavaScript regex source as RE2 (DuckDB's regex engine) reads it: \\xNN and \\uNNNN become \\x{...}. */
const re2 = (r: RegExp): string => r.source.replace(/\\[xu]([0-9a-fA-F]{2,4})/g, '\\x{$1}').replace(/'/g, "''");

/** Every character csvSafeText escapes (CONTROL_CHARS but the line feed), as [code point, escape]. */
const ESCAPED: [number, string][] = [];
for (let c = 0; c <= 0x2069; c++) {
  const ch = String.fromCharCode(c);
  if (ch !== '\n' && new RegExp(CONTROL_CHARS.source).test(ch)) ESCAPED.push([c, escapeChar(ch)]);
}

/**
 * SQL expression of the text column `col` (a quoted identifier) that equals db/escape.ts csvSafeText(col): a
 * leading ' before a would-be formula (not before a plain negative number), control characters escaped. The
 * escapes run only on the rare values that need them.
 */
export function csvSafeSqlExpr(col: string): string {
  const formula = `(regexp_matches(${col}, '${re2(FORMULA_START)}') AND NOT regexp_matches(${col}, '${re2(NEGATIVE_NUMBER)}'))`;
  let esc = `CASE WHEN ${formula} THEN '''' || ${col} ELSE ${col} END`;
  for (const [c, e] of ESCAPED) esc = `replace(${esc}, chr(${c}), '${e}')`;
  const ctrl = re2(CONTROL_CHARS).replace('\\x{00}-', '\\x{00}-\\x{09}\\x{0b}-'); // the line feed stays
  return `CASE WHEN regexp_matches(${col}, '${ctrl}') OR ${formula} THEN ${esc} ELSE ${col} END`;
}

/** `sql` with its text columns made CSV-safe (other columns as they are, in the same order). */
export async function csvSafeSql(db: Db, sql: string): Promise<string> {
  const ps = await db.conn.prepare(sql);
  const cols: string[] = [];
  for (let i = 0; i < ps.columnCount; i++) {
    const q = `"${ps.columnName(i).replace(/"/g, '""')}"`;
    cols.push(ps.columnTypeId(i) === DuckDBTypeId.VARCHAR ? `${csvSafeSqlExpr(q)} AS ${q}` : q);
  }
  return `SELECT ${cols.join(', ')} FROM (${sql})`;
}
