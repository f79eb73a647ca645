/** Small building blocks the scenario files share: tasks, start time, markers, anonymous pages, migration. */
import type { Task } from '../emit.js';
import { cmaAllocClass, isolateMigratepages, kretprobe, marker, migrateDone, migrateStart, migrationPte, pagePtr, sysEnter, sysExit, testPagesIsolated } from '../events.js';
import { S } from '../stacks.js';
import type { Ctx } from '../types.js';

export function task(comm: string, pid: number, cpu: number, tgid: number | null = pid): Task {
  return { comm, pid, tgid, cpu };
}

/** Traces start a few seconds to minutes after boot (the printed clock is seconds since boot). */
export function begin(ctx: Ctx): void {
  ctx.em.now = ctx.rng.int(20, 400) * 1_000_000 + ctx.rng.int(0, 999_999);
}

/** The workload's trace_marker convention (qemu-6.1): `scenario=<name> pid=<pid> step=<what>`. */
export function mark(ctx: Ctx, t: Task, scenario: string, step: string): void {
  marker(ctx.em, t, `scenario=${scenario} pid=${t.pid} step=${step}`);
}

/** page->mapping of an anonymous page: the process's anon_vma pointer with PAGE_MAPPING_ANON (bit 0) set. */
export function anonMapping(t: Task): string {
  const key = t.tgid ?? t.pid;
  return 'ff11000004' + ((key * 0x9e37) & 0xfffff).toString(16).padStart(5, '0') + '1';
}

/** A user address: page-aligned, in the mmap area of x86-64. */
export function userAddr(ctx: Ctx): number {
  return 0x7f00_0000_0000 + ctx.rng.int(0x1000, 0xfffff) * 0x100000;
}

/** A kernel heap pointer (vma, mm, pgmap, ...) as 16 hex digits. */
export function kptr(ctx: Ctx, align = 0x40): string {
  return 'ff110000' + ((ctx.rng.int(0x2000000, 0x7ffffff) * align) >>> 0 & 0xfffffff).toString(16).padStart(8, '0');
}

export const FAULT_GFP = 'GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO';
export const ANON_FLAGS = 'uptodate|lru|mappedtodisk|swapbacked';

/**
 * A page fault on anonymous memory (do_anonymous_page): allocate, page_add_new_anon_rmap, and the LRU batch's
 * get/put (folio_add_lru_vma, then the batch drain). The page ends mapped once with count 1.
 */
export function faultIn(ctx: Ctx, t: Task, pfn: number, mt: number, stack = false): void {
  const { em, mm, rng } = ctx;
  mm.alloc(t, pfn, { gfp: FAULT_GFP, mt, allocMt: 1, stack: stack ? S.anonAlloc : undefined });
  em.adv(rng.int(1, 12));
  mm.mod(t, pfn, 1, { flags: 'uptodate|mappedtodisk|swapbacked', mapcount: 1, mapping: anonMapping(t), irq: '...1.' });
  em.adv(rng.int(1, 30));
  mm.modAndTest(t, pfn, -1, { flags: ANON_FLAGS, irq: '...2.' });
}

/** munmap of anonymous pages mapped once: the mapping's reference is the last one, the pages are freed. */
export function munmapFree(ctx: Ctx, t: Task, pfns: number[], addr: number, stackFirst = true): void {
  const { em, mm, rng } = ctx;
  sysEnter(em, t, 'munmap', [['addr', addr], ['len', pfns.length * 0x1000]]);
  em.adv(rng.int(20, 120));
  pfns.forEach((pfn, i) => {
    mm.free(t, pfn, { batched: true, irq: '...1.', flags: ANON_FLAGS, stack: stackFirst && i === 0 ? S.munmapPut : undefined });
    em.adv(rng.int(1, 6));
  });
  sysExit(em, t, 'munmap', 0);
}

/** A fake but well-formed pte value (`pte=%lx`) for set/remove_migration_pte. */
function pte(pfn: number, migration: boolean): string {
  return migration ? 'd7f9' + ((0xfffff0000000 - pfn * 0x200) >>> 0).toString(16).padStart(12, '0') : '80000000' + (pfn * 0x1000 + 0x67).toString(16).padStart(8, '0');
}

/**
 * Migrate one isolated anonymous page (migrate_pages -> migrate_folio_unmap/move, 6.1) from `old` to `dst`:
 * the new page is allocated by the migrating task, try_to_migrate replaces the pte with a migration entry and
 * drops the mapping's reference (mapcount 0), remove_migration_pte maps the new page (folio_get before the rmap
 * is added, so it prints mapcount=0), the old page loses its last (isolation) reference and is freed, and the
 * new page's allocation reference is dropped, leaving it mapped with count 1.
 * On entry `old` must hold exactly the mapping's reference + the isolation reference (count 2).
 */
export function migratePage(ctx: Ctx, t: Task, owner: Task, old: number, dst: number, addr: number, gfp: string): void {
  const { em, mm, rng } = ctx;
  if (mm.get(old).count !== 2) throw new Error('generator bug: migrating a page with unexpected references');
  mm.alloc(t, dst, { gfp, mt: 1 });
  em.adv(rng.int(2, 20));
  migrationPte(em, t, 'set_migration_pte', addr, pte(old, true));
  mm.modAndTest(t, old, -1, { mapcount: 0, flags: 'locked|uptodate|dirty|swapbacked', irq: '...1.' });
  em.adv(rng.int(5, 60));
  migrationPte(em, t, 'remove_migration_pte', addr, pte(dst, false));
  mm.mod(t, dst, 1, { flags: 'locked|uptodate|dirty|swapbacked', mapping: anonMapping(owner), irq: '...1.' });
  mm.get(dst).mapcount = 1;
  em.adv(rng.int(1, 10));
  mm.free(t, old, { flags: 'uptodate|dirty|swapbacked' });
  mm.modAndTest(t, dst, -1, { flags: 'uptodate|dirty|lru|swapbacked' });
}

/** `0x` + the struct page pointer of a pfn, as kprobes fetch it. */
export const pageArg = (pfn: number): string => '0x' + pagePtr(pfn);

/** One failed alloc_contig_range round of a cma_alloc attempt over [base, base + count). */
export interface ContigRound {
  /** The requester and the owner of the movable pages. */
  cma: Task;
  other: Task;
  base: number;
  count: number;
  /** Pages isolate_migratepages took (they are reported by its event). */
  taken: number;
  movable: number[];
  targets: number[];
  otherVa: number;
  /** Pages nobody can migrate: their references block the range; fin is the first. */
  held: number[];
  fin: number;
  /** Offset of this round (cma_alloc retries at base + k). */
  k: number;
}

/**
 * The round as cma_alloc's alloc_contig_range runs it: isolate_migratepages, migrate what can move, then
 * test_pages_isolated fails at fin, the range is un-isolated, alloc_contig_range returns -EBUSY and cma_alloc
 * reports a busy retry.
 */
export function failedContigRound(ctx: Ctx, r: ContigRound): void {
  const { em, mm, rng } = ctx;
  isolateMigratepages(em, r.cma, r.base, r.base + r.count, r.count, r.taken);
  em.adv(rng.int(500, 3000));
  migrateStart(em, r.cma, 'contig_range');
  let migrated = 0;
  for (const [i, pfn] of r.movable.entries()) {
    if (!mm.pages.has(pfn)) continue;
    migratePage(ctx, r.cma, r.other, pfn, r.targets[i]!, r.otherVa + i * 0x1000, 'GFP_USER|__GFP_RETRY_MAYFAIL|__GFP_MOVABLE');
    migrated++;
    em.adv(rng.int(20, 300));
  }
  migrateDone(em, r.cma, migrated, 0, 'contig_range');
  em.adv(rng.int(300, 1500));
  testPagesIsolated(em, r.cma, r.base, r.base + r.count + r.k, r.fin);
  r.held.forEach((pfn) => (mm.get(pfn).mt = 4)); // undo_isolate_page_range (no event)
  em.adv(rng.int(100, 1000));
  kretprobe(em, r.cma, 'cmak', 'alloc_contig_range_ret', 'alloc_contig_range', 'cma_alloc+0x149', 'ret=-16');
  em.adv(rng.int(10, 500));
  cmaAllocClass(em, r.cma, 'cma_alloc_busy_retry', 'reserved', r.base + r.k, true, r.count, 0, { stack: S.cmaAlloc });
}
