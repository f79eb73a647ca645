import { Option, type Command } from 'commander';
import { dirname } from 'node:path';
import { PUBLIC_TABLES } from '../../db/setup.js';
import type { ExportFormat } from '../../export/tables.js';
import { dbOption, openLocked, UsageError, withReplayedTrace } from '../common.js';

/** `refscope export`: one table as Arrow IPC, Parquet or CSV, or one trace as Perfetto JSON. */
export function exportCommand(program: Command): void {
  program
    .command('export')
    .description('write a table of one trace (or of all traces) as an Arrow IPC file, Parquet or CSV')
    .addOption(dbOption())
    .option('--trace <id>', 'trace id, or all (the default for tables; --perfetto needs one trace: default the only one)')
    .option('--arrow <file>', 'Arrow IPC file (refscope ingest reads it back)')
    .option('--parquet <dir>', 'directory for <table>.parquet')
    .option('--csv <file>', 'CSV file with a header (refscope ingest reads a --csv-raw one back exactly)')
    .option('--csv-raw', 'csv: write text exactly as stored (no leading \' before formulas, control characters unescaped)')
    .option('--perfetto <file>', 'pins, holds, page lifetimes and CMA calls of one trace (--trace N when the database holds several) as Chrome trace-event JSON for ui.perfetto.dev')
    .addOption(new Option('--table <table>', 'table to export').choices(PUBLIC_TABLES.map((t) => t.name)).default('events'))
    .action(async (o) => {
      if (o.perfetto !== undefined) {
        if (['arrow', 'parquet', 'csv'].some((f) => o[f] !== undefined)) throw new UsageError('export: --perfetto cannot be combined with --arrow, --parquet or --csv');
        return perfetto(o);
      }
      const { exportTable } = await import('../../export/tables.js');
      const targets = (['arrow', 'parquet', 'csv'] as ExportFormat[]).filter((f) => o[f] !== undefined);
      if (targets.length !== 1) throw new UsageError('export: give exactly one of --arrow FILE, --parquet DIR, --csv FILE, --perfetto FILE');
      if (o.trace !== undefined && o.trace !== 'all' && !/^\d+$/.test(o.trace)) throw new UsageError(`export: --trace ${o.trace}: not a trace id or all`);
      const format = targets[0];
      // Read-only and locked; DuckDB's COPY (parquet, csv) may write only where its temporary file goes.
      const db = await openLocked(o.db, { writeDirs: format === 'arrow' ? [] : [format === 'parquet' ? o.parquet : dirname(o[format])] });
      try {
        const traceId = o.trace === undefined || o.trace === 'all' ? undefined : Number(o.trace);
        const r = await exportTable(db, { table: o.table, traceId, format, target: o[format], csvSafe: !o.csvRaw });
        console.error(`exported ${r.rows} rows of ${r.table} to ${r.file}`);
      } finally {
        db.close();
      }
    });
}

async function perfetto(o: { db: string; trace?: string; perfetto: string }): Promise<void> {
  const { writePerfetto } = await import('../../export/perfetto.js');
  await withReplayedTrace(o, async (db, traceId) => {
    const r = await writePerfetto(db, traceId, o.perfetto);
    console.error(`exported trace ${traceId} to ${r.file}: ${r.events} trace events (open in ui.perfetto.dev or chrome://tracing)`);
  });
}
