import { EVENTS } from './tables/ingest.js';

/**
 * SELECTs generated from the table definitions, like the DDL of db/setup.ts: what `refscope export` writes. Table
 * names come from the definitions only; the trace id is the bound parameter $1.
 */

/** The canonical events export: the events columns plus the frames of the row's stacks, by trace and seq. */
export function eventsSelectSql(filtered: boolean): string {
  const cols = EVENTS.columns.map((c) => `e."${c.name}"`).join(', ');
  return `SELECT ${cols}, ks.frames AS stack, us.frames AS user_stack
    FROM events e
    LEFT JOIN stacks ks ON ks.trace_id = e.trace_id AND ks.stack_id = e.stack_id
    LEFT JOIN stacks us ON us.trace_id = e.trace_id AND us.stack_id = e.user_stack_id
    ${filtered ? 'WHERE e.trace_id = $1' : ''}
    ORDER BY e.trace_id, e.seq`;
}

/** Every row of a known table (of one trace when filtered), in a stable order; events as eventsSelectSql. */
export function tableSelectSql(table: string, filtered: boolean): string {
  if (table === 'events') return eventsSelectSql(filtered);
  return `SELECT * FROM "${table}" ${filtered ? 'WHERE trace_id = $1' : ''} ORDER BY ALL`;
}
