import { parentPort, workerData } from 'node:worker_threads';
import { EventBuilder } from './builder.js';
import { transferList, type TransferredBatch } from '../db/batch.js';
import type { FromWorker, TextInput, ToWorker } from './parse.js';
import { bytesOf, longLine, readerFor } from './parse.js';
import { LineSplitter, openSource } from './source.js';

/**
 * Worker side of parseText(): reads the file itself (or takes stdin blocks from the main thread), hands out
 * detached batches, and finally the trace facts. The content's SHA-256 is not taken here: this thread is the
 * ingest's critical path, so each block of a file it reads goes back to the main thread (mostly idle) to be
 * hashed there, in order, once the splitter took it.
 */
const { format, traceId, path } = workerData as { format: TextInput; traceId: number; path: string | null };
const port = parentPort!;
const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
/**
 * Batches out at most: the main thread hands each back once appended. Enough to ride out the writer's pauses,
 * few enough that memory does not grow with the trace.
 */
const MAX_BATCHES_OUT = 64;
const sent = new Map<string, number>();
const spares: TransferredBatch[] = [];
let out = 0;
let spareArrived: (() => void) | null = null;
const builder: EventBuilder = new EventBuilder(traceId, (b) => {
  const t = b.detach(sent, spares.pop());
  out++;
  post({ type: 'batch', batch: t }, transferList(t));
});
const reader = readerFor(format, builder);
const splitter = new LineSplitter((text, lineNo) => reader.line(text, lineNo), longLine(builder), bytesOf(reader));
let bytes = 0;

/** `own`: the block's ArrayBuffer holds this block only and nothing reads it later, so it moves without a copy. */
function push(block: Buffer, raw = 0, own = false): void {
  bytes += block.length;
  splitter.push(block);
  if (path === null) return post({ type: 'block-done', bytes, raw, lines: splitter.lineNo });
  // The splitter copied what it keeps (LineSplitter.hold) and strings are copies: the bytes are free to go.
  const content = own ? block : new Uint8Array(block);
  post({ type: 'block-done', bytes, raw, lines: splitter.lineNo, content }, [content.buffer as ArrayBuffer]);
}

/** Stopped (Ctrl-C): no more blocks of the file; a last line without its newline is dropped. */
let stopped = false;

function finish(partial: boolean): void {
  splitter.end(partial);
  reader.end();
  builder.finish();
  post({ type: 'done', facts: builder.facts(splitter.lineNo), stopped });
}

const fail = (e: unknown) => post({ type: 'error', message: (e as Error).message });

port.on('message', (m: ToWorker) => {
  try {
    if (m.type === 'spare') {
      spares.push(m.batch);
      out--;
      spareArrived?.();
    } else if (m.type === 'block') push(Buffer.from(m.block.buffer, m.block.byteOffset, m.block.byteLength));
    else if (m.type === 'stop') {
      stopped = true;
      spareArrived?.();
    } else finish(m.partial);
  } catch (e) {
    fail(e);
  }
});

if (path !== null) {
  try {
    const src = await openSource(path);
    for await (const block of src.blocks({ hash: false })) {
      if (stopped) break;
      // A plain file's blocks are each their own allocation (fs.ReadStream); a decoder's output may share one
      // buffer between blocks (zlib, liblzma) or keep it as its window (zstd): those are copied.
      push(block, src.rawBytesRead, src.compression === null && block.byteOffset === 0 && block.byteLength === block.buffer.byteLength);
      while (out >= MAX_BATCHES_OUT && !stopped) await new Promise<void>((r) => (spareArrived = r));
    }
    finish(!stopped);
  } catch (e) {
    fail(e);
  }
}
