import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { EventBuilder } from './builder.js';
import { transferList, type TransferredBatch } from './batch.js';
import { readerFor, type TextFormat } from './parse.js';
import { LineSplitter } from './source.js';

/** Worker side of parseText(): blocks in, detached batches and finally the trace facts out. */
const { format, traceId } = workerData as { format: TextFormat; traceId: number };
const port = parentPort!;
const sent = new Map<string, number>();
// Batches the main thread has appended come back here to be filled again.
const spares: TransferredBatch[] = [];
const builder: EventBuilder = new EventBuilder(traceId, (b) => {
  const t = b.detach(sent, spares.pop());
  port.postMessage({ type: 'batch', batch: t }, transferList(t));
});
const reader = readerFor(format, builder);
const splitter = new LineSplitter((text, lineNo) => reader.line(text, lineNo));
// The content hash (duplicate detection) is computed here, off the thread that writes to DuckDB.
const hash = createHash('sha256');

port.on('message', (m: { type: 'block'; block: Uint8Array } | { type: 'spare'; batch: TransferredBatch } | { type: 'end' }) => {
  try {
    if (m.type === 'spare') spares.push(m.batch);
    else if (m.type === 'block') {
      const block = Buffer.from(m.block.buffer, m.block.byteOffset, m.block.byteLength);
      hash.update(block);
      splitter.push(block);
      port.postMessage({ type: 'block-done', lines: splitter.lineNo });
    } else {
      splitter.end();
      reader.end();
      builder.finish();
      port.postMessage({ type: 'done', facts: { ...builder.facts(splitter.lineNo), sha256: hash.digest('hex') } });
    }
  } catch (e) {
    port.postMessage({ type: 'error', message: (e as Error).message });
  }
});
