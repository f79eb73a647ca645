/**
 * Values a kernel can print, per column: a value outside makes its line unparsed with a reason (docs/formats.md
 * "Limits"), never a wrapped or rounded number in the database and never a 2^order loop in replay.
 * Bounds are generous: they exist to reject what no kernel prints, not to second-guess a configuration.
 */

/** pfns: MAX_PHYSMEM_BITS is at most 52 (x86-64 5-level paging, arm64 LPA), so a pfn is below 2^40; 2^52 is generous. */
export const MAX_PFN = 2 ** 52;
/** Orders: MAX_PAGE_ORDER is 10 by default, at most 15ish with ARCH_FORCE_MAX_ORDER (arm64 64K pages: 13). */
export const MAX_ORDER = 20;
/** PID_MAX_LIMIT (include/linux/threads.h): 4M on 64-bit. */
export const MAX_PID = 4194304;
/** NR_CPUS is at most 8192 (CONFIG_NR_CPUS_RANGE_END, x86 MAXSMP). */
export const MAX_CPUS = 8192;
/** Timestamps are u64 ns in the ring buffer but stored as BIGINT: below 2^63 ns (about 9.22e9 s). */
export const MAX_TS_SEC = 9223372036;
export const MAX_TS_NS_AT_MAX_SEC = 854775807;
/** Lost-event counts are stored as BIGINT and summed: below 2^53 stays exact. */
export const MAX_LOST = 2 ** 53;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/**
 * The values column `name` (of batch storage `storage`) takes, [lo, hi]: the kernel's bounds for pfns and orders,
 * else the storage's (SMALLINT, INTEGER would wrap; BIGINT from a double would round beyond 2^53).
 */
export function rangeOf(name: string, storage: string): [number, number] {
  if (name === 'pfn' || name === 'pfn_end' || name === 'fin_pfn') return [-(MAX_PFN - 1), MAX_PFN - 1];
  if (name === 'order') return [0, MAX_ORDER];
  switch (storage) {
    case 'i16':
      return [-32768, 32767];
    case 'i32':
      return [INT32_MIN, INT32_MAX];
    case 'i64':
    case 'u64':
      return [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
    default:
      return [-Infinity, Infinity];
  }
}

/** Why `v` is outside rangeOf(name, storage), for the unparsed line's reason. */
export function outOfRange(name: string, storage: string, v: number | bigint): string {
  if (name === 'pfn' || name === 'pfn_end' || name === 'fin_pfn') return `${name} ${fmt(v)} beyond 2^52`;
  if (name === 'order') return `order ${fmt(v)} out of range (max ${MAX_ORDER})`;
  const what = storage === 'i16' ? 'out of int16' : storage === 'i32' ? 'out of int32' : 'beyond 2^53';
  return `${name} ${fmt(v)} ${what}`;
}

/** A value in a reason: large ones in hex (pfns are printed in hex), short. */
function fmt(v: number | bigint): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return 'too large';
  const neg = v < 0;
  const a = neg ? -v : v;
  return (a >= 2 ** 32 ? `${neg ? '-' : ''}0x${a.toString(16)}` : String(v)).slice(0, 40);
}

/** Why a line's context (cpu, pid, tgid, timestamp) cannot come from a kernel, or null. */
export function contextOutOfRange(cpu: number, pid: number, tgid: number, tsSec: number, tsNs: number): string | null {
  if (cpu >= MAX_CPUS) return `cpu ${cpu} beyond ${MAX_CPUS}`;
  if (pid > MAX_PID) return `pid ${fmtInt(pid)} beyond ${MAX_PID}`;
  if (tgid > MAX_PID) return `tgid ${fmtInt(tgid)} beyond ${MAX_PID}`;
  if (!(tsSec < MAX_TS_SEC || (tsSec === MAX_TS_SEC && tsNs <= MAX_TS_NS_AT_MAX_SEC))) return 'timestamp beyond 2^63 ns';
  return null;
}

const fmtInt = (v: number): string => (Number.isFinite(v) ? String(v) : 'too large');
