/**
 * tracing-gap: events go untraced for a while; pages freed before the gap are allocated again inside it, and after
 * it their new owner gets, puts and frees them. The printed count= shows each page alive (count - val > 0 on a pfn
 * the trace last saw freed): missed events, never a use-after-free. One real use-after-free after the gap (a driver
 * takes a reference on a page it already freed: count=1 from 0) must stay a certain ref_after_free.
 *
 * `gap-prod` (CPU 0) faults in 3..6 pages (G) and 0..1 more (H) and unmaps them: they are freed. Then the gap, in
 * one of three forms chosen by the seed (seed % 3):
 *   0 tracing_on 0/1 (or trace-cmd stop/start): nothing is traced on any CPU for 1.5..4 s and nothing says so.
 *     replay infers a 'silence' (gaps table); the pages' remembered frees become uncertain.
 *   1 CPU 1's ring buffer wrapped: everything CPU 1 did before a point is gone. ftrace prints
 *     `##### CPU 1 buffer started ####` (a lost_events marker), trace-cmd `CPU:1 [EVENTS DROPPED]`, perf nothing:
 *     in perf only the pages' own evidence shows the gap ('alive-on-free' per G page, 'double-free' for H).
 *   2 a trace_pipe reader stopped and was restarted: 50..600 ms of every CPU missing, no marker, too short for
 *     the silence rule: page evidence only, in every layout.
 * Inside the gap `gap-cons` (CPU 1) allocates G and H again and maps them (fault: +1, LRU batch get/put), some G
 * pages get one more reference (+1), and H's last put happens there too (only its mm_page_free is traced after).
 * After the gap, in random order interleaved with the background, gap-cons pins the first G page and unpins it
 * (GUP-fast FOLL_PIN), GUP-fast-gets the second (FOLL_GET, +1) and puts it, takes a further reference on some other
 * G pages (get_page or get_page_unless_zero), then puts each G page down to 0 and frees it (mm_page_free[_batched]);
 * H's mm_page_free comes first. Finally `bad_drv` (CPU 0) allocates U, frees it, and takes and drops a reference on
 * it (page_ref_mod val=1 count=1, page_ref_mod_and_test val=-1 count=0): the real use-after-free.
 * Kernel eras (option `era`, else floor(seed / 3) % 3, so seeds 1..9 give every era x gap form) change the GUP forms
 * as gup-interleaved has them (docs/model.md §4.1, §4.3; the line layouts, page_ref fields and mapcount stay 6.1's):
 *   5.15: try_grab_compound_head (stacks only, no GUP kprobes): pin +1 then +1023, unpin put_compound_head -1023
 *         then -1; the get one page_ref_mod_unless val=1.
 *   6.1:  kprobe try_grab_folio (flags=0x40001 pin, 0x4 get) before the +1 / +1023; unpin kprobe gup_put_folio and
 *         one page_ref_mod_and_test val=-1024.
 *   6.18: as 6.1 with try_grab_folio_fast and the gup_fast_* frames.
 * Expected: anomalies exactly [ref_after_free on U, certain]; no leak; no unexplained divergence; the inferred
 * windows exactly as listed in the truth (`gaps`: kind and pfn); pins exactly the one pin (start and end).
 */
import { kprobe } from '../events.js';
import { Background } from '../noise.js';
import { S } from '../stacks.js';
import { forbidAllBut, ns, type Era, type ScenarioDef, type TruthGap, type TruthPin } from '../types.js';
import { ANON_FLAGS, begin, faultIn, mark, munmapFree, pageArg, task, userAddr } from './common.js';

const NAME = 'tracing-gap';
const VARIANTS = ['tracing-on', 'buffer-wrap', 'pipe-reader'] as const;
const ERAS: readonly Era[] = ['5.15', '6.1', '6.18'];
const IOCTL = ['gapbuf_ioctl', '__x64_sys_ioctl', ...S.syscall];

/** The GUP-fast forms of gap-cons's GUP get and pin in each kernel era, as gup-interleaved has them (docs/model.md §4.1, §4.3). */
interface EraGup {
  /** Frames of the GUP-fast grab below the caller (pin_user_pages_fast / get_user_pages_fast). */
  grab: (call: string) => string[];
  /** The grab kprobe, null = no GUP kprobes in this era (5.15). */
  probe: string | null;
  unpin: string[];
  unpinProbe: string | null;
  /** Unpin as -1023 then -1 (put_compound_head), else one -1024. */
  splitUnpin: boolean;
}

function eraGup(era: Era): EraGup {
  if (era === '5.15')
    return {
      grab: (call) => ['try_grab_compound_head', 'gup_pte_range', 'gup_pgd_range', 'internal_get_user_pages_fast', call, 'gapbuf_pin', ...IOCTL],
      probe: null,
      unpin: ['put_compound_head', 'unpin_user_pages', 'gapbuf_unpin', ...IOCTL],
      unpinProbe: null,
      splitUnpin: true,
    };
  if (era === '6.1')
    return {
      grab: (call) => ['try_grab_folio', 'internal_get_user_pages_fast', call, 'gapbuf_pin', ...IOCTL],
      probe: 'try_grab_folio',
      unpin: ['gup_put_folio', 'unpin_user_pages', 'gapbuf_unpin', ...IOCTL],
      unpinProbe: 'gup_put_folio',
      splitUnpin: false,
    };
  return {
    grab: (call) => ['try_grab_folio_fast', 'gup_fast_pte_range', 'gup_fast_fallback', call, 'gapbuf_pin', ...IOCTL],
    probe: 'try_grab_folio_fast',
    unpin: ['gup_put_folio', 'unpin_user_pages', 'gapbuf_unpin', ...IOCTL],
    unpinProbe: 'gup_put_folio',
    splitUnpin: false,
  };
}

const DRV = ['bad_drv_complete', 'bad_drv_irq', '__handle_irq_event_percpu', 'handle_irq_event', 'handle_edge_irq', '__common_interrupt'];

export const tracingGap: ScenarioDef = {
  name: NAME,
  summary: 'pages freed before a tracing gap, reallocated inside it and freed after it: no false use-after-free; one real one stays certain',
  async run(ctx) {
    const { em, mm, rng, format, seed } = ctx;
    const variant = VARIANTS[seed % 3]!;
    // seed % 3 picks the gap form, floor(seed / 3) % 3 the era: seeds 1..9 cover every pair.
    const era: Era = ctx.era ?? ERAS[Math.floor(seed / 3) % 3]!;
    const gup = eraGup(era);
    const bg = new Background(ctx, { rate: 1.5 });
    begin(ctx);
    const prod = task('gap-prod', rng.int(4100, 4190), 0);
    const cons = task('gap-cons', rng.int(4200, 4290), 1);
    const bad = task('bad_drv', rng.int(4300, 4390), 0, null);
    const nG = rng.int(3, 6);
    const nH = rng.chance(0.6) ? 1 : 0;
    const pfns = rng.distinct(nG + nH + 1, 0x70000, 0x7b000);
    const g = pfns.slice(0, nG);
    const h = pfns.slice(nG, nG + nH);
    const u = pfns[nG + nH]!;

    // buffer-wrap: CPU 1's oldest events are the ones overwritten, so the gap on CPU 1 starts with the trace.
    if (variant === 'buffer-wrap') {
      em.startDrop(1);
      bg.pause(1, true);
    }
    await bg.run(rng.int(20_000, 40_000));
    mark(ctx, prod, NAME, `fill era=${era}`);
    for (const pfn of [...g, ...h]) {
      faultIn(ctx, prod, pfn, 1);
      em.adv(rng.int(5, 40));
      bg.sprinkle(0.3);
    }
    await bg.run(rng.int(5_000, 20_000));
    mark(ctx, prod, NAME, 'unmap');
    munmapFree(ctx, prod, rng.shuffle([...g, ...h]), userAddr(ctx));
    await bg.run(rng.int(5_000, 20_000));

    // The gap: nothing below is written on the CPUs it covers (the page model still advances).
    const cpus = variant === 'buffer-wrap' ? [1] : [0, 1];
    for (const c of cpus) {
      em.startDrop(c);
      bg.pause(c, true);
    }
    em.adv(rng.int(100, 2000));
    const extra = new Set<number>();
    for (const pfn of rng.shuffle([...g, ...h])) {
      faultIn(ctx, cons, pfn, 1);
      em.adv(rng.int(5, 60));
      if (g.includes(pfn) && rng.chance(0.5)) {
        mm.mod(cons, pfn, 1, { irq: '...1.' });
        extra.add(pfn);
      }
    }
    for (const pfn of h) {
      em.adv(rng.int(5, 60));
      mm.modAndTest(cons, pfn, -1, { mapcount: 0, flags: ANON_FLAGS, irq: '...1.' });
    }
    if (variant === 'tracing-on') em.adv(rng.int(1_500_000, 4_000_000));
    else if (variant === 'pipe-reader') em.adv(rng.int(50_000, 600_000));
    else await bg.run(rng.int(5_000, 20_000)); // CPU 0 goes on being traced
    for (const c of cpus) {
      if (variant === 'buffer-wrap') em.endWrap(c);
      else em.resume(c);
      bg.pause(c, false);
    }

    // After the gap: the new owner's gets, puts and frees, interleaved with the background.
    for (const pfn of h) {
      mm.release(cons, pfn, {});
      em.adv(rng.int(5, 60));
    }
    // Each page's ops keep their order (op i has a key in [i, i+1)); pages interleave with each other.
    const pins: TruthPin[] = [];
    /** GUP-fast FOLL_PIN of a small page in the era's form: (kprobe) +1 then +1023 by try_get_folio + folio_ref_add. */
    const pin = (pfn: number): void => {
      const grab = gup.grab('pin_user_pages_fast');
      if (gup.probe) kprobe(em, cons, 'gup', gup.probe, `page=${pageArg(pfn)} refs=1 flags=0x40001`, { irq: 'd....', stack: rng.chance(0.5) ? grab : undefined });
      pins.push({ pfn, refs: 1, holder_pid: cons.pid, holder_comm: cons.comm, start_ts_ns: ns(em.now), end_ts_ns: null, longterm: gup.probe ? false : null, in_cma: false, large_folio: false });
      mm.modUnless(cons, pfn, 1, { irq: 'd....', stack: rng.chance(0.3) ? grab : undefined });
      mm.mod(cons, pfn, 1023, { irq: 'd....' });
    };
    const unpin = (pfn: number): void => {
      if (gup.unpinProbe) kprobe(em, cons, 'gup', gup.unpinProbe, `folio=${pageArg(pfn)} refs=1 flags=0x40000`, { irq: '...1.' });
      pins.find((p) => p.pfn === pfn)!.end_ts_ns = ns(em.now);
      if (gup.splitUnpin) {
        mm.mod(cons, pfn, -1023, { irq: '...1.', stack: rng.chance(0.3) ? gup.unpin : undefined });
        mm.modAndTest(cons, pfn, -1, { irq: '...1.' });
      } else mm.modAndTest(cons, pfn, -1024, { irq: '...1.', stack: rng.chance(0.3) ? gup.unpin : undefined });
    };
    /** GUP-fast FOLL_GET (get_user_pages_fast): one +1 from the era's grab, a plain get to the refcount. */
    const gupGet = (pfn: number): void => {
      const grab = gup.grab('get_user_pages_fast');
      if (gup.probe) kprobe(em, cons, 'gup', gup.probe, `page=${pageArg(pfn)} refs=1 flags=0x4`, { irq: 'd....' });
      mm.modUnless(cons, pfn, 1, { irq: 'd....', stack: rng.chance(0.5) ? grab : undefined });
    };
    // Each page's ops keep their order (op i has a key in [i, i+1)); pages interleave with each other.
    // The first G page is pinned and unpinned, the second gets a GUP-fast get (both in the era's forms), the others
    // maybe a get_page or get_page_unless_zero.
    const steps: { op: () => void; key: number }[] = [];
    for (const [i, pfn] of g.entries()) {
      const ops: (() => void)[] = [];
      if (i === 0) {
        ops.push(() => pin(pfn));
        ops.push(() => unpin(pfn));
      } else if (i === 1) {
        ops.push(() => gupGet(pfn));
        ops.push(() => void mm.modAndTest(cons, pfn, -1, { irq: '...1.' }));
      } else if (rng.chance(0.5)) {
        const unless = rng.chance(0.5);
        ops.push(() => (unless ? mm.modUnless(cons, pfn, 1, { irq: '...1.' }) : mm.mod(cons, pfn, 1, { irq: '...1.' })));
        ops.push(() => void mm.modAndTest(cons, pfn, -1, { irq: '...1.' }));
      }
      if (extra.has(pfn)) ops.push(() => void mm.modAndTest(cons, pfn, -1, { mapcount: 0, irq: '...1.' }));
      const batched = rng.chance(0.5);
      ops.push(() => mm.free(cons, pfn, { batched, mapcount: 0, flags: ANON_FLAGS, irq: '...1.' }));
      ops.forEach((op, i) => steps.push({ op, key: rng.next() + i }));
    }
    for (const { op } of steps.sort((a, b) => a.key - b.key)) {
      op();
      em.adv(rng.int(5, 80));
      bg.sprinkle(0.4);
    }
    await bg.run(rng.int(10_000, 30_000));

    // The real bug: a driver's completion takes a reference on a page it freed.
    mark(ctx, bad, NAME, 'uaf');
    mm.alloc(bad, u, { gfp: 'GFP_KERNEL', mt: 0 });
    em.adv(rng.int(20, 200));
    mm.free(bad, u, { irq: '.....' });
    em.adv(rng.int(50, 500));
    mm.adopt(u, { count: 0, mapcount: 0, flags: 'none', mapping: '0000000000000000', mt: 0, order: 0 });
    mm.mod(bad, u, 1, { irq: 'd.h1.', stack: DRV });
    em.adv(rng.int(2, 30));
    mm.modAndTest(bad, u, -1, { irq: 'd.h1.' });
    mm.forget(u);
    await bg.run(rng.int(10_000, 30_000));

    const pageEvidence = variant === 'pipe-reader' || (variant === 'buffer-wrap' && format === 'perf');
    const gaps: TruthGap[] = [];
    if (variant === 'tracing-on') gaps.push({ kind: 'silence', pfn: null });
    if (pageEvidence) {
      for (const pfn of g) gaps.push({ kind: 'alive-on-free', pfn });
      for (const pfn of h) gaps.push({ kind: 'double-free', pfn });
    }
    return {
      description:
        `${variant}, kernel era ${era}: gap-prod (pid ${prod.pid}) frees ${nG + nH} pages; during an untraced gap gap-cons (pid ${cons.pid}) allocates them again; ` +
        `after it gap-cons pins and unpins pfn 0x${g[0]!.toString(16)} and GUP-gets pfn 0x${g[1]!.toString(16)} in the era's forms, puts and frees them (count= shows them alive: no anomaly). bad_drv (pid ${bad.pid}) takes a reference on pfn 0x${u.toString(16)} after freeing it: a certain ref_after_free.`,
      expect: {
        anomalies: [{ kind: 'ref_after_free', pfn: u, certain: true, pid: bad.pid, comm: bad.comm }],
        cma_attempts: [],
        leaks: [],
        pins,
        lost_events: 0,
        gaps,
      },
      forbid: forbidAllBut('ref_after_free'),
    };
  },
};
