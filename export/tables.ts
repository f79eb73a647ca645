import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  AsyncByteQueue,
  Bool,
  Field,
  Float32,
  Float64,
  Int16,
  Int32,
  Int64,
  Int8,
  makeData,
  Message,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  TimestampMicrosecond,
  Uint16,
  Uint32,
  Uint64,
  Uint8,
  Utf8,
  vectorFromArray,
  type Data,
  type DataType,
} from 'apache-arrow';
import { DuckDBTimestampValue, DuckDBTypeId } from '../db/duckdb-api.js';
import type { DuckDBType, DuckDBValue } from '@duckdb/node-api';
import type { Db } from '../db/duckdb.js';
import { tableSelectSql } from '../db/select.js';
import { PUBLIC_TABLES } from '../db/setup.js';
import { csvSafeSql } from '../queries/csv-safe.js';
import { rowOf, rowsOf } from '../queries/statements.js';

/**
 * `refscope export`: one table (default `events`) of one trace or all traces, as an Arrow IPC file (streamed
 * from DuckDB chunk by chunk through apache-arrow), Parquet (DuckDB's COPY, into DIR/<table>.parquet) or CSV
 * (COPY, with a header; text cells neutralised as csvSafeSql says with csvSafe). The events export is the canonical events schema that `refscope ingest` reads back:
 * the events columns plus `stack` and `user_stack` (frames of the row's stacks), ordered by trace and seq.
 * Table names come only from the known schema list; the trace id is a bound parameter.
 */

export type ExportFormat = 'arrow' | 'parquet' | 'csv';

export interface ExportOptions {
  table?: string;
  traceId?: number;
  format: ExportFormat;
  /** File (arrow, csv) or directory (parquet). */
  target: string;
  /**
   * CSV: neutralise text cells a spreadsheet would run as formulas and escape control characters (csvSafeSql).
   * The CLI's default (`--csv-raw` turns it off); off here, so that the file reads back exactly.
   */
  csvSafe?: boolean;
}

export interface ExportResult {
  table: string;
  file: string;
  rows: number;
}

export class ExportError extends Error {}

export const EXPORTABLE_TABLES: string[] = PUBLIC_TABLES.map((t) => t.name);

async function tableSql(db: Db, table: string, traceId: number | undefined): Promise<string> {
  if (!EXPORTABLE_TABLES.includes(table))
    throw new ExportError(`--table ${JSON.stringify(table).slice(0, 60)}: unknown table (known: ${EXPORTABLE_TABLES.join(', ')})`);
  if (!(await db.tableExists(table))) throw new ExportError(`${db.path}: has no table ${table} (nothing ingested or replayed yet?)`);
  const cols = await rowsOf<{ column_name: string }>(db, 'export/table-columns.sql', { table_name: table });
  const hasTrace = cols.some((c) => c.column_name === 'trace_id');
  if (traceId !== undefined) {
    if (!hasTrace) throw new ExportError(`table ${table} is not per trace: export it without --trace`);
    const t = await rowOf<{ n: number }>(db, 'common/trace-exists.sql', { trace_id: traceId });
    if (!t?.n) throw new ExportError(`${db.path}: no trace ${traceId}`);
  }
  // `table` is one of the known names (checked above).
  return tableSelectSql(table, traceId !== undefined);
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export async function exportTable(db: Db, opts: ExportOptions): Promise<ExportResult> {
  const table = opts.table ?? 'events';
  const sql = await tableSql(db, table, opts.traceId);
  const params = opts.traceId !== undefined ? [opts.traceId] : [];
  if (opts.format === 'parquet') {
    mkdirSync(opts.target, { recursive: true });
    const file = join(opts.target, `${table}.parquet`);
    const tmp = `${file}.tmp-${process.pid}`;
    const rows = await copyTo(db, sql, params, tmp, 'FORMAT parquet');
    renameSync(tmp, file);
    return { table, file, rows };
  }
  mkdirSync(dirname(resolve(opts.target)), { recursive: true });
  const tmp = `${opts.target}.tmp-${process.pid}`;
  try {
    const rows =
      opts.format === 'csv'
        ? await copyTo(db, opts.csvSafe ? await csvSafeSql(db, sql) : sql, params, tmp, 'FORMAT csv, HEADER')
        : await writeArrow(db, sql, params, tmp);
    renameSync(tmp, opts.target);
    return { table, file: opts.target, rows };
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

async function copyTo(db: Db, sql: string, params: DuckDBValue[], file: string, options: string): Promise<number> {
  try {
    const r = await db.all<{ Count: number | bigint }>(`COPY (${sql}) TO ${sqlString(file)} (${options})`, params);
    return Number(r[0]?.Count ?? 0);
  } catch (e) {
    rmSync(file, { force: true, recursive: true });
    throw e;
  }
}

/* ---- Arrow IPC file, one record batch per DuckDB chunk ---- */

/** apache-arrow's writer pushes bytes into an AsyncByteQueue: this one writes them straight to a file. */
class FileSink extends AsyncByteQueue {
  bytes = 0;
  constructor(private readonly fd: number) {
    super();
  }
  override write(value: ArrayBufferView | ArrayBuffer | Uint8Array): void {
    const u8 =
      value instanceof Uint8Array
        ? value
        : ArrayBuffer.isView(value)
          ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
          : new Uint8Array(value as ArrayBuffer);
    let off = 0;
    while (off < u8.length) off += writeSync(this.fd, u8, off, u8.length - off);
    this.bytes += u8.length;
  }
}

interface ArrowCol {
  type: DataType;
  build(get: (i: number) => DuckDBValue, n: number): Data;
}

function fixed<A extends { [i: number]: unknown; length: number }>(
  type: DataType,
  alloc: (n: number) => A,
  conv: (v: DuckDBValue) => unknown,
): ArrowCol {
  return {
    type,
    build(get, n) {
      const data = alloc(n) as unknown as { [i: number]: unknown };
      const nulls = new Uint8Array((n + 7) >> 3);
      let nullCount = 0;
      for (let i = 0; i < n; i++) {
        const v = get(i);
        if (v === null || v === undefined) nullCount++;
        else {
          nulls[i >> 3] |= 1 << (i & 7);
          data[i] = conv(v);
        }
      }
      return makeData({ type, length: n, nullCount, nullBitmap: nullCount ? nulls : null, data } as never);
    },
  };
}

function boolCol(): ArrowCol {
  const type = new Bool();
  return {
    type,
    build(get, n) {
      const bits = new Uint8Array((n + 7) >> 3);
      const nulls = new Uint8Array((n + 7) >> 3);
      let nullCount = 0;
      for (let i = 0; i < n; i++) {
        const v = get(i);
        if (v === null || v === undefined) nullCount++;
        else {
          nulls[i >> 3] |= 1 << (i & 7);
          if (v) bits[i >> 3] |= 1 << (i & 7);
        }
      }
      return makeData({ type, length: n, nullCount, nullBitmap: nullCount ? nulls : null, data: bits });
    },
  };
}

function stringCol(): ArrowCol {
  const type = new Utf8();
  return {
    type,
    build(get, n) {
      const vals: (string | null)[] = new Array(n);
      for (let i = 0; i < n; i++) {
        const v = get(i);
        vals[i] = v === null || v === undefined ? null : String(v);
      }
      return vectorFromArray(vals, type).data[0];
    },
  };
}

const num = (v: DuckDBValue) => Number(v);
const big = (v: DuckDBValue) => (typeof v === 'bigint' ? v : BigInt(v as number));

type TypedArrayOf = new (n: number) => { [i: number]: unknown; length: number };

/** DuckDB types that export as fixed-width Arrow columns: the Arrow type, its typed array, the value conversion. */
const FIXED: Partial<Record<DuckDBTypeId, [() => DataType, TypedArrayOf, (v: DuckDBValue) => unknown]>> = {
  [DuckDBTypeId.TINYINT]: [() => new Int8(), Int8Array, num],
  [DuckDBTypeId.SMALLINT]: [() => new Int16(), Int16Array, num],
  [DuckDBTypeId.INTEGER]: [() => new Int32(), Int32Array, num],
  [DuckDBTypeId.BIGINT]: [() => new Int64(), BigInt64Array, big],
  [DuckDBTypeId.UTINYINT]: [() => new Uint8(), Uint8Array, num],
  [DuckDBTypeId.USMALLINT]: [() => new Uint16(), Uint16Array, num],
  [DuckDBTypeId.UINTEGER]: [() => new Uint32(), Uint32Array, num],
  [DuckDBTypeId.UBIGINT]: [() => new Uint64(), BigUint64Array, big],
  [DuckDBTypeId.FLOAT]: [() => new Float32(), Float32Array, num],
  [DuckDBTypeId.DOUBLE]: [() => new Float64(), Float64Array, num],
  [DuckDBTypeId.TIMESTAMP]: [() => new TimestampMicrosecond(), BigInt64Array, (v) => (v as DuckDBTimestampValue).micros],
};

function arrowColumn(t: DuckDBType): ArrowCol {
  if (t.typeId === DuckDBTypeId.BOOLEAN) return boolCol();
  const f = FIXED[t.typeId];
  if (!f) return stringCol(); // VARCHAR, JSON, and anything else as its text
  const [type, Typed, conv] = f;
  return fixed(type(), (n) => new Typed(n), conv);
}

/**
 * apache-arrow's file writer leaves the schema out of the stream part of the file (readers that use the footer
 * do not need it); write it there too, as the format specifies, so the file can also be read sequentially
 * (from a pipe or a .gz), which is how `refscope ingest` reads it.
 */
class SequentialFileWriter extends RecordBatchFileWriter {
  protected override _writeSchema(schema: Schema): this {
    super._writeSchema(schema);
    return this._writeMessage(Message.from(schema));
  }
}

async function writeArrow(db: Db, sql: string, params: DuckDBValue[], file: string): Promise<number> {
  const result = await db.conn.stream(sql, params);
  const names = result.columnNames();
  const cols = result.columnTypes().map(arrowColumn);
  const schema = new Schema(names.map((n, i) => new Field(n, cols[i].type, true)));
  const fd = openSync(file, 'w');
  let rows = 0;
  try {
    const sink = new FileSink(fd);
    const writer = new SequentialFileWriter();
    writer.reset(sink, schema);
    for (;;) {
      const chunk = await result.fetchChunk();
      if (!chunk || chunk.rowCount === 0) break;
      const n = chunk.rowCount;
      const children = cols.map((c, i) => {
        const v = chunk.getColumnVector(i);
        return c.build((r) => v.getItem(r), n);
      });
      writer.write(new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children })));
      rows += n;
    }
    writer.finish();
  } finally {
    closeSync(fd);
  }
  return rows;
}
