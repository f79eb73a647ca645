/**
 * vmsplice-cma: vmsplice() references held by a pipe block a CMA allocation (the qemu-6.1 c-cma-blocked story).
 *
 * `vmsplice_hold` faults in 8 anonymous pages that land in the CMA area (page_ref mt=4; mm_page_alloc prints the
 * request's migratetype, 1) and vmsplice()s them into a pipe it never drains: per page GUP-fast with FOLL_GET
 * (kprobes get_user_pages_fast gup_flags=0x0, internal_get_user_pages_fast gup_flags=0x4, try_grab_folio refs=1
 * flags=0x4 with its stack, then page_ref_mod_unless val=1: count 1 -> 2). No pin.
 * Then `cma_test` writes to /sys/kernel/debug/cma/reserved/alloc: cma_alloc_start count=512, and 3 attempts, each
 * alloc_contig_range(start+k, start+512+k) (kprobe), compaction's isolation probe on every in-use page
 * (isolate_migratepages_block: get_page_unless_zero, then put because page_count > mapcount: a +1/-1 pair at mt=5,
 * the pageblock being isolated), migration of the movable pages of another process (first attempt only,
 * reason=contig_range), test_pages_isolated ... fin_pfn=<first held pfn> ret=fail, alloc_contig_range_ret ret=-16
 * (EBUSY) and cma_alloc_busy_retry with its stack. cma_alloc_finish page=NULL (6.1 prints no errorno).
 * The pipe is never drained: the references are still held when the trace ends.
 *
 * Expected: one failed cma_alloc with 3 busy retries; cma_blockers = the 8 pfns, holder_kind 'hold', holder
 * vmsplice_hold; 8 holds still held at the end; no pin; no anomaly (a hold is not a leak).
 */
import { cmaAllocClass, cmaAllocStart, hx, kprobe, kretprobe, pcpuDrain, sysEnter, sysExit } from '../events.js';
import { Background } from '../noise.js';
import { S } from '../stacks.js';
import { forbidAllBut, type ScenarioDef } from '../types.js';
import { begin, failedContigRound, faultIn, mark, pageArg, task, userAddr } from './common.js';

const NAME = 'vmsplice-cma';
const BASE = 0x7c000;
const COUNT = 512;
const ATTEMPTS = 3;

export const vmspliceCma: ScenarioDef = {
  name: NAME,
  summary: 'pipe holds vmsplice references on 8 CMA pages; cma_alloc fails after 3 busy retries: blockers = holds',
  async run(ctx) {
    const { em, mm, rng } = ctx;
    const bg = new Background(ctx, { rate: 1.5 });
    begin(ctx);
    const holder = task('vmsplice_hold', rng.int(2600, 2690), 1);
    const other = task('java', rng.int(2700, 2790), 0);
    const cma = task('cma_test', rng.int(2800, 2890), 0);
    // Held pages sit inside every attempted range [BASE+k, BASE+COUNT+k); the other process's pages too.
    const inRange = rng.distinct(14, BASE + 0x10, BASE + COUNT - 0x10);
    const held = inRange.slice(0, 8);
    const movable = inRange.slice(8).sort((a, b) => a - b);
    const targets = rng.distinct(movable.length, 0x70000, 0x7b000);
    const heldVa = userAddr(ctx);
    const otherVa = userAddr(ctx);

    await bg.run(rng.int(30_000, 60_000));
    mark(ctx, other, NAME, 'touch heap');
    movable.forEach((pfn) => {
      faultIn(ctx, other, pfn, 4);
      em.adv(rng.int(5, 40));
    });
    await bg.run(rng.int(20_000, 50_000));

    mark(ctx, holder, NAME, `start npages=${held.length}`);
    held.forEach((pfn, i) => {
      faultIn(ctx, holder, pfn, 4, i === 0);
      em.adv(rng.int(5, 30));
      bg.sprinkle(0.2);
    });
    mark(ctx, holder, NAME, 'vmsplice begin');
    em.adv(rng.int(50, 300));
    sysEnter(em, holder, 'vmsplice', [['fd', 5], ['uiov', rng.int(0x30000000, 0x3fffffff)], ['nr_segs', held.length], ['flags', 0]]);
    for (const [i, pfn] of held.entries()) {
      const va = heldVa + i * 0x1000;
      em.adv(rng.int(10, 60));
      kprobe(em, holder, 'gup', 'get_user_pages_fast', `start=${hx(va)} nr_pages=1 gup_flags=0x0`, { stack: S.vmspliceGupFast });
      em.adv(rng.int(2, 20));
      kprobe(em, holder, 'gup', 'internal_get_user_pages_fast', `start=${hx(va)} nr_pages=1 gup_flags=0x4`, { stack: S.vmspliceInternal });
      em.adv(rng.int(2, 20));
      // gup_pte_range -> try_grab_folio(FOLL_GET) -> folio_ref_try_add_rcu: page_ref_mod_unless val=1 (irqs off).
      kprobe(em, holder, 'gup', 'try_grab_folio', `page=${pageArg(pfn)} refs=1 flags=0x4`, { irq: 'd....', stack: S.vmspliceGrab });
      mm.modUnless(holder, pfn, 1, { irq: 'd....' });
      em.adv(rng.int(1, 10));
      kretprobe(em, holder, 'gup', 'try_grab_folio_ret', 'try_grab_folio', 'internal_get_user_pages_fast+0x59d', `folio=${pageArg(pfn)}`, { irq: 'd....' });
      em.adv(rng.int(1, 15));
      kretprobe(em, holder, 'gup', 'get_user_pages_fast_ret', 'get_user_pages_fast', '__iov_iter_get_pages_alloc+0xe9', 'ret=1');
    }
    em.adv(rng.int(5, 30));
    sysExit(em, holder, 'vmsplice', held.length * 0x1000);
    mark(ctx, holder, NAME, `vmsplice done bytes=${held.length * 4096} (refs now held by pipe)`);
    await bg.run(rng.int(400_000, 600_000));

    mark(ctx, cma, NAME, `cma_alloc begin count=${COUNT}`);
    em.adv(rng.int(200, 1500));
    cmaAllocStart(em, cma, 'reserved', COUNT, 0);
    const fin = Math.min(...held);
    const inUse = [...held, ...movable].sort((a, b) => a - b);
    for (let k = 0; k < ATTEMPTS; k++) {
      em.adv(rng.int(100, 2500));
      kprobe(em, cma, 'cmak', 'alloc_contig_range', `start=${hx(BASE + k)} end=${hx(BASE + COUNT + k)} migratetype=4 gfp=0xcc0`);
      em.adv(rng.int(200, 1200));
      // drain_all_pages: free pages of the isolated pageblocks leave the per-cpu lists.
      for (let d = rng.int(2, 6); d > 0; d--) pcpuDrain(em, cma, BASE + COUNT + 0x40 + rng.int(0, 0x1a0), 5);
      em.adv(rng.int(500, 8000));
      let taken = 0;
      for (const pfn of inUse) {
        if (held.includes(pfn)) {
          // isolate_migratepages_block: get_page_unless_zero, then "page_count > mapcount": put, skip.
          mm.modUnless(cma, pfn, 1, { mt: 5, flags: 'referenced|uptodate|lru|mappedtodisk|swapbacked' });
          em.adv(rng.int(1, 10));
          mm.modAndTest(cma, pfn, -1);
        } else if (mm.pages.has(pfn)) {
          mm.modUnless(cma, pfn, 1, { mt: 5, irq: 'd..1.' });
          taken++;
        }
        em.adv(rng.int(3, 120));
      }
      failedContigRound(ctx, { cma, other, base: BASE, count: COUNT, taken, movable, targets, otherVa, held, fin, k });
      bg.sprinkle(0.5);
    }
    em.adv(rng.int(100, 400));
    cmaAllocClass(em, cma, 'cma_alloc_finish', 'reserved', BASE + ATTEMPTS - 1, false, COUNT, 0, { stack: S.cmaAlloc });
    em.adv(rng.int(1000, 5000));
    mark(ctx, cma, NAME, 'cma_alloc done ret=-12 (Cannot allocate memory)');
    await bg.run(rng.int(150_000, 300_000));

    return {
      description:
        `vmsplice_hold (pid ${holder.pid}) holds vmsplice (FOLL_GET) references on 8 CMA pages through an undrained pipe; ` +
        `cma_test (pid ${cma.pid}) cma_alloc(reserved, ${COUNT}) fails after ${ATTEMPTS} busy retries, test_pages_isolated stopping at ${hx(fin)}.`,
      expect: {
        pins: [],
        anomalies: [],
        leaks: [],
        holds: held.map((pfn) => ({ pfn, refs: 1, holder_pid: holder.pid, holder_comm: holder.comm, end_ts_ns: null })),
        cma_attempts: [{ kind: 'alloc', cma_name: 'reserved', busy_retries: ATTEMPTS, succeeded: false }],
        cma_blockers: held.map((pfn) => ({ pfn, holder_kind: 'hold' as const, holder_pid: holder.pid, holder_comm: holder.comm })),
      },
      forbid: forbidAllBut(),
    };
  },
};
