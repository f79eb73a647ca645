/**
 * The replay's event source: streams one trace's events from DuckDB in seq order (never ts order: many events share
 * a timestamp), chunk by chunk, as typed arrays (db/vectors.ts; no row objects), and fills one reused Ev per event.
 * Strings arrive as ENUM codes (comm, event, gfp, page_flags); rare events' extra columns (ranges, names, exact
 * 64-bit pointers, payload) come from a second, small query merged by seq.
 *
 * Events are read in storage order (ingest appends a trace's events in seq order) and the order is checked: if a
 * seq ever goes backwards the stream throws OrderError and replay restarts it with ORDER BY seq.
 */
import type { DuckDBConnection, DuckDBDataChunk, DuckDBResult } from '@duckdb/node-api';
import { CMA_FINISH, CMA_START, Ev, isSideCode, PGM_GET_RET, PGM_REMAP, RAW_MAP, RAW_ZAP, SYS_MUNMAP, TASK_FORK, type Side } from './event.js';
import { namesWithCode as namesOf, replayCode } from '../ingest/decode/catalogue.js';
import { ChunkVectors, enumWidth, type EnumWidth } from '../db/vectors.js';
import type { SilenceScan } from './gaps.js';

/** A seq went backwards: events are not stored in seq order (replay restarts with ORDER BY seq). */
export class OrderError extends Error {}

/** String tables of one trace: the ENUM values the stream query uses. */
export interface Strings {
  comms: string[];
  events: string[];
  gfps: string[];
  /** Distinct page_flags texts. */
  flags: string[];
  /** Distinct name values (cma area, migrate reason, ...): the side rows' ENUM. */
  names: string[];
}

const sqlList = (a: string[]): string => (a.length ? a : ['']).map((s) => `'${s.replace(/'/g, "''")}'`).join(',');

/** Distinct comm / event / gfp / page_flags values of a trace (the ENUM dictionaries of the stream), in one scan. */
export async function loadStrings(conn: DuckDBConnection, traceId: number): Promise<Strings> {
  const r = await conn.runAndReadAll(
    `SELECT list(DISTINCT comm) AS comms, list(DISTINCT event) AS events, list(DISTINCT gfp) AS gfps,
       list(DISTINCT page_flags) AS flags, list(DISTINCT name) AS names FROM events WHERE trace_id = $1`,
    [traceId],
  );
  const row = r.getRowObjectsJS()[0] ?? {};
  const strs = (v: unknown): string[] => ((v as (string | null)[] | null) ?? []).filter((x): x is string => x !== null);
  return {
    comms: strs(row.comms),
    events: strs(row.events),
    gfps: strs(row.gfps),
    flags: strs(row.flags),
    names: strs(row.names),
  };
}

const SIDE_EVENTS = namesOf(isSideCode);
/** Events whose payload replay parses (page_offset_base=, a hex ret=, size=, len:); sched_process_fork's: forkPayloads. */
const PAYLOAD_EVENTS = namesOf((c) => c === PGM_REMAP || c === PGM_GET_RET || c === RAW_MAP || c === RAW_ZAP || c === SYS_MUNMAP);
const FORK_EVENTS = namesOf((c) => c === TASK_FORK);

/** seq -> payload of every sched_process_fork of the trace (tasks.ts reads child_pid= from it). */
export async function forkPayloads(conn: DuckDBConnection, traceId: number): Promise<Map<number, string>> {
  const r = await conn.runAndReadAll(`SELECT seq::DOUBLE AS seq, payload FROM events WHERE trace_id = $1 AND event IN (${sqlList(FORK_EVENTS)})`, [traceId]);
  const c = r.getColumnsObjectJS();
  const seqs = c.seq as number[];
  const payloads = c.payload as string[];
  return new Map(seqs.map((s, i) => [s, payloads[i]]));
}
const CMA_ALLOC_EVENTS = namesOf((c) => c === CMA_START || c === CMA_FINISH);
const CMA_RESULT_EVENTS = namesOf((c) => c === CMA_FINISH);

/** The numeric side columns, in the order of the query's columns 2..8 (seq is column 0). */
const SIDE_NUMS = ['pfn', 'mt', 'pfnEnd', 'finPfn', 'nrPages', 'nrSucceeded', 'nrFailed'] as const;

/**
 * loadSide's rows, column by column: a trace's side rows stay in memory for the whole replay, and as Side objects
 * (each number a heap object of its own) they took ~280 bytes a row, ~4.5 MB at 16 k rows; here ~90. row(i) builds
 * row i's Side (the stream asks once per side event; no tracker keeps it).
 */
export class SideRows {
  length = 0;
  seq = new Float64Array(64);
  /** Event name (index into `events`) and name (index into `names`, -1 = NULL). */
  private ev = new Int32Array(64);
  private nm = new Int32Array(64);
  private pg = new Int8Array(64);
  /** SIDE_NUMS columns, row-major (7 a row). */
  private nums = new Float64Array(64 * SIDE_NUMS.length);
  /** The rare non-NULL pointers and the payloads read, by row. */
  private readonly pgmaps = new Map<number, string>();
  private readonly addrs = new Map<number, string>();
  readonly payloads = new Map<number, string>();

  constructor(
    private readonly events: string[],
    private readonly names: string[],
  ) {}

  /** A new row (every column to fill); returns its index. */
  add(seq: number, event: number, name: number, page: number, pgmap: string | null, addr: string | null): number {
    const i = this.length++;
    if (i === this.seq.length) this.grow(2 * i);
    this.seq[i] = seq;
    this.ev[i] = event;
    this.nm[i] = name;
    this.pg[i] = page;
    if (pgmap !== null) this.pgmaps.set(i, pgmap);
    if (addr !== null) this.addrs.set(i, addr);
    return i;
  }

  /** Column k of SIDE_NUMS of row i. */
  setNum(i: number, k: number, v: number): void {
    this.nums[i * SIDE_NUMS.length + k] = v;
  }

  event(i: number): string {
    return this.events[this.ev[i]];
  }

  row(i: number): Side {
    const o = i * SIDE_NUMS.length;
    const n = this.nums;
    return {
      seq: this.seq[i],
      event: this.events[this.ev[i]],
      pfn: n[o],
      mt: n[o + 1],
      pfnEnd: n[o + 2],
      finPfn: n[o + 3],
      nrPages: n[o + 4],
      nrSucceeded: n[o + 5],
      nrFailed: n[o + 6],
      name: this.nm[i] >= 0 ? this.names[this.nm[i]] : null,
      pgmap: this.pgmaps.get(i) ?? null,
      addr: this.addrs.get(i) ?? null,
      page: this.pg[i],
      payload: this.payloads.get(i) ?? '',
    };
  }

  private grow(rows: number): void {
    const to = <T extends Float64Array | Int32Array | Int8Array>(a: T, n: number): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a);
      return b;
    };
    this.seq = to(this.seq, rows);
    this.ev = to(this.ev, rows);
    this.nm = to(this.nm, rows);
    this.pg = to(this.pg, rows);
    this.nums = to(this.nums, rows * SIDE_NUMS.length);
  }
}

/**
 * The side columns of the rare events, in seq order. The payload column, the largest of `events`, costs about as much
 * to read as all the others together, however few rows a filter keeps, so it is read only when some event still needs
 * it: the events above, and cma events whose align (`order`) or result (errorno= as ret, page= as ptr) is not in
 * their columns (databases ingested before align was decoded).
 */
export async function loadSide(conn: DuckDBConnection, traceId: number, strings?: Strings): Promise<SideRows> {
  const names = strings?.names ?? (await loadStrings(conn, traceId)).names;
  const sideEvents = [...new Set(SIDE_EVENTS)];
  // Read as typed vectors (db/vectors.ts), strings as ENUM codes, pointers as 64-bit halves: node-api's conversion of
  // every value to JS cost more than the query.
  const res = await conn.stream(
    `SELECT seq::DOUBLE AS seq, event::ENUM(${sqlList(sideEvents)}) AS event, pfn::DOUBLE AS pfn, mt::DOUBLE AS mt,
       pfn_end::DOUBLE AS pfn_end, fin_pfn::DOUBLE AS fin_pfn, nr_pages::DOUBLE AS nr_pages, nr_succeeded::DOUBLE AS nr_succeeded,
       nr_failed::DOUBLE AS nr_failed, name::ENUM(${sqlList(names)}) AS name, pgmap, addr, (ptr <> 0)::INTEGER AS page,
       (event IN (${sqlList(PAYLOAD_EVENTS)}) OR (event IN (${sqlList(CMA_ALLOC_EVENTS)}) AND "order" IS NULL)
         OR (event IN (${sqlList(CMA_RESULT_EVENTS)}) AND ret IS NULL AND ptr IS NULL))::UTINYINT AS need_payload
     FROM events WHERE trace_id = $trace AND event IN (${sqlList(sideEvents)}) ORDER BY seq`,
    { trace: traceId },
  );
  const [eventWidth, nameWidth] = [enumWidth(res, 1), enumWidth(res, 9)];
  const out = new SideRows(sideEvents, names);
  /** Rows whose payload is read. */
  const needed: number[] = [];
  for (;;) {
    const chunk = await res.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    const v = new ChunkVectors(chunk);
    const valid = (ok: Uint32Array | null, i: number): boolean => ok === null || (ok[i >>> 5] & (1 << (i & 31))) !== 0;
    const f64 = (c: number): ((i: number) => number) => {
      const a = v.f64(c);
      const ok = v.valid(c);
      return (i) => (valid(ok, i) ? a[i] : NaN);
    };
    const hex = (c: number): ((i: number) => string | null) => {
      const a = v.i64(c);
      const ok = v.valid(c);
      return (i) => (valid(ok, i) ? hex64(a[2 * i + 1] >>> 0, a[2 * i] >>> 0) : null);
    };
    const seq = f64(0);
    const nums = [2, 3, 4, 5, 6, 7, 8].map(f64);
    const [pgmap, addr] = [hex(10), hex(11)];
    const event = v.codes(1, eventWidth);
    const name = v.codes(9, nameWidth);
    const nameOk = v.valid(9);
    const page = v.i32(12);
    const pageOk = v.valid(12);
    const need = v.u8(13);
    const needOk = v.valid(13);
    for (let i = 0; i < chunk.rowCount; i++) {
      const r = out.add(seq(i), event[i], valid(nameOk, i) ? name[i] : -1, valid(pageOk, i) ? page[i] : -1, pgmap(i), addr(i));
      for (let k = 0; k < nums.length; k++) out.setNum(r, k, nums[k](i));
      if (valid(needOk, i) && need[i] === 1) needed.push(r);
    }
  }
  if (needed.length) {
    const p = await conn.runAndReadAll(
      `SELECT seq::DOUBLE AS seq, payload FROM events WHERE trace_id = $1 AND event IN (${sqlList([...new Set(needed.map((r) => out.event(r)))])})
         AND seq BETWEEN $2 AND $3`,
      [traceId, out.seq[needed[0]], out.seq[needed[needed.length - 1]]],
    );
    const payloads = new Map<number, string>();
    for (const x of p.getRowObjectsJS()) payloads.set(Number(x.seq), String(x.payload));
    for (let r = 0; r < out.length; r++) {
      const pl = payloads.get(out.seq[r]);
      if (pl !== undefined && pl !== '') out.payloads.set(r, pl);
    }
  }
  return out;
}

/** An unsigned 64-bit value from its 32-bit halves as lower-case hex without 0x, as printf('%x') prints it. */
function hex64(hi: number, lo: number): string {
  return hi === 0 ? lo.toString(16) : hi.toString(16) + lo.toString(16).padStart(8, '0');
}


/**
 * Page facts from page_flags and mapping= in one byte: 1 = head; 2 = fs private data (private, private_2: each holds a
 * reference); 8 = `lru` (on an LRU list); 4 = a page cache or swap cache reference (swapcache, or a mapping that is not anonymous: not
 * swapbacked, or an address_space pointer with the low PAGE_MAPPING_* bits clear, which covers shmem).
 * The flags text is matched once per distinct value (flagBits); the stream carries its ENUM code and two bits of
 * mapping= (MAPPING_BITS).
 */
const F_HEAD = 1, F_PRIVATE = 2, F_SWAPCACHE = 4, F_SWAPBACKED = 8, F_LRU = 16;
function flagBits(flags: string[]): Uint8Array {
  return Uint8Array.from(flags, (f) =>
    (f.includes('head') ? F_HEAD : 0) + (f.includes('private') ? F_PRIVATE : 0) +
    (f.includes('swapcache') ? F_SWAPCACHE : 0) + (f.includes('swapbacked') ? F_SWAPBACKED : 0) +
    (/(^|[|(, ])lru([|), ]|$)/.test(f) ? F_LRU : 0));
}
/** 1 = mapping= is set (not 0), 2 = its low PAGE_MAPPING_* bits are clear; NULL without page_flags. */
const MAPPING_BITS = `CASE WHEN page_flags IS NOT NULL THEN
    (coalesce(mapping, 0) <> 0)::UTINYINT + 2 * ((coalesce(mapping, 0) & 3::UBIGINT) = 0)::UTINYINT END`;

/** The pflags byte (see above) of one event. */
function pflags(bits: number, mapping: number): number {
  const cache = (bits & F_SWAPCACHE) !== 0 || ((mapping & 1) !== 0 && ((bits & F_SWAPBACKED) === 0 || (mapping & 2) !== 0));
  return (bits & (F_HEAD | F_PRIVATE)) + (cache ? 4 : 0) + ((bits & F_LRU) !== 0 ? 8 : 0);
}

/** The stream query: one trace's events, strings as ENUM codes into `strings`' lists; $trace binds the trace id. */
export function streamSql(strings: Strings, tsBase: bigint, ordered: boolean): string {
  const ts = tsBase === 0n ? 'ts_ns' : `(ts_ns - ${tsBase}::BIGINT)::BIGINT`;
  return `SELECT seq, ${ts} AS ts, cpu, pid, tgid, comm::ENUM(${sqlList(strings.comms)}) AS comm,
      event::ENUM(${sqlList(strings.events)}) AS event, pfn, "order", "count", mapcount, val, ret, mt, refs, gup_flags, stack_id,
      page_flags::ENUM(${sqlList(strings.flags)}) AS flags, ${MAPPING_BITS} AS mbits, gfp::ENUM(${sqlList(strings.gfps)}) AS gfp
    FROM events WHERE trace_id = $trace${ordered ? ' ORDER BY seq' : ''}`;
}


/** Byte widths of the stream's ENUM columns (comm, event, flags, gfp). */
export interface EnumWidths {
  comm: EnumWidth;
  event: EnumWidth;
  flags: EnumWidth;
  gfp: EnumWidth;
}

export function enumWidths(res: DuckDBResult): EnumWidths {
  return { comm: enumWidth(res, 5), event: enumWidth(res, 6), flags: enumWidth(res, 17), gfp: enumWidth(res, 19) };
}

/**
 * Typed arrays on the columns of one stream chunk: 64-bit columns as int32 pairs (low, high), ENUMs at their width;
 * `...V` is the validity bitmap in 32-bit words, null when the column has no NULL.
 */
export function chunkColumns(chunk: DuckDBDataChunk, w: EnumWidths) {
  const v = new ChunkVectors(chunk);
  return {
    seqA: v.i64(0),
    tsA: v.i64(1),
    cpuA: v.i16(2), cpuV: v.valid(2),
    pidA: v.i32(3), pidV: v.valid(3),
    tgidA: v.i32(4), tgidV: v.valid(4),
    commA: v.codes(5, w.comm), commV: v.valid(5),
    evA: v.codes(6, w.event),
    pfnA: v.i64(7), pfnV: v.valid(7),
    orderA: v.i16(8), orderV: v.valid(8),
    countA: v.i32(9), countV: v.valid(9),
    mapA: v.i32(10), mapV: v.valid(10),
    valA: v.i32(11), valV: v.valid(11),
    retA: v.i64(12), retV: v.valid(12),
    mtA: v.i16(13), mtV: v.valid(13),
    refsA: v.i32(14), refsV: v.valid(14),
    gfA: v.i64(15), gfV: v.valid(15),
    stA: v.i32(16), stV: v.valid(16),
    flagsA: v.codes(17, w.flags), flagsV: v.valid(17),
    mbitsA: v.u8(18),
    gfpA: v.codes(19, w.gfp), gfpV: v.valid(19),
  };
}


/** What the stream hands its events to (the driver). */
export interface EventSink {
  /** Every event's seq in order, also of events replay does not use (lost-event windows are placed by seq). */
  advance(seq: number): void;
  /** An event replay uses; `ev` is reused for the next one. */
  event(ev: Ev): void;
  /** Before each chunk: a promise to wait for (the result rows' backlog), or nothing. */
  beforeChunk(): Promise<void> | undefined;
}

/** One trace's event stream. */
export class EventStream {
  readonly ev = new Ev();
  /** Events streamed (those of the kinds replay uses). */
  events = 0;
  lastTs = 0;
  private sideAt = 0;
  private codeOf: Int32Array = new Int32Array(0);
  private flagBits: Uint8Array = new Uint8Array(0);

  constructor(
    private readonly conn: DuckDBConnection,
    private readonly traceId: number,
    private readonly tsBase: bigint,
    private readonly strings: Strings,
    /** loadSide() rows of this trace. */
    private readonly side: SideRows,
    /** Sees every event's timestamp (gaps.ts), or null when the trace can have no silence. */
    private readonly silences: SilenceScan | null = null,
  ) {}

  async run(ordered: boolean, sink: EventSink): Promise<void> {
    this.sideAt = 0;
    // Events replay does not use (-1) are skipped in the loop: cheaper than a filter on the text in the scan.
    this.codeOf = Int32Array.from(this.strings.events, (n) => replayCode(n));
    this.flagBits = flagBits(this.strings.flags);
    this.lastSeq = -1;
    const res = await this.conn.stream(streamSql(this.strings, this.tsBase, ordered), { trace: this.traceId });
    const widths = enumWidths(res);
    // The next chunk is fetched (DuckDB scanning on its own thread) while this one is replayed.
    let next = res.fetchChunk();
    for (;;) {
      const chunk = await next;
      if (!chunk || chunk.rowCount === 0) break;
      const wait = sink.beforeChunk();
      if (wait) await wait;
      next = res.fetchChunk();
      this.replayChunk(chunk, widths, sink);
    }
  }

  /** seq of the last event streamed (the order check). */
  private lastSeq = -1;

  /**
   * One chunk's events to the sink. A synchronous method of its own, not the body of run()'s loop: V8 optimized the
   * loop inside the async function by on-stack replacement and deoptimized it at await resumptions, compiling the
   * large function again several times per replay; a plain method is compiled once or twice.
   */
  private replayChunk(chunk: DuckDBDataChunk, widths: EnumWidths, sink: EventSink): void {
    const bitsOf = this.flagBits;
    const ev = this.ev;
    const silences = this.silences;
    let lastSeq = this.lastSeq;
    const n = chunk.rowCount;
    const { seqA, tsA, cpuA, cpuV, pidA, pidV, tgidA, tgidV, commA, commV, evA, pfnA, pfnV, orderA, orderV, countA, countV,
      mapA, mapV, valA, valV, retA, retV, mtA, mtV, refsA, refsV, gfA, gfV, stA, stV, flagsA, flagsV, mbitsA, gfpA, gfpV } =
      chunkColumns(chunk, widths);
    for (let i = 0; i < n; i++) {
      const w = i >>> 5;
      const b = 1 << (i & 31);
      const seq = seqA[2 * i + 1] === 0 ? seqA[2 * i] >>> 0 : seqA[2 * i + 1] * 4294967296 + (seqA[2 * i] >>> 0);
      if (seq <= lastSeq) throw new OrderError(`events of trace ${this.traceId} are not stored in seq order`);
      lastSeq = seq;
      const ts = tsA[2 * i + 1] * 4294967296 + (tsA[2 * i] >>> 0);
      if (silences !== null) silences.add(seq, ts);
      const nameId = evA[i];
      const code = this.codeOf[nameId];
      sink.advance(seq);
      if (code < 0) continue;
      this.events++;
      ev.seq = seq;
      ev.ts = ts;
      ev.code = code;
      ev.name = nameId;
      ev.cpu = cpuV === null || (cpuV[w] & b) !== 0 ? cpuA[i] : -1;
      ev.pid = pidV === null || (pidV[w] & b) !== 0 ? pidA[i] : -1;
      ev.tgid = tgidV === null || (tgidV[w] & b) !== 0 ? tgidA[i] : -1;
      ev.comm = commV === null || (commV[w] & b) !== 0 ? commA[i] : -1;
      ev.pfn = pfnV === null || (pfnV[w] & b) !== 0 ? (pfnA[2 * i + 1] === 0 ? pfnA[2 * i] >>> 0 : pfnA[2 * i + 1] * 4294967296 + (pfnA[2 * i] >>> 0)) : -1;
      ev.order = orderV === null || (orderV[w] & b) !== 0 ? orderA[i] : NaN;
      ev.count = countV === null || (countV[w] & b) !== 0 ? countA[i] : NaN;
      ev.mapcount = mapV === null || (mapV[w] & b) !== 0 ? mapA[i] : NaN;
      ev.val = valV === null || (valV[w] & b) !== 0 ? valA[i] : NaN;
      ev.ret = retV === null || (retV[w] & b) !== 0 ? retA[2 * i + 1] * 4294967296 + (retA[2 * i] >>> 0) : NaN;
      ev.mt = mtV === null || (mtV[w] & b) !== 0 ? mtA[i] : NaN;
      ev.refs = refsV === null || (refsV[w] & b) !== 0 ? refsA[i] : NaN;
      ev.gupFlags = gfV === null || (gfV[w] & b) !== 0 ? (gfA[2 * i + 1] >>> 0) * 4294967296 + (gfA[2 * i] >>> 0) : NaN;
      ev.stack = stV === null || (stV[w] & b) !== 0 ? stA[i] : -1;
      if (flagsV === null || (flagsV[w] & b) !== 0) {
        const f = pflags(bitsOf[flagsA[i]], mbitsA[i]);
        ev.head = (f & 1) !== 0;
        ev.owners = ((f >> 1) & 1) + ((f >> 2) & 1);
        ev.lru = (f >> 3) & 1;
      } else {
        ev.head = false;
        ev.owners = -1;
        ev.lru = -1;
      }
      ev.gfp = gfpV === null || (gfpV[w] & b) !== 0 ? gfpA[i] : -1;
      ev.side = isSideCode(code) ? this.sideFor(seq) : null;
      this.lastTs = ev.ts;
      sink.event(ev);
    }
    this.lastSeq = lastSeq;
  }

  /** forkPayloads() of this trace, on the stream's connection (after the stream). */
  forkPayloads(): Promise<Map<number, string>> {
    return forkPayloads(this.conn, this.traceId);
  }

  private sideFor(seq: number): Side | null {
    const s = this.side;
    while (this.sideAt < s.length && s.seq[this.sideAt] < seq) this.sideAt++;
    return this.sideAt < s.length && s.seq[this.sideAt] === seq ? s.row(this.sideAt) : null;
  }

}
