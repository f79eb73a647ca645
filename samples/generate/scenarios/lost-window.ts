/**
 * lost-window: a busy 2-CPU trace where CPU 1 loses 4096 events in the middle.
 *
 * `qemu-system-x86` (on CPU 1) pins guest memory through VFIO (vfio_pin_pages_remote -> pin_user_pages_remote:
 * page_ref_mod val=1024 with its stack; no GUP kprobes in this capture, so only the refcount and the frames tell)
 * and unpins it on DMA unmap (unpin_user_pages_dirty_lock -> gup_put_folio: page_ref_mod_and_test val=-1024).
 * Three groups of 6 pages: A pinned and unpinned before the gap; B pinned before the gap and unpinned inside it (the
 * unpins are among the lost events, nothing else is seen of those pages); C pinned and unpinned after it. The ring
 * buffer overran on CPU 1: ftrace prints `CPU:1 [LOST 4096 EVENTS]` before CPU 1's first event after the gap and the
 * header says entries-written = entries-in-buffer + 4096 (the same loss); trace-cmd prints `CPU:1 [4096 EVENTS
 * DROPPED]`. The background on CPU 1 is quiet during the gap, so the only state crossing it is B's.
 * Expected: 18 pins; A and C closed and certain; B without an end and uncertain, never a certain leak: qemu is
 * still alive at the end, so B's pins are outstanding at the end of the capture (information), not
 * pin_never_released (docs/model.md §15).
 * perf script prints no lost record by default, so in perf format nothing shows the gap and B's pins look still
 * held, certain: still outstanding information, not an anomaly, since their holder did not exit.
 */
import { Background } from '../noise.js';
import { S } from '../stacks.js';
import { forbidAllBut, ns, type ScenarioDef, type TruthPin } from '../types.js';
import { begin, faultIn, mark, task } from './common.js';

const NAME = 'lost-window';
const LOST = 4096;
const VFIO = ['vfio_iommu_type1_ioctl', '__x64_sys_ioctl', ...S.syscall];
const PIN = ['try_grab_page', 'follow_page_pte', '__get_user_pages', '__gup_longterm_locked', 'pin_user_pages_remote', 'vaddr_get_pfns', 'vfio_pin_pages_remote', 'vfio_pin_map_dma', ...VFIO];
const UNPIN = ['gup_put_folio', 'unpin_user_pages_dirty_lock', 'put_pfn', 'vfio_unpin_pages_remote', 'vfio_unmap_unpin', 'vfio_remove_dma', ...VFIO];

export const lostWindow: ScenarioDef = {
  name: NAME,
  summary: 'busy trace, CPU 1 loses 4096 events while 6 pins are open: those pins are uncertain, never a certain leak',
  async run(ctx) {
    const { em, mm, rng, format } = ctx;
    const bg = new Background(ctx, { rate: 4 });
    begin(ctx);
    const t = task('qemu-system-x86', rng.int(7100, 7190), 1);
    const pfns = rng.distinct(18, 0x70000, 0x7b000);
    const [a, b, c] = [pfns.slice(0, 6), pfns.slice(6, 12), pfns.slice(12)];
    const gapVisible = format !== 'perf';
    const pins = new Map<number, TruthPin>();

    const pin = (group: number[]): void => {
      for (const pfn of group) {
        em.adv(rng.int(5, 60));
        mm.mod(t, pfn, 1024, { irq: '...1.', stack: PIN });
        pins.set(pfn, { pfn, refs: 1, holder_pid: t.pid, holder_comm: t.comm, start_ts_ns: ns(em.now), end_ts_ns: null, longterm: null, in_cma: false, large_folio: false });
      }
    };
    const unpin = (group: number[], visible: boolean): void => {
      for (const pfn of group) {
        em.adv(rng.int(5, 60));
        mm.modAndTest(t, pfn, -1024, { stack: UNPIN });
        if (visible) pins.get(pfn)!.end_ts_ns = ns(em.now);
      }
    };

    await bg.run(rng.int(30_000, 60_000));
    mark(ctx, t, NAME, 'guest memory touch');
    pfns.forEach((pfn) => {
      faultIn(ctx, t, pfn, 1);
      em.adv(rng.int(5, 40));
      bg.sprinkle(0.3);
    });
    await bg.run(rng.int(20_000, 40_000));
    mark(ctx, t, NAME, 'map A');
    pin(a);
    await bg.run(rng.int(20_000, 40_000));
    mark(ctx, t, NAME, 'unmap A');
    unpin(a, true);
    await bg.run(rng.int(20_000, 40_000));
    mark(ctx, t, NAME, 'map B');
    pin(b);
    await bg.run(rng.int(15_000, 30_000));

    // The gap: CPU 1's events are lost, B is unpinned inside it.
    em.startDrop(1);
    bg.pause(1, true);
    await bg.run(rng.int(10_000, 20_000));
    mark(ctx, t, NAME, 'unmap B');
    unpin(b, false);
    await bg.run(rng.int(20_000, 40_000));
    em.endDrop(1, LOST);
    bg.pause(1, false);

    await bg.run(rng.int(20_000, 40_000));
    mark(ctx, t, NAME, 'map C');
    pin(c);
    await bg.run(rng.int(20_000, 40_000));
    mark(ctx, t, NAME, 'unmap C');
    unpin(c, true);
    await bg.run(rng.int(30_000, 60_000));
    mark(ctx, t, NAME, 'end');

    for (const pfn of b) pins.get(pfn)!.uncertain = gapVisible;
    return {
      description:
        `qemu-system-x86 (pid ${t.pid}, CPU 1) pins 3 groups of 6 pages; CPU 1 loses ${LOST} events while group B is pinned and B's unpins are among them. ` +
        (gapVisible ? 'A and C are normal pins; B must be uncertain (never a certain leak).' : 'perf shows no gap: B looks never released.'),
      expect: {
        pins: [...pins.values()],
        anomalies: [],
        cma_attempts: [],
        lost_events: gapVisible ? LOST : 0,
        ...(gapVisible ? { leaks: [] } : {}),
      },
      forbid: forbidAllBut('pin_never_released', 'leak'),
    };
  },
};
