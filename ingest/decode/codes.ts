/**
 * Replay codes: the number the replay dispatches each event on (a catalogue row's `code`). Events that share a code
 * are one thing to the model (page_ref_set and folio_ref_set, mm_page_free and the older mm_page_free_direct).
 */

// page_ref (and the proposed folio_ref_* events, same fields); every code up to PR_UNFREEZE is a refcount change.
export const PR_SET = 1;
export const PR_MOD = 2;
export const PR_MOD_AND_TEST = 3;
export const PR_MOD_AND_RETURN = 4;
export const PR_MOD_UNLESS = 5;
export const PR_FREEZE = 6;
export const PR_UNFREEZE = 7;
export const isRefCode = (code: number): boolean => code >= PR_SET && code <= PR_UNFREEZE;
// kmem
export const KM_ALLOC = 10;
export const KM_FREE = 11;
export const KM_FREE_BATCHED = 12;
// tasks
export const TASK_EXIT = 13; // sched_process_exit: the current task exits (replay/tasks.ts)
// GUP probes
export const GUP_GRAB = 20; // try_grab_page / try_grab_folio / try_grab_folio_fast: page=, refs=, flags=
export const GUP_PUT_FOLIO = 21; // gup_put_folio folio= refs= flags=
export const GUP_UNPIN_PAGE = 22; // unpin_user_page page= (the subpage being unpinned)
export const GUP_CALL = 23; // pin_user_pages*, __gup_longterm_locked, get_user_pages*, ...: gup_flags=
export const GUP_CALL_RET = 24; // their kretprobes
export const RAW_MAP = 25; // vmf_insert_pfn / vmf_insert_mixed / remap_pfn_range: a PFN mapping without a page reference
export const RAW_ZAP = 26; // zap_page_range_single address= size=
export const SYS_MUNMAP = 27; // sys_enter_munmap addr: len:
export const TASK_FORK = 28; // sched_process_fork: the current task forks child_pid= (replay/tasks.ts reads child_pid= from the payload after the stream, only when a release needs forks)
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
