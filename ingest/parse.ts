import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { EventBuilder, type ParseFacts } from './builder.js';
import { ColumnarBatch, Dictionary, transferList, type TransferredBatch } from '../db/batch.js';
import type { Format } from './detect.js';
import type { Progress } from './progress.js';
import { ConsoleReader } from './readers/console.js';
import { FtraceReader } from './readers/ftrace.js';
import { PerfReader } from './readers/perf.js';
import type { Reader, LineSink } from './readers/sink.js';
import { TraceCmdReader } from './readers/tracecmd.js';
import { EVENT_ROWS } from '../db/tables/ingest.js';
import { LineSplitter, type Source } from './source.js';

/**
 * Text parsing, on a worker thread when possible: the worker reads the file itself (or gets stdin blocks from
 * the main thread), splits lines, tokenizes and decodes, while the main thread appends batches to DuckDB. The
 * main thread hands each appended batch back to be refilled, and the worker never has more than a fixed number
 * of batches out, so memory stays flat whichever side is slower. The main thread, mostly idle, takes the SHA-256
 * off the worker (the critical path): of stdin blocks before it sends them, of a file's blocks as the worker hands
 * them back. `REFSCOPE_WORKER=0` parses on the main thread, `=1` always uses the worker.
 */

/** The line layouts of the text readers. */
export type TextFormat = 'ftrace' | 'trace-cmd' | 'perf';
/** What parseText() reads: a line layout, or ftrace lines under a printk prefix (a console dump). */
export type TextInput = Exclude<Format, 'csv' | 'arrow' | 'perf-data' | 'trace-dat'>;

/** Where parsed batches go: `append` takes the batch's rows; `room` resolves when the writer can take more. */
export interface EventsOut {
  append(b: ColumnarBatch): void;
  room(): Promise<void>;
}
/** stdin blocks the main thread may have handed over and the worker not yet parsed. */
const MAX_BLOCKS_IN_FLIGHT = 8;
const SMALL_INPUT = 32 << 20;

export function readerFor(format: TextInput, sink: LineSink): Reader {
  switch (format) {
    case 'perf':
      return new PerfReader(sink);
    case 'trace-cmd':
      return new TraceCmdReader(sink);
    case 'console':
      return new ConsoleReader(sink);
    case 'ftrace':
      return new FtraceReader(sink);
  }
}

/** The splitter's byte path into the reader, when the reader has one (Reader.lineBytes). */
export function bytesOf(reader: Reader): ((b: Buffer, s: number, e: number, lineNo: number) => boolean) | null {
  return reader.lineBytes ? (b, s, e, lineNo) => reader.lineBytes!(b, s, e, lineNo) : null;
}

/** What the splitter does with a line beyond its limit: an unparsed line, with its first bytes. */
export function longLine(sink: LineSink): (prefix: string, lineNo: number) => void {
  return (prefix, lineNo) => sink.unparsed(lineNo, prefix, 'line longer than 1 MiB');
}

export async function parseText(
  format: TextInput,
  src: Source,
  traceId: number,
  out: EventsOut,
  progress: Progress,
  /** Ends the input where it is (Source.stopped says so); a file the worker reads is told here. */
  stop?: AbortSignal,
): Promise<ParseFacts> {
  // A worker costs time to start (from source it loads tsx first): worth it only for inputs that take longer.
  const small = src.totalBytes !== null && src.totalBytes < SMALL_INPUT;
  if (process.env.REFSCOPE_WORKER === '0' || (small && process.env.REFSCOPE_WORKER !== '1'))
    return parseInThread(format, src, traceId, out, progress);
  return parseInWorker(format, src, traceId, out, progress, stop);
}

async function parseInThread(
  format: TextInput,
  src: Source,
  traceId: number,
  out: EventsOut,
  progress: Progress,
): Promise<ParseFacts> {
  const builder = new EventBuilder(traceId, (b) => out.append(b));
  const reader = readerFor(format, builder);
  const splitter = new LineSplitter((text, lineNo) => reader.line(text, lineNo), longLine(builder), bytesOf(reader));
  for await (const block of src.blocks()) {
    splitter.push(block);
    progress.update(src.rawBytesRead, splitter.lineNo);
    await out.room();
  }
  // A stopped input keeps its complete lines only.
  splitter.end(src.stopped === null);
  reader.end();
  builder.finish();
  return builder.facts(splitter.lineNo);
}

export type FromWorker =
  | { type: 'batch'; batch: TransferredBatch }
  /**
   * bytes: content read so far; raw: of the file, compressed (progress), or 0 for stdin blocks. content: the
   * block the splitter just took, of a file the worker reads, for the main thread to hash.
   */
  | { type: 'block-done'; bytes: number; raw: number; lines: number; content?: Uint8Array }
  | { type: 'done'; facts: ParseFacts; stopped: boolean }
  | { type: 'error'; message: string };

/** `end` of stdin (partial: keep a last line without its newline); `stop`: end the file the worker reads where it is. */
export type ToWorker =
  | { type: 'block'; block: Uint8Array }
  | { type: 'end'; partial: boolean }
  | { type: 'stop' }
  | { type: 'spare'; batch: TransferredBatch };

/** The built worker beside this module in dist/; from source (tsx), a shim that registers tsx in the worker. */
const WORKER = new URL(import.meta.url.endsWith('.ts') ? './parse-worker.mjs' : './parse-worker.js', import.meta.url);

async function parseInWorker(
  format: TextInput,
  src: Source,
  traceId: number,
  out: EventsOut,
  progress: Progress,
  stop?: AbortSignal,
): Promise<ParseFacts> {
  // A file is read again by the worker, from its start: the main thread then never sits between the disk and
  // the parser (while it appends to DuckDB it could not feed the worker). Only stdin is read here and forwarded.
  const path = src.name === '-' ? null : src.name;
  if (path !== null) src.close();
  const worker = new Worker(WORKER, { workerData: { format, traceId, path } });
  const batch = new ColumnarBatch(EVENT_ROWS, ['payload_text', 'args'], new Map<string, Dictionary>());
  /** A file's content as the worker parsed it, block by block in order (messages on one port keep their order). */
  const hash = createHash('sha256');
  let inFlight = 0;
  let wake: (() => void) | null = null;
  let failure: Error | null = null;
  const done = new Promise<ParseFacts>((resolve, reject) => {
    worker.on('message', (m: FromWorker) => {
      try {
        if (m.type === 'batch') {
          batch.attach(m.batch);
          out.append(batch);
          // Taken: hand arrays back for the worker to refill once the writer has room. The worker stops when it
          // has too many batches out, so memory stays flat when DuckDB is the slower side.
          const spare = batch.release();
          void out.room().then(() => worker.postMessage({ type: 'spare', batch: spare } satisfies ToWorker, transferList(spare)));
        } else if (m.type === 'block-done') {
          if (m.content) hash.update(m.content);
          if (path === null) inFlight--;
          else src.bytesRead = m.bytes;
          progress.update(path === null ? src.rawBytesRead : m.raw, m.lines);
          wake?.();
        } else if (m.type === 'done') {
          if (m.stopped && path !== null) src.stopped = String(stop?.reason);
          resolve({ ...m.facts, sha256: path === null ? src.sha256() : hash.digest('hex') });
        }
        else reject(new Error(m.message));
      } catch (e) {
        failure = e as Error;
        reject(e);
      }
      if (failure) wake?.();
    });
    worker.on('error', (e) => {
      failure = e;
      reject(e);
      wake?.();
    });
  });
  done.catch(() => undefined);
  const onStop = () => worker.postMessage({ type: 'stop' } satisfies ToWorker);
  if (path !== null) stop?.addEventListener('abort', onStop, { once: true });
  try {
    if (path === null) {
      for await (const block of src.blocks()) {
        while (inFlight >= MAX_BLOCKS_IN_FLIGHT && !failure) await new Promise<void>((r) => (wake = r));
        if (failure) break;
        // Copy: stream blocks may share a pooled ArrayBuffer, which cannot be transferred.
        const copy = new Uint8Array(block);
        inFlight++;
        worker.postMessage({ type: 'block', block: copy } satisfies ToWorker, [copy.buffer]);
      }
      if (!failure) worker.postMessage({ type: 'end', partial: src.stopped === null } satisfies ToWorker);
    }
    return await done;
  } finally {
    stop?.removeEventListener('abort', onStop);
    await worker.terminate();
  }
}

export { transferList };
