import { isAscii } from 'node:buffer';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/**
 * Input bytes, streamed in large blocks: a file, `-` for stdin, transparently decompressed when gzip, xz or zstd
 * (by magic, whatever the name). The first block is available before reading on (format detection); the SHA-256
 * and size cover the decompressed content, so a trace and its .xz are the same trace.
 */

const BLOCK = 1 << 20;
/** Compressed bytes handed to an xz / zstd decoder at once: bounds what one step inflates (text: ~50x). */
const STEP = 64 << 10;

export type Compression = 'gzip' | 'xz' | 'zstd';

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
  /** First block of content (decompressed), for detection. */
  head: Buffer;
  compression: Compression | null;
  /**
   * All content blocks, head included. Counts as it goes, and hashes unless `hash` is false (the caller then
   * hashes the blocks itself, e.g. on the parse worker, to spare the thread that writes to DuckDB).
   */
  blocks(opts?: { hash?: boolean }): AsyncGenerator<Buffer>;
  bytesRead: number;
  /** Bytes read from the file or stdin so far (compressed): progress, against totalBytes. */
  readonly rawBytesRead: number;
  sha256(): string;
  /** Size on disk (compressed), when known: for progress. */
  totalBytes: number | null;
  /** Stop reading (the content is read elsewhere, e.g. by the parse worker from the same file). */
  close(): void;
  /**
   * Why the content ended early: the `stop` signal's reason ('SIGINT'), or a read error on stdin (a pipe cannot be
   * read again, so what came through is kept). null when read to its end. The blocks then end at once.
   */
  stopped: string | null;
}

export interface SourceOptions {
  /** Aborted (reason: the signal's name) to end the content where it is, e.g. on Ctrl-C of `... | refscope ingest -`. */
  stop?: AbortSignal;
}

export async function openSource(name: string, opts: SourceOptions = {}): Promise<Source> {
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
  // A stop ends a pending read at once; stdin is destroyed so that nothing more is read and the process can exit.
  let stopped: string | null = null;
  /** Read to its end (or handed over): a stop then cuts nothing. */
  let ended = false;
  const stopping = new Promise<null>((resolve) => {
    const onStop = () => {
      if (ended) return;
      stopped ??= String(opts.stop!.reason);
      if (raw === process.stdin) process.stdin.destroy();
      resolve(null);
    };
    if (opts.stop?.aborted) onStop();
    else opts.stop?.addEventListener('abort', onStop, { once: true });
  });
  const orStop = <T>(p: Promise<T>): Promise<T | null> => {
    p.catch(() => undefined); // left pending by a stop: its end or error no longer matters
    return opts.stop ? Promise.race([p, stopping]) : p;
  };
  const first = await orStop(rawIt.next()).catch((e: Error) => {
    throw new InputError(name, null, `cannot read: ${e.message}`);
  });
  const firstRaw: Buffer = first === null || first.done ? Buffer.alloc(0) : first.value;
  const compression = compressionOf(firstRaw);
  let rawBytesRead = 0;
  async function* rawBlocks(): AsyncGenerator<Buffer> {
    if (firstRaw.length) {
      rawBytesRead += firstRaw.length;
      yield firstRaw;
    }
    for (;;) {
      const n = await rawIt.next();
      if (n.done) return;
      rawBytesRead += n.value.length;
      yield n.value;
    }
  }
  let content: AsyncIterator<Buffer>;
  if (compression === 'gzip') {
    const gunzip = createGunzip({ chunkSize: BLOCK });
    Readable.from(rawBlocks()).pipe(gunzip);
    content = gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  } else if (compression !== null) {
    // Loaded only when needed: node-liblzma is a native addon.
    let inflate: Inflate;
    try {
      inflate = compression === 'xz' ? await xzInflate() : await zstdInflate();
    } catch (e) {
      if (raw !== process.stdin) raw.destroy();
      throw new InputError(name, null, `cannot load the ${compression} decoder: ${(e as Error).message}`);
    }
    content = inflated(rawBlocks(), inflate);
  } else content = rawBlocks();
  const next = async (): Promise<Buffer | null> => {
    if (stopped !== null) return null;
    try {
      const n = await orStop(content.next());
      if (n?.done) ended = true;
      return n === null || n.done ? null : n.value;
    } catch (e) {
      // A pipe that fails mid-stream (EPIPE, a gzip stream cut short) ends the input: its complete lines are kept.
      if (raw === process.stdin) {
        stopped = `read error (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
        return null;
      }
      throw new InputError(name, null, `${compression ? `${compression} stream is corrupt` : 'read failed'}: ${(e as Error).message}`);
    }
  };
  const head = (await next()) ?? Buffer.alloc(0);
  const hash = createHash('sha256');
  let hashed = true;
  const src: Source = {
    name,
    head,
    compression,
    totalBytes,
    bytesRead: 0,
    get rawBytesRead() {
      return rawBytesRead;
    },
    close: () => {
      ended = true;
      if (raw !== process.stdin) raw.destroy();
    },
    get stopped() {
      return stopped;
    },
    set stopped(why: string | null) {
      stopped = why;
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

function compressionOf(b: Buffer): Compression | null {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 6 && b.subarray(0, 6).equals(XZ_MAGIC)) return 'xz';
  if (b.length >= 4 && b.readUInt32LE(0) === ZSTD_MAGIC) return 'zstd';
  return null;
}
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ZSTD_MAGIC = 0xfd2fb528;

/** A synchronous decoder: push() and end() return what they inflated, and throw on corrupt or truncated input. */
interface Inflate {
  push(chunk: Buffer): Buffer[];
  end(): Buffer[];
}

async function* inflated(raw: AsyncGenerator<Buffer>, inflate: Inflate): AsyncGenerator<Buffer> {
  for await (const r of raw) for (let at = 0; at < r.length; at += STEP) yield* inflate.push(r.subarray(at, at + STEP));
  yield* inflate.end();
}

/**
 * xz through liblzma's own loop: node-liblzma's stream calls LZMA_FINISH once and ends quietly on a truncated
 * file, so its native handle is driven here until LZMA_STREAM_END (the decoder accepts concatenated streams).
 */
async function xzInflate(): Promise<Inflate> {
  const lz = await import('node-liblzma');
  interface Handle {
    codeSync(action: number, input: Buffer | null, inOff: number, inLen: number, out: Buffer, outOff: number): [number, number, number];
    close(): void;
  }
  const handle = (lz.createUnxz() as unknown as { lzma?: Handle }).lzma;
  if (typeof handle?.codeSync !== 'function') throw new Error('node-liblzma has no native decoder handle');
  const reasons: Record<number, string> = {
    [lz.LZMA_DATA_ERROR]: 'data is corrupt',
    [lz.LZMA_FORMAT_ERROR]: 'not in the .xz format',
    [lz.LZMA_OPTIONS_ERROR]: 'unsupported options',
    [lz.LZMA_MEM_ERROR]: 'out of memory',
    [lz.LZMA_MEMLIMIT_ERROR]: 'memory limit reached',
    [lz.LZMA_BUF_ERROR]: 'unexpected end of file',
    [lz.LZMA_UNSUPPORTED_CHECK]: 'unsupported integrity check',
  };
  let out = Buffer.allocUnsafe(BLOCK);
  let off = 0;
  let ended = false;
  const code = (input: Buffer | null, action: number): Buffer[] => {
    const done: Buffer[] = [];
    let inOff = 0;
    let inLen = input?.length ?? 0;
    let start = off;
    for (;;) {
      const [status, inAfter, outAfter] = handle.codeSync(action, input, inOff, inLen, out, off);
      const produced = out.length - off - outAfter;
      const consumed = inLen - inAfter;
      off += produced;
      inOff += consumed;
      inLen = inAfter;
      if (status === lz.LZMA_STREAM_END) ended = true;
      else if (status !== lz.LZMA_OK) {
        handle.close();
        throw new Error(reasons[status] ?? `liblzma error ${status}`);
      }
      if (off === out.length) {
        done.push(out.subarray(start));
        out = Buffer.allocUnsafe(BLOCK);
        off = start = 0;
        continue;
      }
      // LZMA_FINISH until the stream's end; a truncated stream stops making progress (liblzma: LZMA_BUF_ERROR).
      if (inLen === 0 && (action !== lz.LZMA_FINISH || ended)) break;
      if (action === lz.LZMA_FINISH && produced === 0 && consumed === 0 && !ended) {
        handle.close();
        throw new Error(reasons[lz.LZMA_BUF_ERROR]);
      }
    }
    if (off > start) done.push(out.subarray(start, off));
    return done;
  };
  return {
    push: (chunk) => code(chunk, lz.LZMA_RUN),
    end: () => {
      const last = code(null, lz.LZMA_FINISH);
      handle.close();
      return last;
    },
  };
}

/** zstd: fzstd's streaming decoder, each frame's content checksum checked (zstd.ts); frames in a row read on. */
async function zstdInflate(): Promise<Inflate> {
  const { ZstdInflate } = await import('./zstd.js');
  return new ZstdInflate();
}

/**
 * UTF-8 text of whole lines. Traces are nearly always ASCII: checking that (SIMD) and copying the bytes as Latin-1
 * gives the same string at a fraction of the cost of decoding UTF-8; a block
 * with any other byte is decoded as UTF-8.
 */
function decode(b: Buffer, ascii = isAscii(b)): string {
  return b.toString(ascii ? 'latin1' : 'utf8');
}

/** Longest line read whole (bytes, without its newline): docs/formats.md "Limits". */
export const MAX_LINE_BYTES = 1 << 20;
/** Bytes of a longer line kept for unparsed_lines. */
const LONG_PREFIX = 200;

/**
 * Splits blocks into lines without copying them twice: each block is decoded once (decode()) up to its last
 * newline; the remainder waits for the next block. Calls onLine(text, lineNo) with CR stripped; an ASCII block's
 * lines go to onBytes(block, start, end, lineNo) first when given, and to onLine only when it returns false. Only `\n` ends a
 * line. A line longer than MAX_LINE_BYTES is never held whole: onLong(prefix, lineNo) gets its first bytes, and
 * the rest is skipped up to the next newline as it streams by.
 */
export class LineSplitter {
  /** The start of the current line, in pieces (joined once its newline arrives). */
  private carry: Buffer[] = [];
  private carryLen = 0;
  /** Inside a line already reported as too long: skip to its newline. */
  private skipping = false;
  lineNo = 0;

  constructor(
    private readonly onLine: (text: string, lineNo: number) => void,
    private readonly onLong: (prefix: string, lineNo: number) => void = () => {},
    /** Reads a line of an ASCII block from its bytes, or returns false to get it as text (Reader.lineBytes). */
    private readonly onBytes: ((b: Buffer, s: number, e: number, lineNo: number) => boolean) | null = null,
  ) {}

  push(block: Buffer): void {
    // Pieces of at most MAX_LINE_BYTES: a line within one piece is then never too long.
    for (let at = 0; at < block.length; at += MAX_LINE_BYTES) this.piece(block.subarray(at, at + MAX_LINE_BYTES));
  }

  private piece(block: Buffer): void {
    let start = 0;
    if (this.skipping) {
      const nl = block.indexOf(10);
      if (nl < 0) return;
      this.skipping = false;
      start = nl + 1;
    }
    if (this.carryLen > 0) {
      const nl = block.indexOf(10, start);
      if (nl < 0) return this.hold(block.subarray(start));
      if (this.carryLen + nl - start > MAX_LINE_BYTES) this.long();
      else {
        this.carry.push(block.subarray(start, nl + 1));
        this.lines(Buffer.concat(this.carry));
      }
      this.carry = [];
      this.carryLen = 0;
      start = nl + 1;
    }
    const last = block.lastIndexOf(10);
    if (last < start) return this.hold(block.subarray(start));
    this.lines(block.subarray(start, last + 1));
    if (last + 1 < block.length) this.hold(block.subarray(last + 1));
  }

  /** Keep the start of a line (a copy: the block's memory may be reused); report it once it is too long. */
  private hold(b: Buffer): void {
    if (b.length === 0) return;
    this.carry.push(Buffer.from(b));
    this.carryLen += b.length;
    if (this.carryLen > MAX_LINE_BYTES) {
      this.long();
      this.carry = [];
      this.carryLen = 0;
      this.skipping = true;
    }
  }

  private long(): void {
    const prefix = Buffer.concat(this.carry).subarray(0, LONG_PREFIX);
    this.onLong(decode(prefix), ++this.lineNo);
  }

  /** End of input. A stopped input (partial = false) drops its last line if its newline never came. */
  end(partial = true): void {
    if (this.carryLen > 0 && partial) this.split(decode(Buffer.concat(this.carry)) + '\n');
    this.carry = [];
    this.carryLen = 0;
    this.skipping = false;
  }

  /** Whole lines (b ends with a newline): as bytes when the reader takes them and b is ASCII, else as text. */
  private lines(b: Buffer): void {
    const ascii = isAscii(b);
    if (ascii && this.onBytes !== null) this.splitBytes(b);
    else this.split(decode(b, ascii));
  }

  private splitBytes(b: Buffer): void {
    const onBytes = this.onBytes!;
    const onLine = this.onLine;
    let start = 0;
    for (;;) {
      const nl = b.indexOf(10, start);
      if (nl < 0) break;
      const end = nl > start && b[nl - 1] === 13 ? nl - 1 : nl;
      const lineNo = ++this.lineNo;
      if (!onBytes(b, start, end, lineNo)) onLine(b.toString('latin1', start, end), lineNo);
      start = nl + 1;
    }
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
