/**
 * Table definitions shared by the DDL and docs/schema.md.
 * Every column carries its own documentation so the three never drift apart.
 */
export interface Column {
  name: string;
  /** DuckDB SQL type. */
  type: string;
  doc: string;
  /**
   * Storage compression forced for a text column (DuckDB's `USING COMPRESSION`), so that DuckDB does not try every
   * method on every segment it writes: 'dict' for a few distinct values (comm, event), 'long' for long, mostly
   * distinct text (payload). Constant and Uncompressed segments remain possible.
   */
  compression?: 'dict' | 'long';
  /**
   * A computed column: this SQL expression over the row's stored columns, evaluated by the table's view when a query
   * reads it (db/tables/ingest.ts EVENT_ROWS / `events`). Not stored, never written.
   */
  generated?: string;
}

export interface Table {
  name: string;
  doc: string;
  columns: Column[];
  /** Extra table constraints, e.g. PRIMARY KEY (...). */
  constraints?: string[];
}

/**
 * The methods behind each kind. DICT_FSST is what DuckDB picks itself for those columns in the current format; ZSTD it
 * never picks for the payload (DICT_FSST there: slower to write than ZSTD and 12x the space). Files of the format
 * before 1.3 (Db.legacyStorage) have neither: there, Dictionary and FSST, which DuckDB picked itself.
 */
const METHODS = { dict: 'dict_fsst', long: 'zstd' } as const;
const LEGACY_METHODS = { dict: 'dictionary', long: 'fsst' } as const;

export function createTableSql(t: Table, legacyStorage = false): string {
  const methods = legacyStorage ? LEGACY_METHODS : METHODS;
  if (t.columns.some((c) => c.generated !== undefined)) throw new Error(`${t.name} has computed columns: create its stored table`);
  const cols = t.columns.map((c) => `  "${c.name}" ${c.type}${c.compression ? ` USING COMPRESSION ${methods[c.compression]}` : ''}`);
  return `CREATE TABLE IF NOT EXISTS ${t.name} (\n${[...cols, ...(t.constraints ?? []).map((s) => '  ' + s)].join(',\n')}\n)`;
}

/** Markdown table of a table's columns, for docs/schema.md. */
export function tableMarkdown(t: Table): string {
  const rows = t.columns.map((c) => `| \`${c.name}\` | ${c.type}${c.generated !== undefined ? ' (computed)' : ''} | ${c.doc.replace(/\|/g, '\\|')} |`);
  return [`### \`${t.name}\``, '', t.doc, '', '| column | type | meaning |', '|---|---|---|', ...rows, ''].join('\n');
}
