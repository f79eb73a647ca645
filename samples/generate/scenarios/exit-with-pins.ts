/**
 * exit-with-pins: references outstanding at the end of the capture, by a holder that exited and by one that is alive
 * (docs/model.md §15).
 *
 * A process (the leaker: an io_uring-like application, its pins taken by the process itself or by one of its
 * threads) FOLL_PIN|FOLL_LONGTERM-pins 4..10 pages of its buffer and takes device-private pages from a test_hmm-like
 * driver (zone_device_page_init: the dev_pagemap reference, then the mapping's reference); a driver path takes an
 * extra get_page on each device page that is never put (the kernel bug class). Then the process exits without
 * unregistering: exit_mm() zaps its mappings (the mapping's reference of each pinned and device page goes:
 * pinned pages stay at 1024, device pages at 1, never freed), then sched_process_exit (each thread, the leader last;
 * recent kernels print group_dead=), and nothing ever unpins or frees them. Another process (the live holder,
 * a VFIO-like long-term pinner) pins 3..8 pages, keeps them to the end of the capture, and pins and unpins a
 * second batch meanwhile. Sometimes a short-lived task that had the live holder's pid exits before the live holder
 * pins (pid reuse: an exit before the get says nothing about it).
 * Interleavings: the live holder's batches land anywhere relative to the leaker's pin, device and exit steps, on
 * the same or another CPU; the leaker's pins and device pages come in either order.
 * Kernel eras (option `era`, else seed % 3): '5.15' GUP-fast pins (try_grab_compound_head: +1 then +1023 on the
 * page, unpinned -1023 then -1 by put_compound_head), '6.1' (try_grab_page: one +1024, unpinned -1024 by
 * gup_put_folio), '6.18' (slow-path try_grab_folio(folio, ...): one +1024; sched_process_exit with the group_dead=
 * field recent kernels print).
 * Forks (by seed, without touching the other seeds' draws: seed % 5 === 3 or 4): after its pins and device pages
 * the leader forks a child (sched_process_fork), which inherits the ring fd and the device mapping. seed % 5 === 3:
 * the child is still alive at the end, so it may still hold every reference the leaker took: the leaks are not
 * certain (docs/model.md §15). seed % 5 === 4: the child exits 20..50 ms after the leader, 150..400 ms before the
 * end: the leaks stay certain (the grace counts from the child's exit). The leader is single-threaded in these
 * seeds (the fork comes from the pinner's thread group either way). Not modelled: the child's copy of the device
 * PTEs (copy_nonpresent_pte's get_page and rmap), which only adds references the child's own exit would drop.
 * Truth: every pin exactly; the leaker's pins are pin_never_released and its device pages pgmap_ref_never_released
 * (and refcount_not_baseline: one reference above what their owners explain), all certain (it exited 150..400 ms before the end, outside any lost window), and pgmap-imbalance lists the pgmap
 * (refs_of_exited_holder); the live holder's open pins are outstanding at the end, alive: information, no finding.
 * `outstanding` is the exact set of outstanding pins and pgmap references with their holder's state.
 */
import type { Task } from '../emit.js';
import { NULL_PTR, PAGE_OFFSET_BASE, VMEMMAP_BASE, hx, kprobe, kretprobe, sysEnter, sysExit, tp } from '../events.js';
import { Background } from '../noise.js';
import { S } from '../stacks.js';
import { forbidAllBut, ns, type Era, type ScenarioDef, type TruthAnomaly, type TruthOutstanding, type TruthPin } from '../types.js';
import { anonMapping, begin, faultIn, kptr, mark, pageArg, task, userAddr } from './common.js';

const NAME = 'exit-with-pins';
const ERAS: Era[] = ['5.15', '6.1', '6.18'];
const DEV_START = 0xfcf0000;
const DEV_END = 0xfd00000;
const DEV_FLAGS = 'uptodate|dirty|reserved|swapbacked';
const ANON = 'uptodate|lru|mappedtodisk|swapbacked';
const URING = ['io_sqe_buffer_register', 'io_sqe_buffers_register.cold', '__x64_sys_io_uring_register', ...S.syscall];
const VFIO = ['vfio_pin_pages_remote', 'vfio_pin_map_dma', 'vfio_iommu_type1_ioctl', '__x64_sys_ioctl', ...S.syscall];
const VFIO_UNPIN = ['unpin_user_pages_dirty_lock', 'vfio_unpin_pages_remote', 'vfio_unmap_unpin', 'vfio_remove_dma', 'vfio_iommu_type1_ioctl', '__x64_sys_ioctl', ...S.syscall];
const DEV_IOCTL = ['dmirror_fops_unlocked_ioctl', '__x64_sys_ioctl', ...S.syscall];
const DEV_ALLOC = ['zone_device_page_init', 'dmirror_devmem_alloc_page', 'dmirror_migrate_alloc_and_copy', 'dmirror_migrate_to_device', ...DEV_IOCTL];
const DEV_LEAK = ['dmirror_snapshot_pte', 'walk_pgd_range', 'walk_page_range', 'dmirror_snapshot', ...DEV_IOCTL];
const EXIT_MM = ['zap_pte_range', 'unmap_page_range', 'unmap_vmas', 'exit_mmap', '__mmput', 'do_exit', 'do_group_exit', '__x64_sys_exit_group', ...S.syscall];

export const exitWithPins: ScenarioDef = {
  name: NAME,
  summary: 'a process exits still pinning pages and holding device pages (certain leaks) while another keeps pins to the end (outstanding, alive: no finding)',
  async run(ctx) {
    const { em, mm, rng } = ctx;
    const era: Era = ctx.era ?? ERAS[ctx.seed % ERAS.length]!;
    const bg = new Background(ctx, { rate: 1 });
    begin(ctx);
    const insmod = task('insmod', rng.int(4300, 4340), rng.int(0, 1));
    const leaderPid = rng.int(6000, 6900);
    const forkKind: 'alive' | 'exited' | null = ctx.seed % 5 === 3 ? 'alive' : ctx.seed % 5 === 4 ? 'exited' : null;
    const threaded = rng.chance(0.5) && !forkKind;
    const leader = task(rng.pick(['uring_app', 'fio', 'rdma_bench']), leaderPid, rng.int(0, 1));
    const pinner: Task = threaded ? task('iou-wrk-' + leaderPid, leaderPid + rng.int(1, 9), rng.int(0, 1), leaderPid) : leader;
    const live = task(rng.pick(['qemu-kvm', 'spdk_tgt', 'dpdk-testpmd']), rng.int(7000, 7900), rng.int(0, 1));
    const pgmap = 'ff11000003' + (rng.int(0xc0000, 0xfffff) * 0x40).toString(16).slice(-6).padStart(6, '0');
    const nLeak = rng.int(4, 10);
    const nDev = rng.int(1, 3);
    const nLive = rng.int(3, 8);
    const nClosed = rng.int(2, 5);
    const all = rng.distinct(nLeak + nLive + nClosed, 0x70000, 0x7b000);
    const leakPfns = all.slice(0, nLeak);
    const livePfns = all.slice(nLeak, nLeak + nLive);
    const closedPfns = all.slice(nLeak + nLive);
    const dev = Array.from({ length: nDev }, (_, i) => DEV_END - 1 - 2 * i);
    const pins: TruthPin[] = [];
    const open = new Map<number, TruthPin>();
    const mmPtr = kptr(ctx, 0x400);

    /** Pin `pfns` FOLL_PIN|FOLL_LONGTERM (flags 0x50001) in the era's format. */
    const pinPages = (t: Task, pfns: number[], stack: string[]): void => {
      const start = userAddr(ctx);
      if (era === '5.15') {
        kprobe(em, t, 'gup', 'pin_user_pages_fast', `start=${hx(start)} nr_pages=${pfns.length} gup_flags=0x10001`, { stack: ['pin_user_pages_fast', ...stack] });
        em.adv(rng.int(2, 20));
        kprobe(em, t, 'gup', 'internal_get_user_pages_fast', `start=${hx(start)} nr_pages=${pfns.length} gup_flags=0x50001`);
      } else {
        kprobe(em, t, 'gup', 'pin_user_pages', `start=${hx(start)} nr_pages=${pfns.length} gup_flags=0x10001`, { stack: ['pin_user_pages', ...stack] });
        em.adv(rng.int(2, 20));
        kprobe(em, t, 'gup', '__gup_longterm_locked', `mm=0x${mmPtr} start=${hx(start)} nr_pages=${pfns.length} pages=0x${kptr(ctx, 0x1000)} gup_flags=0x50001`);
      }
      for (const pfn of pfns) {
        em.adv(rng.int(3, 40));
        if (era === '5.15') {
          // try_grab_compound_head: the +1 of try_get_compound_head, then the rest of GUP_PIN_COUNTING_BIAS.
          kprobe(em, t, 'gup', 'try_grab_folio', `page=${pageArg(pfn)} refs=1 flags=0x50001`, { irq: 'd....', stack: ['try_grab_compound_head', 'gup_pte_range', 'internal_get_user_pages_fast', 'pin_user_pages_fast', ...stack] });
          mm.modUnless(t, pfn, 1, { irq: 'd....' });
          mm.mod(t, pfn, 1023, { irq: 'd....' });
        } else if (era === '6.1') {
          kprobe(em, t, 'gup', 'try_grab_page', `page=${pageArg(pfn)} flags=0x50001`, { irq: '...1.', stack: ['try_grab_page', 'follow_page_pte', '__get_user_pages', '__gup_longterm_locked', 'pin_user_pages', ...stack] });
          mm.mod(t, pfn, 1024, { irq: '...1.' });
        } else {
          kprobe(em, t, 'gup', 'try_grab_folio', `folio=${pageArg(pfn)} refs=1 flags=0x50001`, { irq: '...1.', stack: ['try_grab_folio', 'follow_page_pte', '__get_user_pages', '__gup_longterm_locked', 'pin_user_pages', ...stack] });
          mm.mod(t, pfn, 1024, { irq: '...1.' });
        }
        const p: TruthPin = { pfn, refs: 1, holder_pid: t.pid, holder_comm: t.comm, start_ts_ns: ns(em.now), end_ts_ns: null, longterm: true, in_cma: false, large_folio: false };
        pins.push(p);
        open.set(pfn, p);
        bg.sprinkle(0.2);
      }
      em.adv(rng.int(5, 60));
      if (era === '5.15') kretprobe(em, t, 'gup', 'pin_user_pages_fast_ret', 'pin_user_pages_fast', `${stack[0]}+0x6e`, `ret=${pfns.length}`);
      else kretprobe(em, t, 'gup', 'pin_user_pages_ret', 'pin_user_pages', `${stack[0]}+0x9a`, `ret=${pfns.length}`);
    };
    const unpinPages = (t: Task, pfns: number[]): void => {
      kprobe(em, t, 'gup', 'unpin_user_pages_dirty_lock', `pages=0x${kptr(ctx, 0x1000)} npages=${pfns.length} make_dirty=1`, { stack: VFIO_UNPIN });
      for (const pfn of pfns) {
        em.adv(rng.int(2, 20));
        if (era === '5.15') {
          kprobe(em, t, 'gup', 'gup_put_folio', `page=${pageArg(pfn)} refs=1 flags=0x50000`);
          mm.mod(t, pfn, -1023);
          mm.modAndTest(t, pfn, -1);
        } else {
          kprobe(em, t, 'gup', 'gup_put_folio', `folio=${pageArg(pfn)} refs=1 flags=0x50000`);
          mm.modAndTest(t, pfn, -1024);
        }
        open.get(pfn)!.end_ts_ns = ns(em.now);
        open.delete(pfn);
      }
    };
    const exit = (t: Task, groupDead: boolean): void => {
      tp(em, t, 'sched', 'sched_process_exit', `comm=${t.comm} pid=${t.pid} prio=120${era === '6.18' ? ` group_dead=${groupDead}` : ''}`);
    };

    // The leaker's steps, in order; the live holder's steps go anywhere among them.
    const leakPins = (): void => {
      mark(ctx, leader, NAME, `register npages=${nLeak}`);
      sysEnter(em, leader, 'io_uring_register', [['fd', 4], ['opcode', 0], ['arg', userAddr(ctx)], ['nr_args', 1]]);
      pinPages(pinner, leakPfns, URING);
      sysExit(em, leader, 'io_uring_register', 0);
    };
    const devPages = (): void => {
      mark(ctx, leader, NAME, `migrate_to_device npages=${nDev}`);
      sysEnter(em, leader, 'ioctl', [['fd', 3], ['cmd', 0xc0184802], ['arg', 0x7ffd5e8c0000 + rng.int(0, 0xffff) * 0x10]]);
      for (const d of dev) {
        em.adv(rng.int(5, 60));
        kprobe(em, leader, 'pgmap', 'zone_device_page_init', `page=${pageArg(d)} pgmap=0x${pgmap}`, { stack: DEV_ALLOC });
        mm.adopt(d, { count: 0, mapcount: 0, flags: 'reserved', mapping: NULL_PTR, mt: 1, order: 0 });
        mm.set(leader, d, 1);
        em.adv(rng.int(3, 30));
        mm.mod(leader, d, 1, { flags: 'locked|' + DEV_FLAGS, mapping: anonMapping(leader), irq: '...1.' });
        mm.modAndTest(leader, d, -1, { mapcount: 1, flags: DEV_FLAGS });
      }
      sysExit(em, leader, 'ioctl', 0);
      em.adv(rng.int(200, 2000));
      // The driver bug: a snapshot path takes a reference on each device page and never drops it.
      sysEnter(em, leader, 'ioctl', [['fd', 3], ['cmd', 0xc0184804], ['arg', 0x7ffd5e8c0000 + rng.int(0, 0xffff) * 0x10]]);
      for (const d of dev) {
        em.adv(rng.int(20, 200));
        mm.mod(leader, d, 1, { irq: '...1.', stack: DEV_LEAK });
      }
      sysExit(em, leader, 'ioctl', 0);
    };
    let child: Task | null = null;
    const leakExit = (): void => {
      if (forkKind) {
        // fork(): the child inherits the io_uring fd and the device mapping (after every get of the leaker).
        child = task(leader.comm, rng.int(29000, 29900), 1 - leader.cpu);
        mark(ctx, leader, NAME, `fork child_pid=${child.pid}`);
        tp(em, leader, 'sched', 'sched_process_fork', `comm=${leader.comm} pid=${leader.pid} child_comm=${child.comm} child_pid=${child.pid}`);
        em.adv(rng.int(500, 5000));
      }
      mark(ctx, leader, NAME, 'exit without unregister');
      // exit_mm(): the mappings go (before sched_process_exit); the pins and the leaked device references stay.
      const mapped = [...leakPfns, ...dev];
      rng.shuffle(mapped).forEach((pfn, i) => {
        em.adv(rng.int(1, 8));
        const isDev = pfn >= DEV_START;
        mm.modAndTest(leader, pfn, -1, { mapcount: 0, irq: '...1.', flags: isDev ? DEV_FLAGS : ANON, stack: i === 0 ? EXIT_MM : undefined });
      });
      em.adv(rng.int(50, 400));
      if (threaded) {
        exit(pinner, false);
        em.adv(rng.int(20, 300));
      }
      exit(leader, true);
      if (child && forkKind === 'exited') {
        em.adv(rng.int(20_000, 50_000));
        exit(child, true);
      }
    };
    const liveKeep = (): void => {
      mark(ctx, live, NAME, `map npages=${nLive}`);
      pinPages(live, livePfns, VFIO);
    };
    const liveClosed = (): void => {
      mark(ctx, live, NAME, `map+unmap npages=${nClosed}`);
      pinPages(live, closedPfns, VFIO);
      em.adv(rng.int(2000, 20000));
      unpinPages(live, closedPfns);
    };

    await bg.run(rng.int(20_000, 50_000));
    // The pgmap (insmod of the driver), as in dax-pgmap.
    kprobe(em, insmod, 'pgmap', 'memremap_pages', `pgmap=0x${pgmap} nid=0 vmemmap_base=0x${VMEMMAP_BASE} page_offset_base=0x${PAGE_OFFSET_BASE}`, { stack: ['memremap_pages', 'dmirror_allocate_chunk', 'hmm_dmirror_init', 'do_one_initcall', 'do_init_module', ...S.syscall] });
    em.adv(rng.int(5_000, 20_000));
    kretprobe(em, insmod, 'pgmap', 'memremap_pages_ret', 'memremap_pages', 'dmirror_allocate_chunk+0x1a3', `vaddr=0x${PAGE_OFFSET_BASE.slice(0, 6)}${(DEV_START * 0x1000).toString(16).padStart(10, '0')}`);
    await bg.run(rng.int(20_000, 60_000));
    // Pid reuse: an earlier task with the live holder's pid exits before the live holder exists.
    if (rng.chance(0.5)) {
      const ghost = task('sh', live.pid, live.cpu);
      exit(ghost, true);
      await bg.run(rng.int(5_000, 20_000));
    }
    // Everyone's pages are faulted in first.
    [...leakPfns, ...livePfns, ...closedPfns].forEach((pfn, i) => {
      const owner = i < nLeak ? leader : live;
      faultIn(ctx, owner, pfn, 1, i === 0 || i === nLeak);
      em.adv(rng.int(3, 30));
    });
    await bg.run(rng.int(10_000, 30_000));

    const leakSteps = rng.chance(0.5) ? [leakPins, devPages] : [devPages, leakPins];
    leakSteps.push(leakExit);
    const steps: (() => void)[] = [...leakSteps];
    for (const s of [liveKeep, liveClosed]) steps.splice(rng.int(0, steps.length), 0, s);
    for (const s of steps) {
      s();
      await bg.run(rng.int(10_000, 60_000));
    }
    // The leaker exited 150..400 ms before the end: past the 100 ms exit grace.
    await bg.run(rng.int(150_000, 400_000));
    mark(ctx, live, NAME, 'end');

    // A child alive at the end may still hold what the leaker took: exited, but not a certain leak.
    const sure = forkKind !== 'alive';
    const anomalies: TruthAnomaly[] = [
      ...leakPfns.map((pfn): TruthAnomaly => ({ kind: 'pin_never_released', pfn, certain: sure, pid: pinner.pid, comm: pinner.comm })),
      ...dev.map((pfn): TruthAnomaly => ({ kind: 'pgmap_ref_never_released', pfn, certain: sure, pgmap: '0x' + pgmap, pid: leader.pid, comm: leader.comm })),
      // Each device page ends one reference above what its owners explain (the snapshot's get, never put).
      ...dev.map((pfn): TruthAnomaly => ({ kind: 'refcount_not_baseline', pfn, certain: true, pid: leader.pid, comm: leader.comm })),
    ];
    const outstanding: TruthOutstanding[] = [
      ...leakPfns.map((pfn): TruthOutstanding => ({ kind: 'pin', pfn, holder_pid: pinner.pid, holder_exited: true, certain: sure })),
      ...dev.map((pfn): TruthOutstanding => ({ kind: 'pgmap', pfn, holder_pid: leader.pid, holder_exited: true, certain: sure })),
      ...livePfns.map((pfn): TruthOutstanding => ({ kind: 'pin', pfn, holder_pid: live.pid, holder_exited: false, certain: false })),
    ];
    return {
      description:
        `kernel era ${era}: ${leader.comm} (pid ${leader.pid}${threaded ? `, pins by its thread ${pinner.comm}/${pinner.pid}` : ''}) FOLL_LONGTERM-pins ${nLeak} pages and ` +
        `takes ${nDev} device page(s) of pgmap 0x${pgmap}, ` +
        (forkKind === 'alive' ? `forks a child (pid ${(child as Task | null)?.pid}) that outlives it, then exits without releasing them (not certain: the child may hold them); `
          : forkKind === 'exited' ? `forks a child (pid ${(child as Task | null)?.pid}) that exits after it, then exits without releasing them (certain leaks); `
          : 'then exits without releasing them (certain leaks); ') +
        `${live.comm} (pid ${live.pid}) keeps ${nLive} pins to the end (outstanding, alive: no finding) and pins+unpins ${nClosed} more.`,
      expect: {
        pins,
        anomalies,
        outstanding,
        cma_attempts: [],
        pgmaps: [{ pgmap: '0x' + pgmap, gets: nDev, puts: 0, outstanding_end: nDev, outstanding_at_unmap: null }],
      },
      forbid: forbidAllBut('pin_never_released', 'pgmap_ref_never_released', 'leak', 'refcount_not_baseline'),
    };
  },
};
