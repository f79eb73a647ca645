import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The query library: lists queries/*.sql, parses their header comments and checks parameter values against
 * their declared types. No DuckDB here, so that `refscope query --list` starts without loading it; runner.ts
 * runs the queries.
 *
 * Header syntax of a query file (comment lines at the top, before the first SQL line):
 *
 *   -- <one-line description>                          first line: what `query --list` prints
 *   -- free text ...                                   what it finds, why it matters
 *   -- @param <name> <TYPE> <default> <description>    one per parameter, bound as $<name>
 *   -- @column <name> <description>                    one per output column, in output order
 *
 * Tags that say how reports and `check` use a query (queries/findings.ts reads them; a new finding is one file):
 *
 *   -- @title <title>                                  heading of its section in the report
 *   -- @meaning <sentence>                             what one row means (the report's lead when no summary)
 *   -- @finding [order]                                rows are problems; sections sorted by order, then name
 *   -- @verdict <summary_column> <error|warning> <label>   a verdict line: its count is that column of
 *                                                      summary.sql (+ <column>_uncertain), else the rows;
 *                                                      error = red when a certain row is an error
 *   -- @context <condition>                            rows matching it are context, not counted (when rows count)
 *   -- @gate <order>                                   `refscope check` gates on the verdict count (line order)
 *   -- @severity <level> [when <condition> else <level>]   colour of a row: error, warning or none
 *   -- @columns <html|md> <a,b,c>                      compact table columns, most telling first
 *   -- @refcounts <order>                              the pfns its rows name get refcount charts (order of kinds)
 *
 * A condition is `column` (true when the value is truthy) or `column=value` (the value printed as text), joined
 * with `or`.
 *
 * TYPE is INTEGER, BIGINT, DOUBLE, BOOLEAN or VARCHAR. The default is NULL, a number, true/false, or a
 * 'single-quoted string' ('' doubles a quote). Files whose name starts with `_` are private: `_helpers.sql`
 * holds TEMP macros and views that the runner creates on each connection before the first query.
 */

export const PARAM_TYPES = ['INTEGER', 'BIGINT', 'DOUBLE', 'BOOLEAN', 'VARCHAR'] as const;
export type ParamType = (typeof PARAM_TYPES)[number];
export type ParamValue = number | bigint | boolean | string | null;

export interface QueryParam {
  name: string;
  type: ParamType;
  default: ParamValue;
  /** The default as written in the header. */
  defaultText: string;
  description: string;
}

export interface QueryColumn {
  name: string;
  description: string;
}

export type Severity = 'error' | 'warning' | null;

/** `col` (truthy) or `col=value` (printed value), any of them. */
export type Condition = { column: string; value?: string }[];

export interface QueryDef {
  name: string;
  file: string;
  /** First comment line. */
  description: string;
  /** The whole header comment without the `-- ` prefixes (description, free text, @param/@column lines). */
  doc: string;
  params: QueryParam[];
  columns: QueryColumn[];
  sql: string;
  /** @title (default: the name). */
  title: string;
  /** @meaning: what one row means. */
  meaning: string;
  /** @finding: null when the rows are not problems; else its order (Infinity when none given). */
  finding: number | null;
  /** @verdict */
  verdict: { column: string; level: 'error' | 'warning'; label: string } | null;
  /** @context: rows that are not counted as findings. */
  context: Condition | null;
  /** @gate: position in `refscope check`'s lines; null = not gated. */
  gate: number | null;
  /** @severity */
  severity: { level: Severity; when: Condition | null; otherwise: Severity } | null;
  /** @columns */
  show: { html?: string[]; md?: string[] };
  /** @refcounts: rank of its pfns in the report's refcount chart; null = not charted. */
  refcounts: number | null;
}

/** A value read from DuckDB: BIGINT/HUGEINT stay bigint (exact), lists become arrays, structs objects. */
export type Value = null | boolean | number | bigint | string | Value[] | { [key: string]: Value };
export type ResultRow = Record<string, Value>;

export interface QueryResult {
  columns: { name: string; type: string }[];
  rows: ResultRow[];
  /** true when --limit cut the result. */
  truncated: boolean;
}

/** A mistake of the caller (unknown query, unknown parameter, bad value, no such trace): one line, exit 2. */
export class QueryError extends Error {
  override name = 'QueryError';
}

export const QUERIES_DIR = dirname(fileURLToPath(import.meta.url));

const NAME = /^[a-z][a-z0-9_]*$/;

function parseDefault(name: string, type: ParamType, text: string): ParamValue {
  if (/^null$/i.test(text)) return null;
  if (text.startsWith("'")) {
    if (!/^'(?:[^']|'')*'$/.test(text)) throw new Error(`bad default ${text} of parameter ${name}`);
    if (type !== 'VARCHAR') throw new Error(`string default of ${type} parameter ${name}`);
    return text.slice(1, -1).replace(/''/g, "'");
  }
  return parseParamValue({ name, type, default: null, defaultText: text, description: '' }, text);
}

/** Split a default token off the front of `rest` (a quoted string may contain spaces). */
function splitDefault(rest: string): [string, string] {
  if (rest.startsWith("'")) {
    const m = /^'(?:[^']|'')*'/.exec(rest);
    if (!m) throw new Error(`unterminated string default: ${rest}`);
    return [m[0], rest.slice(m[0].length).trim()];
  }
  const m = /^(\S+)\s*(.*)$/.exec(rest)!;
  return [m[1]!, m[2]!];
}

/** Parse one query file's text (exported for tests). */
export function parseQuery(name: string, file: string, text: string, opts: { listTypes?: boolean } = {}): QueryDef {
  const lines = text.split(/\r?\n/);
  const header: string[] = [];
  for (const l of lines) {
    if (!l.startsWith('--')) break;
    header.push(l.replace(/^--\s?/, ''));
  }
  const description = (header[0] ?? '').trim();
  if (!description) throw new Error(`${file}: the first line must be a '-- description' comment`);
  const params: QueryParam[] = [];
  const columns: QueryColumn[] = [];
  const meta: Meta = {
    title: name, meaning: '', finding: null, verdict: null, context: null, gate: null, severity: null, show: {}, refcounts: null,
  };
  for (const h of header) {
    if (parseTag(file, h, meta)) continue;
    const p = /^@param\s+(\S+)\s+(\S+)\s+(.*)$/.exec(h);
    if (p) {
      const [, pname, ptype, rest] = p as unknown as [string, string, string, string];
      if (!NAME.test(pname)) throw new Error(`${file}: bad parameter name ${pname}`);
      const type = ptype.toUpperCase() as ParamType;
      // The product's own statements (queries/statements.ts) also take lists of these, e.g. BIGINT[].
      const known = PARAM_TYPES.includes(type) || (opts.listTypes && PARAM_TYPES.includes(type.replace(/\[\]$/, '') as ParamType));
      if (!known) throw new Error(`${file}: parameter ${pname} has unknown type ${ptype}`);
      const [defaultText, desc] = splitDefault(rest.trim());
      if (params.some((x) => x.name === pname)) throw new Error(`${file}: parameter ${pname} declared twice`);
      params.push({ name: pname, type, default: parseDefault(pname, type, defaultText), defaultText, description: desc });
      continue;
    }
    const c = /^@column\s+(\S+)\s*(.*)$/.exec(h);
    if (c) columns.push({ name: c[1]!, description: c[2]! });
    else if (h.startsWith('@')) throw new Error(`${file}: unknown header tag: ${h}`);
  }
  if (meta.gate !== null && !meta.verdict) throw new Error(`${file}: @gate needs a @verdict (the count it gates on)`);
  // check counts a gated query's rows by their `certain` column: without it every row would silently count as uncertain.
  if (meta.gate !== null && !columns.some((col) => col.name === 'certain')) throw new Error(`${file}: @gate needs a 'certain' column (@column certain ...)`);
  return { name, file, description, doc: header.join('\n'), params, columns, sql: text, ...meta };
}

const SEVERITIES: Record<string, Severity> = { error: 'error', warning: 'warning', none: null };

function parseSeverity(file: string, s: string): Severity {
  if (!(s in SEVERITIES)) throw new Error(`${file}: unknown severity ${s} (error, warning, none)`);
  return SEVERITIES[s]!;
}

function parseCondition(file: string, s: string): Condition {
  return s.split(/\s+or\s+/).map((c) => {
    const m = /^([a-z_][a-z0-9_]*)(?:=(\S+))?$/.exec(c.trim());
    if (!m) throw new Error(`${file}: bad condition ${JSON.stringify(c)} (column or column=value)`);
    return m[2] === undefined ? { column: m[1]! } : { column: m[1]!, value: m[2] };
  });
}

/** Whether a result row matches a header condition. */
export function matches(cond: Condition, row: Record<string, unknown>): boolean {
  return cond.some((c) => (c.value === undefined ? Boolean(row[c.column]) : row[c.column] !== null && row[c.column] !== undefined && String(row[c.column]) === c.value));
}

/** The reports' and check's tags (see the header syntax above); false for other lines. */
type Meta = Pick<QueryDef, 'title' | 'meaning' | 'finding' | 'verdict' | 'context' | 'gate' | 'severity' | 'show' | 'refcounts'>;

function parseTag(file: string, h: string, meta: Meta): boolean {
  const m = /^@(title|meaning|finding|verdict|context|gate|severity|columns|refcounts)(?:\s+(.*))?$/.exec(h.trim());
  if (!m) return false;
  const [, tag, arg = ''] = m as unknown as [string, string, string | undefined];
  const bad = (why: string) => new Error(`${file}: @${tag} ${arg}: ${why}`);
  switch (tag) {
    case 'title':
    case 'meaning':
      if (!arg) throw bad('text expected');
      meta[tag] = arg;
      break;
    case 'finding':
      if (arg && !/^\d+$/.test(arg)) throw bad('expected an order number or nothing');
      meta.finding = arg ? Number(arg) : Infinity;
      break;
    case 'gate':
    case 'refcounts':
      if (!/^\d+$/.test(arg)) throw bad('expected an order number');
      meta[tag] = Number(arg);
      break;
    case 'verdict': {
      const v = /^([a-z_][a-z0-9_]*)\s+(error|warning)\s+(.+)$/.exec(arg);
      if (!v) throw bad('expected <summary_column> <error|warning> <label>');
      meta.verdict = { column: v[1]!, level: v[2] as 'error' | 'warning', label: v[3]! };
      break;
    }
    case 'context':
      meta.context = parseCondition(file, arg);
      break;
    case 'severity': {
      const v = /^(\S+)(?:\s+when\s+(.+?)\s+else\s+(\S+))?$/.exec(arg);
      if (!v) throw bad('expected <level> [when <condition> else <level>]');
      const level = parseSeverity(file, v[1]!);
      meta.severity = { level, when: v[2] ? parseCondition(file, v[2]) : null, otherwise: v[3] ? parseSeverity(file, v[3]) : level };
      break;
    }
    case 'columns': {
      const v = /^(html|md)\s+([a-z0-9_,\s]+)$/.exec(arg);
      if (!v) throw bad('expected html|md and a comma-separated list');
      meta.show[v[1] as 'html' | 'md'] = v[2]!.split(',').map((c) => c.trim()).filter(Boolean);
      break;
    }
  }
  return true;
}

/** Every public query, sorted by name. */
export function listQueries(dir = QUERIES_DIR): QueryDef[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.sql') && !f.startsWith('_'))
    .sort()
    .map((f) => parseQuery(f.slice(0, -4), join(dir, f), readFileSync(join(dir, f), 'utf8')));
}

export function getQuery(name: string, dir = QUERIES_DIR): QueryDef {
  const all = listQueries(dir);
  const q = all.find((d) => d.name === name);
  if (!q) throw new QueryError(`unknown query '${name}' (known: ${all.map((d) => d.name).join(', ')})`);
  return q;
}

const INT32 = 2 ** 31;
const INT64_MAX = (1n << 63n) - 1n;
const UNITS: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9 };

/** Parse a value given on the command line for parameter `p`. 'NULL' (any case) is SQL NULL. */
export function parseParamValue(p: QueryParam, raw: string): ParamValue {
  const s = raw.trim();
  if (/^null$/i.test(s)) return null;
  const bad = (why: string) => new QueryError(`bad value for parameter ${p.name} (${p.type}): ${JSON.stringify(raw)}: ${why}`);
  switch (p.type) {
    case 'VARCHAR':
      return raw;
    case 'BOOLEAN':
      if (/^(true|yes|on|1)$/i.test(s)) return true;
      if (/^(false|no|off|0)$/i.test(s)) return false;
      throw bad('expected true or false');
    case 'INTEGER': {
      if (!/^[+-]?\d+$/.test(s)) throw bad('expected an integer');
      const n = Number(s);
      if (n < -INT32 || n >= INT32) throw bad('out of range');
      return n;
    }
    case 'BIGINT': {
      if (/^[+-]?\d+$/.test(s)) {
        const n = BigInt(s);
        if (n > INT64_MAX || n < -INT64_MAX - 1n) throw bad('out of range');
        return n;
      }
      const u = /^(\d+(?:\.\d+)?)(ns|us|ms|s)$/.exec(s);
      if (u && p.name.endsWith('_ns')) return BigInt(Math.round(Number(u[1]) * UNITS[u[2]!]!));
      throw bad(p.name.endsWith('_ns') ? 'expected an integer number of ns, or a duration like 500ms, 1.5s, 10us' : 'expected an integer');
    }
    case 'DOUBLE': {
      const n = Number(s);
      if (s === '' || !Number.isFinite(n)) throw bad('expected a number');
      return n;
    }
  }
}

/** Check one value given programmatically (or parse it when it is a string for a non-VARCHAR parameter). */
function coerce(p: QueryParam, v: unknown): ParamValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return parseParamValue(p, v);
  const bad = () => new QueryError(`bad value for parameter ${p.name} (${p.type}): ${String(v)}`);
  switch (p.type) {
    case 'VARCHAR':
      throw bad();
    case 'BOOLEAN':
      if (typeof v !== 'boolean') throw bad();
      return v;
    case 'INTEGER':
      if (typeof v === 'bigint') return coerce(p, v.toString());
      if (typeof v !== 'number' || !Number.isInteger(v)) throw bad();
      return coerce(p, String(v));
    case 'BIGINT':
      if (typeof v === 'bigint') return coerce(p, v.toString());
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad();
      return BigInt(v);
    case 'DOUBLE':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw bad();
      return v;
  }
}

/** Defaults overridden by `given`; an unknown name is an error. */
export function resolveParams(def: QueryDef, given: Record<string, unknown> = {}): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const p of def.params) out[p.name] = p.default;
  for (const [k, v] of Object.entries(given)) {
    const p = def.params.find((x) => x.name === k);
    if (!p)
      throw new QueryError(
        `unknown parameter '${k}' for query ${def.name} (parameters: ${def.params.map((x) => x.name).join(', ') || 'none'})`,
      );
    out[k] = coerce(p, v);
  }
  return out;
}
