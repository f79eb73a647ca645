import { parseFormat, type EventFormat } from '../event-format.js';

/**
 * The perf.data file header, its attributes and the tracepoint formats of HEADER_TRACING_DATA
 * (tools/perf/Documentation/perf.data-file-format.txt, tools/perf/util/header.c, trace-event-read.c).
 * Little-endian files only (the magic says which); every offset is checked against the file's length.
 */

export class PerfDataError extends Error {
  constructor(
    readonly offset: number,
    reason: string,
  ) {
    super(reason);
  }
}

export interface Attr {
  type: number;
  config: number;
  sampleType: number;
  sampleIdAll: boolean;
  ids: number[];
}

export interface PerfHeader {
  attrs: Attr[];
  dataOffset: number;
  dataSize: number;
  /** Tracepoint formats by their id (attr.config of a tracepoint attr, common_type of a raw record). */
  formats: Map<number, EventFormat>;
  osrelease: string | null;
  /** HEADER_BUILD_ID's entry for `[kernel.kallsyms]` (hex), to tell whether the running kernel recorded it. */
  kernelBuildId: string | null;
}

const MAGIC = 'PERFILE2';
const FILE_HEADER = 104;
const PERF_TYPE_TRACEPOINT = 2;
const HEADER_TRACING_DATA = 1;
const HEADER_BUILD_ID = 2;
const HEADER_OSRELEASE = 4;
const FEATURE_BITS = 256;
// Sample fields before RAW whose layout this reader knows (perf_event.h enum perf_event_sample_format).
const KNOWN_SAMPLE_BITS = 0x1 | 0x2 | 0x4 | 0x8 | 0x20 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x10000;

export function need(buf: Buffer, offset: number, len: number, what: string): void {
  if (offset < 0 || len < 0 || offset + len > buf.length)
    throw new PerfDataError(Math.min(offset, buf.length), `truncated: ${what} needs ${len} bytes, the file has ${Math.max(0, buf.length - offset)}`);
}

export const u64 = (b: Buffer, o: number): number => b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 4294967296;

export function readHeader(buf: Buffer): PerfHeader {
  need(buf, 0, 16, 'the file header');
  const magic = buf.toString('latin1', 0, 8);
  if (magic === '2ELIFREP') throw new PerfDataError(0, 'big-endian perf.data is not supported');
  if (magic !== MAGIC) throw new PerfDataError(0, `bad magic ${JSON.stringify(magic)}: not a perf.data file`);
  const size = u64(buf, 8);
  if (size === 16) throw new PerfDataError(8, 'piped perf.data (pipe header) is not supported: record to a file (perf record -o FILE)');
  if (size !== FILE_HEADER) throw new PerfDataError(8, `header size ${size}, expected ${FILE_HEADER}`);
  need(buf, 0, FILE_HEADER, 'the file header');
  const attrSize = u64(buf, 16);
  const attrsOff = u64(buf, 24);
  const attrsLen = u64(buf, 32);
  const dataOffset = u64(buf, 40);
  const dataSize = u64(buf, 48);
  if (attrSize < 64 + 16 || attrSize > 4096) throw new PerfDataError(16, `attr entry size ${attrSize} is not a perf_event_attr layout this reader knows`);
  if (attrsLen % attrSize !== 0) throw new PerfDataError(32, `attrs section size ${attrsLen} is not a multiple of ${attrSize}`);
  need(buf, attrsOff, attrsLen, 'the attrs section');
  need(buf, dataOffset, dataSize, 'the data section');
  const attrs: Attr[] = [];
  for (let o = attrsOff; o < attrsOff + attrsLen; o += attrSize) {
    const sampleType = u64(buf, o + 24);
    const a: Attr = {
      type: buf.readUInt32LE(o),
      config: u64(buf, o + 8),
      sampleType,
      sampleIdAll: (buf.readUInt32LE(o + 40) & (1 << 18)) !== 0,
      ids: [],
    };
    if (a.type === PERF_TYPE_TRACEPOINT && (sampleType & ~KNOWN_SAMPLE_BITS & 0x7ff) !== 0)
      throw new PerfDataError(o + 24, `sample_type 0x${sampleType.toString(16)} has fields before RAW this reader does not know (READ)`);
    const idsOff = u64(buf, o + attrSize - 16);
    const idsLen = u64(buf, o + attrSize - 8);
    need(buf, idsOff, idsLen, 'an attr id list');
    for (let i = idsOff; i + 8 <= idsOff + idsLen; i += 8) a.ids.push(u64(buf, i));
    attrs.push(a);
  }
  if (attrs.length === 0) throw new PerfDataError(24, 'no event attributes');
  // Feature sections: one perf_file_section per set bit of adds_features, after the data section.
  let sec = dataOffset + dataSize;
  let formats = new Map<number, EventFormat>();
  let osrelease: string | null = null;
  let kernelBuildId: string | null = null;
  for (let bit = 0; bit < FEATURE_BITS; bit++) {
    if ((buf[72 + (bit >> 3)] & (1 << (bit & 7))) === 0) continue;
    need(buf, sec, 16, `feature ${bit}'s section entry`);
    const off = u64(buf, sec);
    const len = u64(buf, sec + 8);
    need(buf, off, len, `feature ${bit}'s section`);
    if (bit === HEADER_TRACING_DATA) formats = readTracingData(buf, off, off + len);
    if (bit === HEADER_BUILD_ID) kernelBuildId = kernelBuildIdOf(buf, off, off + len);
    if (bit === HEADER_OSRELEASE && len > 4) osrelease = buf.toString('latin1', off + 4, off + len).replace(/\0.*$/s, '');
    sec += 16;
  }
  return { attrs, dataOffset, dataSize, formats, osrelease, kernelBuildId };
}

/**
 * perf_record_header_build_id entries (header, pid, build_id[24] whose size byte sits at 20 when misc has
 * PERF_RECORD_MISC_BUILD_ID_SIZE, else 20 bytes, filename): the kernel's is named `[kernel.kallsyms]`.
 */
function kernelBuildIdOf(buf: Buffer, start: number, end: number): string | null {
  for (let o = start; o + 36 <= end; ) {
    const misc = buf.readUInt16LE(o + 4);
    const size = buf.readUInt16LE(o + 6);
    if (size < 36 || o + size > end) return null;
    const nul = buf.indexOf(0, o + 36);
    if (buf.toString('latin1', o + 36, nul >= 0 && nul < o + size ? nul : o + size) === '[kernel.kallsyms]') {
      const len = misc & 0x8000 ? Math.min(20, buf[o + 32]) : 20;
      return buf.toString('hex', o + 12, o + 12 + len);
    }
    o += size;
  }
  return null;
}

/** trace-event-read.c: magic, version, endianness, long and page size, header page/event, ftrace and event formats. */
function readTracingData(buf: Buffer, start: number, end: number): Map<number, EventFormat> {
  const b = buf.subarray(0, end);
  let o = start;
  const str = (): string => {
    const nul = b.indexOf(0, o);
    if (nul < 0) throw new PerfDataError(o, 'truncated: tracing data string without its end');
    const s = b.toString('latin1', o, nul);
    o = nul + 1;
    return s;
  };
  const u32 = (): number => (need(b, o, 4, 'tracing data'), (o += 4), b.readUInt32LE(o - 4));
  const n64 = (): number => (need(b, o, 8, 'tracing data'), (o += 8), u64(b, o - 8));
  need(b, o, 10, 'tracing data magic');
  if (b.readUInt8(o) !== 0x17 || b.toString('latin1', o + 3, o + 10) !== 'tracing')
    throw new PerfDataError(o, 'tracing data without its magic');
  o += 10;
  str(); // version
  need(b, o, 6, 'tracing data');
  if (b[o] !== 0) throw new PerfDataError(o, 'big-endian tracing data is not supported');
  o += 6; // endian, long size, page size
  for (const section of ['header_page', 'header_event']) {
    const at = o;
    if (str() !== section) throw new PerfDataError(at, `tracing data: expected ${section}`);
    const len = n64();
    need(b, o, len, section);
    o += len;
  }
  const ftrace = u32();
  for (let i = 0; i < ftrace; i++) {
    const len = n64();
    need(b, o, len, 'an ftrace format');
    o += len;
  }
  const formats = new Map<number, EventFormat>();
  const systems = u32();
  for (let s = 0; s < systems; s++) {
    const system = str();
    const count = u32();
    for (let i = 0; i < count; i++) {
      const len = n64();
      need(b, o, len, `a ${system} event format`);
      const f = parseFormat(system, b.toString('latin1', o, o + len));
      if (!f) throw new PerfDataError(o, `a ${system} event format without name or ID`);
      formats.set(f.id, f);
      o += len;
    }
  }
  return formats;
}
