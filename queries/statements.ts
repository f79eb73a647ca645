import type { DuckDBValue } from '@duckdb/node-api';
import type { Db, Row } from '../db/duckdb.js';
import { sqlFile } from '../db/sql.js';
import { parseQuery, type QueryDef } from './runner.js';

/**
 * The product's own statements (chart data, evidence, report data, exports): files in subfolders of queries/,
 * with the same header as the library's queries, run with named parameters bound (never spliced). Unlike
 * runQuery, rows come back as node-api's JavaScript values, which the renderers read.
 */

const defs = new Map<string, QueryDef>();

/** The parsed header of queries/<path>. */
export function statement(path: string): QueryDef {
  let d = defs.get(path);
  if (!d) {
    d = parseQuery(path.replace(/\.sql$/, ''), path, sqlFile(path), { listTypes: true });
    defs.set(path, d);
  }
  return d;
}

function check(d: QueryDef, params: Record<string, DuckDBValue>): void {
  for (const k of Object.keys(params))
    if (!d.params.some((p) => p.name === k)) throw new Error(`queries/${d.file}: parameter ${k} is not declared with @param`);
  for (const p of d.params) if (!(p.name in params)) throw new Error(`queries/${d.file}: parameter ${p.name} not given`);
}

/** Rows of queries/<path>. */
export async function rowsOf<T = Row>(db: Db, path: string, params: Record<string, DuckDBValue> = {}): Promise<T[]> {
  const d = statement(path);
  check(d, params);
  return db.all<T>(d.sql, params);
}

/** First row of queries/<path> (undefined when none). */
export async function rowOf<T = Row>(db: Db, path: string, params: Record<string, DuckDBValue> = {}): Promise<T | undefined> {
  return (await rowsOf<T>(db, path, params))[0];
}
