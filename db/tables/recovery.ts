import type { Table } from '../columns.js';

/**
 * Bookkeeping that makes ingest and replay crash-safe without relying on DuckDB's atomicity (db/recover.ts): each
 * commits its intent here first, in its own transaction, and the data transaction's last row (`traces`,
 * `replay_runs`) says it completed.
 */

export const TRACE_LOADS: Table = {
  name: 'trace_loads',
  doc:
    'One row per ingest that got a trace id, committed before any of its rows: new ids are 1 + the largest here or in ' +
    '`traces`, so an id is never given twice. A trace is complete iff it has its `traces` row; on every writable open, ' +
    "the rows of a trace still 'loading' without one (a killed ingest) are deleted.",
  columns: [
    { name: 'trace_id', type: 'INTEGER NOT NULL', doc: 'The id given to the ingest.' },
    { name: 'source', type: 'VARCHAR NOT NULL', doc: 'The input, as given on the command line.' },
    { name: 'started_at', type: 'TIMESTAMP NOT NULL', doc: 'When the ingest got the id (UTC).' },
    {
      name: 'state',
      type: 'VARCHAR NOT NULL',
      doc: "'loading' until its data transaction commits ('complete'); 'failed' (rolled back) or 'abandoned' (killed, its rows deleted at the next open).",
    },
  ],
  constraints: ['PRIMARY KEY (trace_id)'],
};

export const REPLAY_LOADS: Table = {
  name: 'replay_loads',
  doc:
    'A replay in progress: committed before the replay writes; its transaction (or its rollback) deletes it. A row ' +
    "left by a killed replay makes the next writable open delete every replay row of the trace, `replay_runs` too.",
  columns: [
    { name: 'trace_id', type: 'INTEGER NOT NULL', doc: '`traces.trace_id`.' },
    { name: 'started_at', type: 'TIMESTAMP NOT NULL', doc: 'When the replay started (UTC).' },
  ],
  constraints: ['PRIMARY KEY (trace_id)'],
};

export const RECOVERY_TABLES: Table[] = [TRACE_LOADS, REPLAY_LOADS];
