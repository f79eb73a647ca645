/**
 * The event record the driver hands to every tracker, and the numeric event codes it dispatches on.
 *
 * One Ev instance is reused for every event of a replay (no allocation per event): the driver overwrites its
 * fields from the current DuckDB chunk. Numeric fields are NaN when the event has no such field; ids are -1.
 * Rare events (cma, pgmap, munmap, raw PFN mappings, ...) also carry `side`, a row of the columns only they use.
 */

// page_ref (and the proposed folio_ref_* events, same fields)
export const PR_SET = 1;
export const PR_MOD = 2;
export const PR_MOD_AND_TEST = 3;
export const PR_MOD_AND_RETURN = 4;
export const PR_MOD_UNLESS = 5;
export const PR_FREEZE = 6;
export const PR_UNFREEZE = 7;
// kmem
export const KM_ALLOC = 10;
export const KM_FREE = 11;
export const KM_FREE_BATCHED = 12;
// GUP probes
export const GUP_GRAB = 20; // try_grab_page / try_grab_folio / try_grab_folio_fast: page=, refs=, flags=
export const GUP_PUT_FOLIO = 21; // gup_put_folio folio= refs= flags=
export const GUP_UNPIN_PAGE = 22; // unpin_user_page page= (the subpage being unpinned)
export const GUP_CALL = 23; // pin_user_pages*, __gup_longterm_locked, get_user_pages*, ...: gup_flags=
export const GUP_CALL_RET = 24; // their kretprobes
export const RAW_MAP = 25; // vmf_insert_pfn / vmf_insert_mixed / remap_pfn_range: a PFN mapping without a page reference
export const RAW_ZAP = 26; // zap_page_range_single address= size=
export const SYS_MUNMAP = 27; // sys_enter_munmap addr: len:
// CMA and contiguous allocation
export const CMA_START = 30;
export const CMA_BUSY = 31;
export const CMA_FINISH = 32;
export const CMA_RELEASE = 33;
export const ACR = 34; // alloc_contig_range kprobe start= end=
export const ACR_RET = 35; // alloc_contig_range_ret ret=
export const TPI = 36; // test_pages_isolated
export const MIGRATE = 37; // mm_migrate_pages
// dev_pagemap probes
export const PGM_REMAP = 40;
export const PGM_REMAP_RET = 41;
export const PGM_UNMAP = 42;
export const PGM_UNMAP_RET = 43;
export const PGM_GET = 44; // get_dev_pagemap pfn=
export const PGM_GET_RET = 45; // get_dev_pagemap_ret ret=
export const ZD_INIT = 46; // zone_device_page_init page= pgmap=
export const ZD_FREE = 47; // free_zone_device_page / free_zone_device_folio page= pgmap=
export const PGM_RELEASE = 48; // dev_pagemap_percpu_release ref=

export const EVENT_CODES: Record<string, number> = {
  page_ref_set: PR_SET,
  page_ref_mod: PR_MOD,
  page_ref_mod_and_test: PR_MOD_AND_TEST,
  page_ref_mod_and_return: PR_MOD_AND_RETURN,
  page_ref_mod_unless: PR_MOD_UNLESS,
  page_ref_freeze: PR_FREEZE,
  page_ref_unfreeze: PR_UNFREEZE,
  folio_ref_set: PR_SET,
  folio_ref_mod: PR_MOD,
  folio_ref_mod_and_test: PR_MOD_AND_TEST,
  folio_ref_mod_and_return: PR_MOD_AND_RETURN,
  folio_ref_mod_unless: PR_MOD_UNLESS,
  folio_ref_freeze: PR_FREEZE,
  folio_ref_unfreeze: PR_UNFREEZE,
  mm_page_alloc: KM_ALLOC,
  mm_page_free: KM_FREE,
  mm_page_free_direct: KM_FREE,
  mm_page_free_batched: KM_FREE_BATCHED,
  mm_pagevec_free: KM_FREE_BATCHED,
  try_grab_page: GUP_GRAB,
  try_grab_folio: GUP_GRAB,
  try_grab_folio_fast: GUP_GRAB,
  gup_put_folio: GUP_PUT_FOLIO,
  unpin_user_page: GUP_UNPIN_PAGE,
  unpin_folio: GUP_UNPIN_PAGE,
  pin_user_pages: GUP_CALL,
  pin_user_pages_fast: GUP_CALL,
  pin_user_pages_remote: GUP_CALL,
  __gup_longterm_locked: GUP_CALL,
  get_user_pages: GUP_CALL,
  get_user_pages_fast: GUP_CALL,
  get_user_pages_remote: GUP_CALL,
  internal_get_user_pages_fast: GUP_CALL,
  __get_user_pages: GUP_CALL,
  memfd_pin_folios: GUP_CALL,
  pin_user_pages_ret: GUP_CALL_RET,
  pin_user_pages_fast_ret: GUP_CALL_RET,
  pin_user_pages_remote_ret: GUP_CALL_RET,
  get_user_pages_ret: GUP_CALL_RET,
  get_user_pages_fast_ret: GUP_CALL_RET,
  get_user_pages_remote_ret: GUP_CALL_RET,
  memfd_pin_folios_ret: GUP_CALL_RET,
  vmf_insert_pfn: RAW_MAP,
  vmf_insert_mixed: RAW_MAP,
  remap_pfn_range: RAW_MAP,
  zap_page_range_single: RAW_ZAP,
  sys_enter_munmap: SYS_MUNMAP,
  cma_alloc_start: CMA_START,
  cma_alloc_busy_retry: CMA_BUSY,
  cma_alloc_finish: CMA_FINISH,
  cma_alloc: CMA_FINISH, // ≈4.2 single event: the call and its result
  cma_release: CMA_RELEASE,
  alloc_contig_range: ACR,
  alloc_contig_range_ret: ACR_RET,
  test_pages_isolated: TPI,
  mm_migrate_pages: MIGRATE,
  memremap_pages: PGM_REMAP,
  memremap_pages_ret: PGM_REMAP_RET,
  memunmap_pages: PGM_UNMAP,
  memunmap_pages_ret: PGM_UNMAP_RET,
  get_dev_pagemap: PGM_GET,
  get_dev_pagemap_ret: PGM_GET_RET,
  zone_device_page_init: ZD_INIT,
  free_zone_device_page: ZD_FREE,
  free_zone_device_folio: ZD_FREE,
  dev_pagemap_percpu_release: PGM_RELEASE,
};

/** Codes whose events need the side columns (payload, ranges, names, 64-bit pointers). */
export function isSideCode(code: number): boolean {
  return code >= RAW_MAP && code !== GUP_CALL && code !== GUP_CALL_RET;
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
  /** Index into the gfp string table; -1 = none. */
  gfp = -1;
  side: Side | null = null;
}

// FOLL_* flags (6.1 values; reference §3).
export const FOLL_GET = 0x4;
export const FOLL_LONGTERM = 0x10000;
export const FOLL_PIN = 0x40000;
export const GUP_PIN_COUNTING_BIAS = 1024;

/** True when the FOLL_* value has `bit` (flags fit in 32 bits in practice; larger values are split exactly). */
export function hasFlag(flags: number, bit: number): boolean {
  if (flags !== flags) return false;
  return ((flags % 4294967296) & bit) !== 0;
}
