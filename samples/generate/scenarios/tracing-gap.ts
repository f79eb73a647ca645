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
 * After the gap, in random order interleaved with the background, gap-cons takes a further reference on some G
 * pages (get_page or get_page_unless_zero), then puts each G page down to 0 and frees it (mm_page_free[_batched]);
 * H's mm_page_free comes first. Finally `bad_drv` (CPU 0) allocates U, frees it, and takes and drops a reference on
 * it (page_ref_mod val=1 count=1, page_ref_mod_and_test val=-1 count=0): the real use-after-free.
 * Expected: anomalies exactly [ref_after_free on U, certain]; no leak; no unexplained divergence; the inferred
 * windows exactly as listed in the truth (`gaps`: kind and pfn).
 */
import { Background } from '../noise.js';
import { forbidAllBut, type ScenarioDef, type TruthGap } from '../types.js';
import { ANON_FLAGS, begin, faultIn, mark, munmapFree, task, userAddr } from './common.js';

const NAME = 'tracing-gap';
const VARIANTS = ['tracing-on', 'buffer-wrap', 'pipe-reader'] as const;
const DRV = ['bad_drv_complete', 'bad_drv_irq', '__handle_irq_event_percpu', 'handle_irq_event', 'handle_edge_irq', '__common_interrupt'];

export const tracingGap: ScenarioDef = {
  name: NAME,
  summary: 'pages freed before a tracing gap, reallocated inside it and freed after it: no false use-after-free; one real one stays certain',
  async run(ctx) {
    const { em, mm, rng, format, seed } = ctx;
    const variant = VARIANTS[seed % 3]!;
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
    mark(ctx, prod, NAME, 'fill');
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
    const steps: { op: () => void; key: number }[] = [];
    for (const pfn of g) {
      const ops: (() => void)[] = [];
      if (rng.chance(0.5)) {
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
        `${variant}: gap-prod (pid ${prod.pid}) frees ${nG + nH} pages; during an untraced gap gap-cons (pid ${cons.pid}) allocates them again; ` +
        `after it gap-cons puts and frees them (count= shows them alive: no anomaly). bad_drv (pid ${bad.pid}) takes a reference on pfn 0x${u.toString(16)} after freeing it: a certain ref_after_free.`,
      expect: {
        anomalies: [{ kind: 'ref_after_free', pfn: u, certain: true, pid: bad.pid, comm: bad.comm }],
        cma_attempts: [],
        leaks: [],
        lost_events: 0,
        gaps,
      },
      forbid: forbidAllBut('ref_after_free'),
    };
  },
};
