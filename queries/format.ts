import Papa from 'papaparse';
import { csvSafeText, escapeControl } from '../db/escape.js';
import type { QueryResult, Value } from './runner.js';

/**
 * Output of query results.
 *  - table: aligned columns for people. pfn, pointer and flags columns print as 0x hex (isHexColumn: named as
 *    a refscope table's column, integer-typed; `count(DISTINCT pfn)` is a count and stays decimal); *_ns columns print as seconds with 6 decimals (header renamed *_s); stacks print on one
 *    line (`a <- b`); control characters of untrusted text are escaped; long cells are cut at 100 characters.
 *  - json: exactly one JSON array of row objects (one row per line). BIGINT -> number when |v| <= 2^53, else
 *    a decimal string; pfns stay numbers; lists are arrays. Nothing is rounded or cut.
 *  - csv: RFC 4180 (papaparse unparse): header row, quoting of commas, quotes and newlines. Lists and structs
 *    as JSON text, NULL as an empty field, BIGINT as exact decimal text. Text cells (and header names) that a
 *    spreadsheet would run as a formula get a leading ' and control characters are escaped (db/escape.ts
 *    csvSafeText), unless raw (`--csv-raw`).
 */

export const OUTPUT_FORMATS = ['table', 'json', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MAX_CELL = 100;

/** Columns of refscope's tables (and the queries') that hold a pfn, a pointer or flags, by exact name. */
const HEX_NAMES = new Set([
  'pfn', 'pfn_start', 'pfn_end', 'range_start', 'range_end', // pfns
  'pgmap', 'mapping', 'vmemmap_base', 'ptr', 'addr', // pointers
  'gup_flags', 'gfp_flags', 'page_flags', // flags
]);
/** The queries' lists of pfns. */
const HEX_LISTS = new Set(['pfns', 'example_pfns']);

const INTEGER_TYPE = 'U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)';
const INTEGER = new RegExp(`^${INTEGER_TYPE}$`);
const INTEGER_LIST = new RegExp(`^${INTEGER_TYPE}\\[\\]$`);

/**
 * A column printed as 0x hex in table output: a pfn / pointer / flags column reached by its name exactly (or
 * *_pfn: folio_pfn, fin_pfn ...) whose values are integers, or a list of pfns (pfns, example_pfns) of integers.
 * An expression over one (`count(DISTINCT pfn)`, `max(pfn) - min(pfn)`) is named by DuckDB after the expression,
 * and a count aliased `pfns` is no list: they print as the numbers they are; flags decoded to text print as text.
 */
export function isHexColumn(name: string, type: string): boolean {
  const known = type !== ''; // a result built by hand may not say: its values decide (hex() prints only integers)
  if (HEX_LISTS.has(name)) return !known || INTEGER_LIST.test(type);
  return (HEX_NAMES.has(name) || /^[a-z]+_pfn$/.test(name)) && (!known || INTEGER.test(type));
}

export function isNsColumn(name: string): boolean {
  return name.endsWith('_ns') || name === 'ts_ns';
}

/** JSON-safe copy of a value: bigint -> number when exact, else string; non-finite numbers -> string. */
export function jsonValue(v: Value): unknown {
  if (typeof v === 'bigint') return v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : v.toString();
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = jsonValue(x);
    return o;
  }
  return v;
}

export function formatJson(r: QueryResult): string {
  if (r.rows.length === 0) return '[]\n';
  const lines = r.rows.map((row) => {
    const o: Record<string, unknown> = {};
    for (const c of r.columns) o[c.name] = jsonValue(row[c.name] ?? null);
    return JSON.stringify(o);
  });
  return '[\n' + lines.join(',\n') + '\n]\n';
}

export interface CsvOptions {
  /** Write text exactly as stored: no formula neutralisation, no control-character escapes. */
  raw?: boolean;
}

function csvCell(v: Value, safe: (s: string) => string): string {
  if (v === null) return '';
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return safe(v);
  return safe(JSON.stringify(jsonValue(v)));
}

export function formatCsv(r: QueryResult, opts: CsvOptions = {}): string {
  const safe = opts.raw ? (s: string) => s : csvSafeText;
  const names = r.columns.map((c) => c.name);
  const data = r.rows.map((row) => names.map((f) => csvCell(row[f] ?? null, safe)));
  // Column names come from --sql too (`SELECT 1 AS "=cmd"`).
  return Papa.unparse({ fields: names.map(safe), data }, { newline: '\r\n', quotes: false }) + '\r\n';
}

/** ns -> seconds with 6 decimals (rounded to the µs), exact for any int64. */
export function nsToSeconds(v: bigint | number): string {
  let n = typeof v === 'bigint' ? v : BigInt(Math.round(v));
  const neg = n < 0n;
  if (neg) n = -n;
  const us = (n + 500n) / 1000n;
  const s = `${us / 1_000_000n}.${(us % 1_000_000n).toString().padStart(6, '0')}`;
  return neg ? '-' + s : s;
}

function hex(v: Value): string {
  if (typeof v === 'bigint') return (v < 0n ? '-0x' + (-v).toString(16) : '0x' + v.toString(16));
  if (typeof v === 'number' && Number.isInteger(v)) return (v < 0 ? '-0x' + (-v).toString(16) : '0x' + v.toString(16));
  return cell(v);
}

/** Escape control characters of (untrusted) text so it cannot drive the terminal. */
const clean = escapeControl;

function cell(v: Value): string {
  if (v === null) return '';
  if (typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return Number.isInteger(v) || !Number.isFinite(v) ? String(v) : String(Number(v.toFixed(6)));
  if (typeof v === 'string') return clean(v);
  if (Array.isArray(v)) return v.map(cell).join(',');
  return clean(JSON.stringify(jsonValue(v)));
}

function tableCell(name: string, type: string, v: Value): string {
  if (v === null) return '';
  if (isHexColumn(name, type)) return Array.isArray(v) ? v.map(hex).join(',') : hex(v);
  if (isNsColumn(name) && (typeof v === 'bigint' || typeof v === 'number')) return nsToSeconds(v);
  if ((name === 'stack' || name === 'frames') && typeof v === 'string') return clean(v.split('\n').join(' <- '));
  return cell(v);
}

function cut(s: string): string {
  const chars = [...s];
  return chars.length > MAX_CELL ? chars.slice(0, MAX_CELL - 1).join('') + '…' : s;
}

export function formatTable(r: QueryResult): string {
  const headers = r.columns.map((c) => clean(isNsColumn(c.name) ? c.name.replace(/_ns$/, '_s') : c.name));
  const numeric = r.columns.map((c) =>
    r.rows.every((row) => {
      const v = row[c.name] ?? null;
      return v === null || typeof v === 'number' || typeof v === 'bigint';
    }),
  );
  const cells = r.rows.map((row) => r.columns.map((c) => cut(tableCell(c.name, c.type, row[c.name] ?? null))));
  // A loop, not Math.max(...spread): a spread of 100k+ cells overflows the call stack.
  const width = headers.map((h, i) => cells.reduce((w, row) => Math.max(w, [...row[i]!].length), [...h].length));
  const pad = (s: string, i: number) => {
    const fill = ' '.repeat(width[i]! - [...s].length);
    return numeric[i] ? fill + s : s + fill;
  };
  const out = [headers.map(pad).join('  ').trimEnd(), width.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of cells) out.push(row.map(pad).join('  ').trimEnd());
  const n = r.rows.length;
  out.push(`(${n} row${n === 1 ? '' : 's'}${r.truncated ? ', limited: more rows exist' : ''})`);
  return out.join('\n') + '\n';
}

export function formatResult(r: QueryResult, format: OutputFormat, csv: CsvOptions = {}): string {
  switch (format) {
    case 'json':
      return formatJson(r);
    case 'csv':
      return formatCsv(r, csv);
    case 'table':
      return formatTable(r);
  }
}
