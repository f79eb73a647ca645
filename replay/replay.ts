/*
 * ## Replay: how refscope models a trace
 *
 * `refscope replay` walks one trace's events in seq (file) order, never by timestamp, streaming them from DuckDB
 * chunk by chunk into small trackers that share one per-pfn page state. **pages** keeps lifetimes: mm_page_alloc
 * (merged with the page_ref_set val=1 that 6.1 prints just before it) or zone_device_page_init, to mm_page_free
 * (every subpage of the order; an mm_page_free_batched right after it is the same free) or, for ZONE_DEVICE pages,
 * the put that reaches 0. Pages seen without their allocation or free are window edges, never leaks. **refcheck**
 * predicts each page_ref count= from the previous count and the op, records divergences and resyncs to the
 * kernel's post-op re-read. **pins** classifies the sum of a pfn's consecutive changes by one task: +/-1024*k is a
 * FOLL_PIN pin/unpin (one event or the +k/+1023k pair; a lone +1 never is); large folios pin with +refs on the
 * head, recognised by GUP kprobes or frames; FOLL_LONGTERM comes from probe flags or frames. **holds** keeps every
 * other get with its task and stack, closed last-in-first-out by puts (a put that unmaps returns the mapping's
 * reference). **cma** records, at each failed contiguous range, the pins and holds on its pfns. **pgmaps**
 * balances dev_pagemap references around memremap/memunmap. **lost** turns lost-event markers into per-CPU
 * windows: state whose page had events on a CPU that lost events while it was open, and every anomaly it shows, is
 * uncertain. A replay replaces the trace's rows in one transaction, after committing its intent alone (a
 * `replay_loads` row, which that transaction deletes last): the next writable open after a replay killed at any
 * point deletes every replay row of the trace, `replay_runs` included (db/recover.ts), so no trace is left with rows
 * of two replays. A replay that fails rolls back and deletes its intent: the previous results stay.
 */
import type { Db } from '../db/duckdb.js';
import { ensureSchema, markReplayTablesCurrent, replayTablesCurrent, schemaChanged } from '../db/setup.js';
import { failpoint } from '../db/failpoint.js';
import { REPLAY_LOADS } from '../db/tables/recovery.js';
import { Anomalies } from './anomalies.js';
import { Baseline } from './baseline.js';
import { CmaTracker } from './cma.js';
import { mergeRanges, MT_CMA_ISOLATE, ReplayContext, type Range } from './context.js';
import { Driver } from './driver.js';
import { EventStream, loadSide, loadStrings, OrderError, type SideRows } from './source.js';
import { ACR, CMA_BUSY, CMA_FINISH, CMA_RELEASE } from './event.js';
import { replayCode } from '../ingest/decode/catalogue.js';
import { GupContext } from './gup.js';
import { Holds } from './holds.js';
import { LostWindows, type LostMarker } from './lost.js';
import { corroborated, SilenceRetry, SilenceScan, silencesPossible, silenceMarkers, writeGaps, type Gap } from './gaps.js';
import { Output } from './output.js';
import { PageTable } from './pages.js';
import { PgmapTracker } from './pgmaps.js';
import { inferPgmaps } from './pgmaps-infer.js';
import { Pins } from './pins.js';
import { RawMaps } from './rawmaps.js';
import { Tasks } from './tasks.js';
import { RefCheck } from './refcheck.js';
import { REPLAY_TABLES } from '../db/tables/replay.js';
import { loadStackFlags, ST_ZONE_DEVICE } from './stacks.js';

export type { Range } from './context.js';

export interface ReplayOptions {
  /** A pin whose FOLL_LONGTERM is unknown, held at least this long (ns) on a CMA page, is reported. Default 1 s. */
  longtermThresholdNs?: number;
  /** Plain references held at least this long (ns) are written to `holds`. Default 100 ms. */
  holdThresholdNs?: number;
  /** Migratetype numbering; default: the trace's `traces.mt_layout`. */
  mtLayout?: 'mainline' | 'nocma' | 'pre4.4';
  /** Extra CMA pfn ranges [start, end). */
  cmaRanges?: Range[];
  /** ZONE_MOVABLE pfn ranges [start, end) (pins.movable_zone). */
  movableRanges?: Range[];
}

export interface ReplaySummary {
  trace_id: number;
  source: string;
  /** Events of the trace (those of kinds replay does not use are skipped while streaming). */
  events: number;
  /** Events streamed to the trackers. */
  events_replayed: number;
  pages: number;
  pins: number;
  holds: number;
  pgmaps: number;
  /** cma_attempts rows: cma_alloc calls and cma_release calls. */
  cma_attempts: number;
  cma_allocs: number;
  cma_releases: number;
  cma_blockers: number;
  anomalies: number;
  anomalies_certain: number;
  anomaly_kinds: Record<string, number>;
  divergences: number;
  divergences_concurrent: number;
  /** page_ref events whose count= could be checked / agreed with the model. */
  checked: number;
  agreed: number;
  /** agreed / checked (null when nothing could be checked). */
  agreement: number | null;
  checked_outside_lost: number;
  agreed_outside_lost: number;
  agreement_outside_lost: number | null;
  lost_markers: number;
  lost_at_start: number;
  /** Untraced windows replay inferred (table `gaps`), by kind. */
  gaps: number;
  gap_kinds: Record<string, number>;
  /** -1024k unpins with no pin open (pins taken before the capture). */
  unmatched_unpins: number;
  seconds: number;
  events_per_second: number;
  options: {
    longterm_threshold_ns: number;
    hold_threshold_ns: number;
    mt_layout: string;
    cma_ranges: [number, number][];
    movable_ranges: [number, number][];
  };
}

const TWO53 = 2n ** 53n;

/**
 * DuckDB's memory_limit for a replay in storage order: room for the result rows the transaction holds before it
 * writes out a row group (~55 MB of `pages` rows) and few cached blocks of `events`.
 */
const STREAM_LIMIT = '64MB';

interface TraceRow {
  source: string;
  mt_layout: string;
  mapcount_semantics: string | null;
  first_ts_ns: bigint | null;
  last_ts_ns: bigint | null;
  entries_in_buffer: bigint | null;
  entries_written: bigint | null;
  events: bigint | null;
}

/** Replay one trace; replaces its previous replay rows (one transaction). Call it after the ingest committed. */
export async function replay(db: Db, traceId: number, opts: ReplayOptions = {}): Promise<ReplaySummary> {
  return replayTrace(db, traceId, opts, false);
}

/** schemaReady: the caller ran ensureSchema just before (replayAll), so the first attempt need not run it again. */
async function replayTrace(db: Db, traceId: number, opts: ReplayOptions, schemaReady: boolean): Promise<ReplaySummary> {
  // DuckDB's buffer pool capped while the events stream: a single pass gains nothing from cached blocks, and at
  // 128MB the blocks of `events` the scans had read stayed cached until the cap, so that peak memory grew with the
  // trace up to it. The restart that sorts the events by seq needs more: at 128MB the ORDER BY over a large
  // trace's events runs out of memory.
  // A long silence is a candidate untraced window; when pages after it show untraced events, the replay runs again
  // with it as a window (gaps.ts).
  const run = async (silences: Gap[] | null): Promise<ReplaySummary> => {
    try {
      const ready = schemaReady;
      schemaReady = false;
      return await db.withMemoryLimit(STREAM_LIMIT, () => replayOnce(db, traceId, opts, false, silences, ready));
    } catch (e) {
      if (e instanceof OrderError) return db.withMemoryLimit('256MB', () => replayOnce(db, traceId, opts, true, silences));
      throw e;
    }
  };
  try {
    return await run(null);
  } catch (e) {
    if (e instanceof SilenceRetry) return run(e.silences);
    throw e;
  }
}

/** Replay every trace of the database, in trace_id order. */
export async function replayAll(db: Db, opts: ReplayOptions = {}): Promise<ReplaySummary[]> {
  await ensureSchema(db);
  const ids = await db.all<{ trace_id: number }>('SELECT trace_id FROM traces ORDER BY trace_id');
  const out: ReplaySummary[] = [];
  // No replay of the loop leaves the schema changed: each skips its own ensureSchema unless it drops stale tables.
  for (const { trace_id } of ids) out.push(await replayTrace(db, trace_id, opts, true));
  return out;
}

/** silences: null = find the candidate silences (not windows yet); else the corroborated ones, as windows. */
async function replayOnce(db: Db, traceId: number, opts: ReplayOptions, ordered: boolean, silences: Gap[] | null, schemaReady = false): Promise<ReplaySummary> {
  const t0 = performance.now();
  if ((await dropStaleReplayTables(db)) || !schemaReady) await ensureSchema(db);
  const tr = await db.one<TraceRow>(
    `SELECT source, mt_layout, mapcount_semantics, first_ts_ns, last_ts_ns, entries_in_buffer, entries_written, events
     FROM traces WHERE trace_id = $1`,
    [traceId],
  );
  if (!tr) throw new Error(`no trace ${traceId} in ${db.path}`);
  const layout = opts.mtLayout ?? (tr.mt_layout in MT_CMA_ISOLATE ? (tr.mt_layout as 'mainline') : 'mainline');
  const holdNs = opts.holdThresholdNs ?? 100_000_000;
  const longNs = opts.longtermThresholdNs ?? 1_000_000_000;
  const tsBase = tr.last_ts_ns !== null && BigInt(tr.last_ts_ns) >= TWO53 && tr.first_ts_ns !== null ? BigInt(tr.first_ts_ns) : 0n;

  const markers = (
    await db.all<{ seq: bigint; cpu: number | null; lost: bigint | null; kind: string }>(
      'SELECT seq, cpu, lost, kind FROM lost_events WHERE trace_id = $1 ORDER BY seq',
      [traceId],
    )
  ).map((m): LostMarker => ({ seq: Number(m.seq), cpu: m.cpu, lost: m.lost === null ? null : Number(m.lost), kind: m.kind }));
  const markerLost = markers.reduce((s, m) => s + (m.lost ?? 0), 0);
  const overwritten =
    tr.entries_written !== null && tr.entries_in_buffer !== null ? Math.max(0, Number(tr.entries_written) - Number(tr.entries_in_buffer)) : 0;
  const lostAtStart = Math.max(0, overwritten - markerLost);
  // The first run looks for candidate silences while it streams; a run with windows has them already.
  const scan = silences === null && (await silencesPossible(db, traceId)) ? new SilenceScan() : null;
  const before: Gap[] = [...(silences ?? [])];
  if (lostAtStart > 0)
    before.push({ seq: 0, ts: null, cpu: null, pfn: null, kind: 'overwritten',
      evidence: `entries-written ${tr.entries_written} > entries-in-buffer ${tr.entries_in_buffer}: ${lostAtStart} events overwritten before the first one` });

  const stackFlags = await loadStackFlags(db, traceId);

  const reader = await db.instance.connect();
  try {
    const strings = await loadStrings(reader, traceId);
    const side = await loadSide(reader, traceId, strings);
    const cmaRanges = mergeRanges([...(opts.cmaRanges ?? []), ...learnCmaRanges(side, MT_CMA_ISOLATE[layout][0])]);
    const movable = mergeRanges(opts.movableRanges ?? []);
    const ctx = new ReplayContext(layout, cmaRanges, movable, tr.mapcount_semantics === 'raw', holdNs, longNs);
    await inTransaction(db, () => db.run(`INSERT OR REPLACE INTO ${REPLAY_LOADS.name} VALUES ($1, now()::TIMESTAMP)`, [traceId]));
    failpoint('replay-started');
    return await inTransaction(db, async () => {
      // One statement list, one round trip (a list cannot take bound parameters: the id is a checked integer).
      await db.run(REPLAY_TABLES.map((t) => `DELETE FROM ${t.name} WHERE trace_id = ${safeId(traceId)}`).join(';\n'));
      const out = await new Output(db, traceId, tsBase, strings.comms, strings.gfps).open();
      const lost = new LostWindows([...markers, ...silenceMarkers(before)], lostAtStart);
      const anomalies = new Anomalies(out);
      const pages = new PageTable(out, ctx, lost, anomalies, strings.events);
      const refcheck = new RefCheck(out, lost, strings.events);
      const gup = new GupContext();
      const pins = new Pins(out, ctx, lost, anomalies, stackFlags, gup);
      const holds = new Holds(out, ctx, lost, stackFlags);
      const cma = new CmaTracker(out, lost, pages.map, (h) => holds.idOf(h), (h) => holds.candidates(h));
      holds.attemptSeq = (pid) => cma.attemptSeq(pid);
      const pgmaps = new PgmapTracker(out, lost, anomalies);
      const rawmaps = new RawMaps();
      const tasks = new Tasks(tr.last_ts_ns !== null ? Number(BigInt(tr.last_ts_ns) - tsBase) : NaN);
      const driver = new Driver(new EventStream(reader, traceId, tsBase, strings, side, scan), out, {
        ctx, lost, pages, refcheck, gup, pins, holds, cma, pgmaps, rawmaps, tasks, anomalies, baseline: new Baseline(ctx, lost, anomalies),
      });
      try {
        await db.withOneThread(async () => {
          await driver.run(ordered);
          await out.close();
        });
      } catch (e) {
        await out.abort();
        throw e;
      }
      failpoint('replay-rows-written');
      const candidates = scan ? scan.silences(tsBase) : [];
      if (candidates.length > 0) {
        const c = corroborated(candidates, lost.inferred);
        if (c.length > 0) throw new SilenceRetry(c);
      }
      const gaps = [...before, ...lost.inferred];
      await writeGaps(db, traceId, tsBase, gaps);
      const gapKinds: Record<string, number> = {};
      for (const g of gaps) gapKinds[g.kind] = (gapKinds[g.kind] ?? 0) + 1;
      const deviceEvidence = pages.deviceHints > 0 || stackFlags.some((f) => (f & ST_ZONE_DEVICE) !== 0);
      // The inference's window and joins over the trace's device pages need more room than the stream's cap.
      const inferred = pgmaps.count === 0 && deviceEvidence ? await db.withMemoryLimit('256MB', () => inferPgmaps(db, traceId)) : 0;
      const seconds = (performance.now() - t0) / 1000;
      const events = tr.events === null ? driver.events : Number(tr.events);
      const s: ReplaySummary = {
        trace_id: traceId,
        source: tr.source,
        events,
        events_replayed: driver.events,
        pages: out.pages.count,
        pins: out.pins.count,
        holds: out.holds.count,
        pgmaps: out.pgmaps.count + inferred,
        cma_attempts: out.cmaAttempts.count,
        cma_allocs: out.cmaAttempts.count - cma.releases,
        cma_releases: cma.releases,
        cma_blockers: out.cmaBlockers.count,
        anomalies: anomalies.count,
        anomalies_certain: anomalies.certain,
        anomaly_kinds: Object.fromEntries(anomalies.byKind),
        divergences: refcheck.divergences,
        divergences_concurrent: refcheck.concurrent,
        checked: refcheck.checked,
        agreed: refcheck.agreed,
        agreement: refcheck.checked ? refcheck.agreed / refcheck.checked : null,
        checked_outside_lost: refcheck.checkedOutside,
        agreed_outside_lost: refcheck.agreedOutside,
        agreement_outside_lost: refcheck.checkedOutside ? refcheck.agreedOutside / refcheck.checkedOutside : null,
        lost_markers: lost.count,
        lost_at_start: lostAtStart,
        gaps: gaps.length,
        gap_kinds: gapKinds,
        unmatched_unpins: pins.unmatchedUnpins,
        seconds,
        events_per_second: seconds > 0 ? events / seconds : 0,
        options: {
          longterm_threshold_ns: longNs,
          hold_threshold_ns: holdNs,
          mt_layout: layout,
          cma_ranges: cmaRanges.map((r) => [r.start, r.end]),
          movable_ranges: movable.map((r) => [r.start, r.end]),
        },
      };
      await db.run(
        `INSERT INTO replay_runs VALUES ($id, now()::TIMESTAMP, $options, $events, $pages, $pins, $holds, $pgmaps, $cma, $anomalies,
          $checked, $agreed, $checked_out, $agreed_out, $seconds)`,
        {
          id: traceId,
          options: JSON.stringify(s.options),
          events: s.events,
          pages: s.pages,
          pins: s.pins,
          holds: s.holds,
          pgmaps: s.pgmaps,
          cma: s.cma_attempts,
          anomalies: s.anomalies,
          checked: s.checked,
          agreed: s.agreed,
          checked_out: s.checked_outside_lost,
          agreed_out: s.agreed_outside_lost,
          seconds,
        },
      );
      await db.run(`DELETE FROM ${REPLAY_LOADS.name} WHERE trace_id = $1`, [traceId]);
      return s;
    }).catch(async (e: unknown) => {
      // Rolled back: the previous results are whole again; a retry (OrderError, SilenceRetry) commits its own intent.
      await db.run(`DELETE FROM ${REPLAY_LOADS.name} WHERE trace_id = $1`, [traceId]).catch(() => undefined);
      throw e;
    });
  } finally {
    reader.closeSync();
  }
}

/**
 * Replay tables are derived data: when a database written by an older refscope has different columns in one of
 * them, every replay table is dropped (ensureSchema recreates them) so no trace keeps rows of another model version;
 * the other traces need `refscope replay` again (their replay_runs row goes too).
 */
async function dropStaleReplayTables(db: Db): Promise<boolean> {
  // Not again once checked, nor for tables ensureSchema just made (it marks them when it recreates them too).
  if (replayTablesCurrent(db)) return false;
  const have = await db.all<{ table_name: string; cols: string }>(
    `SELECT table_name, string_agg(column_name, ',' ORDER BY column_index) AS cols FROM duckdb_columns()
     WHERE schema_name = 'main' AND table_name IN (${REPLAY_TABLES.map((t) => `'${t.name}'`).join(',')}) GROUP BY table_name`,
  );
  const stale = have.some((h) => REPLAY_TABLES.find((t) => t.name === h.table_name)!.columns.map((c) => c.name).join(',') !== h.cols);
  if (stale) {
    for (const t of REPLAY_TABLES) await db.run(`DROP TABLE IF EXISTS ${t.name}`);
    schemaChanged(db);
  } else markReplayTablesCurrent(db);
  return stale;
}

/** A trace id to write into SQL text: an integer, never anything else. */
function safeId(id: number): number {
  if (!Number.isSafeInteger(id)) throw new Error(`replay: trace id ${id} is not an integer`);
  return id;
}

/** db.transaction, with a clear error when the caller already has one open (replay reads committed events). */
async function inTransaction<T>(db: Db, fn: () => Promise<T>): Promise<T> {
  try {
    return await db.transaction(fn);
  } catch (e) {
    if (e instanceof Error && /within a transaction/i.test(e.message))
      throw new Error('replay() runs its own transaction and reads committed events: call it after the ingest transaction committed');
    throw e;
  }
}

/** CMA areas the trace shows: busy-retry, finish and release ranges, alloc_contig_range with migratetype CMA. */
function learnCmaRanges(side: SideRows, mtCma: number): Range[] {
  const cma = (c: number): boolean => c === CMA_BUSY || c === CMA_FINISH || c === CMA_RELEASE;
  const out: Range[] = [];
  for (let i = 0; i < side.length; i++) {
    const s = side.row(i);
    const c = replayCode(s.event);
    if (s.pfn > 0 && s.pfnEnd > s.pfn && (cma(c) || (c === ACR && s.mt === mtCma && mtCma >= 0))) out.push({ start: s.pfn, end: s.pfnEnd });
  }
  return out;
}

const pct = (a: number, b: number): string => (b ? ((100 * a) / b).toFixed(a === b ? 0 : 3) + '%' : 'n/a');

/** The human summary `refscope replay` prints. */
export function formatSummary(s: ReplaySummary): string {
  const kinds = Object.entries(s.anomaly_kinds)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return [
    `trace ${s.trace_id}: ${s.source}: ${s.events} events replayed in ${s.seconds.toFixed(2)} s (${Math.round(s.events_per_second)} events/s)`,
    `  pages ${s.pages}, pins ${s.pins}, holds ${s.holds}, pgmaps ${s.pgmaps}, cma_alloc calls ${s.cma_allocs} (${s.cma_blockers} blocker rows), cma_release calls ${s.cma_releases}, ` +
      `anomalies ${s.anomalies} (${s.anomalies_certain} certain)${kinds ? ': ' + kinds : ''}`,
    `  model: ${s.agreed}/${s.checked} page_ref counts agree (${pct(s.agreed, s.checked)}), outside lost windows: ` +
      `${s.agreed_outside_lost}/${s.checked_outside_lost} (${pct(s.agreed_outside_lost, s.checked_outside_lost)}); ` +
      `${s.divergences} divergences${s.divergences_concurrent ? ` (${s.divergences_concurrent} concurrent)` : ''}` +
      (s.lost_markers || s.lost_at_start ? `; ${s.lost_markers} lost-event markers${s.lost_at_start ? `, ${s.lost_at_start} events lost at start` : ''}` : ''),
    ...(s.gaps
      ? [`  untraced windows inferred: ${s.gaps} (${Object.entries(s.gap_kinds).map(([k, n]) => `${k} ${n}`).join(', ')}); findings resting on them are uncertain (table gaps)`]
      : []),
  ].join('\n');
}

/** "1s", "100ms", "250us", "500ns", "2m" (a bare number is seconds) -> ns; NaN when unparseable. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|min)?\s*$/.exec(text);
  if (!m) return NaN;
  const v = Number(m[1]);
  const unit = m[2] ?? 's';
  const mult: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, min: 60e9 };
  return Math.round(v * mult[unit]);
}

/** "START-END" pfns (0x hex or decimal), END exclusive -> Range; null when unparseable. */
export function parsePfnRange(text: string): Range | null {
  const m = /^\s*(0x[0-9a-fA-F]+|\d+)\s*-\s*(0x[0-9a-fA-F]+|\d+)\s*$/.exec(text);
  if (!m) return null;
  const start = Number(m[1]);
  const end = Number(m[2]);
  return end > start ? { start, end } : null;
}
