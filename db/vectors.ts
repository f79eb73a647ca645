/**
 * Reading a result chunk's column vectors as typed arrays (no row objects, no per-value calls): the only code that
 * reads DuckDB vectors; the replay's event stream is built on it.
 *
 * vector_get_data / vector_get_validity copy the vector's bytes into a new buffer (writing to the array leaves the
 * vector unchanged), so the arrays stay valid after the chunk is gone.
 */
import type { DuckDBDataChunk, DuckDBEnumType, DuckDBResult } from '@duckdb/node-api';
import { bindings, DuckDBTypeId } from './duckdb-api.js';

type RawVector = ReturnType<typeof bindings.data_chunk_get_vector>;

export type EnumCodes = Uint8Array | Uint16Array | Uint32Array;
/** Byte width of an ENUM column: DuckDB sizes an ENUM by its value count. */
export type EnumWidth = 1 | 2 | 4;

export function enumWidth(res: DuckDBResult, column: number): EnumWidth {
  const t = res.columnType(column) as DuckDBEnumType;
  return t.internalTypeId === DuckDBTypeId.UTINYINT ? 1 : t.internalTypeId === DuckDBTypeId.USMALLINT ? 2 : 4;
}

/** The vectors of one chunk of `rows` rows. */
export class ChunkVectors {
  readonly rows: number;

  constructor(private readonly chunk: DuckDBDataChunk) {
    this.rows = chunk.rowCount;
  }

  /** 64-bit integers as int32 pairs (low, high). */
  i64(c: number): Int32Array {
    return this.i32s(c, 8);
  }

  i32(c: number): Int32Array {
    return this.i32s(c, 4);
  }

  f64(c: number): Float64Array {
    const d = this.bytes(c, 8);
    // A copy at an offset that is not a multiple of 8 cannot be viewed as doubles.
    return d.byteOffset % 8 === 0 ? new Float64Array(d.buffer, d.byteOffset, this.rows) : new Float64Array(d.slice().buffer, 0, this.rows);
  }

  i16(c: number): Int16Array {
    const d = this.bytes(c, 2);
    return new Int16Array(d.buffer, d.byteOffset, this.rows);
  }

  u8(c: number): Uint8Array {
    return this.bytes(c, 1);
  }

  /** An ENUM column's codes at its width. */
  codes(c: number, width: EnumWidth): EnumCodes {
    const d = this.bytes(c, width);
    if (width === 1) return d;
    return width === 2 ? new Uint16Array(d.buffer, d.byteOffset, this.rows) : new Uint32Array(d.buffer, d.byteOffset, this.rows);
  }

  /** Validity bitmap in 32-bit words (row r valid: bit r & 31 of word r >>> 5); null when the column has no NULL. */
  valid(c: number): Uint32Array | null {
    const words = Math.ceil(this.rows / 64) * 2;
    const b = bindings.vector_get_validity(this.vector(c), words * 4);
    return b ? new Uint32Array(b.buffer, b.byteOffset, words) : null;
  }

  /** Column vectors fetched so far (data and validity of a column share one). */
  private readonly vectors: RawVector[] = [];

  private vector(c: number): RawVector {
    return (this.vectors[c] ??= bindings.data_chunk_get_vector(this.chunk.chunk, c));
  }

  private bytes(c: number, width: number): Uint8Array {
    return bindings.vector_get_data(this.vector(c), this.rows * width);
  }

  private i32s(c: number, width: number): Int32Array {
    const d = this.bytes(c, width);
    return new Int32Array(d.buffer, d.byteOffset, (this.rows * width) / 4);
  }
}
