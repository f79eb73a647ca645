/**
 * The event record the driver hands to every tracker, and the numeric event codes it dispatches on.
 *
 * One Ev instance is reused for every event of a replay (no allocation per event): the driver overwrites its
 * fields from the current DuckDB chunk. Numeric fields are NaN when the event has no such field; ids are -1.
 * Rare events (cma, pgmap, munmap, raw PFN mappings, ...) also carry `side`, a row of the columns only they use.
 */
import { GUP_CALL, GUP_CALL_RET, RAW_MAP, TASK_FORK } from '../ingest/decode/codes.js';

// The replay codes are part of the event catalogue's rows (ingest/decode/catalogue.ts).
export * from '../ingest/decode/codes.js';

/**
 * Codes whose events need the side columns (payload, ranges, names, 64-bit pointers). Not sched_process_fork: its
 * child_pid= is read after the stream, when needed (Tasks.childrenFrom).
 */
export function isSideCode(code: number): boolean {
  return code >= RAW_MAP && code !== GUP_CALL && code !== GUP_CALL_RET && code !== TASK_FORK;
}

/** Columns of rare events, fetched in a second small query and merged by seq. */
export interface Side {
  seq: number;
  event: string;
  pfn: number;
  mt: number;
  pfnEnd: number;
  finPfn: number;
  nrPages: number;
  nrSucceeded: number;
  nrFailed: number;
  name: string | null;
  /** pgmap= / ref= pointer as lower-case hex without 0x (exact, > 2^53). */
  pgmap: string | null;
  /** addr/vaddr as lower-case hex without 0x. */
  addr: string | null;
  /** The page= pointer of cma events: 1 = a page, 0 = NULL (allocation failed), -1 = not printed. */
  page: number;
  /** Raw payload, fetched only for the events whose fields replay still reads from it (loadSide); '' otherwise. */
  payload: string;
}

export class Ev {
  seq = 0;
  /** Timestamp in ns relative to the trace's ts base (see Output.ts). */
  ts = 0;
  cpu = -1;
  pid = -1;
  tgid = -1;
  /** Index into the comm string table; -1 = none. */
  comm = -1;
  code = 0;
  /** Index into the event-name table. */
  name = -1;
  /** Page frame number; -1 = none (kept an integer: it is a Map key on the hot path). */
  pfn = -1;
  order = NaN;
  count = NaN;
  mapcount = NaN;
  val = NaN;
  ret = NaN;
  mt = NaN;
  refs = NaN;
  gupFlags = NaN;
  stack = -1;
  /** page flags include `head`. */
  head = false;
  /** References the page cache / swap cache and fs private data hold per flags and mapping= (0..2); -1 = no flags printed. */
  owners = -1;
  /** page flags include `lru` (1) or not (0); -1 = no flags printed. holds.ts attributes LRU batch references by it. */
  lru = -1;
  /** Index into the gfp string table; -1 = none. */
  gfp = -1;
  side: Side | null = null;
}

// FOLL_* flags (6.1 values; docs/model.md §4).
export const FOLL_GET = 0x4;
export const FOLL_LONGTERM = 0x10000;
export const FOLL_PIN = 0x40000;
export const GUP_PIN_COUNTING_BIAS = 1024;

/** True when the FOLL_* value has `bit` (flags fit in 32 bits in practice; larger values are split exactly). */
export function hasFlag(flags: number, bit: number): boolean {
  if (flags !== flags) return false;
  return ((flags % 4294967296) & bit) !== 0;
}
