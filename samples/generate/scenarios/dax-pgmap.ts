/**
 * dax-pgmap: device-private ZONE_DEVICE pages on one dev_pagemap (test_hmm, as qemu-6.1 d-pgmap-hmm).
 *
 * insmod test_hmm: kprobe pgmap/memremap_pages (pgmap=, vmemmap_base=, page_offset_base=), two
 * get_dev_pagemap conflict checks returning NULL, memremap_pages_ret vaddr = __va(range start) giving the device
 * pfns [0xfcf0000, 0xfd00000). `hmm_migrate` faults in 32 anonymous pages and migrates them to the device
 * (HMM_DMIRROR_MIGRATE_TO_DEV ioctl): migrate_vma_setup collects them (get_page, then the migration entry replaces
 * the pte: rmap removed, pte reference dropped), dmirror_devmem_alloc_page takes device pages from the top of the
 * range: zone_device_page_init (the pgmap reference, percpu_ref_tryget_many) + page_ref_set val=1 on the device
 * pfn (flags=reserved), plus the driver's backing system page (GFP_HIGHUSER); migrate_vma_pages /
 * migrate_vma_finalize map the device page (folio_get before the rmap, then the allocation reference is dropped)
 * and free the old system page. Later the process munmaps: zap_pte_range puts each device-private page to 0
 * (page_ref_mod_and_test ret=1, no mm_page_free) and free_zone_device_page drops the pgmap reference and lets the
 * driver free its backing page. rmmod: memunmap_pages, the last pgmap reference goes in an RCU callback on an idle
 * CPU (dev_pagemap_percpu_release ref = &pgmap->ref = pgmap + 0x30), memunmap_pages_ret, module_free.
 * Expected: pgmap gets 32 = puts 32, nothing outstanding at unmap; no finding.
 *
 * dax-pgmap-leak (runDax with leak=true): an HMM_DMIRROR_SNAPSHOT ioctl takes an extra reference on one device
 * page (get_page) and never drops it. At munmap that page goes 2 -> 1 and is never freed, so its pgmap reference
 * is still out when rmmod calls memunmap_pages, which then waits forever in wait_for_completion: no
 * dev_pagemap_percpu_release, no memunmap_pages_ret before the trace ends. Expected: pgmap_refs_at_unmap (pfn = the
 * device page still holding the reference), outstanding_at_unmap = 1, that device pfn reported as a leak, the
 * snapshot's reference as a hold still held at the end, and refcount_not_baseline on that pfn (the count ends one
 * above what its owners explain: the munmap dropped the mapping's reference, not the snapshot's), and
 * pgmap_ref_never_released on that pfn: hmm_migrate, which took its pgmap reference, exited long before the end.
 */
import type { Task } from '../emit.js';
import { NULL_PTR, PAGE_OFFSET_BASE, VMEMMAP_BASE, hx, kprobe, kretprobe, sysEnter, sysExit, tp } from '../events.js';
import { Background } from '../noise.js';
import { S } from '../stacks.js';
import { forbidAllBut, type Ctx, type ScenarioDef, type ScenarioResult, type TruthAnomaly } from '../types.js';
import { anonMapping, begin, faultIn, mark, pageArg, task, userAddr } from './common.js';

const NPAGES = 32;
const DEV_START = 0xfcf0000;
const DEV_END = 0xfd00000;
const DEV_FLAGS = 'uptodate|dirty|reserved|mappedtodisk|swapbacked';
// Module frames as in qemu-6.1 (two per chain, the rest inlined), here with their symbols resolved.
const INIT = ['dmirror_allocate_chunk', 'hmm_dmirror_init', 'do_one_initcall', 'do_init_module', '__do_sys_finit_module', ...S.syscall];
const IOCTL = ['dmirror_fops_unlocked_ioctl', '__x64_sys_ioctl', ...S.syscall];
const DEV_ALLOC = ['zone_device_page_init', 'dmirror_devmem_alloc_page', ...IOCTL];
const DEV_FREE = ['free_zone_device_page', ...S.zapDevice];
const SNAPSHOT = ['dmirror_snapshot_pte', 'walk_pgd_range', 'walk_page_range', 'dmirror_snapshot', ...IOCTL];
const EXIT = ['dmirror_device_remove_chunks', 'hmm_dmirror_exit', '__do_sys_delete_module', ...S.syscall];
const RELEASE = ['dev_pagemap_percpu_release', 'percpu_ref_switch_to_atomic_rcu', ...S.idleSoftirq];

/** ptr + off as 16 hex digits (low 32 bits only: enough for the struct offsets used here). */
function plus(ptr: string, off: number): string {
  return ptr.slice(0, 8) + ((parseInt(ptr.slice(8), 16) + off) >>> 0).toString(16).padStart(8, '0');
}

export async function runDax(ctx: Ctx, leak: boolean): Promise<ScenarioResult> {
  const { em, mm, rng } = ctx;
  const name = leak ? 'dax-pgmap-leak' : 'dax-pgmap';
  const bg = new Background(ctx, { rate: 1.5 });
  begin(ctx);
  const insmod = task('insmod', rng.int(4300, 4340), 0);
  const proc = task('hmm_migrate', rng.int(4350, 4390), 0);
  const rmmod = task('rmmod', rng.int(4400, 4440), 1);
  const idle: Task = { comm: '<idle>', pid: 0, tgid: null, cpu: 1 };
  const pgmap = 'ff11000003' + (rng.int(0xc0000, 0xfffff) * 0x40).toString(16).slice(-6).padStart(6, '0');
  const sys = rng.distinct(NPAGES, 0x70000, 0x7b000);
  const rpages = rng.distinct(NPAGES, 0x70000, 0x7b000, (x) => sys.includes(x));
  const dev = Array.from({ length: NPAGES }, (_, i) => DEV_END - 1 - i);
  const leaked = leak ? dev[rng.int(4, NPAGES - 4)]! : -1;
  const buf = userAddr(ctx);

  await bg.run(rng.int(30_000, 60_000));
  tp(em, insmod, 'module', 'module_load', 'test_hmm ');
  em.adv(rng.int(1000, 4000));
  kprobe(em, insmod, 'pgmap', 'memremap_pages', `pgmap=0x${pgmap} nid=0 vmemmap_base=0x${VMEMMAP_BASE} page_offset_base=0x${PAGE_OFFSET_BASE}`, { stack: ['memremap_pages', ...INIT] });
  for (const [pfn, off] of [[DEV_START, '0x1a7'], [DEV_END - 1, '0x1bf']] as const) {
    em.adv(rng.int(50, 900));
    kprobe(em, insmod, 'pgmap', 'get_dev_pagemap', `pfn=${hx(pfn)} pgmap=0x0`);
    em.adv(rng.int(5, 100));
    kretprobe(em, insmod, 'pgmap', 'get_dev_pagemap_ret', 'get_dev_pagemap', `memremap_pages+${off}`, 'ret=0x0');
  }
  em.adv(rng.int(20_000, 40_000)); // memmap_init_zone_device for 65536 struct pages
  kretprobe(em, insmod, 'pgmap', 'memremap_pages_ret', 'memremap_pages', 'dmirror_allocate_chunk+0x1a3', `vaddr=0x${PAGE_OFFSET_BASE.slice(0, 6)}${(DEV_START * 0x1000).toString(16).padStart(10, '0')}`);
  await bg.run(rng.int(200_000, 400_000));

  mark(ctx, proc, name, `start npages=${NPAGES}`);
  sys.forEach((pfn, i) => {
    faultIn(ctx, proc, pfn, 1, i === 0);
    em.adv(rng.int(5, 40));
  });
  mark(ctx, proc, name, 'migrate_to_device');
  sysEnter(em, proc, 'ioctl', [['fd', 3], ['cmd', 0xc0184802], ['arg', 0x7ffd5e8c0000 + rng.int(0, 0xffff) * 0x10]]);
  em.adv(rng.int(50, 300));
  kprobe(em, proc, 'pgmap', 'migrate_vma_setup', `args=0x${plus('ffa0000000170000', rng.int(0, 0xfff) * 8)}`);
  // migrate_vma_collect_pmd: get_page, then the migration entry replaces the pte (rmap and pte reference gone).
  for (const pfn of sys) {
    em.adv(rng.int(2, 15));
    mm.mod(proc, pfn, 1, { irq: '...1.' });
    mm.modAndTest(proc, pfn, -1, { mapcount: 0, flags: 'locked|uptodate|dirty|lru|swapbacked', irq: '...1.' });
  }
  // dmirror_devmem_alloc_page: the device page (pgmap reference + refcount 1) and its backing system page.
  dev.forEach((d, i) => {
    em.adv(rng.int(5, 60));
    kprobe(em, proc, 'pgmap', 'zone_device_page_init', `page=${pageArg(d)} pgmap=0x${pgmap}`, { stack: DEV_ALLOC });
    mm.adopt(d, { count: 0, mapcount: 0, flags: 'reserved', mapping: NULL_PTR, mt: 1, order: 0 });
    mm.set(proc, d, 1);
    mm.alloc(proc, rpages[i]!, { gfp: 'GFP_HIGHUSER', mt: 0 });
  });
  em.adv(rng.int(100, 800));
  kprobe(em, proc, 'pgmap', 'migrate_vma_pages', `args=0x${plus('ffa0000000170000', 0xcd8)}`);
  em.adv(rng.int(100, 800));
  kprobe(em, proc, 'pgmap', 'migrate_vma_finalize', `args=0x${plus('ffa0000000170000', 0xcd8)}`);
  dev.forEach((d, i) => {
    em.adv(rng.int(3, 30));
    // remove_migration_pte maps the device-private entry (folio_get before the rmap), then unlock + put.
    mm.mod(proc, d, 1, { flags: 'locked|uptodate|dirty|reserved|swapbacked', mapping: anonMapping(proc), irq: '...1.' });
    mm.modAndTest(proc, d, -1, { mapcount: 1, flags: DEV_FLAGS });
    mm.free(proc, sys[i]!, { flags: 'uptodate|dirty|swapbacked' });
  });
  sysExit(em, proc, 'ioctl', 0);
  await bg.run(rng.int(150_000, 300_000));

  if (leak) {
    mark(ctx, proc, name, 'snapshot');
    sysEnter(em, proc, 'ioctl', [['fd', 3], ['cmd', 0xc0184804], ['arg', 0x7ffd5e8c0000 + rng.int(0, 0xffff) * 0x10]]);
    em.adv(rng.int(100, 600));
    mm.mod(proc, leaked, 1, { irq: '...1.', stack: SNAPSHOT }); // the get_page() the snapshot path never puts
    em.adv(rng.int(100, 600));
    sysExit(em, proc, 'ioctl', 0);
    await bg.run(rng.int(100_000, 200_000));
  }

  mark(ctx, proc, name, 'munmap');
  sysEnter(em, proc, 'munmap', [['addr', buf], ['len', NPAGES * 0x1000]]);
  let puts = 0;
  dev.forEach((d, i) => {
    em.adv(rng.int(3, 30));
    // zap_pte_range, device-private entry: page_remove_rmap + put_page; at 0 free_zone_device_page runs.
    const zero = mm.modAndTest(proc, d, -1, { mapcount: 0, irq: '...1.', flags: 'uptodate|dirty|reserved|swapbacked' });
    if (!zero) return;
    kprobe(em, proc, 'pgmap', 'free_zone_device_page', `page=${pageArg(d)} pgmap=0x${pgmap}`, { irq: '...1.', stack: DEV_FREE });
    mm.forget(d);
    mm.free(proc, rpages[i]!, { irq: '...1.' }); // dmirror_devmem_free: the backing page
    puts++;
  });
  sysExit(em, proc, 'munmap', 0);
  mark(ctx, proc, name, 'exit');
  tp(em, proc, 'sched', 'sched_process_exit', `comm=hmm_migrate pid=${proc.pid} prio=120`);
  await bg.run(rng.int(300_000, 600_000));

  kprobe(em, rmmod, 'pgmap', 'memunmap_pages', `pgmap=0x${pgmap}`, { stack: ['memunmap_pages', ...EXIT] });
  if (!leak) {
    em.adv(rng.int(2000, 8000));
    kprobe(em, idle, 'pgmap', 'dev_pagemap_percpu_release', `ref=0x${plus(pgmap, 0x30)}`, { irq: '..s1.', stack: RELEASE });
    em.adv(rng.int(5000, 15000));
    kretprobe(em, rmmod, 'pgmap', 'memunmap_pages_ret', 'memunmap_pages', 'dmirror_device_remove_chunks+0x65', '');
    em.adv(rng.int(1000, 4000));
    tp(em, rmmod, 'module', 'module_free', 'test_hmm');
  }
  await bg.run(rng.int(300_000, 500_000));

  const anomalies: TruthAnomaly[] = leak
    ? [
        { kind: 'pgmap_refs_at_unmap', pfn: leaked, certain: true, pgmap: '0x' + pgmap, pid: rmmod.pid, comm: rmmod.comm },
        { kind: 'refcount_not_baseline', pfn: leaked, certain: true, pid: proc.pid, comm: proc.comm },
        // hmm_migrate took the device page's pgmap reference (zone_device_page_init) and exited long before the
        // end with the page never freed: the certain form of an outstanding reference (docs/model.md §15).
        { kind: 'pgmap_ref_never_released', pfn: leaked, certain: true, pgmap: '0x' + pgmap, pid: proc.pid, comm: proc.comm },
      ]
    : [];
  return {
    description: leak
      ? `hmm_migrate (pid ${proc.pid}) migrates 32 pages to test_hmm's device-private pgmap 0x${pgmap}; a snapshot ioctl leaks a reference on device pfn ${hx(leaked)}, so memunmap_pages (rmmod pid ${rmmod.pid}) waits forever with 1 pgmap reference out.`
      : `hmm_migrate (pid ${proc.pid}) migrates 32 pages to test_hmm's device-private pgmap 0x${pgmap} and unmaps them; rmmod's memunmap_pages completes. Balanced: no finding.`,
    expect: {
      pins: [],
      anomalies,
      leaks: leak ? [{ pfn: leaked }] : [],
      cma_attempts: [],
      pgmaps: [{ pgmap: '0x' + pgmap, gets: NPAGES, puts, outstanding_end: NPAGES - puts, outstanding_at_unmap: NPAGES - puts }],
      ...(leak ? { holds: [{ pfn: leaked, refs: 1, holder_pid: proc.pid, holder_comm: proc.comm, end_ts_ns: null }] } : {}),
    },
    forbid: leak ? forbidAllBut('pgmap_refs_at_unmap', 'refcount_not_baseline', 'pgmap_ref_never_released', 'leak') : forbidAllBut(),
  };
}

export const daxPgmap: ScenarioDef = {
  name: 'dax-pgmap',
  summary: 'device-private pgmap: 32 pages migrated to the device and freed, memunmap_pages completes: no finding',
  run: (ctx) => runDax(ctx, false),
};
