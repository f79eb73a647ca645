/**
 * Table definitions shared by the DDL, the README and `refscope schema`.
 * Every column carries its own documentation so the three never drift apart.
 */
export interface Column {
  name: string;
  /** DuckDB SQL type. */
  type: string;
  doc: string;
  /**
   * Storage compression forced for the column (DuckDB's `USING COMPRESSION`): DuckDB then skips trying every method
   * on each segment of it when it writes. Set only where the method is the one DuckDB itself picks on the bench
   * trace, or stores the column in no more space (Constant and Uncompressed segments remain possible).
   */
  compression?: 'dictionary' | 'fsst';
}

export interface Table {
  name: string;
  doc: string;
  columns: Column[];
  /** Extra table constraints, e.g. PRIMARY KEY (...). */
  constraints?: string[];
}

export function createTableSql(t: Table): string {
  const cols = t.columns.map((c) => `  "${c.name}" ${c.type}${c.compression ? ` USING COMPRESSION ${c.compression}` : ''}`);
  return `CREATE TABLE IF NOT EXISTS ${t.name} (\n${[...cols, ...(t.constraints ?? []).map((s) => '  ' + s)].join(',\n')}\n)`;
}

/** Markdown table of a table's columns, for README and `refscope schema`. */
export function tableMarkdown(t: Table): string {
  const rows = t.columns.map((c) => `| \`${c.name}\` | ${c.type} | ${c.doc.replace(/\|/g, '\\|')} |`);
  return [`### \`${t.name}\``, '', t.doc, '', '| column | type | meaning |', '|---|---|---|', ...rows, ''].join('\n');
}
