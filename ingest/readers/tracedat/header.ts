import { inflateSync } from 'node:zlib';
import { decompress as fzstd } from 'fzstd';
import { ZSTDDecoder } from 'zstddec';
import { parseFormat, type EventFormat } from '../event-format.js';

/**
 * The trace.dat metadata (trace-cmd Documentation/trace-cmd/trace-cmd.dat.v6.5.txt and .v7.5.txt,
 * lib/trace-cmd/trace-input.c): the initial header, header_page, the ftrace and event `format` files, kallsyms,
 * printk formats, saved cmdlines, options, and each CPU's ring-buffer pages (v7: the top instance's BUFFER
 * section; zstd / zlib chunks decompressed here). Little-endian files only. Every read is bounds-checked; what
 * does not fit is a TraceDatError naming the file offset (for a compressed section, the section's).
 */

export class TraceDatError extends Error {
  constructor(
    readonly offset: number,
    reason: string,
  ) {
    super(reason);
  }
}

export const MAGIC = Buffer.from([0x17, 0x08, 0x44, 0x74, 0x72, 0x61, 0x63, 0x69, 0x6e, 0x67]);

export interface CpuBuffer {
  cpu: number;
  /** The CPU's pages, uncompressed. */
  data: Buffer;
  /** File offset of the data (of its first chunk when compressed), for errors. */
  fileOffset: number;
  compressed: boolean;
}

export interface TraceDat {
  version: number;
  compression: string;
  /** User-space long of the recording machine (the file header's). */
  longSize: number;
  /** The kernel's long: the size of header_page's `commit` field. */
  kernelLong: number;
  /** Offset of the data in a ring-buffer page (header_page's `data` field). */
  pageData: number;
  pageSize: number;
  /** Formats by event id (ftrace's own and every events/<system>/<event>/format). */
  formats: Map<number, EventFormat>;
  kallsyms: string;
  /** trace_printk formats by address (hex, no 0x). */
  printk: Map<string, string>;
  /** saved_cmdlines: task names by pid. */
  cmdlines: Map<number, string>;
  /** The `cpus=` trace-cmd report prints: one more than the highest CPU with a buffer (v7), the header's (v6). */
  cpus: number;
  /** Per CPU, by CPU number (holes for CPUs without data). */
  buffers: (CpuBuffer | undefined)[];
  clock: string | null;
  /** DATE / OFFSET options: ns added to every timestamp. */
  tsOffset: bigint;
  /** TSC2NSEC option: ns = raw * mult >> shift. */
  tsc: { mult: number; shift: number } | null;
  uname: string | null;
  traceCmdVersion: string | null;
}

// v7 option and section ids (trace-cmd.dat.v7.5.txt).
const OPT_DONE = 0, OPT_DATE = 1, OPT_BUFFER = 3, OPT_TRACECLOCK = 4, OPT_UNAME = 5, OPT_OFFSET = 7, OPT_CPUCOUNT = 8;
const OPT_VERSION = 9, OPT_TIME_SHIFT = 12, OPT_TSC2NSEC = 14, OPT_HEADER_INFO = 16, OPT_FTRACE_EVENTS = 17;
const OPT_EVENT_FORMATS = 18, OPT_KALLSYMS = 19, OPT_PRINTK = 20, OPT_CMDLINES = 21, OPT_BUFFER_TEXT = 22;
const SEC_FL_COMPRESS = 1;
/** Sections' and formats' sizes are checked against the file; this bounds what one decompressed part may claim. */
const MAX_UNCOMPRESSED = 1 << 30;
/** Chunks up to this (compressed + uncompressed) go to libzstd's WebAssembly heap, which must always hold them. */
const MAX_WASM = 1 << 27;

// libzstd's decoder in WebAssembly (zstddec: zstd's single-file decoder, the wasm embedded) decodes ~10x faster than fzstd.
const libzstd = new ZSTDDecoder();
await libzstd.init();

/** A bounds-checked little-endian reader over `buf`; errors name `at(pos)` as the file offset. */
class Cursor {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    private readonly at: (pos: number) => number,
    private readonly where: string,
  ) {}

  need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.buf.length)
      throw new TraceDatError(this.at(Math.min(this.pos, this.buf.length)),
        `truncated: ${what} needs ${n} bytes, ${this.where} has ${Math.max(0, this.buf.length - this.pos)}`);
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(what: string): number {
    this.need(8, what);
    const hi = this.buf.readUInt32LE(this.pos + 4);
    if (hi >= 0x200000) throw new TraceDatError(this.at(this.pos), `${what} ${this.buf.readBigUInt64LE(this.pos)} is beyond any file`);
    const v = this.buf.readUInt32LE(this.pos) + hi * 4294967296;
    this.pos += 8;
    return v;
  }
  cstr(what: string): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new TraceDatError(this.at(this.pos), `truncated: ${what} has no terminating NUL`);
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  bytes(n: number, what: string): Buffer {
    this.need(n, what);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  text(n: number, what: string): string {
    return this.bytes(n, what).toString('utf8');
  }
  /** The file offset of the cursor's position. */
  get fileOffset(): number {
    return this.at(this.pos);
  }
}

type Decompressor = (data: Buffer, size: number, offset: number) => Buffer;

function decompressor(name: string): Decompressor | null {
  if (name === 'none') return null;
  const check = (out: Uint8Array, size: number, offset: number): Buffer => {
    if (out.length !== size) throw new TraceDatError(offset, `${name} data decompressed to ${out.length} bytes, its header says ${size}`);
    return Buffer.from(out.buffer, out.byteOffset, out.length);
  };
  if (name === 'zstd')
    return (data, size, offset) => {
      // zstddec needs the size (trace-cmd's frames record none) and answers a libzstd error with 0 bytes; fzstd
      // then says why. Size 0 zstddec would decode by streaming (which loops on a corrupt frame): fzstd decodes it.
      if (size > 0 && size + data.length <= MAX_WASM) {
        const out = libzstd.decode(data, size);
        if (out.length > 0) return check(out, size, offset);
        let why = 'libzstd refuses it: more content than the chunk header says, or a content checksum mismatch';
        try {
          const f = fzstd(data, new Uint8Array(size));
          if (f.length < size) why = `it decompresses to ${f.length} bytes, its header says ${size}`;
        } catch (e) {
          why = (e as Error).message;
        }
        throw new TraceDatError(offset, `zstd data does not decompress (${why})`);
      }
      try {
        return check(fzstd(data, new Uint8Array(size)), size, offset);
      } catch (e) {
        if (e instanceof TraceDatError) throw e;
        throw new TraceDatError(offset, `zstd data does not decompress (${(e as Error).message})`);
      }
    };
  if (name === 'zlib')
    return (data, size, offset) => {
      try {
        return check(inflateSync(data, { maxOutputLength: Math.max(size, 1) }), size, offset);
      } catch (e) {
        if (e instanceof TraceDatError) throw e;
        throw new TraceDatError(offset, `zlib data does not decompress (${(e as Error).message})`);
      }
    };
  throw new TraceDatError(10, `compression ${JSON.stringify(name)} is not supported (trace-cmd writes none, zstd or zlib)`);
}

/** Parse the whole file's metadata and gather (decompress) each CPU's pages. */
export function readTraceDatHeader(buf: Buffer): TraceDat {
  const c = new Cursor(buf, 0, (p) => p, 'the file');
  c.need(MAGIC.length, 'the magic');
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new TraceDatError(0, 'bad magic: not a trace-cmd trace.dat file');
  c.pos = MAGIC.length;
  const versionText = c.cstr('the file version');
  const version = Number(versionText);
  if (!/^\d+$/.test(versionText) || (version !== 6 && version !== 7))
    throw new TraceDatError(MAGIC.length, `file version ${JSON.stringify(versionText.slice(0, 16))} is not supported (6 and 7 are)`);
  const endianAt = c.pos;
  const endian = c.bytes(1, 'the endianness')[0];
  if (endian === 1) throw new TraceDatError(endianAt, 'big-endian trace.dat is not supported: record on (or convert with trace-cmd on) a little-endian machine');
  if (endian !== 0) throw new TraceDatError(endianAt, `endianness byte ${endian} is neither 0 nor 1`);
  const longAt = c.pos;
  const longSize = c.bytes(1, 'the long size')[0];
  if (longSize !== 4 && longSize !== 8) throw new TraceDatError(longAt, `long size ${longSize} is neither 4 nor 8`);
  const pageAt = c.pos;
  const pageSize = c.u32('the page size');
  if (pageSize < 64 || pageSize > 1 << 24 || (pageSize & (pageSize - 1)) !== 0)
    throw new TraceDatError(pageAt, `page size ${pageSize} is not a power of two between 64 and 16 MiB`);
  const f: TraceDat = {
    version, compression: 'none', longSize, kernelLong: longSize, pageData: longSize === 8 ? 16 : 12, pageSize,
    formats: new Map(), kallsyms: '', printk: new Map(), cmdlines: new Map(), cpus: 0, buffers: [], clock: null,
    tsOffset: 0n, tsc: null, uname: null, traceCmdVersion: null,
  };
  if (version === 6) readV6(c, f);
  else readV7(c, f);
  return f;
}

function headerFiles(c: Cursor, f: TraceDat): void {
  const at = c.fileOffset;
  if (c.text(12, 'header_page') !== 'header_page\0') throw new TraceDatError(at, 'no header_page where the header info starts');
  const page = c.text(c.u64('the header_page size'), 'header_page');
  const commit = /field:\s*local_t\s+commit;\s*offset:(\d+);\s*size:(\d+);/.exec(page);
  const data = /field:\s*char\s+data;\s*offset:(\d+);/.exec(page);
  if (!commit || !data || (commit[2] !== '4' && commit[2] !== '8'))
    throw new TraceDatError(at, 'header_page does not describe a ring-buffer page (commit, data)');
  f.kernelLong = Number(commit[2]);
  f.pageData = Number(data[1]);
  const at2 = c.fileOffset;
  if (c.text(13, 'header_event') !== 'header_event\0') throw new TraceDatError(at2, 'no header_event after header_page');
  c.text(c.u64('the header_event size'), 'header_event');
}

function ftraceFormats(c: Cursor, f: TraceDat): void {
  const n = c.u32('the ftrace format count');
  for (let i = 0; i < n; i++) addFormat(c, f, 'ftrace');
}

function eventFormats(c: Cursor, f: TraceDat): void {
  const systems = c.u32('the event system count');
  for (let s = 0; s < systems; s++) {
    const system = c.cstr('an event system name');
    const n = c.u32(`the event count of ${system}`);
    for (let i = 0; i < n; i++) addFormat(c, f, system);
  }
}

function addFormat(c: Cursor, f: TraceDat, system: string): void {
  const at = c.fileOffset;
  const size = c.u64(`a ${system} format size`);
  const fmt = parseFormat(system, c.text(size, `a ${system} format`));
  if (!fmt) throw new TraceDatError(at, `a ${system} event format without name or ID`);
  f.formats.set(fmt.id, fmt);
}

function kallsyms(c: Cursor, f: TraceDat): void {
  f.kallsyms = c.text(c.u32('the kallsyms size'), 'kallsyms');
}

function printk(c: Cursor, f: TraceDat): void {
  // `0xffffffff82a1b2c3 : "format\n"` lines (printk_formats).
  const text = c.text(c.u32('the printk formats size'), 'the printk formats');
  for (const line of text.split('\n')) {
    const m = /^\s*0x([0-9a-fA-F]+)\s*:\s*"(.*)"\s*$/.exec(line);
    if (m) f.printk.set(m[1]!.toLowerCase().replace(/^0+(?=.)/, ''), m[2]!.replace(/\\n/g, '\n').replace(/\\t/g, '\t').replace(/\\"/g, '"').replace(/\\\\/g, '\\'));
  }
}

function cmdlines(c: Cursor, f: TraceDat): void {
  const text = c.text(c.u64('the saved cmdlines size'), 'the saved cmdlines');
  for (const line of text.split('\n')) {
    const m = /^(\d+) (.*)$/.exec(line);
    if (m) f.cmdlines.set(Number(m[1]), m[2]!);
  }
}

function option(f: TraceDat, id: number, data: Buffer, at: number): void {
  const str = (): string => {
    const nul = data.indexOf(0);
    return data.toString('utf8', 0, nul >= 0 ? nul : data.length);
  };
  if (id === OPT_DATE || id === OPT_OFFSET) {
    const m = /^\s*([-+]?)(0x[0-9a-fA-F]+|\d+)/.exec(str());
    if (!m) return;
    const v = BigInt(m[2]!) * (m[1] === '-' ? -1n : 1n);
    // DATE is in microseconds (trace-input.c handle_options), OFFSET in the timestamps' unit.
    f.tsOffset += id === OPT_DATE ? v * 1000n : v;
  } else if (id === OPT_TRACECLOCK) {
    const m = /\[([^\]]+)\]/.exec(str());
    if (m) f.clock = m[1]!;
  } else if (id === OPT_UNAME) f.uname = str();
  else if (id === OPT_VERSION) f.traceCmdVersion = str();
  else if (id === OPT_CPUCOUNT && data.length >= 4) f.cpus = data.readUInt32LE(0);
  else if (id === OPT_TSC2NSEC && data.length >= 16) f.tsc = { mult: data.readUInt32LE(0), shift: data.readUInt32LE(4) };
  else if (id === OPT_TIME_SHIFT && data.length >= 16)
    throw new TraceDatError(at, 'a guest trace with TIME_SHIFT (host-guest time sync) is not supported: use trace-cmd report');
  else if (id === OPT_BUFFER_TEXT) throw new TraceDatError(at, 'a latency trace (text buffer) is not supported: use trace-cmd report');
}

function readV6(c: Cursor, f: TraceDat): void {
  headerFiles(c, f);
  ftraceFormats(c, f);
  eventFormats(c, f);
  kallsyms(c, f);
  printk(c, f);
  cmdlines(c, f);
  const cpusAt = c.fileOffset;
  const cpus = c.u32('the CPU count');
  if (cpus > 8192) throw new TraceDatError(cpusAt, `CPU count ${cpus} is beyond 8192`);
  let kindAt = c.fileOffset;
  let kind = c.text(10, 'the data kind');
  if (kind === 'options  \0') {
    for (;;) {
      const at = c.fileOffset;
      const id = c.u16('an option id');
      if (id === OPT_DONE) break;
      const size = c.u32('an option size');
      // v6 BUFFER options name other instances' data: only the top instance is read.
      const data = c.bytes(size, 'an option');
      if (id !== OPT_BUFFER) option(f, id, data, at);
    }
    kindAt = c.fileOffset;
    kind = c.text(10, 'the data kind');
  }
  if (kind === 'latency  \0') throw new TraceDatError(kindAt, 'a latency trace (text buffer) is not supported: use trace-cmd report');
  if (kind !== 'flyrecord\0') throw new TraceDatError(kindAt, `data kind ${JSON.stringify(kind.replace(/\0/g, ''))} is neither flyrecord nor latency`);
  f.cpus = cpus;
  for (let cpu = 0; cpu < cpus; cpu++) {
    const at = c.fileOffset;
    const offset = c.u64(`CPU ${cpu}'s data offset`);
    const size = c.u64(`CPU ${cpu}'s data size`);
    if (size === 0) continue;
    if (offset + size > c.buf.length)
      throw new TraceDatError(at, `truncated: CPU ${cpu}'s data (${size} bytes at ${offset}) runs past the file's end (${c.buf.length})`);
    f.buffers[cpu] = { cpu, data: c.buf.subarray(offset, offset + size), fileOffset: offset, compressed: false };
  }
}

function readV7(c: Cursor, f: TraceDat): void {
  const compAt = c.fileOffset;
  f.compression = c.cstr('the compression name');
  c.cstr('the compression version');
  let unzip: Decompressor | null;
  try {
    unzip = decompressor(f.compression);
  } catch (e) {
    throw e instanceof TraceDatError ? new TraceDatError(compAt, e.message) : e;
  }
  let next = c.u64('the first options offset');
  const sections = new Map<number, number>();
  const buffers: { name: string; offset: number; data: Buffer; at: number }[] = [];
  const seen = new Set<number>();
  while (next !== 0) {
    if (seen.has(next)) throw new TraceDatError(next, 'the options sections form a loop');
    seen.add(next);
    const s = section(c.buf, next, OPT_DONE, 'options', unzip);
    next = 0;
    for (;;) {
      const at = s.fileOffset;
      const id = s.u16('an option id');
      const size = s.u32('an option size');
      const data = s.bytes(size, 'an option');
      if (id === OPT_DONE) {
        if (size >= 8) next = new Cursor(data, 0, () => at, 'the DONE option').u64('the next options offset');
        break;
      }
      if (id >= OPT_HEADER_INFO && id <= OPT_CMDLINES && size >= 8) sections.set(id, new Cursor(data, 0, () => at, 'an option').u64('a section offset'));
      else if (id === OPT_BUFFER) {
        const b = new Cursor(data, 0, () => at, 'the BUFFER option');
        const offset = b.u64('the buffer section offset');
        buffers.push({ name: b.cstr('the buffer name'), offset, data, at });
      } else option(f, id, data, at);
    }
  }
  const read = (id: number, what: string, body: (s: Cursor) => void, required: boolean): void => {
    const off = sections.get(id);
    if (off === undefined) {
      if (required) throw new TraceDatError(c.buf.length, `no ${what} section`);
      return;
    }
    body(section(c.buf, off, id, what, unzip));
  };
  read(OPT_HEADER_INFO, 'header info', (s) => headerFiles(s, f), true);
  read(OPT_FTRACE_EVENTS, 'ftrace formats', (s) => ftraceFormats(s, f), false);
  read(OPT_EVENT_FORMATS, 'event formats', (s) => eventFormats(s, f), false);
  read(OPT_KALLSYMS, 'kallsyms', (s) => kallsyms(s, f), false);
  read(OPT_PRINTK, 'printk formats', (s) => printk(s, f), false);
  read(OPT_CMDLINES, 'cmdlines', (s) => cmdlines(s, f), false);
  // The top instance (name ""): what trace-cmd report prints first; other instances are not read.
  const top = buffers.find((b) => b.name === '');
  if (!top) throw new TraceDatError(c.buf.length, 'no BUFFER option for the top instance (a latency or instance-only trace is not supported)');
  const b = new Cursor(top.data, 0, () => top.at, 'the BUFFER option');
  b.u64('the buffer section offset');
  b.cstr('the buffer name');
  const clock = b.cstr('the buffer clock');
  if (clock) f.clock ??= clock;
  const pageSize = b.u32('the buffer page size');
  if (pageSize !== 0) {
    if (pageSize < 64 || pageSize > 1 << 24 || (pageSize & (pageSize - 1)) !== 0)
      throw new TraceDatError(top.at, `buffer page size ${pageSize} is not a power of two between 64 and 16 MiB`);
    f.pageSize = pageSize;
  }
  const n = b.u32('the buffer CPU count');
  if (n > 8192) throw new TraceDatError(top.at, `buffer CPU count ${n} is beyond 8192`);
  // The flyrecord section's header says whether the CPU data is compressed.
  const h = new Cursor(c.buf, top.offset, (p) => p, 'the file');
  const secId = h.u16('the buffer section id');
  const compressed = (h.u16('the buffer section flags') & SEC_FL_COMPRESS) !== 0;
  if (secId !== OPT_BUFFER) throw new TraceDatError(top.offset, `the buffer section has id ${secId}, not ${OPT_BUFFER}`);
  if (compressed && unzip === null) throw new TraceDatError(top.offset, 'a compressed buffer section in a file whose compression is none');
  let maxCpu = -1;
  for (let i = 0; i < n; i++) {
    const cpu = b.u32('a buffer CPU id');
    const offset = b.u64(`CPU ${cpu}'s data offset`);
    const size = b.u64(`CPU ${cpu}'s data size`);
    if (cpu >= 8192) throw new TraceDatError(top.at, `buffer CPU id ${cpu} is beyond 8192`);
    if (f.buffers[cpu]) throw new TraceDatError(top.at, `CPU ${cpu} has two buffers`);
    maxCpu = Math.max(maxCpu, cpu);
    if (size === 0) continue;
    if (offset + size + (compressed ? 4 : 0) > c.buf.length)
      throw new TraceDatError(top.at, `truncated: CPU ${cpu}'s data (${size} bytes at ${offset}) runs past the file's end (${c.buf.length})`);
    const data = compressed ? chunks(c.buf, offset, size, unzip!) : c.buf.subarray(offset, offset + size);
    f.buffers[cpu] = { cpu, data, fileOffset: offset, compressed };
  }
  // trace-cmd report's `cpus=`: the buffer's CPU range (trace-input.c init_buffer_cpu_data).
  f.cpus = maxCpu + 1;
}

/** A v7 section's content at `offset` (its header checked, decompressed when flagged). */
function section(buf: Buffer, offset: number, id: number, what: string, unzip: Decompressor | null): Cursor {
  const h = new Cursor(buf, offset, (p) => p, 'the file');
  const got = h.u16(`the ${what} section id`);
  if (got !== id) throw new TraceDatError(offset, `the ${what} section has id ${got}, not ${id}`);
  const flags = h.u16(`the ${what} section flags`);
  h.u32(`the ${what} section description`);
  const size = h.u64(`the ${what} section size`);
  const start = h.pos;
  h.need(size, `the ${what} section`);
  if (!(flags & SEC_FL_COMPRESS)) return new Cursor(buf.subarray(0, start + size), start, (p) => p, `the ${what} section`);
  if (unzip === null) throw new TraceDatError(offset, `the ${what} section is flagged compressed in a file whose compression is none`);
  const zsize = h.u32(`the ${what} section's compressed size`);
  const usize = h.u32(`the ${what} section's uncompressed size`);
  if (zsize + 8 > size) throw new TraceDatError(start, `the ${what} section's compressed size ${zsize} is beyond the section's ${size} bytes`);
  if (usize > MAX_UNCOMPRESSED) throw new TraceDatError(start + 4, `the ${what} section claims ${usize} bytes uncompressed`);
  const data = unzip(h.bytes(zsize, `the ${what} section's data`), usize, offset);
  return new Cursor(data, 0, () => offset, `the decompressed ${what} section`);
}

/** A CPU's compressed pages: u32 chunk count, then per chunk u32 compressed size, u32 size, the data. */
function chunks(buf: Buffer, offset: number, size: number, unzip: Decompressor): Buffer {
  // trace-cmd's size counts the chunks, not the u32 count before them.
  const c = new Cursor(buf.subarray(0, offset + size + 4), offset, (p) => p, 'the CPU data');
  const n = c.u32('the chunk count');
  const parts: Buffer[] = [];
  let total = 0;
  for (let i = 0; i < n; i++) {
    const at = c.pos;
    const zsize = c.u32('a chunk size');
    const usize = c.u32('a chunk size');
    if (usize > MAX_UNCOMPRESSED || total + usize > 4 * MAX_UNCOMPRESSED) throw new TraceDatError(at + 4, `a chunk claims ${usize} bytes uncompressed`);
    parts.push(unzip(c.bytes(zsize, 'a chunk'), usize, at));
    total += usize;
  }
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, total);
}
