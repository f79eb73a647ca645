/**
 * vmalloc-remap: a driver maps a vmalloc() buffer into a process with vm_insert_page(), correctly.
 *
 * The driver kthread `vmap_drv` allocates 16 order-0 pages with vmalloc() (__vmalloc_area_node: GFP_KERNEL |
 * __GFP_HIGHMEM | __GFP_NOWARN, mt 0). The process `vmap_user` mmaps the device; the driver's mmap handler calls
 * vm_insert_page() per page: kprobe gup/vm_insert_page, then insert_page_into_pte_locked() does get_page()
 * (page_ref_mod val=1, count 2) BEFORE page_add_file_rmap(), so that event prints mapcount=0; the page is mapped
 * from then on. The process munmaps: zap_pte_range removes the rmap and the mmu_gather batch drops the mapping's
 * reference (count 1, mapcount 0). The driver then vfree()s: __vunmap -> __free_pages, count 0 + mm_page_free.
 * Expected: no finding (no pin, no leak, nothing freed while mapped).
 *
 * vmalloc-uaf (runVmalloc with uaf=true) is the buggy variant: the pages are mapped with vmf_insert_pfn() from the
 * fault handler (a raw PFN mapping: no refcount, no mapcount, visible only as the gup/vmf_insert_pfn probe), and the
 * driver vfree()s the buffer on an ioctl while the process still maps it; the unmap (sys_munmap and the driver's
 * zap_vma_ptes -> gup/zap_page_range_single probe) comes after the frees. Expected: freed_while_mapped on each of
 * the 16 pfns, shown by the freeing event of `vmap_drv`.
 */
import { hx, kprobe, sysEnter, sysExit } from '../events.js';
import { Background } from '../noise.js';
import { S } from '../stacks.js';
import { forbidAllBut, type Ctx, type ScenarioDef, type ScenarioResult, type TruthAnomaly } from '../types.js';
import { begin, kptr, mark, pageArg, task, userAddr } from './common.js';

const VMALLOC_GFP = 'GFP_KERNEL|__GFP_HIGHMEM|__GFP_NOWARN';
const DRV_THREAD = ['vmap_drv_thread', 'kthread', 'ret_from_fork'];
const ALLOC_STACK = ['__alloc_pages', 'alloc_pages', 'vm_area_alloc_pages', '__vmalloc_area_node', '__vmalloc_node_range', 'vmalloc', 'vmap_drv_alloc_buffer', ...DRV_THREAD];
const VFREE_STACK = ['__free_pages', '__vunmap', '__vfree', 'vfree', 'vmap_drv_free_buffer', ...DRV_THREAD];
const INSERT_STACK = ['vm_insert_page', 'vmap_drv_mmap', 'mmap_region', 'do_mmap', 'vm_mmap_pgoff', 'ksys_mmap_pgoff', ...S.syscall];
const PFN_STACK = ['vmf_insert_pfn', 'vmap_drv_fault', '__do_fault', 'do_fault', ...S.fault];
const ZAP_STACK = ['zap_page_range_single', 'zap_vma_ptes', 'vmap_drv_vma_close', 'remove_vma', ...S.munmap.slice(1)];

export async function runVmalloc(ctx: Ctx, uaf: boolean): Promise<ScenarioResult> {
  const { em, mm, rng } = ctx;
  const name = uaf ? 'vmalloc-uaf' : 'vmalloc-remap';
  const bg = new Background(ctx, { rate: 1.5 });
  begin(ctx);
  const drv = task('vmap_drv', rng.int(2100, 2190), rng.int(0, 1));
  const user = task('vmap_user', rng.int(2200, 2290), rng.int(0, 1));
  const pfns = rng.distinct(16, 0x70000, 0x7b000);
  const addr = userAddr(ctx);
  const vma = kptr(ctx, 0x80);

  await bg.run(rng.int(40_000, 90_000));
  mark(ctx, user, name, 'open /dev/vmap_drv');
  em.adv(rng.int(50, 300));
  pfns.forEach((pfn, i) => {
    mm.alloc(drv, pfn, { gfp: VMALLOC_GFP, mt: 0, stack: i === 0 ? ALLOC_STACK : undefined });
    em.adv(rng.int(1, 9));
    bg.sprinkle(0.2);
  });
  await bg.run(rng.int(5_000, 20_000));

  mark(ctx, user, name, `mmap len=${hx(pfns.length * 0x1000)}`);
  em.adv(rng.int(20, 100));
  for (const [i, pfn] of pfns.entries()) {
    const va = addr + i * 0x1000;
    if (uaf) {
      // vmap_drv_fault -> vmf_insert_pfn(vma, addr, vmalloc_to_pfn(buf + off)): a PFN mapping, no struct page reference.
      kprobe(em, user, 'gup', 'vmf_insert_pfn', `vma=0x${vma} addr=${hx(va)} pfn=${hx(pfn)}`, { stack: PFN_STACK });
      em.adv(rng.int(3, 40));
    } else {
      // vmap_drv_mmap -> vm_insert_page -> insert_page_into_pte_locked: get_page, then page_add_file_rmap.
      kprobe(em, user, 'gup', 'vm_insert_page', `vma=0x${vma} addr=${hx(va)} page=${pageArg(pfn)}`, { stack: INSERT_STACK });
      mm.mod(user, pfn, 1, { mapcount: 0, irq: '...1.' });
      mm.get(pfn).mapcount = 1;
      em.adv(rng.int(2, 10));
    }
  }
  await bg.run(rng.int(150_000, 300_000));

  const unmap = (): void => {
    mark(ctx, user, name, 'munmap');
    em.adv(rng.int(20, 100));
    sysEnter(em, user, 'munmap', [['addr', addr], ['len', pfns.length * 0x1000]]);
    em.adv(rng.int(10, 50));
    if (uaf) {
      // The driver's vm_ops->close zaps its PFN mapping: the first sign in the trace that the pfns are unmapped.
      kprobe(em, user, 'gup', 'zap_page_range_single', `vma=0x${vma} address=${hx(addr)} size=${hx(pfns.length * 0x1000)}`, { stack: ZAP_STACK });
    } else {
      // zap_pte_range: page_remove_rmap, then the mmu_gather batch returns the mapping's reference.
      pfns.forEach((pfn, i) => {
        mm.modAndTest(user, pfn, -1, { mapcount: 0, irq: '...1.', stack: i < 2 ? S.zapPut : undefined });
        em.adv(rng.int(1, 5));
      });
    }
    em.adv(rng.int(5, 40));
    sysExit(em, user, 'munmap', 0);
  };
  const vfree = (): void => {
    pfns.forEach((pfn, i) => {
      mm.free(drv, pfn, { stack: i === 0 || uaf ? VFREE_STACK : undefined });
      em.adv(rng.int(1, 8));
      bg.sprinkle(0.2);
    });
  };

  let anomalies: TruthAnomaly[] = [];
  if (uaf) {
    mark(ctx, user, name, 'ioctl VMAP_DRV_RESIZE');
    await bg.run(rng.int(200, 2_000));
    vfree();
    anomalies = pfns.map((pfn) => ({ kind: 'freed_while_mapped', pfn, certain: true, pid: drv.pid, comm: drv.comm }));
    await bg.run(rng.int(100_000, 250_000));
    unmap();
  } else {
    unmap();
    await bg.run(rng.int(20_000, 80_000));
    mark(ctx, user, name, 'close');
    await bg.run(rng.int(200, 2_000));
    vfree();
  }
  await bg.run(rng.int(50_000, 150_000));
  mark(ctx, user, name, 'end');

  return {
    description: uaf
      ? `vmap_drv (pid ${drv.pid}) maps 16 vmalloc pages into vmap_user (pid ${user.pid}) with vmf_insert_pfn (no page reference) and vfree()s them while still mapped; the unmap comes later. Every pfn is freed while mapped.`
      : `vmap_drv (pid ${drv.pid}) maps 16 vmalloc pages into vmap_user (pid ${user.pid}) with vm_insert_page; the process unmaps, then the driver vfree()s. No finding.`,
    expect: { pins: [], anomalies, leaks: [], cma_attempts: [] },
    forbid: uaf ? forbidAllBut('freed_while_mapped') : forbidAllBut(),
  };
}

export const vmallocRemap: ScenarioDef = {
  name: 'vmalloc-remap',
  summary: 'driver maps 16 vmalloc pages with vm_insert_page, process unmaps, driver vfrees: no finding',
  run: (ctx) => runVmalloc(ctx, false),
};
