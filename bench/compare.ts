import { readFileSync } from 'node:fs';
import { Db } from '../db/duckdb.js';

/**
 * The DuckDB baselines of the bench, and the check that the complete one is a fair comparison: it must hold
 * the same information as refscope's events (rows matched on line_no, every column compared, stacks through
 * refscope's `stacks`).
 */

/** Columns of refscope's `events` (trace 1) and the baseline's, compared with IS DISTINCT FROM. */
const SAME: [string, string][] = [
  'ts_ns', 'cpu', 'pid', 'tgid', 'comm', 'irq_flags', 'system', 'event', 'pfn', 'order', 'nr_pages', 'count', 'mapcount',
  'val', 'ret', 'page_flags', 'mapping', 'mt', 'gfp', 'ptr', 'pfn_end', 'fin_pfn', 'name', 'payload',
].map((c) => [`r."${c}"`, `b."${c}"`]);
SAME.push(['s.frames', 'b.stack'], ['json(r.args::VARCHAR)', 'json(b.args::VARCHAR)']);

/**
 * Run a DuckDB baseline on `file`: 'full' = duckdb-regex.sql (table `events`), '8cols' = duckdb-regex-8cols.sql
 * (table `ev`). Statement by statement; $file is bound where it appears.
 */
export async function runBaseline(db: Db, which: 'full' | '8cols', file: string): Promise<void> {
  const sql = new URL(which === 'full' ? './duckdb-regex.sql' : './duckdb-regex-8cols.sql', import.meta.url);
  const text = readFileSync(sql, 'utf8').replace(/^--.*$/gm, '');
  for (const stmt of text.split(/;\s*$/m).map((s) => s.trim()).filter(Boolean)) {
    await db.run(stmt, stmt.includes('$file') ? { file } : undefined);
  }
}

const sqlString = (s: string): string => `'${s.replace(/'/g, "''")}'`;

export interface Comparison {
  refscope_rows: number;
  baseline_rows: number;
  /** Rows (by line_no) only one side has. */
  only_refscope: number;
  only_baseline: number;
  /** Column -> rows where both sides have the line but the values differ (only columns with differences). */
  differing: Record<string, number>;
  same: boolean;
}

export async function compareWithRefscope(refscopeDb: string, baselineDb: string): Promise<Comparison> {
  const db = await Db.open(':memory:');
  try {
    // ATTACH takes no bound parameter: the paths go in as escaped string literals.
    await db.run(`ATTACH ${sqlString(refscopeDb)} AS r (READ_ONLY)`);
    await db.run(`ATTACH ${sqlString(baselineDb)} AS b (READ_ONLY)`);
    const diffs = SAME.map(([x, y], i) => `count(*) FILTER (WHERE r.line_no = b.line_no AND ${x} IS DISTINCT FROM ${y}) AS d${i}`);
    const row = (await db.one<Record<string, bigint>>(
      `SELECT count(r.line_no) AS refscope_rows, count(b.line_no) AS baseline_rows,
              count(*) FILTER (WHERE b.line_no IS NULL) AS only_refscope,
              count(*) FILTER (WHERE r.line_no IS NULL) AS only_baseline, ${diffs.join(', ')}
       FROM (SELECT * FROM r.events WHERE trace_id = 1) r
       FULL JOIN b.events b ON r.line_no = b.line_no
       LEFT JOIN r.stacks s ON s.trace_id = r.trace_id AND s.stack_id = r.stack_id`,
    ))!;
    const differing: Record<string, number> = {};
    SAME.forEach(([, y], i) => {
      const n = Number(row[`d${i}`]);
      if (n > 0) differing[y.replace(/^(json\()?b\."?|"|::VARCHAR\)$/g, '')] = n;
    });
    const c = {
      refscope_rows: Number(row.refscope_rows),
      baseline_rows: Number(row.baseline_rows),
      only_refscope: Number(row.only_refscope),
      only_baseline: Number(row.only_baseline),
      differing,
    };
    return { ...c, same: c.only_refscope === 0 && c.only_baseline === 0 && Object.keys(differing).length === 0 };
  } finally {
    db.close();
  }
}
