/**
 * pin-leak: FOLL_PIN | FOLL_LONGTERM pins that are never released.
 *
 * `pin_leaker` registers 8 of its anonymous pages (mt=1, movable) with a test driver (pinleak) that calls
 * pin_user_pages(FOLL_WRITE|FOLL_LONGTERM): kprobes pin_user_pages gup_flags=0x10001, __gup_longterm_locked and
 * __get_user_pages gup_flags=0x50001, per page try_grab_page flags=0x50001 with its stack and page_ref_mod
 * val=1024. The process later munmaps the buffer and exits: zap drops the mapping's reference (1025 -> 1024,
 * mapcount 0) but nothing ever unpins; the pages stay allocated with the pin until the trace ends.
 * Expected: 8 pins with no end, pin_never_released on each pfn (holder pin_leaker). Whether a leak query lists the
 * pages as well is not checked (the pin explains the reference).
 */
import { hx, kprobe, kretprobe, sysEnter, sysExit, tp } from '../events.js';
import { Background } from '../noise.js';
import { S } from '../stacks.js';
import { forbidAllBut, ns, type ScenarioDef, type TruthPin } from '../types.js';
import { ANON_FLAGS, begin, faultIn, kptr, mark, pageArg, task, userAddr } from './common.js';

const NAME = 'pin-leak';
const IOCTL = ['pinleak_register', 'pinleak_ioctl', '__x64_sys_ioctl', ...S.syscall];

export const pinLeak: ScenarioDef = {
  name: NAME,
  summary: '8 FOLL_LONGTERM pins never released (the process unmaps and exits): pin_never_released x8',
  async run(ctx) {
    const { em, mm, rng } = ctx;
    const bg = new Background(ctx, { rate: 1.5 });
    begin(ctx);
    const t = task('pin_leaker', rng.int(6200, 6290), rng.int(0, 1));
    const pfns = rng.distinct(8, 0x70000, 0x7b000);
    const buf = userAddr(ctx);
    const mmPtr = kptr(ctx, 0x400);
    const pins: TruthPin[] = [];

    await bg.run(rng.int(40_000, 90_000));
    mark(ctx, t, NAME, 'start npages=8');
    pfns.forEach((pfn, i) => {
      faultIn(ctx, t, pfn, 1, i === 0);
      em.adv(rng.int(5, 40));
    });
    await bg.run(rng.int(10_000, 40_000));
    mark(ctx, t, NAME, 'register');
    sysEnter(em, t, 'ioctl', [['fd', 3], ['cmd', 0xc0105001], ['arg', 0x7ffe3a1c0000 + rng.int(0, 0xffff) * 0x10]]);
    em.adv(rng.int(50, 300));
    kprobe(em, t, 'gup', 'pin_user_pages', `start=${hx(buf)} nr_pages=8 gup_flags=0x10001`, { stack: ['pin_user_pages', ...IOCTL] });
    em.adv(rng.int(10, 80));
    kprobe(em, t, 'gup', '__gup_longterm_locked', `mm=0x${mmPtr} start=${hx(buf)} nr_pages=8 pages=0x${kptr(ctx, 0x1000)} gup_flags=0x50001`, { stack: ['__gup_longterm_locked', 'pin_user_pages', ...IOCTL] });
    kprobe(em, t, 'gup', '__get_user_pages', `mm=0x${mmPtr} start=${hx(buf)} nr_pages=8 gup_flags=0x50001`);
    for (const pfn of pfns) {
      em.adv(rng.int(5, 50));
      kprobe(em, t, 'gup', 'try_grab_page', `page=${pageArg(pfn)} flags=0x50001`, { irq: '...1.', stack: ['try_grab_page', 'follow_page_pte', '__get_user_pages', '__gup_longterm_locked', 'pin_user_pages', ...IOCTL] });
      mm.mod(t, pfn, 1024, { irq: '...1.' });
      pins.push({ pfn, refs: 1, holder_pid: t.pid, holder_comm: t.comm, start_ts_ns: ns(em.now), end_ts_ns: null, longterm: true, in_cma: false, large_folio: false });
    }
    em.adv(rng.int(20, 200));
    kretprobe(em, t, 'gup', 'pin_user_pages_ret', 'pin_user_pages', 'pinleak_register+0x8c', 'ret=8');
    sysExit(em, t, 'ioctl', 0);
    await bg.run(rng.int(200_000, 400_000));

    mark(ctx, t, NAME, 'munmap and exit without unregister');
    sysEnter(em, t, 'munmap', [['addr', buf], ['len', 0x8000]]);
    pfns.forEach((pfn, i) => {
      em.adv(rng.int(1, 8));
      mm.modAndTest(t, pfn, -1, { mapcount: 0, irq: '...1.', flags: ANON_FLAGS, stack: i === 0 ? S.munmapPut : undefined });
    });
    sysExit(em, t, 'munmap', 0);
    em.adv(rng.int(500, 3000));
    tp(em, t, 'sched', 'sched_process_exit', `comm=${t.comm} pid=${t.pid} prio=120`);
    await bg.run(rng.int(300_000, 600_000));

    return {
      description: `pin_leaker (pid ${t.pid}) FOLL_LONGTERM-pins 8 pages through pin_user_pages and exits without unpinning: the pins outlive the process and the trace.`,
      expect: {
        pins,
        anomalies: pfns.map((pfn) => ({ kind: 'pin_never_released', pfn, certain: true, pid: t.pid, comm: t.comm })),
        cma_attempts: [],
      },
      forbid: forbidAllBut('pin_never_released', 'leak'),
    };
  },
};
