import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { EventBuilder } from './builder.js';
import { transferList, type TransferredBatch } from '../db/batch.js';
import type { FromWorker, TextInput, ToWorker } from './parse.js';
import { longLine, readerFor } from './parse.js';
import { LineSplitter, openSource } from './source.js';

/**
 * Worker side of parseText(): reads the file itself (or takes stdin blocks from the main thread), hands out
 * detached batches, and finally the trace facts with the content's SHA-256 (hashed here, off the thread that
 * writes to DuckDB).
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
const splitter = new LineSplitter((text, lineNo) => reader.line(text, lineNo), longLine(builder));
const hash = createHash('sha256');
let bytes = 0;

function push(block: Buffer, raw = 0): void {
  hash.update(block);
  bytes += block.length;
  splitter.push(block);
  post({ type: 'block-done', bytes, raw, lines: splitter.lineNo });
}

/** Stopped (Ctrl-C): no more blocks of the file; a last line without its newline is dropped. */
let stopped = false;

function finish(partial: boolean): void {
  splitter.end(partial);
  reader.end();
  builder.finish();
  post({ type: 'done', facts: { ...builder.facts(splitter.lineNo), sha256: hash.digest('hex') }, stopped });
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
      push(block, src.rawBytesRead);
      while (out >= MAX_BATCHES_OUT && !stopped) await new Promise<void>((r) => (spareArrived = r));
    }
    finish(!stopped);
  } catch (e) {
    fail(e);
  }
}
