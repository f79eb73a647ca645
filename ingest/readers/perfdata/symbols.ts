import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { Kallsyms } from '../../kallsyms.js';
import type { PerfHeader } from './header.js';

/**
 * Kernel symbols for a perf.data's callchains, which carry addresses only: `--kallsyms FILE`, else the running
 * kernel's /proc/kallsyms when the file was recorded on it (build id, else uname -r), else none and a one-line
 * note. As perf does (dso__load_kallsyms / kallsyms__delta), addresses are relocated by the difference between
 * the `_text` the file recorded (its `[kernel.kallsyms]_text` mmap) and the table's: a copy from another boot of
 * the same kernel works across KASLR.
 */

export interface KernelSymbols {
  table: Kallsyms;
  /** Added to a recorded address before lookup: table `_text` minus recorded `_text`. */
  delta: number;
}

export interface SymbolChoice {
  symbols: KernelSymbols | null;
  /** For the ingest summary, when kernel frames stay raw addresses. */
  note: string | null;
}

/** The running kernel, as the default needs it (a test passes another). */
export interface RunningKernel {
  release: string;
  buildId: string | null;
  kallsyms: string;
}

export function runningKernel(): RunningKernel {
  let buildId: string | null = null;
  try {
    buildId = noteBuildId(readFileSync('/sys/kernel/notes'));
  } catch {
    // not Linux, or no sysfs: the release decides
  }
  return { release: release(), buildId, kallsyms: '/proc/kallsyms' };
}

/** Thrown for an unusable --kallsyms FILE (ingest.ts makes it an InputError naming the file). */
export class KallsymsError extends Error {}

const HOW = 'symbolise with --kallsyms FILE (/proc/kallsyms of the traced machine, or a saved copy)';

/**
 * `request`: a file, false for raw addresses, undefined for the default. Nothing is read for a file without
 * callchains.
 */
export function chooseKallsyms(buf: Buffer, h: PerfHeader, request: string | false | undefined, running?: RunningKernel): SymbolChoice {
  if (request === false || !h.attrs.some((a) => a.sampleType & 0x20)) return { symbols: null, note: null };
  if (request !== undefined) {
    let text: string;
    try {
      text = readFileSync(request, 'latin1');
    } catch (e) {
      throw new KallsymsError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const table = Kallsyms.parse(text);
    if (table.size === 0) throw new KallsymsError('no symbol addresses (all zero or none: copy /proc/kallsyms as root, or with kernel.kptr_restrict=0)');
    return { symbols: { table, delta: relocation(buf, h, text) }, note: null };
  }
  const run = running ?? runningKernel();
  const recorded = h.kernelBuildId !== null && run.buildId !== null ? h.kernelBuildId === run.buildId : h.osrelease === run.release;
  if (!recorded) {
    const on = h.osrelease ?? (h.kernelBuildId ? `build id ${h.kernelBuildId}` : 'an unknown kernel');
    const here = h.osrelease === run.release ? `a different build of ${run.release}` : run.release;
    return { symbols: null, note: `kernel frames are raw addresses: recorded on ${on}, this machine runs ${here}; ${HOW}` };
  }
  let text: string;
  try {
    text = readFileSync(run.kallsyms, 'latin1');
  } catch (e) {
    return { symbols: null, note: `kernel frames are raw addresses: ${run.kallsyms} unreadable (${(e as NodeJS.ErrnoException).code}); ${HOW}` };
  }
  const table = Kallsyms.parse(text);
  if (table.size === 0) return { symbols: null, note: `kernel frames are raw addresses: ${run.kallsyms} shows no addresses (kptr_restrict: read it as root); ${HOW}` };
  return { symbols: { table, delta: relocation(buf, h, text) }, note: null };
}

/** Table `_text` (or whichever symbol the recorded mmap names) minus the recorded one; 0 when either is unknown. */
function relocation(buf: Buffer, h: PerfHeader, text: string): number {
  const rec = recordedText(buf, h);
  if (rec === null) return 0;
  const m = new RegExp(`^([0-9a-fA-F]{1,16})\\s+\\S\\s+${rec.name}$`, 'm').exec(text);
  if (!m) return 0;
  const d = Number(BigInt('0x' + m[1]) - rec.addr);
  return Number.isSafeInteger(d) ? d : 0;
}

const PERF_RECORD_MMAP = 1;
const PERF_RECORD_MMAP2 = 10;
const KERNEL_MAP = /^\[kernel\.kallsyms\]([A-Za-z_]\w*)$/;

/** perf record's kernel map: a PERF_RECORD_MMAP named `[kernel.kallsyms]_text` whose pgoff is `_text`'s address. */
function recordedText(buf: Buffer, h: PerfHeader): { name: string; addr: bigint } | null {
  const end = h.dataOffset + h.dataSize;
  for (let o = h.dataOffset; o + 8 <= end; ) {
    const type = buf.readUInt32LE(o);
    const size = buf.readUInt16LE(o + 6);
    if (size < 8 || o + size > end) return null;
    const name = type === PERF_RECORD_MMAP ? 40 : type === PERF_RECORD_MMAP2 ? 80 : 0;
    if (name && size > name) {
      const nul = buf.indexOf(0, o + name);
      const m = KERNEL_MAP.exec(buf.toString('latin1', o + name, nul >= 0 && nul < o + size ? nul : o + size));
      if (m) return { name: m[1], addr: buf.readBigUInt64LE(o + 32) };
    }
    o += size;
  }
  return null;
}

/** The GNU build id in an ELF notes blob (/sys/kernel/notes), as hex. */
export function noteBuildId(b: Buffer): string | null {
  for (let o = 0; o + 12 <= b.length; ) {
    const namesz = b.readUInt32LE(o), descsz = b.readUInt32LE(o + 4), type = b.readUInt32LE(o + 8);
    const name = o + 12, desc = name + align4(namesz);
    if (desc + descsz > b.length) return null;
    if (type === 3 && b.toString('latin1', name, name + namesz) === 'GNU\0') return b.toString('hex', desc, desc + descsz);
    o = desc + align4(descsz);
  }
  return null;
}
const align4 = (n: number): number => (n + 3) & ~3;

/** `0x...` as perf script prints the frame, normalised (docs/formats.md §1.8): `sym+0xoff[ [module]]`, else null. */
export function kernelFrame(s: KernelSymbols, hi: number, lo: number): string | null {
  if (s.delta !== 0) {
    const dHi = Math.floor(s.delta / 4294967296);
    const l = lo + (s.delta - dHi * 4294967296);
    hi = (hi + dHi + (l >= 4294967296 ? 1 : 0)) >>> 0;
    lo = l >>> 0;
  }
  const sym = s.table.lookup(hi, lo);
  if (sym === null) return null;
  return `${sym.name}+0x${sym.offset.toString(16)}${sym.module ? ` [${sym.module}]` : ''}`;
}
