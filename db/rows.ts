import type { Table } from './columns.js';
import type { Db } from './duckdb.js';
import { ColumnarBatch, setBig, setInt, setStr } from './batch.js';
import { ChunkAppender } from './chunks.js';

/** Where a writer's full batches go: the appender (synchronous) or a TableFeed (inserts on DuckDB's thread). */
export interface BatchSink {
  open(): Promise<void> | void;
  append(batch: ColumnarBatch): void;
  close(): Promise<void> | void;
}

/**
 * Append row objects to a table through the same columnar path as events. For result tables (replay,
 * stacks, markers): rows are objects keyed by column name; missing keys are NULL.
 */
export type Value = number | bigint | string | boolean | null | undefined;

export class RowWriter {
  private readonly batch: ColumnarBatch;
  count = 0;

  constructor(
    db: Db,
    readonly table: Table,
    private readonly sink: BatchSink = new ChunkAppender(db, table.name),
  ) {
    const plain = table.columns.filter((c) => /^(VARCHAR|JSON)/.test(c.type)).map((c) => c.name);
    this.batch = new ColumnarBatch(table, plain);
  }

  async open(): Promise<this> {
    await this.sink.open();
    return this;
  }

  add(row: Record<string, Value>): void {
    if (this.batch.full) this.flush();
    const r = this.batch.addRow();
    for (const c of this.batch.columns) {
      const v = row[c.name];
      if (v === null || v === undefined) {
        if (c.notNull) throw new Error(`${this.table.name}.${c.name} is NOT NULL but the row has none`);
        continue;
      }
      if (typeof v === 'bigint') setBig(c, r, v);
      else if (typeof v === 'string') setStr(c, r, v);
      else setInt(c, r, typeof v === 'boolean' ? (v ? 1 : 0) : v);
    }
    this.count++;
  }

  close(): Promise<void> | void {
    this.flush();
    return this.sink.close();
  }

  private flush(): void {
    this.sink.append(this.batch);
    this.batch.clear();
  }
}

export async function writeRows(db: Db, table: Table, rows: Iterable<Record<string, Value>>): Promise<number> {
  const w = await new RowWriter(db, table).open();
  for (const r of rows) w.add(r);
  await w.close();
  return w.count;
}
