import type { Db } from '../db/duckdb.js';
import { TableFeed } from '../db/feed.js';
import { writeRows } from '../db/rows.js';
import { ensureSchema } from '../db/setup.js';
import { failpoint, pausepoint } from '../db/failpoint.js';
import { reclaim } from '../db/recover.js';
import { checkFreeSpace, ingestEstimate } from '../db/space.js';
import { TRACE_LOADS } from '../db/tables/recovery.js';
import type { ColumnarBatch } from '../db/batch.js';
import { EventBuilder, type ParseFacts } from './builder.js';
import { chooseFormat, missingHeaderNote, type Format } from './detect.js';
import { Progress } from './progress.js';
import { callsiteOf, callsiteRule, shownFrames } from './stack.js';
import { parseText } from './parse.js';
import { EVENT_ROWS, LOST_EVENTS, STACKS, UNPARSED } from '../db/tables/ingest.js';
import { InputError, openSource, type Source } from './source.js';
import { drainAsync } from './readers/steps.js';

/**
 * One input -> one trace. The trace id is committed first, in `trace_loads` (its own transaction); then one
 * transaction streams the events into DuckDB as they are parsed and writes stacks, lost-event markers, facts and,
 * last, the `traces` row. A trace is complete iff it has its `traces` row: should a kill at COMMIT leave some of
 * the transaction's rows (DuckDB can, issue #22), the next writable open deletes them (db/recover.ts), and the id
 * is never given again. A failed ingest rolls back and gives the space back (reclaim()).
 *
 * Stopping: `stop` aborted (the first Ctrl-C) ends the input where it is; its complete lines are committed as a
 * trace with `truncated` set. `cancel` aborted (a second Ctrl-C) before the COMMIT rolls everything back
 * (IngestAborted).
 */

export interface IngestOptions {
  format?: Format | 'auto';
  replace?: boolean;
  progress?: boolean;
  kernel?: string;
  mtLayout?: string;
  /** More function names `stacks.callsite` passes over (a regular expression, matched whole), on top of CALLSITE_SKIP. */
  callsiteSkip?: string | null;
  /**
   * perf.data kernel frames: symbols from this kallsyms file; false: raw addresses; undefined: the running kernel's
   * /proc/kallsyms when it recorded the file, else raw addresses and a note (perfdata/symbols.ts).
   */
  kallsyms?: string | false;
  /** Aborted with the signal's name: end the input where it is and keep what was read. */
  stop?: AbortSignal;
  /** Aborted with the signal's name: give up, database unchanged. */
  cancel?: AbortSignal;
}

export interface IngestSummary {
  trace_id: number;
  source: string;
  format: Format;
  bytes: number;
  lines: number;
  events: number;
  stacks: number;
  unparsed_lines: number;
  unparsed_examples: { line: number; reason: string; text: string }[];
  lost_events: number;
  lost_markers: number;
  event_counts: Record<string, number>;
  seconds: number;
  lines_per_second: number;
  /** What the input did not say (a pasted excerpt without its header: cpus and loss counts unknown). */
  notes: string[];
  replaced: number[];
  /** Why the input ended before its end ('SIGINT', 'read error (...)'); null when read whole. */
  truncated: string | null;
}

export class DuplicateTraceError extends Error {}

/** A second signal: the ingest was rolled back. */
export class IngestAborted extends Error {
  constructor(
    name: string,
    readonly signal: string,
  ) {
    super(`${name}: ingest aborted by ${signal}; the database is unchanged`);
  }
}

function checkCancel(name: string, cancel: AbortSignal | undefined): void {
  if (cancel?.aborted) throw new IngestAborted(name, String(cancel.reason));
}

/** Batches (2048 rows each) parsed and not yet inserted, at most. */
const MAX_QUEUED = 32;

export async function ingest(db: Db, name: string, opts: IngestOptions = {}): Promise<IngestSummary> {
  const t0 = performance.now();
  callsiteRule(opts.callsiteSkip); // a bad --callsite-skip is refused before anything is read or written
  await ensureSchema(db);
  const src = await openSource(name, { stop: opts.stop });
  // --format forces a reader; only empty or binary input is refused then (detect.ts chooseFormat).
  const format = chooseFormat(src.head, opts.format);
  if (typeof format !== 'string') throw new InputError(name, null, format.refuse);
  // perf.data and trace.dat are read by offsets: the whole file, checked before anything is written.
  const binary = format === 'perf-data' ? await loadPerfData(name, src, opts.kallsyms) : format === 'trace-dat' ? await loadTraceDat(name, src) : null;
  try {
    checkFreeSpace(db.path, ingestEstimate(name, src.totalBytes), `ingesting ${name}`);
  } catch (e) {
    src.close();
    throw e;
  }

  const traceId = await registerLoad(db, name);
  failpoint('ingest-id-committed');
  await pausepoint('ingest-id-committed', opts.cancel);
  let summary: IngestSummary;
  try {
    summary = await load(db, name, src, format, traceId, t0, opts, binary);
  } catch (e) {
    // The rows are rolled back; the id stays taken. Best effort: the ingest's own error is the one to report.
    await db.run(`UPDATE ${TRACE_LOADS.name} SET state = 'failed' WHERE trace_id = $1`, [traceId]).catch(() => undefined);
    await reclaim(db).catch(() => undefined);
    throw e;
  }
  failpoint('ingest-after-commit');
  return summary;
}

/** Commit a new trace id (1 + the largest ever given) before any of its rows. */
async function registerLoad(db: Db, name: string): Promise<number> {
  return db.transaction(async () => {
    const r = await db.one<{ id: number }>(
      `SELECT (greatest((SELECT coalesce(max(trace_id), 0) FROM traces), (SELECT coalesce(max(trace_id), 0) FROM ${TRACE_LOADS.name})) + 1)::INTEGER AS id`,
    );
    await db.run(`INSERT INTO ${TRACE_LOADS.name} VALUES ($1, $2, now()::TIMESTAMP, 'loading')`, [r!.id, name]);
    return r!.id;
  });
}

/** The ingest transaction: events, stacks, markers, facts, then the `traces` row. */
async function load(
  db: Db,
  name: string,
  src: Source,
  format: Format,
  traceId: number,
  t0: number,
  opts: IngestOptions,
  binary: BinaryInput | null,
): Promise<IngestSummary> {
  return db.withMemoryLimit('128MB', () => db.withOneThread(() => db.transaction(async () => {
    // DuckDB inserts the events on its own thread while parsing goes on (db/feed.ts); the parser waits when more
    // than MAX_QUEUED batches are waiting for it.
    const feed = new TableFeed(db, EVENT_ROWS);
    feed.open();
    const out = { append: (b: ColumnarBatch) => feed.append(b), room: () => feed.whenRoom(MAX_QUEUED) };
    const progress = new Progress(name, src.totalBytes, opts.progress ?? false);
    let facts: ParseFacts;
    try {
      if (format === 'csv' || format === 'arrow') {
        // Loaded on demand: apache-arrow and papaparse take a quarter second to load.
        const { readStructured } = await import('./readers/structured.js');
        const builder = new EventBuilder(traceId, out.append);
        const lines = await readStructured(format, src, builder, progress, out.room);
        builder.finish();
        facts = builder.facts(lines);
      } else if (binary !== null) {
        const builder = new EventBuilder(traceId, out.append);
        const records = await binary.read(builder, out.room);
        builder.finish();
        facts = builder.facts(records);
      } else if (format === 'perf-data' || format === 'trace-dat') throw new Error(`${format} without its reader`);
      else facts = await parseText(format, src, traceId, out, progress, opts.stop);
      checkCancel(name, opts.cancel);
      await feed.close();
      failpoint('ingest-events-written');
    } catch (e) {
      await feed.abort();
      // DuckDB refusing the rows (a full disk, a constraint): say which input and which database.
      if (e !== null && e === feed.failure) throw new Error(`${name}: writing its events into ${db.path}: ${(e as Error).message}`, { cause: e });
      throw e;
    } finally {
      progress.done();
    }
    checkCancel(name, opts.cancel);
    const lines = facts.lines;
    const sha = facts.sha256 ?? src.sha256();
    const replaced = await checkDuplicate(db, name, sha, opts.replace ?? false);

    const rule = callsiteRule(opts.callsiteSkip);
    const stacks = await writeRows(
      db,
      STACKS,
      facts.stacks.map((s) => ({
        trace_id: traceId,
        stack_id: s.id,
        kind: s.kind,
        depth: s.frames.length,
        frames: s.frames.join('\n'),
        callsite: rule.extra === null ? s.callsite : callsiteOf(s.frames, rule),
        uses: s.uses,
        frames_shown: shownFrames(s.frames).join('\n'),
      })),
    );
    await writeRows(
      db,
      LOST_EVENTS,
      facts.lostRows.map((l) => ({ trace_id: traceId, seq: l.seq, line_no: l.lineNo, cpu: l.cpu, lost: l.lost, kind: l.kind })),
    );
    await writeRows(
      db,
      UNPARSED,
      facts.unparsedRows.map((u) => ({ trace_id: traceId, line_no: u.lineNo, reason: u.reason, text: u.text })),
    );
    checkCancel(name, opts.cancel);
    await applyLateStacks(db, traceId, facts);
    if (facts.vmemmapBase !== null) await mapPagePointers(db, traceId, facts.vmemmapBase);
    checkCancel(name, opts.cancel);

    const h = facts.headers;
    const inBuf = h.entries_in_buffer !== undefined ? Number(h.entries_in_buffer) : null;
    const written = h.entries_written !== undefined ? Number(h.entries_written) : null;
    const markerLost = facts.lostRows.reduce((s, l) => s + (l.lost ?? 0), 0);
    // `trace` prints the overwritten events again as [LOST N EVENTS] markers: the same loss, counted once.
    const overwritten = inBuf !== null && written !== null ? Math.max(0, written - inBuf) : 0;
    const examples = facts.unparsedRows.slice(0, 10).map((u) => ({ line: u.lineNo, reason: u.reason, text: u.text }));
    const counts = Object.fromEntries([...facts.eventCounts].sort((a, b) => b[1] - a[1]));
    const seconds = (performance.now() - t0) / 1000;
    const mapSem = mapcountSemantics(opts.kernel, facts);
    await db.run(
      `INSERT INTO traces VALUES ($id, $source, $size, $sha, $format, now()::TIMESTAMP, $tracer, $cpus, $inbuf, $written,
        $kernel, $fileversion, $lines, $events, $stacks, $unparsed, $lost, $lostmarkers, $firstts, $lastts, $clock, $hastgid,
        $mapsem, $mtlayout, $vmemmap::UBIGINT, $spsize, $counts, $examples, $seconds, $truncated, $callsiteskip)`,
      {
        id: traceId,
        source: name,
        size: src.bytesRead,
        sha,
        format,
        tracer: h.tracer ?? null,
        cpus: h.cpus !== undefined ? Number(h.cpus) : null,
        inbuf: inBuf,
        written,
        kernel: opts.kernel ?? h.kernel_version ?? null,
        fileversion: h.file_version ?? null,
        lines,
        events: facts.events,
        stacks,
        unparsed: facts.unparsedCount,
        lost: Math.max(markerLost, overwritten),
        lostmarkers: facts.lostRows.length,
        firstts: tsValue(facts.firstTs),
        lastts: tsValue(facts.lastTs),
        clock: facts.clockKind,
        hastgid: facts.hasTgid,
        mapsem: mapSem,
        mtlayout: opts.mtLayout ?? 'mainline',
        vmemmap: facts.vmemmapBase === null ? null : facts.vmemmapBase.toString(),
        spsize: facts.vmemmapBase !== null ? 64 : null,
        counts: JSON.stringify(counts),
        examples: JSON.stringify(examples),
        seconds,
        truncated: src.stopped !== null,
        callsiteskip: rule.extra,
      },
    );
    await db.run(`UPDATE ${TRACE_LOADS.name} SET state = 'complete' WHERE trace_id = $1`, [traceId]);
    failpoint('ingest-before-commit');
    await pausepoint('ingest-before-commit', opts.cancel);
    checkCancel(name, opts.cancel);
    return {
      trace_id: traceId,
      source: name,
      format,
      bytes: src.bytesRead,
      lines,
      events: facts.events,
      stacks,
      unparsed_lines: facts.unparsedCount,
      unparsed_examples: examples,
      lost_events: Math.max(markerLost, overwritten),
      lost_markers: facts.lostRows.length,
      event_counts: counts,
      seconds,
      lines_per_second: lines / seconds,
      replaced,
      notes: [missingHeaderNote(format, h), lossNote(format, facts), binary?.note ?? null].filter((n): n is string => n !== null),
      truncated: src.stopped,
    };
  })));
}

/** Plain `perf script` prints no PERF_RECORD_LOST lines: without any, the text cannot say whether events were lost. */
function lossNote(format: Format, facts: ParseFacts): string | null {
  return format === 'perf' && facts.lostRows.length === 0
    ? 'perf script output does not show lost events: run perf script --show-lost-events (or ingest the perf.data) to know'
    : null;
}

/** A binary capture, read whole and checked: `read` hands its records to the builder. */
interface BinaryInput {
  /** Reads the records into `sink`, awaiting `room()` (the events feed's) between steps; the records read. */
  read(sink: EventBuilder, room: () => Promise<void>): Promise<number>;
  /** Why kernel frames stay raw addresses, and how to name them. */
  note?: string | null;
}

/** An error class of a binary reader whose errors carry the file offset they are about. */
type OffsetError = new (...args: never[]) => Error & { offset: number };

/**
 * The whole content of a binary capture (read by offsets, so never stdin; wrappers already removed by the source),
 * and `refuse`, which turns the reader's error into one line naming the file and the offset.
 */
async function wholeBinary(name: string, src: Source, what: string, Err: OffsetError): Promise<{ buf: Buffer; refuse: (e: unknown) => never }> {
  if (name === '-') {
    src.close();
    throw new InputError(name, null, `${what} cannot be read from stdin (it is read by offsets): give its file name`);
  }
  const parts: Buffer[] = [];
  for await (const block of src.blocks()) parts.push(block);
  const refuse = (e: unknown): never => {
    if (e instanceof Err) throw new InputError(name, null, `offset ${e.offset}: ${e.message}`);
    throw e;
  };
  return { buf: Buffer.concat(parts), refuse };
}

/**
 * perf.data, its structure checked, and the kernel symbols for its callchains: a bad file or --kallsyms file is
 * refused (with its offset), nothing written.
 */
async function loadPerfData(name: string, src: Source, kallsyms: string | false | undefined): Promise<BinaryInput> {
  const { checkPerfData, perfDataSteps, PerfDataError } = await import('./readers/perfdata.js');
  const { buf, refuse } = await wholeBinary(name, src, 'perf.data', PerfDataError);
  let header: ReturnType<typeof checkPerfData>;
  try {
    header = checkPerfData(buf);
  } catch (e) {
    return refuse(e);
  }
  const { chooseKallsyms, KallsymsError } = await import('./readers/perfdata/symbols.js');
  let choice: ReturnType<typeof chooseKallsyms>;
  try {
    choice = chooseKallsyms(buf, header, kallsyms);
  } catch (e) {
    if (e instanceof KallsymsError) throw new InputError(kallsyms || name, null, e.message);
    throw e;
  }
  return {
    note: choice.note,
    read: (sink, room) => drainAsync(perfDataSteps(buf, sink, header, choice.symbols), room).catch(refuse),
  };
}

/** trace.dat, every page's structure checked: a bad file is refused with its offset, nothing written. */
async function loadTraceDat(name: string, src: Source): Promise<BinaryInput> {
  const { checkTraceDat, traceDatSteps, TraceDatError } = await import('./readers/tracedat.js');
  const { buf, refuse } = await wholeBinary(name, src, 'trace.dat', TraceDatError);
  let file: ReturnType<typeof checkTraceDat>;
  try {
    file = checkTraceDat(buf);
  } catch (e) {
    return refuse(e);
  }
  return {
    read: (sink, room) => drainAsync(traceDatSteps(file, sink), room).catch(refuse),
  };
}

/** The same content twice is refused, or replaces the old trace (and its replay results) with --replace. */
async function checkDuplicate(db: Db, name: string, sha: string, replace: boolean): Promise<number[]> {
  const old = await db.all<{ trace_id: number; source: string }>('SELECT trace_id, source FROM traces WHERE sha256 = $1', [sha]);
  if (old.length === 0) return [];
  if (!replace)
    throw new DuplicateTraceError(
      `${name}: already ingested as trace ${old[0].trace_id} (${old[0].source}); use --replace to ingest it again`,
    );
  const ids = old.map((o) => o.trace_id);
  await deleteTraces(db, ids);
  return ids;
}

export async function deleteTraces(db: Db, ids: number[]): Promise<void> {
  // trace_loads keeps the ids: a replaced trace's id is never given again.
  const tables = await db.all<{ table_name: string }>(
    `SELECT table_name FROM information_schema.columns WHERE column_name = 'trace_id' AND table_name <> $1 AND table_name IN
       (SELECT table_name FROM information_schema.tables WHERE table_type = 'BASE TABLE')`,
    [TRACE_LOADS.name],
  );
  for (const id of ids) for (const t of tables) await db.run(`DELETE FROM "${t.table_name}" WHERE trace_id = $1`, [id]);
}

async function applyLateStacks(db: Db, traceId: number, b: ParseFacts): Promise<void> {
  for (const s of b.lateStacks) {
    const col = s.kind === 'kernel' ? 'stack_id' : 'user_stack_id';
    await db.run(`UPDATE ${EVENT_ROWS.name} SET ${col} = $1 WHERE trace_id = $2 AND seq = $3`, [s.stackId, traceId, s.seq]);
  }
}

/** Kprobes print struct page pointers: pfn = (page - vmemmap_base) / sizeof(struct page) (docs/model.md §11). */
async function mapPagePointers(db: Db, traceId: number, base: bigint): Promise<void> {
  await db.run(
    `UPDATE ${EVENT_ROWS.name} SET pfn = ((ptr - $base::UBIGINT) // 64)::BIGINT
     WHERE trace_id = $id AND pfn IS NULL AND ptr >= $base::UBIGINT AND ptr < $base::UBIGINT + (1::UBIGINT << 48)
       AND system IN ('gup', 'pgmap', 'cmak')`,
    { base: base.toString(), id: traceId },
  );
}

function tsValue(ts: [number, number] | null): bigint | null {
  return ts === null ? null : BigInt(ts[0]) * 1_000_000_000n + BigInt(ts[1]);
}

/** mapcount= meaning changed in ≈6.10 (docs/model.md §2): by kernel version when known, else by the values. */
function mapcountSemantics(kernel: string | undefined, b: ParseFacts): string | null {
  if (!Number.isFinite(b.minMapcount)) return null;
  const m = kernel ? /^(\d+)\.(\d+)/.exec(kernel) : null;
  if (m) return Number(m[1]) > 6 || (Number(m[1]) === 6 && Number(m[2]) >= 10) ? 'raw' : 'page_mapcount';
  return b.minMapcount < 0 ? 'raw' : 'page_mapcount';
}
