import * as C from './codes.js';
import * as D from './decoders.js';
import type { Decoder, EventCols, TraceFacts } from './decoders.js';

/**
 * The event catalogue: one row per event refscope understands, with its system, the decoder that moves its payload
 * fields into typed columns (docs/formats.md §3), the replay code the model dispatches it on, how `refscope probes`
 * captures it (a tracepoint to enable, or kprobe definitions by kernel era) and which kernels print it.
 * Everything else derives from these rows: ingest's decoder lookup, replay's codes and its side/payload lists,
 * `refscope probes`, pgmap inference's event lists and check-traces' systems. Adding an event is adding a row.
 */

export type { EventCols, TraceFacts } from './decoders.js';

/** A kernel version, major and minor. */
export type Version = [number, number];

export const atLeast = (v: Version, [major, minor]: Version): boolean => v[0] > major || (v[0] === major && v[1] >= minor);

/** A kprobe (or kretprobe) definition of the row's event, for the kernels in [since, before). */
export interface Probe {
  kretprobe?: boolean;
  /** The probed function (its name changes across versions; the event name stays the row's). */
  func: string;
  /** Fetch args, x86-64 calling convention; field names are the ones the probe decoder reads. */
  args: string;
  since?: Version;
  before?: Version;
  /** Printed beside the definition in the script. */
  note?: string;
}

/** One line of `refscope probes` that enables a list of tracepoints (rows share the object to share the line). */
export interface Enable {
  why?: string;
  /** Printed commented out. */
  optional?: boolean;
}

export interface EventRow {
  name: string;
  /** tracefs system; for probe events the kprobe group. */
  system: string;
  decode: Decoder;
  /** Replay code (codes.ts); none: replay does not read the event. */
  code?: number;
  /** `refscope probes` enables this tracepoint, on this line. */
  enable?: Enable;
  /** `refscope probes` defines this probe event; at most one definition applies to a kernel. */
  probes?: Probe[];
  /** `refscope probes` sets a stacktrace trigger: the caller identifies the holder / pgmap user. */
  stack?: boolean;
  /** Columns its decoder fills on every row (check-traces counts rows without them as decoding gaps). */
  fills?: readonly string[];
  /** Which kernels print it, format differences. */
  era?: string;
}

const PAGE_REF: Enable = { why: 'needs CONFIG_DEBUG_PAGE_REF=y' };
const KMEM: Enable = {};
const SOME_KERNELS: Enable = { why: 'only some kernels have it' };
const CMA: Enable = {};
const MIGRATE: Enable = {};
const ISOLATION: Enable = {};
const FILEMAP: Enable = {};
const FS_DAX: Enable = {};
const RSS: Enable = { optional: true, why: 'per-mm RSS counters; frequent' };
const TASKS: Enable = { why: 'holders that exit: a pin or pgmap reference they leave is a leak (docs/model.md §15)' };

const CMA_PFN = 'pfn printed %lx (no 0x) before ≈5.14, 0x%lx after';
const FOLIO_REF = 'proposed folio_ref_* events carry the page_ref fields (docs/model.md §3)';
const REF = ['pfn', 'count', 'val', 'page_flags', 'mt'];
const REF_RET = ['pfn', 'count', 'val', 'ret', 'page_flags', 'mt'];
const pageRef = (name: string, code: number, fills: string[]): EventRow[] => [
  { name: `page_ref_${name}`, system: 'page_ref', decode: D.pageRef, code, enable: PAGE_REF, fills },
  { name: `folio_ref_${name}`, system: 'page_ref', decode: D.pageRef, code, fills, era: FOLIO_REF },
];
const PAGES = ['pfn', 'order', 'nr_pages'];
const CMA_RANGE = ['pfn', 'nr_pages', 'pfn_end'];
const fsDax = (name: string): EventRow => ({ name, system: 'fs_dax', decode: D.fsDax, enable: FS_DAX });

/** A probe-decoded event of group `system` with these definitions. */
const probe = (system: string, name: string, code: number | undefined, probes: Probe[], more: Partial<EventRow> = {}): EventRow => ({
  name,
  system,
  decode: D.probe,
  ...(code === undefined ? {} : { code }),
  ...(probes.length ? { probes } : {}),
  ...more,
});
const p = (func: string, args: string, era: Partial<Probe> = {}): Probe => ({ func, args, ...era });
const r = (func: string, args: string, era: Partial<Probe> = {}): Probe => ({ kretprobe: true, func, args, ...era });

// The task_struct argument of the remote GUP calls went away in 5.10.
const REMOTE = 'mm=%di:x64 start=%si:x64 nr_pages=%dx:u64 gup_flags=%cx:x32';
const REMOTE_TSK = 'mm=%si:x64 start=%dx:x64 nr_pages=%cx:u64 gup_flags=%r8:x32';
const remote = (func: string): Probe[] => [p(func, REMOTE_TSK, { before: [5, 10] }), p(func, REMOTE, { since: [5, 10] })];
// __gup_longterm_locked(mm, start, nr_pages, pages, [vmas,] [locked,] gup_flags): gup_flags is the 6th argument
// except 6.3..6.4 (vmas + locked: 7th, on the stack) and before 5.10 (task first: 7th).
const LONGTERM = 'mm=%di:x64 start=%si:x64 nr_pages=%dx:u64 pages=%cx:x64';
const GRAB = 'page=%di:x64 refs=%si:s32 flags=%dx:x32';
const FAST = 'start=%di:x64 nr_pages=%si:s32 gup_flags=%dx:x32';
const DEVICE_PAGE = 'page=%di:x64 pgmap=+8(%di):x64'; // struct page->pgmap sits at offset 8 (after flags) on x86-64
// alloc_contig_range(start, end, migratetype, gfp): alloc_contig_range_noprof since 6.10 (allocation profiling).
const acr = (kretprobe: boolean, args: string): Probe[] => [
  { kretprobe, func: 'alloc_contig_range', args, before: [6, 10] },
  { kretprobe, func: 'alloc_contig_range_noprof', args, since: [6, 10] },
];

/**
 * The rows. Tracepoint rows sharing an Enable are enabled on one line, in row order; probe rows are defined in row
 * order, which is the order the qemu-6.1 captures defined them in.
 */
export const CATALOGUE: readonly EventRow[] = [
  ...pageRef('set', C.PR_SET, REF),
  ...pageRef('mod', C.PR_MOD, REF),
  ...pageRef('mod_and_test', C.PR_MOD_AND_TEST, REF_RET),
  ...pageRef('mod_and_return', C.PR_MOD_AND_RETURN, REF_RET),
  ...pageRef('mod_unless', C.PR_MOD_UNLESS, REF_RET),
  ...pageRef('freeze', C.PR_FREEZE, REF_RET),
  ...pageRef('unfreeze', C.PR_UNFREEZE, REF),

  { name: 'mm_page_alloc', system: 'kmem', decode: D.kmemPage, code: C.KM_ALLOC, enable: KMEM, fills: PAGES },
  { name: 'mm_page_free', system: 'kmem', decode: D.kmemPage, code: C.KM_FREE, enable: KMEM, fills: PAGES },
  { name: 'mm_page_free_batched', system: 'kmem', decode: D.kmemPage, code: C.KM_FREE_BATCHED, enable: KMEM, fills: PAGES },
  { name: 'mm_page_alloc_zone_locked', system: 'kmem', decode: D.kmemPage, enable: KMEM, fills: PAGES },
  { name: 'mm_page_pcpu_drain', system: 'kmem', decode: D.kmemPage, enable: KMEM, fills: PAGES },
  { name: 'mm_page_alloc_extfrag', system: 'kmem', decode: D.extfrag, enable: KMEM, fills: ['pfn', 'order', 'mt'] },
  { name: 'mm_page_pcpu_refill', system: 'kmem', decode: D.kmemPage, fills: PAGES },
  { name: 'mm_page_free_direct', system: 'kmem', decode: D.kmemPage, code: C.KM_FREE, era: 'before 3.3 (then renamed mm_page_free)', fills: PAGES },
  { name: 'mm_pagevec_free', system: 'kmem', decode: D.kmemPage, code: C.KM_FREE_BATCHED, era: 'before 3.3 (then renamed mm_page_free_batched)' },
  { name: 'mm_alloc_contig_migrate_range_info', system: 'kmem', decode: D.allocContigRange, enable: SOME_KERNELS },

  { name: 'cma_alloc_start', system: 'cma', decode: D.cma, code: C.CMA_START, enable: CMA, era: CMA_PFN, fills: ['name', 'nr_pages'] },
  { name: 'cma_alloc_finish', system: 'cma', decode: D.cma, code: C.CMA_FINISH, enable: CMA, stack: true, era: CMA_PFN, fills: CMA_RANGE },
  { name: 'cma_alloc_busy_retry', system: 'cma', decode: D.cma, code: C.CMA_BUSY, enable: CMA, stack: true, era: CMA_PFN, fills: CMA_RANGE },
  { name: 'cma_release', system: 'cma', decode: D.cma, code: C.CMA_RELEASE, enable: CMA, era: CMA_PFN, fills: CMA_RANGE },
  { name: 'cma_alloc', system: 'cma', decode: D.cma, code: C.CMA_FINISH, enable: CMA, era: 'older kernels (≈4.2): one event for the call and its result', fills: CMA_RANGE },
  { name: 'cma_alloc_info', system: 'cma', decode: D.cma, enable: CMA },
  { name: 'cma_alloc_at_start', system: 'cma', decode: D.cma },
  { name: 'cma_alloc_at_finish', system: 'cma', decode: D.cma },

  { name: 'mm_migrate_pages', system: 'migrate', decode: D.migratePages, code: C.MIGRATE, enable: MIGRATE, fills: ['nr_succeeded', 'nr_failed', 'mode', 'name'] },
  { name: 'mm_migrate_pages_start', system: 'migrate', decode: D.migratePages, enable: MIGRATE, fills: ['mode', 'name'] },
  { name: 'set_migration_pte', system: 'migrate', decode: D.migrationPte, enable: MIGRATE, fills: ['addr', 'order'] },
  { name: 'remove_migration_pte', system: 'migrate', decode: D.migrationPte, enable: MIGRATE, fills: ['addr', 'order'] },
  { name: 'mm_migrate_unmap_folio', system: 'migrate', decode: D.migrateUnmapFolio, enable: MIGRATE },
  { name: 'test_pages_isolated', system: 'page_isolation', decode: D.testPagesIsolated, code: C.TPI, enable: ISOLATION, fills: ['pfn', 'pfn_end', 'fin_pfn', 'ret'] },
  { name: 'mm_filemap_add_to_page_cache', system: 'filemap', decode: D.filemapPage, enable: FILEMAP, fills: PAGES },
  { name: 'mm_filemap_delete_from_page_cache', system: 'filemap', decode: D.filemapPage, enable: FILEMAP, fills: PAGES },
  { name: 'mm_shmem_add_to_page_cache', system: 'filemap', decode: D.filemapPage, fills: PAGES },

  // include/trace/events/fs_dax.h
  ...['dax_pmd_fault', 'dax_pmd_fault_done', 'dax_pmd_load_hole', 'dax_pmd_load_hole_fallback', 'dax_pmd_insert_mapping']
    .map(fsDax),
  ...['dax_pte_fault', 'dax_pte_fault_done', 'dax_load_hole', 'dax_insert_pfn_mkwrite_no_entry', 'dax_insert_pfn_mkwrite']
    .map(fsDax),
  ...['dax_insert_mapping', 'dax_writeback_range', 'dax_writeback_range_done', 'dax_writeback_one'].map(fsDax),
  { name: 'rss_stat', system: 'kmem', decode: D.rssStat, enable: RSS },

  // GUP grab: try_grab_compound_head (<5.18) -> try_grab_folio(page) (5.18..6.9) -> try_grab_folio_fast(page)
  // for GUP-fast + try_grab_folio(folio) for the slow path, which replaced try_grab_page (>=6.10).
  probe('gup', 'try_grab_folio_fast', C.GUP_GRAB, [p('try_grab_folio_fast', GRAB, { since: [6, 10], note: 'GUP-fast grab (>=6.10)' })], { stack: true }),
  probe('gup', 'try_grab_folio', C.GUP_GRAB, [
    p('try_grab_compound_head', GRAB, { before: [5, 18], note: 'try_grab_compound_head before 5.18' }),
    p('try_grab_folio', GRAB, { since: [5, 18], before: [6, 10] }),
    p('try_grab_folio', 'folio=%di:x64 refs=%si:s32 flags=%dx:x32', { since: [6, 10], note: 'slow-path grab, was try_grab_page (>=6.10)' }),
  ], { stack: true }),
  probe('gup', 'try_grab_folio_ret', undefined, [
    r('try_grab_compound_head', 'folio=$retval:x64', { before: [5, 18] }),
    r('try_grab_folio', 'folio=$retval:x64', { since: [5, 18], before: [6, 10] }),
    r('try_grab_folio', 'ret=$retval:s32', { since: [6, 10] }),
  ]),
  probe('gup', 'try_grab_page', C.GUP_GRAB, [p('try_grab_page', 'page=%di:x64 flags=%si:x32', { before: [6, 10] })], { stack: true }),
  probe('gup', 'unpin_user_page', C.GUP_UNPIN_PAGE, [p('unpin_user_page', 'page=%di:x64')], { stack: true }),
  probe('gup', 'unpin_user_pages', undefined, [p('unpin_user_pages', 'pages=%di:x64 npages=%si:u64')]),
  probe('gup', 'unpin_user_pages_dirty_lock', undefined, [p('unpin_user_pages_dirty_lock', 'pages=%di:x64 npages=%si:u64 make_dirty=%dx:u8')]),
  probe('gup', 'pin_user_pages', C.GUP_CALL, [p('pin_user_pages', 'start=%di:x64 nr_pages=%si:u64 gup_flags=%dx:x32')], { stack: true }),
  probe('gup', 'pin_user_pages_ret', C.GUP_CALL_RET, [r('pin_user_pages', 'ret=$retval:s64')]),
  probe('gup', 'pin_user_pages_fast', C.GUP_CALL, [p('pin_user_pages_fast', FAST)]),
  probe('gup', 'pin_user_pages_fast_ret', C.GUP_CALL_RET, [r('pin_user_pages_fast', 'ret=$retval:s32')]),
  probe('gup', 'get_user_pages_fast', C.GUP_CALL, [p('get_user_pages_fast', FAST)], { stack: true }),
  probe('gup', 'get_user_pages_fast_ret', C.GUP_CALL_RET, [r('get_user_pages_fast', 'ret=$retval:s32')]),
  probe('gup', 'pin_user_pages_remote', C.GUP_CALL, remote('pin_user_pages_remote')),
  probe('gup', 'get_user_pages_remote', C.GUP_CALL, remote('get_user_pages_remote')),
  probe('gup', '__get_user_pages', C.GUP_CALL, remote('__get_user_pages')),
  probe('gup', '__gup_longterm_locked', C.GUP_CALL, [
    p('__gup_longterm_locked', 'mm=%si:x64 start=%dx:x64 nr_pages=%cx:u64 pages=%r8:x64 gup_flags=$stack1:x32', { before: [5, 10] }),
    p('__gup_longterm_locked', `${LONGTERM} gup_flags=%r9:x32`, { since: [5, 10], before: [6, 3] }),
    p('__gup_longterm_locked', `${LONGTERM} gup_flags=$stack1:x32`, { since: [6, 3], before: [6, 5] }),
    p('__gup_longterm_locked', `${LONGTERM} gup_flags=%r9:x32`, { since: [6, 5] }),
  ], { stack: true }),
  probe('gup', 'vm_insert_page', undefined, [p('vm_insert_page', 'vma=%di:x64 addr=%si:x64 page=%dx:x64')]),

  // dev_pagemap lifecycle (docs/model.md §7). vmemmap_base lets refscope turn page pointers into pfns (§11).
  probe('pgmap', 'memremap_pages', C.PGM_REMAP, [
    p('memremap_pages', 'pgmap=%di:x64 nid=%si:s32 vmemmap_base=@vmemmap_base:x64 page_offset_base=@page_offset_base:x64'),
  ], { stack: true }),
  probe('pgmap', 'memremap_pages_ret', C.PGM_REMAP_RET, [r('memremap_pages', 'vaddr=$retval:x64')]),
  probe('pgmap', 'memunmap_pages', C.PGM_UNMAP, [p('memunmap_pages', 'pgmap=%di:x64')], { stack: true }),
  probe('pgmap', 'memunmap_pages_ret', C.PGM_UNMAP_RET, [r('memunmap_pages', '')]),
  probe('pgmap', 'get_dev_pagemap', C.PGM_GET, [
    p('get_dev_pagemap', 'pfn=%di:x64 pgmap=%si:x64', { before: [6, 15] }),
    p('get_dev_pagemap', 'pfn=%di:x64', { since: [6, 15], note: 'get_dev_pagemap(pfn) since ~6.15' }),
  ]),
  probe('pgmap', 'get_dev_pagemap_ret', C.PGM_GET_RET, [r('get_dev_pagemap', 'ret=$retval:x64')]),
  probe('pgmap', 'zone_device_page_init', C.ZD_INIT, [p('zone_device_page_init', DEVICE_PAGE)], { stack: true }),
  probe('pgmap', 'free_zone_device_folio', C.ZD_FREE, [
    p('free_zone_device_folio', 'folio=%di:x64 pgmap=+8(%di):x64', { since: [6, 14], note: 'was free_zone_device_page before 6.14' }),
  ], { stack: true }),
  probe('pgmap', 'free_zone_device_page', C.ZD_FREE, [p('free_zone_device_page', DEVICE_PAGE, { before: [6, 14] })], { stack: true }),
  probe('pgmap', 'dev_pagemap_percpu_release', C.PGM_RELEASE, [p('dev_pagemap_percpu_release', 'ref=%di:x64')], { stack: true }),
  probe('pgmap', 'migrate_vma_setup', undefined, [p('migrate_vma_setup', 'args=%di:x64')]),
  probe('pgmap', 'migrate_vma_pages', undefined, [p('migrate_vma_pages', 'args=%di:x64')]),
  probe('pgmap', 'migrate_vma_finalize', undefined, [p('migrate_vma_finalize', 'args=%di:x64')]),

  { name: 'alloc_contig_range', system: 'cmak', decode: D.allocContigRange, code: C.ACR, fills: ['pfn', 'pfn_end', 'mt'],
    probes: acr(false, 'start=%di:x64 end=%si:x64 migratetype=%dx:u32 gfp=%cx:x32') },
  probe('cmak', 'alloc_contig_range_ret', C.ACR_RET, acr(true, 'ret=$retval:s32')),

  // GUP release: put_compound_head (<5.18) -> gup_put_folio.
  probe('gup', 'gup_put_folio', C.GUP_PUT_FOLIO, [
    p('put_compound_head', 'page=%di:x64 refs=%si:s32 flags=%dx:x32', { before: [5, 18], note: 'put_compound_head before 5.18' }),
    p('gup_put_folio', 'folio=%di:x64 refs=%si:s32 flags=%dx:x32', { since: [5, 18] }),
  ]),
  // internal_get_user_pages_fast was renamed gup_fast_fallback (~6.9).
  probe('gup', 'internal_get_user_pages_fast', C.GUP_CALL, [
    p('internal_get_user_pages_fast', 'start=%di:x64 nr_pages=%si:u64 gup_flags=%dx:x32', { before: [6, 9] }),
    p('gup_fast_fallback', 'start=%di:x64 nr_pages=%si:u64 gup_flags=%dx:x32', { since: [6, 9] }),
  ], { stack: true }),
  probe('gup', 'vmf_insert_pfn', C.RAW_MAP, [p('vmf_insert_pfn', 'vma=%di:x64 addr=%si:x64 pfn=%dx:x64')]),
  probe('gup', 'zap_page_range_single', C.RAW_ZAP, [
    p('zap_page_range_single', 'vma=%di:x64 address=%si:x64 size=%dx:x64', { note: 'may be inlined' }),
  ]),

  // Probe events decoded by the same field names, which `refscope probes` does not define.
  probe('gup', 'get_user_pages', C.GUP_CALL, []),
  probe('gup', 'get_user_pages_ret', C.GUP_CALL_RET, []),
  probe('gup', 'pin_user_pages_remote_ret', C.GUP_CALL_RET, []),
  probe('gup', 'get_user_pages_remote_ret', C.GUP_CALL_RET, []),
  probe('gup', 'memfd_pin_folios', C.GUP_CALL, []),
  probe('gup', 'memfd_pin_folios_ret', C.GUP_CALL_RET, []),
  probe('gup', 'unpin_folio', C.GUP_UNPIN_PAGE, []),
  probe('gup', 'unpin_folios', undefined, []),
  probe('gup', 'unpin_user_page_range_dirty_lock', undefined, []),
  probe('gup', 'vm_insert_pages', undefined, []),
  probe('gup', 'vmf_insert_mixed', C.RAW_MAP, []),
  probe('gup', 'remap_pfn_range', C.RAW_MAP, []),
  probe('cmak', 'alloc_contig_pages', undefined, []),
  probe('cmak', 'alloc_contig_pages_ret', undefined, []),

  { name: 'sched_process_exit', system: 'sched', decode: D.taskExit, code: C.TASK_EXIT, enable: TASKS,
    era: 'comm= pid= prio=; recent kernels (≈6.16 on) add group_dead=' },
  { name: 'sched_process_fork', system: 'sched', decode: D.taskFork, code: C.TASK_FORK,
    enable: { why: 'a holder that forks: its child may keep a pin or pgmap reference after the holder exits (docs/model.md §15)' } },

  { name: 'sys_enter_munmap', system: 'syscalls', decode: D.syscallEnter, code: C.SYS_MUNMAP },
  { name: 'tracing_mark_write', system: 'ftrace', decode: D.marker },
  ...['module_load', 'module_free', 'module_put', 'module_get'].map((name): EventRow => ({ name, system: 'module', decode: D.moduleEvent })),
];

const BY_NAME = new Map(CATALOGUE.map((e) => [e.name, e]));

/** How decode() treats an event: its decoder and system (null when not in the catalogue). */
export interface Decoding {
  decode: Decoder;
  system: string | null;
}

/**
 * The decoding of `event`: its catalogue row's; syscall events are recognised by name prefix; unknown events
 * keep their key=value fields in `args`. One object shape whatever the row (the builder keeps one per name).
 */
export function decodingOf(event: string): Decoding {
  const e = BY_NAME.get(event);
  if (e) return { decode: e.decode, system: e.system };
  if (event.startsWith('sys_enter_')) return { decode: D.syscallEnter, system: 'syscalls' };
  if (event.startsWith('sys_exit_')) return { decode: D.syscallExit, system: 'syscalls' };
  return { decode: D.generic, system: null };
}

/** Decode payload `p` of `event` into row r and return the event's system (null when not in the catalogue). */
export function decode(event: string, p: string, r: number, c: EventCols, facts: TraceFacts): string | null {
  const d = decodingOf(event);
  d.decode(p, r, c, facts);
  return d.system;
}

export function isKnownEvent(event: string): boolean {
  return BY_NAME.has(event) || event.startsWith('sys_enter_') || event.startsWith('sys_exit_');
}

export function systemOf(event: string): string | null {
  return BY_NAME.get(event)?.system ?? null;
}

/** Columns the decoder of an event fills on every row (none when not in the catalogue). */
export function fillsOf(event: string): readonly string[] {
  return BY_NAME.get(event)?.fills ?? [];
}

/** The replay code of an event; -1 when replay does not read it. */
export function replayCode(event: string): number {
  return BY_NAME.get(event)?.code ?? -1;
}

/** Events whose replay code passes `keep`. */
export const namesWithCode = (keep: (code: number) => boolean): string[] =>
  CATALOGUE.filter((e) => e.code !== undefined && keep(e.code)).map((e) => e.name);

/** Systems of the events `refscope probes` captures: the memory-management events the model reads. */
export const MM_SYSTEMS = new Set(CATALOGUE.filter((e) => e.enable || e.probes).map((e) => e.system));

/** Groups of the kprobe events `refscope probes` defines. */
export const KPROBE_SYSTEMS = new Set(CATALOGUE.filter((e) => e.probes).map((e) => e.system));

/** Whether a probe definition applies to kernel v. */
export const inEra = (d: Probe, v: Version): boolean => (!d.since || atLeast(v, d.since)) && (!d.before || !atLeast(v, d.before));
