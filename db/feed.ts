import { bindings } from './duckdb-api.js';
import { type ColumnarBatch, type TransferredBatch } from './batch.js';
import { fillVector } from './chunks.js';
import type { Table } from './columns.js';
import type { Db } from './duckdb.js';

type Raw<T extends (...a: never[]) => unknown, I extends number = 0> = Parameters<T>[I];
type RawChunk = Raw<typeof bindings.data_chunk_get_vector>;
type RawVector = ReturnType<typeof bindings.data_chunk_get_vector>;
type RawType = Raw<typeof bindings.bind_add_result_column, 2>;

/**
 * Writes ColumnarBatches into a table off the JS thread. The appender inserts on the caller's thread: for replay's
 * `pages` (one row per allocation) that was a third of the replay's time, and ingest's `events` held 0.7-1.1 GB
 * of DuckDB's memory under it (0.55 GB through a feed). A TableFeed instead queues the filled
 * batches and runs `INSERT INTO table SELECT * FROM refscope_feed_<table>()` as an asynchronous query: DuckDB
 * does the insert on its own thread and calls back into JS (between two of the caller's awaits) only to copy
 * each queued batch into its data chunk, buffer by buffer.
 *
 * Rules that keep it safe:
 * - One query at a time runs on a connection, so while a feed's insert runs nothing may call the connection
 *   synchronously (an appender flush there would wait for the insert, which waits for JS: deadlock). Replay
 *   writes every result table through feeds; ingest writes anything else only after its events feed is closed;
 *   the inserts of all feeds of a Db run one after another.
 * - A writer faster than DuckDB waits on whenRoom(); a finished insert starts the next one itself when enough
 *   is queued, since a waiting writer appends nothing that would start it.
 * - An insert takes only the batches queued when it starts, and the ENUM types of dictionary columns are the
 *   dictionaries at that moment, so every code it sees is in its type.
 * - Errors of an insert are kept and thrown by close(); the caller's transaction then rolls back.
 */
export class TableFeed {
  private readonly queue: TransferredBatch[] = [];
  private readonly spare: TransferredBatch[] = [];
  private readonly sent = new Map<string, number>();
  /** Batches the running insert still takes; its dictionary sizes. */
  private left = 0;
  private enumSizes: number[] = [];
  private pending: Promise<void> | null = null;
  private error: unknown = null;
  /** Writers waiting for the queue to shrink below their limit. */
  private waiting: { max: number; wake: () => void }[] = [];
  /** Inserts run so far. */
  inserts = 0;
  /** The writer's batch: describes the columns (storage, dictionaries) of every queued batch. */
  private shape: ColumnarBatch | null = null;

  constructor(
    private readonly db: Db,
    readonly table: Table,
    /** Queued batches that start an insert. */
    private readonly threshold = 16,
  ) {}

  /** The first insert error, if an insert failed. */
  get failure(): unknown {
    return this.error;
  }

  /** Rows waiting in the queue. */
  get backlog(): number {
    return this.queue.reduce((s, b) => s + b.rows, 0);
  }

  open(): void {
    register(this.db, this);
  }

  /** Queue the batch's rows (the batch continues with recycled arrays, empty). */
  append(batch: ColumnarBatch): void {
    if (this.error) throw this.error;
    if (batch.rows === 0) return;
    if (this.shape && this.shape !== batch) throw new Error(`one batch per feed into ${this.table.name}`);
    this.shape = batch;
    this.queue.push(batch.detach(this.sent, this.spare.pop()));
    if (this.queue.length >= this.threshold) this.start();
  }

  /**
   * Resolves once fewer than `max` batches are queued (at once when they already are), or when an insert has
   * failed: a writer that produces faster than DuckDB inserts waits here instead of growing the queue.
   */
  whenRoom(max: number): Promise<void> {
    if (this.queue.length < max || this.error) return Promise.resolve();
    return new Promise((wake) => this.waiting.push({ max, wake }));
  }

  /** Wait until every queued batch is in the table; throws the first insert error. */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.pending) {
      if (!this.pending) this.start();
      await this.pending;
      if (this.error) break;
    }
    if (this.error) throw this.error;
  }

  close(): Promise<void> {
    return this.drain().finally(() => unregister(this.db, this));
  }

  /** Give up the queued rows (the caller's transaction is rolling back) and wait for a running insert. */
  async abort(): Promise<void> {
    this.queue.length = 0;
    this.left = 0;
    this.wakeWriters();
    await this.pending?.catch(() => undefined);
    unregister(this.db, this);
  }

  private start(): void {
    if (this.pending || this.error) return;
    const prev = tails.get(this.db) ?? Promise.resolve();
    const run = prev.then(() => this.db.run(`INSERT INTO ${this.table.name} SELECT * FROM ${fnName(this.table)}()`));
    tails.set(this.db, run.catch(() => undefined));
    this.pending = run.then(
      () => {
        this.pending = null;
        // Batches queued during this insert: the writer may be waiting for room and append nothing more.
        if (this.queue.length >= this.threshold) this.start();
      },
      (e: unknown) => {
        this.pending = null;
        this.error ??= e;
        this.wakeWriters();
      },
    );
  }

  private wakeWriters(): void {
    const keep = this.waiting.filter((w) => this.queue.length >= w.max && !this.error);
    for (const w of this.waiting) if (!keep.includes(w)) w.wake();
    this.waiting = keep;
  }

  /** bind: the result columns, typed as the batch stores them (dictionaries as ENUMs of their values now). */
  bind(info: Raw<typeof bindings.bind_add_result_column>): void {
    const batch = this.shape!;
    this.inserts++;
    this.left = this.queue.length;
    this.enumSizes = [];
    batch.columns.forEach((c, i) => {
      let t: RawType;
      const size = c.dict?.values.length ?? 0;
      if (c.storage === 'dict' && size > 0 && size <= MAX_ENUM) {
        t = bindings.create_enum_type(c.dict!.values);
        this.enumSizes[i] = size;
      } else t = bindings.create_logical_type(TYPE_OF[c.storage]);
      bindings.bind_add_result_column(info, c.name, t);
    });
  }

  /** main: the next queued batch into DuckDB's chunk, or 0 rows when the insert has all it started with. */
  fill(out: RawChunk): void {
    const batch = this.shape!;
    const b = this.left > 0 ? this.queue.shift() : undefined;
    if (!b) {
      bindings.data_chunk_set_size(out, 0);
      return;
    }
    this.left--;
    const n = b.rows;
    batch.columns.forEach((c, i) => {
      const t = b.cols[i];
      let data: ArrayBufferView | undefined;
      if (t.i32) data = t.i32.subarray(0, c.storage === 'i32' ? n : 2 * n);
      else if (t.i16) data = t.i16.subarray(0, n);
      else if (t.u8) data = t.u8.subarray(0, n);
      else if (t.codes && this.enumSizes[i] !== undefined) {
        // DuckDB stores ENUM codes as uint8 up to 255 values, else uint16 (up to MAX_ENUM here).
        const codes = t.codes.subarray(0, n);
        data = this.enumSizes[i] <= 255 ? Uint8Array.from(codes) : Uint16Array.from(codes);
      }
      const v = bindings.data_chunk_get_vector(out, i);
      if (t.codes && c.dict && this.enumSizes[i] === undefined) fillText(v, n, t.codes, c.dict.values, t.valid);
      fillVector(v, n, data, t.text, t.valid, c.notNull);
    });
    bindings.data_chunk_set_size(out, n);
    b.rows = 0;
    this.spare.push(b);
    if (this.waiting.length > 0) this.wakeWriters();
  }
}

/**
 * Dictionaries larger than this go in as text, row by row: an ENUM type is built from every value at each insert,
 * which for a dictionary that keeps growing (a distinct comm per thread of a huge trace) would cost more than
 * the rows.
 */
const MAX_ENUM = 65535;

function fillText(v: RawVector, n: number, codes: Uint32Array, values: readonly string[], valid: Uint32Array): void {
  for (let r = 0; r < n; r++) if (valid[r >>> 5] & (1 << (r & 31))) bindings.vector_assign_string_element(v, r, values[codes[r]]);
}

const TYPE_OF = {
  i64: bindings.Type.BIGINT,
  u64: bindings.Type.UBIGINT,
  i32: bindings.Type.INTEGER,
  i16: bindings.Type.SMALLINT,
  bool: bindings.Type.BOOLEAN,
  dict: bindings.Type.VARCHAR,
  str: bindings.Type.VARCHAR,
} as const;

const fnName = (t: Table): string => `refscope_feed_${t.name}`;

/** Per Db: the feed each table function serves now, and the tail of the chain of inserts. */
const current = new WeakMap<Db, Map<string, TableFeed>>();
const tails = new WeakMap<Db, Promise<unknown>>();

/**
 * Make `feed` the one its table function serves, registering the function (again) every time: a function
 * registered inside a transaction that rolls back is gone with it, and registering a name again is harmless.
 */
function register(db: Db, feed: TableFeed): void {
  let m = current.get(db);
  if (!m) current.set(db, (m = new Map()));
  const name = feed.table.name;
  if (m.has(name)) throw new Error(`a feed into ${name} is already open`);
  m.set(name, feed);
  const serving = () => {
    const f = current.get(db)?.get(name);
    if (!f) throw new Error(`no feed into ${name} is open`);
    return f;
  };
  const tf = bindings.create_table_function();
  bindings.table_function_set_name(tf, fnName(feed.table));
  bindings.table_function_set_bind(tf, (info) => serving().bind(info));
  bindings.table_function_set_init(tf, (info) => bindings.init_set_max_threads(info, 1));
  bindings.table_function_set_function(tf, (_info, out) => serving().fill(out));
  const raw = (db.conn as unknown as { connection: Raw<typeof bindings.register_table_function> }).connection;
  bindings.register_table_function(raw, tf);
}

function unregister(db: Db, feed: TableFeed): void {
  const m = current.get(db);
  if (m?.get(feed.table.name) === feed) m.delete(feed.table.name);
}
