/**
 * The replay driver: streams one trace's events from DuckDB in seq order (never ts order: many events share a
 * timestamp), chunk by chunk, reading each chunk's column buffers as typed arrays (no row objects), and dispatches
 * each event to the trackers. Strings arrive as ENUM codes (comm, event, gfp); rare events' extra columns
 * (ranges, names, exact 64-bit pointers, payload) come from a second, small query merged by seq.
 *
 * Events are read in storage order (ingest appends a trace's events in seq order) and the order is checked: if a
 * seq ever goes backwards the replay is restarted with ORDER BY seq (OrderError).
 */
import type { DuckDBConnection, DuckDBDataChunk, DuckDBEnumType, DuckDBResult } from '@duckdb/node-api';
import { DuckDBTypeId } from '@duckdb/node-api';
import bindings from '@duckdb/node-bindings';
import type { Anomalies } from './anomalies.js';
import type { Baseline } from './baseline.js';
import type { CmaTracker } from './cma.js';
import type { ReplayContext } from './context.js';
import {
  ACR,
  ACR_RET,
  CMA_BUSY,
  CMA_FINISH,
  CMA_RELEASE,
  CMA_START,
  EVENT_CODES,
  Ev,
  GUP_CALL,
  GUP_CALL_RET,
  GUP_GRAB,
  GUP_PUT_FOLIO,
  GUP_UNPIN_PAGE,
  isSideCode,
  KM_ALLOC,
  KM_FREE,
  KM_FREE_BATCHED,
  MIGRATE,
  PGM_GET_RET,
  PGM_RELEASE,
  PGM_REMAP,
  PGM_REMAP_RET,
  PGM_UNMAP,
  PGM_UNMAP_RET,
  PR_SET,
  PR_UNFREEZE,
  RAW_MAP,
  RAW_ZAP,
  SYS_MUNMAP,
  TPI,
  ZD_FREE,
  ZD_INIT,
  type Side,
} from './event.js';
import type { GupContext } from './gup.js';
import type { Holds } from './holds.js';
import type { Output } from './output.js';
import { cpuBit, type LostWindows } from './lost.js';
import { NO, type Page, type PageTable } from './pages.js';
import type { PgmapTracker } from './pgmaps.js';
import { A_CANCEL, A_GET, A_PUT, type Pins } from './pins.js';
import type { RawMaps } from './rawmaps.js';
import { refDelta, type RefCheck } from './refcheck.js';

export class OrderError extends Error {}

/** Result rows queued for insertion (TableFeed) beyond which the replay waits for DuckDB. */
const MAX_BACKLOG_ROWS = 64 * 2048;

export interface Trackers {
  ctx: ReplayContext;
  lost: LostWindows;
  pages: PageTable;
  refcheck: RefCheck;
  gup: GupContext;
  pins: Pins;
  holds: Holds;
  cma: CmaTracker;
  pgmaps: PgmapTracker;
  rawmaps: RawMaps;
  anomalies: Anomalies;
  baseline: Baseline;
}

/** String tables of one trace: the ENUM values the stream query uses. */
export interface Strings {
  comms: string[];
  events: string[];
  gfps: string[];
  /** Distinct page_flags texts. */
  flags: string[];
}

const sqlList = (a: string[]): string => (a.length ? a : ['']).map((s) => `'${s.replace(/'/g, "''")}'`).join(',');

/** Distinct comm / event / gfp / page_flags values of a trace (the ENUM dictionaries of the stream), in one scan. */
export async function loadStrings(conn: DuckDBConnection, traceId: number): Promise<Strings> {
  const r = await conn.runAndReadAll(
    `SELECT list(DISTINCT comm) AS comms, list(DISTINCT event) AS events, list(DISTINCT gfp) AS gfps,
       list(DISTINCT page_flags) AS flags FROM events WHERE trace_id = $1`,
    [traceId],
  );
  const row = r.getRowObjectsJS()[0] ?? {};
  const strs = (v: unknown): string[] => ((v as (string | null)[] | null) ?? []).filter((x): x is string => x !== null);
  return {
    comms: strs(row.comms),
    events: strs(row.events),
    gfps: strs(row.gfps),
    flags: strs(row.flags),
  };
}

const namesOf = (keep: (code: number) => boolean): string[] =>
  Object.entries(EVENT_CODES)
    .filter(([, c]) => keep(c))
    .map(([n]) => n);
const SIDE_EVENTS = namesOf(isSideCode);
/** Events whose payload replay parses (page_offset_base=, a hex ret=, size=, len:). */
const PAYLOAD_EVENTS = namesOf((c) => c === PGM_REMAP || c === PGM_GET_RET || c === RAW_MAP || c === RAW_ZAP || c === SYS_MUNMAP);
const CMA_ALLOC_EVENTS = namesOf((c) => c === CMA_START || c === CMA_FINISH);
const CMA_RESULT_EVENTS = namesOf((c) => c === CMA_FINISH);

/**
 * The side columns of the rare events, in seq order. The payload column, the largest of `events`, costs about as much
 * to read as all the others together, however few rows a filter keeps, so it is read only when some event still needs
 * it: the events above, and cma events whose align (`order`) or result (errorno= as ret, page= as ptr) is not in
 * their columns (databases ingested before align was decoded).
 */
export async function loadSide(conn: DuckDBConnection, traceId: number): Promise<Side[]> {
  const r = await conn.runAndReadAll(
    `SELECT seq::DOUBLE AS seq, event, pfn::DOUBLE AS pfn, mt, pfn_end::DOUBLE AS pfn_end, fin_pfn::DOUBLE AS fin_pfn,
       nr_pages::DOUBLE AS nr_pages, nr_succeeded::DOUBLE AS nr_succeeded, nr_failed::DOUBLE AS nr_failed, name,
       CASE WHEN pgmap IS NOT NULL THEN printf('%x', pgmap) END AS pgmap,
       CASE WHEN addr IS NOT NULL THEN printf('%x', addr) END AS addr, (ptr <> 0)::INTEGER AS page,
       event IN (${sqlList(PAYLOAD_EVENTS)}) OR (event IN (${sqlList(CMA_ALLOC_EVENTS)}) AND "order" IS NULL)
         OR (event IN (${sqlList(CMA_RESULT_EVENTS)}) AND ret IS NULL AND ptr IS NULL) AS need_payload
     FROM events WHERE trace_id = $1 AND event IN (${sqlList(SIDE_EVENTS)}) ORDER BY seq`,
    [traceId],
  );
  // Column arrays convert in half the time of row objects (~10 against ~20 ms for the 1x bench trace's 10 k rows).
  const c = r.getColumnsObjectJS();
  const col = (name: string): unknown[] => c[name] as unknown[];
  const [seqs, events, need] = [col('seq') as number[], col('event') as string[], col('need_payload') as (boolean | null)[]];
  const needed = seqs.flatMap((seq, i) => (need[i] === true ? [{ seq, event: events[i] }] : []));
  const payloads = new Map<number, string>();
  if (needed.length) {
    const p = await conn.runAndReadAll(
      `SELECT seq::DOUBLE AS seq, payload FROM events WHERE trace_id = $1 AND event IN (${sqlList([...new Set(needed.map((x) => x.event))])})
         AND seq BETWEEN $2 AND $3`,
      [traceId, needed[0].seq, needed[needed.length - 1].seq],
    );
    for (const x of p.getRowObjectsJS()) payloads.set(Number(x.seq), String(x.payload));
  }
  const nn = (v: unknown): number => (v === null || v === undefined ? NaN : Number(v));
  const [pfn, mt, pfnEnd, finPfn, nrPages, nrSucceeded, nrFailed, name, pgmap, addr, page] = [
    'pfn', 'mt', 'pfn_end', 'fin_pfn', 'nr_pages', 'nr_succeeded', 'nr_failed', 'name', 'pgmap', 'addr', 'page',
  ].map(col);
  return seqs.map((seq, i) => ({
    seq,
    event: events[i],
    pfn: nn(pfn[i]),
    mt: nn(mt[i]),
    pfnEnd: nn(pfnEnd[i]),
    finPfn: nn(finPfn[i]),
    nrPages: nn(nrPages[i]),
    nrSucceeded: nn(nrSucceeded[i]),
    nrFailed: nn(nrFailed[i]),
    name: (name[i] as string | null) ?? null,
    pgmap: (pgmap[i] as string | null) ?? null,
    addr: (addr[i] as string | null) ?? null,
    page: page[i] === null || page[i] === undefined ? -1 : Number(page[i]),
    payload: payloads.get(seq) ?? '',
  }));
}

type U = Uint8Array | Uint16Array | Uint32Array;

/**
 * Page facts from page_flags and mapping= in one byte: 1 = head; 2 = fs private data (private, private_2: each holds a
 * reference); 4 = a page cache or swap cache reference (swapcache, or a mapping that is not anonymous: not
 * swapbacked, or an address_space pointer with the low PAGE_MAPPING_* bits clear, which covers shmem).
 * The flags text is matched once per distinct value (flagBits); the stream carries its ENUM code and two bits of
 * mapping= (MAPPING_BITS).
 */
const F_HEAD = 1, F_PRIVATE = 2, F_SWAPCACHE = 4, F_SWAPBACKED = 8;
function flagBits(flags: string[]): Uint8Array {
  return Uint8Array.from(flags, (f) =>
    (f.includes('head') ? F_HEAD : 0) + (f.includes('private') ? F_PRIVATE : 0) +
    (f.includes('swapcache') ? F_SWAPCACHE : 0) + (f.includes('swapbacked') ? F_SWAPBACKED : 0));
}
/** 1 = mapping= is set (not 0), 2 = its low PAGE_MAPPING_* bits are clear; NULL without page_flags. */
const MAPPING_BITS = `CASE WHEN page_flags IS NOT NULL THEN
    (coalesce(mapping, 0) <> 0)::UTINYINT + 2 * ((coalesce(mapping, 0) & 3::UBIGINT) = 0)::UTINYINT END`;

/** The pflags byte (see above) of one event. */
function pflags(bits: number, mapping: number): number {
  const cache = (bits & F_SWAPCACHE) !== 0 || ((mapping & 1) !== 0 && ((bits & F_SWAPBACKED) === 0 || (mapping & 2) !== 0));
  return (bits & (F_HEAD | F_PRIVATE)) + (cache ? 4 : 0);
}

/** The stream query: one trace's events, strings as ENUM codes into `strings`' lists; $trace binds the trace id. */
export function streamSql(strings: Strings, tsBase: bigint, ordered: boolean): string {
  const ts = tsBase === 0n ? 'ts_ns' : `(ts_ns - ${tsBase}::BIGINT)::BIGINT`;
  return `SELECT seq, ${ts} AS ts, cpu, pid, tgid, comm::ENUM(${sqlList(strings.comms)}) AS comm,
      event::ENUM(${sqlList(strings.events)}) AS event, pfn, "order", "count", mapcount, val, ret, mt, refs, gup_flags, stack_id,
      page_flags::ENUM(${sqlList(strings.flags)}) AS flags, ${MAPPING_BITS} AS mbits, gfp::ENUM(${sqlList(strings.gfps)}) AS gfp
    FROM events WHERE trace_id = $trace${ordered ? ' ORDER BY seq' : ''}`;
}

/** Byte widths of the stream's ENUM columns (comm, event, flags, gfp): DuckDB sizes an ENUM by its value count. */
export interface EnumWidths {
  comm: number;
  event: number;
  flags: number;
  gfp: number;
}

export function enumWidths(res: DuckDBResult): EnumWidths {
  const w = (c: number): number => {
    const t = res.columnType(c) as DuckDBEnumType;
    return t.internalTypeId === DuckDBTypeId.UTINYINT ? 1 : t.internalTypeId === DuckDBTypeId.USMALLINT ? 2 : 4;
  };
  return { comm: w(5), event: w(6), flags: w(17), gfp: w(19) };
}

/**
 * Typed arrays on the columns of one stream chunk: 64-bit columns as int32 pairs (low, high), ENUMs at their width;
 * `...V` is the validity bitmap in 32-bit words, null when the column has no NULL. vector_get_data / _validity copy
 * the vector's bytes into a new buffer (measured: writing to the array leaves the vector unchanged): ~80 bytes a
 * row and ~60 native calls per chunk of 2048 rows, about 0.1 ms a chunk, 0.15 s of a 3 M-event replay.
 */
export function chunkColumns(chunk: DuckDBDataChunk, w: EnumWidths) {
  const n = chunk.rowCount;
  const raw = (chunk as unknown as { chunk: Parameters<typeof bindings.data_chunk_get_vector>[0] }).chunk;
  const vec = (c: number) => bindings.data_chunk_get_vector(raw, c);
  const data = (c: number, w: number): Uint8Array => bindings.vector_get_data(vec(c), n * w);
  const valid = (c: number): Uint32Array | null => {
    const b = bindings.vector_get_validity(vec(c), Math.ceil(n / 64) * 8);
    return b ? new Uint32Array(b.buffer, b.byteOffset, Math.ceil(n / 64) * 2) : null;
  };
  const i32 = (c: number, w: number): Int32Array => {
    const d = data(c, w);
    return new Int32Array(d.buffer, d.byteOffset, (n * w) / 4);
  };
  const i16 = (c: number): Int16Array => {
    const d = data(c, 2);
    return new Int16Array(d.buffer, d.byteOffset, n);
  };
  const en = (c: number, w: number): U => {
    const d = data(c, w);
    return w === 1 ? d : w === 2 ? new Uint16Array(d.buffer, d.byteOffset, n) : new Uint32Array(d.buffer, d.byteOffset, n);
  };
  return {
    seqA: i32(0, 8),
    tsA: i32(1, 8),
    cpuA: i16(2), cpuV: valid(2),
    pidA: i32(3, 4), pidV: valid(3),
    tgidA: i32(4, 4), tgidV: valid(4),
    commA: en(5, w.comm), commV: valid(5),
    evA: en(6, w.event),
    pfnA: i32(7, 8), pfnV: valid(7),
    orderA: i16(8), orderV: valid(8),
    countA: i32(9, 4), countV: valid(9),
    mapA: i32(10, 4), mapV: valid(10),
    valA: i32(11, 4), valV: valid(11),
    retA: i32(12, 8), retV: valid(12),
    mtA: i16(13), mtV: valid(13),
    refsA: i32(14, 4), refsV: valid(14),
    gfA: i32(15, 8), gfV: valid(15),
    stA: i32(16, 4), stV: valid(16),
    flagsA: en(17, w.flags), flagsV: valid(17),
    mbitsA: data(18, 1),
    gfpA: en(19, w.gfp), gfpV: valid(19),
  };
}

export class Driver {
  readonly ev = new Ev();
  /** Events streamed (those of the kinds replay uses). */
  events = 0;
  lastTs = 0;
  private sideAt = 0;
  private codeOf: Int32Array = new Int32Array(0);
  private flagBits: Uint8Array = new Uint8Array(0);
  private demotedAt = 0;

  constructor(
    private readonly conn: DuckDBConnection,
    private readonly traceId: number,
    private readonly tsBase: bigint,
    private readonly strings: Strings,
    /** loadSide() rows of this trace. */
    private readonly side: Side[],
    private readonly out: Output,
    private readonly t: Trackers,
  ) {
    t.pages.onRelease = (p) => this.abandon(p);
  }

  async run(ordered: boolean): Promise<void> {
    this.sideAt = 0;
    // Events replay does not use (-1) are skipped in the loop: cheaper than a filter on the text in the scan.
    this.codeOf = Int32Array.from(this.strings.events, (n) => EVENT_CODES[n] ?? -1);
    this.flagBits = flagBits(this.strings.flags);
    const res = await this.conn.stream(streamSql(this.strings, this.tsBase, ordered), { trace: this.traceId });
    const widths = enumWidths(res);
    const bitsOf = this.flagBits;
    const ev = this.ev;
    let lastSeq = -1;
    // The next chunk is fetched (DuckDB scanning on its own thread) while this one is replayed.
    let next = res.fetchChunk();
    for (;;) {
      const chunk = await next;
      if (!chunk || chunk.rowCount === 0) break;
      // Rows wait in memory until DuckDB's thread inserts them: keep that bounded.
      if (this.out.backlog > MAX_BACKLOG_ROWS) await this.out.drain();
      next = res.fetchChunk();
      const n = chunk.rowCount;
      const { seqA, tsA, cpuA, cpuV, pidA, pidV, tgidA, tgidV, commA, commV, evA, pfnA, pfnV, orderA, orderV, countA, countV,
        mapA, mapV, valA, valV, retA, retV, mtA, mtV, refsA, refsV, gfA, gfV, stA, stV, flagsA, flagsV, mbitsA, gfpA, gfpV } =
        chunkColumns(chunk, widths);
      const lost = this.t.lost;
      for (let i = 0; i < n; i++) {
        const w = i >>> 5;
        const b = 1 << (i & 31);
        const seq = seqA[2 * i + 1] === 0 ? seqA[2 * i] >>> 0 : seqA[2 * i + 1] * 4294967296 + (seqA[2 * i] >>> 0);
        if (seq <= lastSeq) throw new OrderError(`events of trace ${this.traceId} are not stored in seq order`);
        lastSeq = seq;
        const nameId = evA[i];
        const code = this.codeOf[nameId];
        lost.advance(seq);
        if (lost.epoch !== this.demotedAt) {
          this.demotedAt = lost.epoch;
          this.t.pages.freed.demote();
        }
        if (code < 0) continue;
        this.events++;
        ev.seq = seq;
        ev.ts = tsA[2 * i + 1] * 4294967296 + (tsA[2 * i] >>> 0);
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
        } else {
          ev.head = false;
          ev.owners = -1;
        }
        ev.gfp = gfpV === null || (gfpV[w] & b) !== 0 ? gfpA[i] : -1;
        ev.side = isSideCode(code) ? this.sideFor(seq) : null;
        this.lastTs = ev.ts;
        this.dispatch(ev);
      }
    }
    this.finish();
  }

  private sideFor(seq: number): Side | null {
    const s = this.side;
    while (this.sideAt < s.length && s[this.sideAt].seq < seq) this.sideAt++;
    return this.sideAt < s.length && s[this.sideAt].seq === seq ? s[this.sideAt] : null;
  }

  private dispatch(ev: Ev): void {
    const t = this.t;
    switch (ev.code) {
      case KM_ALLOC:
        if (ev.pfn > 0) t.pages.alloc(ev).lastEvSeq = ev.seq;
        return;
      case KM_FREE:
      case KM_FREE_BATCHED:
        if (ev.pfn > 0) this.kmemFree(ev);
        return;
      case GUP_GRAB:
        t.gup.grab(ev);
        this.touch(ev);
        return;
      case GUP_PUT_FOLIO:
        t.gup.putFolio(ev);
        this.touch(ev);
        return;
      case GUP_UNPIN_PAGE:
        t.gup.unpinPage(ev);
        this.touch(ev);
        return;
      case GUP_CALL:
        t.gup.call(ev);
        return;
      case GUP_CALL_RET:
        t.gup.callRet(ev);
        return;
      case RAW_MAP:
        t.rawmaps.map(ev, t.lost.epoch);
        return;
      case RAW_ZAP:
        t.rawmaps.unmap(ev, false);
        return;
      case SYS_MUNMAP:
        t.rawmaps.unmap(ev, true);
        return;
      case CMA_START:
        t.cma.start(ev);
        return;
      case CMA_BUSY:
        t.cma.busyRetry(ev);
        return;
      case CMA_FINISH:
        t.cma.finish(ev);
        return;
      case CMA_RELEASE:
        t.cma.release(ev);
        return;
      case ACR:
        t.cma.contigRange(ev);
        return;
      case ACR_RET:
        t.cma.contigRangeRet(ev);
        return;
      case TPI:
        t.cma.testIsolated(ev);
        return;
      case MIGRATE:
        t.cma.migrated(ev);
        t.gup.migrated(ev);
        return;
      case PGM_REMAP:
        t.pgmaps.remap(ev);
        return;
      case PGM_REMAP_RET:
        t.pgmaps.remapRet(ev);
        return;
      case PGM_UNMAP:
        t.pgmaps.unmap(ev);
        return;
      case PGM_UNMAP_RET:
        t.pgmaps.unmapRet(ev);
        return;
      case PGM_GET_RET:
        t.pgmaps.getDevPagemapRet(ev);
        return;
      case PGM_RELEASE:
        t.pgmaps.release(ev);
        return;
      case ZD_INIT:
        if (ev.pfn >= 0) t.pages.initDevice(ev, t.pgmaps.init(ev)).lastEvSeq = ev.seq;
        return;
      case ZD_FREE:
        if (ev.pfn >= 0) this.deviceFree(ev);
        return;
      default:
        if (ev.code <= PR_UNFREEZE) {
          if (ev.pfn >= 0) this.pageRef(ev);
        }
    }
  }

  private touch(ev: Ev): void {
    if (ev.pfn < 0) return;
    const p = this.t.pages.get(ev.pfn);
    if (p) {
      p.lastEvSeq = ev.seq;
      p.cpus |= cpuBit(ev.cpu);
    }
  }

  private pageRef(ev: Ev): void {
    const t = this.t;
    const delta = refDelta(ev);
    let p = t.pages.forRef(ev, delta);
    if (p === null) return;
    if (ev.code === PR_SET && ev.val > 0 && p.zeroSeq >= 0 && !p.frozen) p = t.pages.reallocAfterZero(p, ev);
    if (p.refEvents === 0 && !p.zoneDevice && t.pgmaps.hasRanges) {
      const owner = t.pgmaps.ownerOf(p.pfn);
      if (owner !== null) {
        p.zoneDevice = true;
        p.pgmap = owner;
      }
    }
    p.cpus |= cpuBit(ev.cpu);
    const prevMap = p.mapcount;
    const prevCount = p.count;
    const steady = !t.lost.crossed(p.chkEpoch, p.cpus);
    t.refcheck.check(p, ev);
    if (p.count !== NO && p.count < 0 && !(prevCount !== NO && prevCount < 0))
      t.anomalies.add('refcount_underflow', steady && !t.lost.crossed(p.lifeEpoch, p.cpus), p.pfn, ev,
        `refcount of pfn 0x${p.pfn.toString(16)} went below 0 (${p.count})`);
    t.pages.onRef(p, ev, delta);
    if (ev.mapcount === ev.mapcount) p.mapcount = ev.mapcount;
    if (ev.owners >= 0) p.owners = ev.owners;
    if (delta !== 0) {
      const pins = t.pins;
      const holds = t.holds;
      const grab = delta > 0 ? t.gup.takeGrab(ev.pid, p.pfn, p.order) : null;
      const unpin = delta < 0 ? t.gup.takeUnpin(ev.pid, p.pfn) : null;
      const act = pins.classify(p, ev, delta, grab, unpin);
      if (pins.flushRefs !== 0) holds.put(p, pins.flushSeq, pins.flushTs, pins.flushPid, pins.flushComm, pins.flushRefs);
      const mc = ev.mapcount;
      if (act === A_GET) {
        // A get whose event shows the page newly mapped is the mapping's own reference, not a hold.
        if (!(prevMap !== NO && mc > prevMap)) {
          const h = holds.get(p, ev, delta, grab);
          if (p.grpSeq === ev.seq) p.grpHold = h;
        }
      } else if (act === A_PUT) {
        // A put whose event shows the mapcount dropped returns the mapping's reference (zap/munmap).
        if (!(mc < prevMap)) holds.put(p, ev.seq, ev.ts, ev.pid, ev.comm, -delta);
      } else if (act === A_CANCEL) {
        const h = pins.cancelled;
        if (h) holds.cancel(p, h);
        pins.cancelled = null;
      }
      if (delta < 0 && p.count === 0) {
        // The last reference went: everything held is returned.
        holds.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm);
        if (p.pinRefs > 0) pins.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm, ev.stack, null);
        if (p.zoneDevice) {
          t.pgmaps.zero(ev, p.pfn, p.pgmap);
          this.freeChecks(p, ev);
          t.pages.end(p, ev);
          t.pages.freed.set(ev.pfn);
          t.rawmaps.forget(ev.pfn);
          return;
        }
      }
    }
    t.baseline.update(p, ev);
    p.lastEvSeq = ev.seq;
  }

  /** Anomalies a free can show; then the pins and holds still open end with it. */
  private freeChecks(p: Page, ev: Ev): void {
    const t = this.t;
    const raw = t.rawmaps.size > 0 ? t.rawmaps.mapped(p.pfn) : undefined;
    if (raw)
      t.anomalies.add('freed_while_mapped', !t.lost.crossedAny(raw.epoch), p.pfn, ev,
        `pfn 0x${p.pfn.toString(16)} freed while a raw PFN mapping (event ${raw.seq}, address 0x${raw.addr.toString(16)}) still maps it`);
    else if ((p.zeroSeq >= 0 || p.count === 0) && t.ctx.mapped(p.mapcount))
      // Only when the put that freed it was seen: with a count still > 0 the page_ref history is incomplete
      // (events disabled, filtered or lost) and the last mapcount printed is stale.
      t.anomalies.add('freed_while_mapped', !t.lost.crossed(p.chkEpoch, p.cpus), p.pfn, ev,
        `pfn 0x${p.pfn.toString(16)} freed while its last event showed mapcount=${p.mapcount}`);
    if (p.pinRefs > 0) t.pins.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm, ev.stack, ev);
    t.holds.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm);
  }

  private kmemFree(ev: Ev): void {
    const t = this.t;
    const order = ev.order === ev.order && ev.order > 0 && ev.order <= 20 ? ev.order : 0;
    const n = 2 ** order;
    for (let i = 0; i < n; i++) {
      const pfn = ev.pfn + i;
      const p = t.pages.get(pfn);
      // mm_page_free_batched follows the mm_page_free that free_pages_prepare() printed for the same free
      // (free_unref_page_list / free_unref_folios print both): on a pfn already freed it is not another free.
      if (!p && ev.code === KM_FREE_BATCHED && t.pages.freed.state(pfn) !== 0) continue;
      if (p) {
        if (i === 0 && p.order < 0) p.order = order;
        p.cpus |= cpuBit(ev.cpu);
        this.freeChecks(p, ev);
        t.pages.end(p, ev);
      } else {
        if (i === 0) t.pages.unknownFree(ev, order);
        const raw = t.rawmaps.size > 0 ? t.rawmaps.mapped(pfn) : undefined;
        if (raw)
          t.anomalies.add('freed_while_mapped', !t.lost.crossedAny(raw.epoch), pfn, ev,
            `pfn 0x${pfn.toString(16)} freed while a raw PFN mapping (event ${raw.seq}) still maps it`);
      }
      t.pages.freed.set(pfn);
      if (t.rawmaps.size > 0) t.rawmaps.forget(pfn);
    }
  }

  /** free_zone_device_page: the pgmap reference goes; ends the device page's lifetime if still open. */
  private deviceFree(ev: Ev): void {
    const t = this.t;
    t.pgmaps.free(ev);
    const p = t.pages.get(ev.pfn);
    if (p && (p.zoneDevice || p.count === NO || p.count === 0)) {
      p.cpus |= cpuBit(ev.cpu);
      this.freeChecks(p, ev);
      t.pages.end(p, ev);
      t.pages.freed.set(ev.pfn);
    }
  }

  /** A page's state is dropped without a free (a new allocation of its pfn): close what it still holds. */
  private abandon(p: Page): void {
    const ev = this.ev;
    if (p.pinRefs > 0 || (p.pins && p.pins.length)) this.t.pins.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm, ev.stack, null);
    if (p.holds && p.holds.length) this.t.holds.closeAll(p, ev.seq, ev.ts, ev.pid, ev.comm);
  }

  private finish(): void {
    const t = this.t;
    t.lost.finish();
    const end = this.lastTs;
    t.pages.map.forEach((p) => {
      if (p.grpDefer !== 0) {
        t.holds.put(p, p.defSeq, p.defTs, p.defPid, p.defComm, p.grpDefer);
        p.grpDefer = 0;
      }
    });
    t.pins.finish(t.pages.map, end);
    t.baseline.finish(t.pages.map, end);
    t.holds.finish(t.pages.map, end);
    t.pages.onRelease = null;
    t.pages.finish();
    t.cma.end();
    t.pgmaps.end();
    t.refcheck.write();
  }
}
