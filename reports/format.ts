/**
 * How values print in the reports (HTML, Markdown): pfns and pointers in hex, timestamps in seconds, durations with
 * a unit. Formatting is chosen by column name, the same way in every output; it never escapes (escape.ts does).
 */

export function toNum(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  return null;
}

export function toBig(v: unknown): bigint | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  return null;
}

export function hex(v: unknown): string {
  const b = toBig(v);
  if (b === null) return v === null || v === undefined ? '' : String(v);
  return b < 0n ? '-0x' + (-b).toString(16) : '0x' + b.toString(16);
}

/** Trace time in seconds, as the trace prints it (µs precision). */
export function seconds(ns: unknown, digits = 6): string {
  const n = toNum(ns);
  return n === null ? '' : (n / 1e9).toFixed(digits);
}

/** A duration in ns as a short human string: 812 ns, 3.2 µs, 41.0 ms, 1.044 s. */
export function duration(ns: unknown): string {
  const n = toNum(ns);
  if (n === null) return '';
  const a = Math.abs(n);
  if (a < 1e3) return `${n} ns`;
  if (a < 1e6) return `${(n / 1e3).toFixed(1)} µs`;
  if (a < 1e9) return `${(n / 1e6).toFixed(1)} ms`;
  return `${(n / 1e9).toFixed(3)} s`;
}

const HEX_COLUMNS = /(^|_)(pfn|pgmap|ptr|mapping|gup_flags|range_start|range_end|vmemmap_base)$|^pfn_(start|end)$|_pfn$/;
const TS_COLUMNS = /(^|_)ts_ns$|^(first|last)_ts_ns$/;
const DURATION_COLUMNS = /(^|_)(duration|held|age|lifetime|dur)(_ns)?$|_ns$/;

export type ColumnKind = 'hex' | 'ts' | 'duration' | 'number' | 'bool' | 'text';

/** What a column holds, from its name and a sample value. */
export function columnKind(name: string, sample: unknown): ColumnKind {
  const isNum = typeof sample === 'number' || typeof sample === 'bigint';
  if (typeof sample === 'boolean') return 'bool';
  if (HEX_COLUMNS.test(name) && (isNum || sample === null || sample === undefined || /^\d+$/.test(String(sample)))) return 'hex';
  if (TS_COLUMNS.test(name)) return 'ts';
  if (DURATION_COLUMNS.test(name)) return 'duration';
  if (isNum) return 'number';
  return 'text';
}

export function formatValue(kind: ColumnKind, v: unknown): string {
  if (v === null || v === undefined) return '';
  switch (kind) {
    case 'hex':
      return hex(v);
    case 'ts':
      return toNum(v) === null ? String(v) : seconds(v);
    case 'duration':
      return toNum(v) === null ? String(v) : duration(v);
    case 'bool':
      return v ? 'yes' : 'no';
    case 'number':
      return String(v);
    default:
      return typeof v === 'object' ? JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x)) : String(v);
  }
}

/** Readable column header: `holder_comm` -> `holder comm`, `_ns` suffixes dropped where the format shows the unit. */
export function columnTitle(name: string, kind: ColumnKind): string {
  let t = name;
  if (kind === 'ts') t = t.replace(/_ns$/, '') + ' (s)';
  else if (kind === 'duration') t = t.replace(/_ns$/, '');
  return t.replace(/_/g, ' ');
}
