/**
 * gup-fast-split: pins that do not show as one +1024, mixed with ordinary gets and puts on the same pages.
 *
 * `gupfast_bench` pins 64 of its anonymous pages through a test driver (pinbuf) in batches of 8 and unpins them
 * 10..45 ms later, batches overlapping:
 * - 32 pages through pin_user_pages_fast (GUP-fast, 6.1 try_grab_folio(page, 1, FOLL_PIN)): try_get_folio gives
 *   page_ref_mod_unless val=1 ret=1, then folio_ref_add(folio, 1023) gives page_ref_mod val=1023 (the pair, +1024).
 *   Their release is printed as the ≤5.17 put_page_refs() pair, page_ref_mod val=-1023 then
 *   page_ref_mod_and_test val=-1 ret=0, so a replay must coalesce both directions. (A 6.1 gup_put_folio prints a
 *   single -1024; the pair is kept here on purpose.)
 * - 32 pages through pin_user_pages (slow path, try_grab_page): one page_ref_mod val=1024, released with
 *   page_ref_mod_and_test val=-1024.
 * Both events of a pair share one timestamp (nanoseconds apart in the kernel), and every pin has its GUP kprobes
 * (try_grab_folio/try_grab_page flags=0x40001 = FOLL_PIN|FOLL_WRITE, gup_put_folio flags=0x40000): no FOLL_LONGTERM.
 * Meanwhile kswapd0/khugepaged take and drop transient references on the same pages (folio_try_get/folio_put,
 * count 1025 -> 1026 -> 1025 while pinned, 1 -> 2 -> 1 otherwise), and the benchmark itself does a get_page
 * immediately followed by put_page on a few pages, which must not become pins.
 * Expected: exactly 64 pins with these start/end times, no other pin, no finding.
 */
import type { Task } from '../emit.js';
import { hx, kprobe, kretprobe } from '../events.js';
import { Background } from '../noise.js';
import { S } from '../stacks.js';
import { forbidAllBut, ns, type ScenarioDef, type TruthPin } from '../types.js';
import { begin, faultIn, kptr, mark, munmapFree, pageArg, task, userAddr } from './common.js';

const NAME = 'gup-fast-split';
const IOCTL = ['pinbuf_ioctl', '__x64_sys_ioctl', ...S.syscall];
const FAST = ['pin_user_pages_fast', 'pinbuf_pin', ...IOCTL];
const FAST_GRAB = ['try_grab_folio', 'internal_get_user_pages_fast', 'pin_user_pages_fast', 'pinbuf_pin', ...IOCTL];
const SLOW = ['pin_user_pages', 'pinbuf_pin', ...IOCTL];
const SLOW_GRAB = ['try_grab_page', 'follow_page_pte', '__get_user_pages', '__gup_longterm_locked', 'pin_user_pages', 'pinbuf_pin', ...IOCTL];
const UNPIN = ['unpin_user_pages', 'pinbuf_unpin', ...IOCTL];
const SELF_GET = ['follow_page_pte', '__get_user_pages', '__get_user_pages_remote', 'process_vm_rw_core', 'process_vm_rw', '__x64_sys_process_vm_readv', ...S.syscall];

type Action = { at: number; run: () => void };

export const gupFastSplit: ScenarioDef = {
  name: NAME,
  summary: '64 pins, half as the GUP-fast +1/+1023 pair (released -1023/-1), half as +-1024, among ordinary gets/puts: exactly 64 pins',
  async run(ctx) {
    const { em, mm, rng } = ctx;
    const bg = new Background(ctx, { rate: 1.5 });
    begin(ctx);
    const t = task('gupfast_bench', rng.int(5100, 5190), 0);
    const kswapd = bg.tasks.find((x) => x.comm === 'kswapd0')!;
    const khugepaged = bg.tasks.find((x) => x.comm === 'khugepaged')!;
    const pfns = rng.distinct(64, 0x70000, 0x7b000);
    const buf = userAddr(ctx);
    const mmPtr = kptr(ctx, 0x400);
    const pins: TruthPin[] = [];
    const open = new Map<number, TruthPin>();

    const pin = (batch: number): void => {
      const fast = batch % 2 === 0;
      const pages = pfns.slice(batch * 8, batch * 8 + 8);
      const start = buf + batch * 8 * 0x1000;
      if (fast) {
        kprobe(em, t, 'gup', 'pin_user_pages_fast', `start=${hx(start)} nr_pages=8 gup_flags=0x1`, { stack: FAST });
        em.adv(rng.int(2, 20));
        kprobe(em, t, 'gup', 'internal_get_user_pages_fast', `start=${hx(start)} nr_pages=8 gup_flags=0x40001`);
      } else {
        kprobe(em, t, 'gup', 'pin_user_pages', `start=${hx(start)} nr_pages=8 gup_flags=0x1`, { stack: SLOW });
        em.adv(rng.int(2, 20));
        kprobe(em, t, 'gup', '__gup_longterm_locked', `mm=0x${mmPtr} start=${hx(start)} nr_pages=8 pages=0x${kptr(ctx, 0x1000)} gup_flags=0x40001`);
        kprobe(em, t, 'gup', '__get_user_pages', `mm=0x${mmPtr} start=${hx(start)} nr_pages=8 gup_flags=0x40001`);
      }
      for (const pfn of pages) {
        em.adv(rng.int(2, 25));
        if (fast) {
          // gup_pte_range -> try_grab_folio: try_get_folio (+1), then folio_ref_add(refs * (1024 - 1)).
          kprobe(em, t, 'gup', 'try_grab_folio', `page=${pageArg(pfn)} refs=1 flags=0x40001`, { irq: 'd....', stack: FAST_GRAB });
          mm.modUnless(t, pfn, 1, { irq: 'd....' });
          mm.mod(t, pfn, 1023, { irq: 'd....' });
          const at = em.now;
          em.adv(rng.int(1, 6));
          kretprobe(em, t, 'gup', 'try_grab_folio_ret', 'try_grab_folio', 'internal_get_user_pages_fast+0x59d', `folio=${pageArg(pfn)}`, { irq: 'd....' });
          record(pfn, at);
        } else {
          kprobe(em, t, 'gup', 'try_grab_page', `page=${pageArg(pfn)} flags=0x40001`, { irq: '...1.', stack: SLOW_GRAB });
          mm.mod(t, pfn, 1024, { irq: '...1.' });
          record(pfn, em.now);
        }
      }
      em.adv(rng.int(5, 60));
      if (fast) kretprobe(em, t, 'gup', 'pin_user_pages_fast_ret', 'pin_user_pages_fast', 'pinbuf_pin+0x6e', 'ret=8');
      else kretprobe(em, t, 'gup', 'pin_user_pages_ret', 'pin_user_pages', 'pinbuf_pin+0x9a', 'ret=8');
    };
    const record = (pfn: number, at: number): void => {
      const p: TruthPin = { pfn, refs: 1, holder_pid: t.pid, holder_comm: t.comm, start_ts_ns: ns(at), end_ts_ns: null, longterm: false, in_cma: false, large_folio: false };
      pins.push(p);
      open.set(pfn, p);
    };
    const unpin = (batch: number): void => {
      const fast = batch % 2 === 0;
      kprobe(em, t, 'gup', 'unpin_user_pages', `pages=0x${kptr(ctx, 0x1000)} npages=8`, { stack: UNPIN });
      for (const pfn of pfns.slice(batch * 8, batch * 8 + 8)) {
        em.adv(rng.int(2, 20));
        kprobe(em, t, 'gup', 'gup_put_folio', `folio=${pageArg(pfn)} refs=1 flags=0x40000`);
        if (fast) {
          mm.mod(t, pfn, -1023);
          mm.modAndTest(t, pfn, -1);
        } else {
          mm.modAndTest(t, pfn, -1024);
        }
        open.get(pfn)!.end_ts_ns = ns(em.now);
        open.delete(pfn);
      }
    };
    /** Another task's short reference: folio_try_get ... folio_put, some µs apart. */
    const otherRef = (who: Task, pfn: number): void => {
      mm.modUnless(who, pfn, 1, { stack: rng.chance(0.3) ? (who === kswapd ? S.lruIsolate : S.khugepagedScan) : undefined });
      em.adv(rng.int(1, 80));
      mm.modAndTest(who, pfn, -1);
    };

    await bg.run(rng.int(30_000, 60_000));
    mark(ctx, t, NAME, 'start npages=64');
    pfns.forEach((pfn, i) => {
      faultIn(ctx, t, pfn, 1, i === 0);
      em.adv(rng.int(3, 30));
      bg.sprinkle(0.15);
    });
    await bg.run(rng.int(10_000, 30_000));

    // The timeline: 8 pin batches 4..8 ms apart, each unpinned 10..45 ms later; other tasks' references and the
    // benchmark's own get/put at random moments around them.
    const t0 = em.now;
    const actions: Action[] = [];
    let at = t0;
    for (let b = 0; b < 8; b++) {
      at += rng.int(4_000, 8_000);
      actions.push({ at, run: () => pin(b) }, { at: at + rng.int(10_000, 45_000), run: () => unpin(b) });
    }
    const end = at + 50_000;
    for (let i = 0; i < 48; i++) {
      const who = rng.chance(0.5) ? kswapd : khugepaged;
      const pfn = rng.pick(pfns);
      actions.push({ at: rng.int(t0 - 5_000, end), run: () => otherRef(who, pfn) });
    }
    for (let i = 0; i < 6; i++) {
      const pfn = rng.pick(pfns);
      actions.push({
        at: rng.int(t0, end),
        run: () => {
          mm.mod(t, pfn, 1, { irq: '...1.', stack: SELF_GET });
          mm.modAndTest(t, pfn, -1);
        },
      });
    }
    actions.sort((a, b) => a.at - b.at);
    for (const a of actions) {
      if (a.at > em.now) await bg.run(a.at - em.now);
      a.run();
      em.adv(rng.int(1, 20));
    }
    await bg.run(rng.int(20_000, 60_000));
    mark(ctx, t, NAME, 'munmap');
    munmapFree(ctx, t, pfns, buf);
    await bg.run(rng.int(30_000, 80_000));
    mark(ctx, t, NAME, 'end');

    return {
      description: `gupfast_bench (pid ${t.pid}) pins 64 pages: 32 via pin_user_pages_fast (+1/+1023, released -1023/-1), 32 via pin_user_pages (+-1024), with unrelated gets/puts on the same pages. Exactly 64 pins, no finding.`,
      expect: { pins, anomalies: [], leaks: [], cma_attempts: [] },
      forbid: forbidAllBut(),
    };
  },
};
