/**
 * What a kernel stack says about the reference it took: computed once per distinct stack (stacks table), then
 * looked up by stack_id in the hot path. Function names across versions: docs/model.md §4.3. Frames are
 * `func+0xoff/0xsize` or `func`; only the function name is compared.
 */
import type { Db } from '../db/duckdb.js';

/** GUP took this reference (FOLL_GET or FOLL_PIN). */
export const ST_GUP = 1;
/** A pinning entry point: pin_user_pages*, __gup_longterm_locked, memfd_pin_folios (FOLL_PIN family). */
export const ST_PIN = 2;
/** FOLL_LONGTERM entry point per the replay rules: __gup_longterm_locked or pin_user_pages* frames. */
export const ST_LONGTERM = 4;
/** An unpin path: unpin_user_page*, unpin_folio*, gup_put_folio, put_compound_head. */
export const ST_UNPIN = 8;
/** The grab itself (try_grab_page/try_grab_folio/try_grab_folio_fast/try_grab_compound_head/try_get_compound_head). */
export const ST_GRAB = 32;
/** A frame of zone_device_page_init: a ZONE_DEVICE page being handed out (pgmaps-infer.ts reads such stacks). */
export const ST_ZONE_DEVICE = 16;
/** Migration / compaction / CMA isolation: isolate_migratepages*, folio_isolate_lru, migrate_pages, alloc_contig_range (holds.ts). */
export const ST_ISOLATE = 64;
/** An LRU batch taking its reference: folio_add_lru*, lru_cache_add*, folio_putback_lru, putback_lru_page (holds.ts). */
export const ST_LRU_ADD = 128;
/** An LRU batch drain dropping its references: lru_add_drain*, folio_batch_move_lru, __pagevec_lru_add (holds.ts). */
export const ST_LRU_DRAIN = 256;
/** A pipe buffer released (the reference vmsplice took): pipe_buf_release, anon_pipe_buf_release, ... (holds.ts). */
export const ST_PIPE_RELEASE = 512;

const GUP_FRAMES = new Set([
  'try_grab_page',
  'try_grab_folio',
  'try_grab_folio_fast',
  'try_grab_compound_head',
  'try_get_compound_head',
  'follow_page_pte',
  'follow_page_mask',
  '__get_user_pages',
  '__get_user_pages_locked',
  '__get_user_pages_remote',
  'get_user_pages',
  'get_user_pages_fast',
  'get_user_pages_fast_only',
  'get_user_pages_remote',
  'get_user_pages_unlocked',
  'internal_get_user_pages_fast',
  'lockless_pages_from_mm',
  'gup_pgd_range',
  'gup_pte_range',
  'gup_fast',
  'gup_fast_fallback',
  'gup_fast_pte_range',
  'iov_iter_get_pages',
  'iov_iter_get_pages2',
  'iov_iter_get_pages_alloc',
  'iov_iter_get_pages_alloc2',
  '__iov_iter_get_pages_alloc',
  'iov_iter_extract_pages',
]);
const GRAB_FRAMES = /^(try_grab_page|try_grab_folio|try_grab_folio_fast|try_grab_compound_head|try_get_compound_head)$/;
const PIN_FRAMES = /^(pin_user_pages(_fast|_remote|_unlocked|_fast_only)?|__gup_longterm_locked|__gup_longterm_unlocked|memfd_pin_folios)$/;
const LONGTERM_FRAMES = /^(__gup_longterm_locked|pin_user_pages(_fast|_remote|_unlocked|_fast_only)?)$/;
const ISOLATE_FRAMES = /^(isolate_migratepages(_block|_range)?|isolate_movable_page|isolate_lru_page|folio_isolate_lru|isolate_folio_to_list|migrate_pages(_batch|_sync)?|__alloc_contig_migrate_range|alloc_contig_range(_noprof)?|compact_zone|kcompactd(_do_work)?|do_migrate_range)$/;
const LRU_ADD_FRAMES = /^(folio_add_lru(_vma)?|lru_cache_add(_inactive_or_unevictable)?|folio_putback_lru|putback_lru_page|putback_movable_pages|folio_batch_add_and_move)$/;
const LRU_DRAIN_FRAMES = /^(lru_add_drain(_cpu|_all|_per_cpu|_cpu_zone)?|__lru_add_drain_all|folio_batch_move_lru|__pagevec_lru_add|pagevec_lru_move_fn|lru_cache_disable)$/;
const PIPE_RELEASE_FRAMES = /^(pipe_buf_release|anon_pipe_buf_release|page_cache_pipe_buf_release|user_page_pipe_buf_release|generic_pipe_buf_release|free_pipe_info|pipe_release|pipe_read)$/;
const UNPIN_FRAMES = /^(unpin_user_page(s|s_dirty_lock|_range_dirty_lock)?|unpin_folios?|gup_put_folio|put_compound_head|unpin_user_pages_lockless)$/;

export function classifyFrames(frames: string[]): number {
  let f = 0;
  for (const raw of frames) {
    const fn = raw.replace(/[+ ].*$/, '');
    if (GUP_FRAMES.has(fn) || /^gup_fast/.test(fn)) f |= ST_GUP;
    if (PIN_FRAMES.test(fn)) f |= ST_PIN | ST_GUP;
    if (GRAB_FRAMES.test(fn)) f |= ST_GRAB;
    if (LONGTERM_FRAMES.test(fn)) f |= ST_LONGTERM;
    if (UNPIN_FRAMES.test(fn)) f |= ST_UNPIN;
    if (raw.startsWith('zone_device_page_init')) f |= ST_ZONE_DEVICE;
    if (ISOLATE_FRAMES.test(fn)) f |= ST_ISOLATE;
    if (LRU_ADD_FRAMES.test(fn)) f |= ST_LRU_ADD;
    if (LRU_DRAIN_FRAMES.test(fn)) f |= ST_LRU_DRAIN;
    if (PIPE_RELEASE_FRAMES.test(fn)) f |= ST_PIPE_RELEASE;
  }
  return f;
}

/** Stack flags indexed by stack_id (kernel stacks of one trace). */
export async function loadStackFlags(db: Db, traceId: number): Promise<Int32Array> {
  const rows = await db.all<{ stack_id: number; frames: string }>(
    "SELECT stack_id, frames FROM stacks WHERE trace_id = $1 AND kind = 'kernel'",
    [traceId],
  );
  let max = 0;
  for (const r of rows) if (r.stack_id > max) max = r.stack_id;
  const flags = new Int32Array(max + 1);
  for (const r of rows) flags[r.stack_id] = classifyFrames(r.frames.split('\n'));
  return flags;
}
