import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/**
 * Input bytes, streamed in large blocks: a file, `-` for stdin, transparently gunzipped. The first block is
 * available before reading on (format detection); the SHA-256 and size cover the content after gunzip.
 */

const BLOCK = 1 << 20;

export class InputError extends Error {
  constructor(
    readonly file: string,
    readonly lineNo: number | null,
    reason: string,
  ) {
    super(`${file}${lineNo !== null ? `:${lineNo}` : ''}: ${reason}`);
  }
}

export interface Source {
  name: string;
  /** First block of content (after gunzip), for detection. */
  head: Buffer;
  gzip: boolean;
  /**
   * All content blocks, head included. Counts as it goes, and hashes unless `hash` is false (the caller then
   * hashes the blocks itself, e.g. on the parse worker, to spare the thread that writes to DuckDB).
   */
  blocks(opts?: { hash?: boolean }): AsyncGenerator<Buffer>;
  bytesRead: number;
  sha256(): string;
  /** Size on disk (compressed for .gz), when known: for progress. */
  totalBytes: number | null;
  /** Stop reading (the content is read elsewhere, e.g. by the parse worker from the same file). */
  close(): void;
}

export async function openSource(name: string): Promise<Source> {
  let raw: Readable;
  let totalBytes: number | null = null;
  if (name === '-') raw = process.stdin;
  else {
    try {
      const st = await stat(name);
      if (!st.isFile()) throw new InputError(name, null, 'not a regular file');
      totalBytes = st.size;
    } catch (e) {
      if (e instanceof InputError) throw e;
      throw new InputError(name, null, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    raw = createReadStream(name, { highWaterMark: BLOCK });
  }
  const rawIt = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await rawIt.next().catch((e: Error) => {
    throw new InputError(name, null, `cannot read: ${e.message}`);
  });
  const firstRaw: Buffer = first.done ? Buffer.alloc(0) : first.value;
  const gzip = firstRaw.length >= 2 && firstRaw[0] === 0x1f && firstRaw[1] === 0x8b;
  async function* rawBlocks(): AsyncGenerator<Buffer> {
    if (firstRaw.length) yield firstRaw;
    for (;;) {
      const n = await rawIt.next();
      if (n.done) return;
      yield n.value;
    }
  }
  let content: AsyncIterator<Buffer>;
  if (gzip) {
    const gunzip = createGunzip({ chunkSize: BLOCK });
    Readable.from(rawBlocks()).pipe(gunzip);
    content = gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  } else content = rawBlocks();
  const next = async (): Promise<Buffer | null> => {
    try {
      const n = await content.next();
      return n.done ? null : n.value;
    } catch (e) {
      throw new InputError(name, null, `${gzip ? 'gzip stream is corrupt' : 'read failed'}: ${(e as Error).message}`);
    }
  };
  const head = (await next()) ?? Buffer.alloc(0);
  const hash = createHash('sha256');
  let hashed = true;
  const src: Source = {
    name,
    head,
    gzip,
    totalBytes,
    bytesRead: 0,
    close: () => {
      if (raw !== process.stdin) raw.destroy();
    },
    sha256: () => {
      if (!hashed) throw new Error(`${name}: content was read without hashing`);
      return hash.copy().digest('hex');
    },
    async *blocks(opts = {}) {
      hashed = opts.hash ?? true;
      let b: Buffer | null = head;
      while (b) {
        if (hashed) hash.update(b);
        src.bytesRead += b.length;
        yield b;
        b = await next();
      }
    },
  };
  return src;
}

/**
 * UTF-8 text of whole lines. Traces are nearly always ASCII: checking that (SIMD) and copying the bytes as Latin-1
 * gives the same string at a fraction of the cost of decoding UTF-8; a block
 * with any other byte is decoded as UTF-8.
 */
function decode(b: Buffer): string {
  return b.toString(isAscii(b) ? 'latin1' : 'utf8');
}

/**
 * Splits blocks into lines without copying them twice: each block is decoded once (decode()) up to its last
 * newline; the remainder waits for the next block. Calls onLine(text, lineNo) with CR stripped.
 */
export class LineSplitter {
  private carry: Buffer | null = null;
  lineNo = 0;

  constructor(private readonly onLine: (text: string, lineNo: number) => void) {}

  push(block: Buffer): void {
    let buf = block;
    if (this.carry) {
      buf = Buffer.concat([this.carry, block]);
      this.carry = null;
    }
    const last = buf.lastIndexOf(10);
    if (last < 0) {
      this.carry = buf;
      return;
    }
    if (last + 1 < buf.length) this.carry = Buffer.from(buf.subarray(last + 1));
    this.split(decode(buf.subarray(0, last + 1)));
  }

  end(): void {
    if (this.carry && this.carry.length) this.split(decode(this.carry) + '\n');
    this.carry = null;
  }

  private split(s: string): void {
    const onLine = this.onLine;
    let start = 0;
    for (;;) {
      const nl = s.indexOf('\n', start);
      if (nl < 0) break;
      const end = nl > start && s.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      onLine(s.slice(start, end), ++this.lineNo);
      start = nl + 1;
    }
  }
}
