import type { Row } from '../db/duckdb.js';
import { toNum } from './format.js';

/**
 * One sentence for the verdict area when the trace has untraced windows (queries/report/gaps.sql): how many the
 * tracer marked, how many replay inferred and of what kind, and what that means for the findings (docs/model.md
 * §16). Null when there are none.
 */
export function gapSentence(rows: Row[]): string | null {
  const n = (r: Row) => toNum(r.windows) ?? 0;
  const marked = rows.filter((r) => r.source === 'marker');
  const inferred = rows.filter((r) => r.source === 'inferred');
  const total = rows.reduce((a, r) => a + n(r), 0);
  if (total === 0) return null;
  const kinds = (rs: Row[]) => rs.map((r) => `${n(r)} ${String(r.kind)}`).join(', ');
  const parts = [
    marked.length ? `${marked.reduce((a, r) => a + n(r), 0)} marked by the tracer (${kinds(marked)})` : '',
    inferred.length ? `${inferred.reduce((a, r) => a + n(r), 0)} inferred from the events (${kinds(inferred)})` : '',
  ].filter(Boolean);
  const alive = inferred.filter((r) => r.kind === 'alive-on-free').reduce((a, r) => a + (toNum(r.pages) ?? 0), 0);
  return (
    `This trace has ${total} untraced window${total === 1 ? '' : 's'}: ${parts.join('; ')}. Events are missing there: ` +
    'findings resting on state that crosses one are uncertain' +
    (alive
      ? `; ${alive} page${alive === 1 ? '' : 's'} whose count= showed ${alive === 1 ? 'it' : 'them'} alive after ${alive === 1 ? 'its' : 'their'} free ` +
        `${alive === 1 ? 'was' : 'were'} allocated again unseen, not used after free`
      : '') +
    ' (query divergence).'
  );
}
