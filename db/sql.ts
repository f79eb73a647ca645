/**
 * SQL statements live in files under queries/ (one concern per file); this reads one by its path there, so that
 * every layer (replay's pgmap inference, the reports' chart data) takes its SQL from the same place. The built
 * package carries the files beside its JavaScript (dist/queries/).
 */
import { readFileSync } from 'node:fs';

export const SQL_DIR = new URL('../queries/', import.meta.url);

const cache = new Map<string, string>();

/** The text of queries/<path> (e.g. 'replay/pgmaps-infer-sections.sql'), read once. */
export function sqlFile(path: string): string {
  let text = cache.get(path);
  if (text === undefined) {
    text = readFileSync(new URL(path, SQL_DIR), 'utf8');
    cache.set(path, text);
  }
  return text;
}
