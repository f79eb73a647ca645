/**
 * gup-interleaved: two-event pin operations whose halves other CPUs' events interleave with, at one timestamp.
 *
 * `gup_pinner` (CPU 0) pins anonymous pages through a test driver and unpins them 40..140 ms later, while tasks on
 * CPU 1 touch the same pages at the very same microseconds: a page-cache style speculative get (folio_try_get +1,
 * folio_put -1), kcompactd's LRU isolation (+1, putback -1 a few ms later), a reader's get/put. The merged output
 * puts those events anywhere between the pinner's halves (the generator draws a random merge of the two CPUs'
 * streams at each such moment; count= follows the merged order, as if the atomic ops ran in it).
 * The kernel era decides the shape of each operation (docs/model.md §4.1, §4.3; the line layouts stay 6.1's):
 * - 5.15: GUP-fast try_grab_compound_head: `page_ref_mod_unless val=1` then `page_ref_mod val=1023`; unpin
 *   put_compound_head: `page_ref_mod val=-1023` then `page_ref_mod_and_test val=-1`; no GUP kprobes (stacks only).
 * - 6.1: GUP-fast try_grab_folio (kprobe flags=0x40001) +1 / +1023, slow path try_grab_page +1024; unpin
 *   gup_put_folio (kprobe) one `page_ref_mod_and_test val=-1024`.
 * - 6.18: GUP-fast try_grab_folio_fast (kprobe) +1 / +1023, slow path try_grab_folio(folio) +1024; unpin -1024.
 * Large folios (order 2): the pin is +1 on the head (plus the untraced _pincount), with the pinner's own lookup
 * +1 before it and its put -1 after it, all three inside the pinning call (its frames on their stacks; only the
 * pin's stack has the grab). The unpin is -1 on the head from gup_put_folio / put_compound_head.
 * Expected: exactly these pins (pfn, refs, holder, start/end), no hold on the scenario's pages, no finding.
 * The era is the option `era`, else chosen by the seed (seed % 3).
 */
import { hx, kprobe, kretprobe } from '../events.js';
import { Background } from '../noise.js';
import { S } from '../stacks.js';
import { forbidAllBut, ns, type Era, type ScenarioDef, type TruthPin } from '../types.js';
import { ANON_FLAGS, anonMapping, begin, FAULT_GFP, faultIn, mark, munmapFree, pageArg, task, userAddr } from './common.js';

const NAME = 'gup-interleaved';
export const ERAS: readonly Era[] = ['5.15', '6.1', '6.18'];
const IOCTL = ['pinbuf_ioctl', '__x64_sys_ioctl', ...S.syscall];
const SLOW_CALL = ['pin_user_pages', 'pinbuf_pin', ...IOCTL];
const LOOKUP = ['follow_page_mask', '__get_user_pages', '__gup_longterm_locked', 'pin_user_pages', 'pinbuf_pin', ...IOCTL];
const LOOKUP_PUT = ['folio_put', '__get_user_pages', '__gup_longterm_locked', 'pin_user_pages', 'pinbuf_pin', ...IOCTL];
const SPEC_GET = ['filemap_get_read_batch', 'filemap_get_pages', 'filemap_read', 'ext4_file_read_iter', 'vfs_read', 'ksys_read', ...S.syscall];
const ISOLATE = ['isolate_migratepages_block', 'isolate_migratepages', 'compact_zone', 'kcompactd_do_work', 'kcompactd', 'kthread', 'ret_from_fork'];
const PUTBACK = ['putback_movable_pages', 'compact_zone', 'kcompactd_do_work', 'kcompactd', 'kthread', 'ret_from_fork'];

interface Shape {
  fastCall: string;
  /** Kernel frames of the GUP-fast grab (the +1 and +1023 come from here). */
  fastGrab: string[];
  /** The grab kprobe of the fast path, null = no kprobes in this era. */
  fastProbe: string | null;
  slowGrab: string[];
  slowProbe: string | null;
  unpin: string[];
  /** gup_put_folio / put_compound_head kprobe name, or null. */
  unpinProbe: string | null;
  /** Unpin of a small page as -1023 then -1 (put_compound_head), else one -1024. */
  splitUnpin: boolean;
}

function shape(era: Era): Shape {
  if (era === '5.15') {
    return {
      fastCall: 'pin_user_pages_fast',
      fastGrab: ['try_grab_compound_head', 'gup_pte_range', 'gup_pgd_range', 'internal_get_user_pages_fast', 'pin_user_pages_fast', 'pinbuf_pin', ...IOCTL],
      fastProbe: null,
      slowGrab: ['try_grab_page', 'follow_page_pte', '__get_user_pages', '__gup_longterm_locked', 'pin_user_pages', 'pinbuf_pin', ...IOCTL],
      slowProbe: null,
      unpin: ['put_compound_head', 'unpin_user_pages', 'pinbuf_unpin', ...IOCTL],
      unpinProbe: null,
      splitUnpin: true,
    };
  }
  if (era === '6.1') {
    return {
      fastCall: 'pin_user_pages_fast',
      fastGrab: ['try_grab_folio', 'internal_get_user_pages_fast', 'pin_user_pages_fast', 'pinbuf_pin', ...IOCTL],
      fastProbe: 'try_grab_folio',
      slowGrab: ['try_grab_page', 'follow_page_pte', '__get_user_pages', '__gup_longterm_locked', 'pin_user_pages', 'pinbuf_pin', ...IOCTL],
      slowProbe: 'try_grab_page',
      unpin: ['gup_put_folio', 'unpin_user_pages', 'pinbuf_unpin', ...IOCTL],
      unpinProbe: 'gup_put_folio',
      splitUnpin: false,
    };
  }
  return {
    fastCall: 'pin_user_pages_fast',
    fastGrab: ['try_grab_folio_fast', 'gup_fast_pte_range', 'gup_fast_fallback', 'pin_user_pages_fast', 'pinbuf_pin', ...IOCTL],
    fastProbe: 'try_grab_folio_fast',
    slowGrab: ['try_grab_folio', 'follow_page_pte', '__get_user_pages', '__gup_longterm_locked', 'pin_user_pages', 'pinbuf_pin', ...IOCTL],
    slowProbe: 'try_grab_folio',
    unpin: ['gup_put_folio', 'unpin_user_pages', 'pinbuf_unpin', ...IOCTL],
    unpinProbe: 'gup_put_folio',
    splitUnpin: false,
  };
}

type Step = () => void;

export const gupInterleaved: ScenarioDef = {
  name: NAME,
  summary: 'GUP pins and unpins in their two-event forms (5.15 / 6.1 / 6.18 eras) with other CPUs\' gets and puts between the halves at equal timestamps: exact pins, no spurious hold',
  async run(ctx) {
    const { em, mm, rng } = ctx;
    const era: Era = ctx.era ?? ERAS[ctx.seed % ERAS.length]!;
    const sh = shape(era);
    const bg = new Background(ctx, { rate: 0.6 });
    begin(ctx);
    const t = task('gup_pinner', rng.int(6100, 6190), 0);
    const reader = task('pagecache_rd', rng.int(6200, 6290), 1);
    const kcompactd = task('kcompactd0', rng.int(40, 60), 1);
    const small = rng.distinct(24, 0x70000, 0x78000);
    const heads = rng.distinct(2, 0, 0x800).map((x) => 0x78000 + x * 4);
    const buf = userAddr(ctx);
    const pins: TruthPin[] = [];
    const open = new Map<number, TruthPin>();
    /** kcompactd's isolation references waiting for their putback. */
    const isolated: number[] = [];

    /** Emit the steps of CPU 0 and CPU 1 at this very moment, merged in a random order (each CPU's order kept). */
    const merge = (a: Step[], b: Step[]): void => {
      let i = 0;
      let j = 0;
      while (i < a.length || j < b.length) {
        if (j >= b.length || (i < a.length && rng.chance(0.5))) a[i++]!();
        else b[j++]!();
      }
    };
    /** CPU 1's events at the moment of a half: 0..3 operations on the same page. */
    const others = (pfn: number): Step[] => {
      const out: Step[] = [];
      const n = rng.int(0, 3);
      for (let k = 0; k < n; k++) {
        const what = rng.int(0, 2);
        if (what === 0) {
          out.push(() => mm.modUnless(reader, pfn, 1, { stack: rng.chance(0.3) ? SPEC_GET : undefined }));
          out.push(() => mm.modAndTest(reader, pfn, -1));
        } else if (what === 1 && !isolated.includes(pfn)) {
          out.push(() => mm.modUnless(kcompactd, pfn, 1, { stack: rng.chance(0.3) ? ISOLATE : undefined }));
          isolated.push(pfn);
        } else if (isolated.includes(pfn)) {
          isolated.splice(isolated.indexOf(pfn), 1);
          out.push(() => mm.modAndTest(kcompactd, pfn, -1, { stack: rng.chance(0.3) ? PUTBACK : undefined }));
        }
      }
      return out;
    };
    const record = (pfn: number, large: boolean, probed: boolean): void => {
      const p: TruthPin = { pfn, refs: 1, holder_pid: t.pid, holder_comm: t.comm, start_ts_ns: ns(em.now), end_ts_ns: null, longterm: probed ? false : null, in_cma: false, large_folio: large };
      pins.push(p);
      open.set(pfn, p);
    };

    const pinSmall = (pfn: number, fast: boolean): void => {
      const mine: Step[] = [];
      const probe = fast ? sh.fastProbe : sh.slowProbe;
      const grab = fast ? sh.fastGrab : sh.slowGrab;
      if (probe) {
        const args = probe === 'try_grab_folio' && era === '6.18' ? `folio=${pageArg(pfn)} refs=1 flags=0x40001` : `page=${pageArg(pfn)} refs=1 flags=0x40001`;
        mine.push(() => kprobe(em, t, 'gup', probe, probe === 'try_grab_page' ? `page=${pageArg(pfn)} flags=0x40001` : args, { irq: 'd....', stack: rng.chance(0.5) ? grab : undefined }));
      }
      if (fast) {
        // try_get_folio (+1), then folio_ref_add(folio, 1023): nanoseconds apart, IRQs off on CPU 0.
        mine.push(() => mm.modUnless(t, pfn, 1, { irq: 'd....', stack: rng.chance(0.3) ? grab : undefined }));
        mine.push(() => mm.mod(t, pfn, 1023, { irq: 'd....' }));
      } else {
        mine.push(() => mm.mod(t, pfn, 1024, { irq: '...1.', stack: rng.chance(0.3) ? grab : undefined }));
      }
      record(pfn, false, probe !== null);
      merge(mine, others(pfn));
    };
    const unpinSmall = (pfn: number): void => {
      const mine: Step[] = [];
      if (sh.unpinProbe) mine.push(() => kprobe(em, t, 'gup', sh.unpinProbe!, `folio=${pageArg(pfn)} refs=1 flags=0x40000`));
      if (sh.splitUnpin) {
        mine.push(() => mm.mod(t, pfn, -1023, { stack: rng.chance(0.3) ? sh.unpin : undefined }));
        mine.push(() => mm.modAndTest(t, pfn, -1));
      } else {
        mine.push(() => mm.modAndTest(t, pfn, -1024, { stack: rng.chance(0.3) ? sh.unpin : undefined }));
      }
      open.get(pfn)!.end_ts_ns = ns(em.now);
      open.delete(pfn);
      merge(mine, others(pfn));
    };
    const pinLarge = (head: number): void => {
      const mine: Step[] = [];
      // The pinner's own lookup of the folio, inside the pinning call, then the pin (+1 and the untraced _pincount).
      mine.push(() => mm.modUnless(t, head, 1, { stack: LOOKUP }));
      if (sh.slowProbe) {
        const args = era === '6.18' ? `folio=${pageArg(head)} refs=1 flags=0x40001` : `page=${pageArg(head)} flags=0x40001`;
        mine.push(() => kprobe(em, t, 'gup', sh.slowProbe!, args, { stack: sh.slowGrab }));
      }
      mine.push(() => mm.mod(t, head, 1, { irq: '...1.', stack: sh.slowGrab }));
      mine.push(() => mm.modAndTest(t, head, -1, { stack: LOOKUP_PUT }));
      record(head, true, sh.slowProbe !== null);
      if (sh.slowProbe) kprobe(em, t, 'gup', 'pin_user_pages', `start=${hx(buf + 0x100000 + heads.indexOf(head) * 0x4000)} nr_pages=1 gup_flags=0x1`, { stack: SLOW_CALL });
      merge(mine, others(head));
      if (sh.slowProbe) kretprobe(em, t, 'gup', 'pin_user_pages_ret', 'pin_user_pages', 'pinbuf_pin+0x9a', 'ret=1');
    };
    const unpinLarge = (head: number): void => {
      const mine: Step[] = [];
      if (sh.unpinProbe) mine.push(() => kprobe(em, t, 'gup', sh.unpinProbe!, `folio=${pageArg(head)} refs=1 flags=0x40000`));
      mine.push(() => mm.modAndTest(t, head, -1, { stack: sh.unpin }));
      open.get(head)!.end_ts_ns = ns(em.now);
      open.delete(head);
      merge(mine, others(head));
    };

    await bg.run(rng.int(20_000, 40_000));
    mark(ctx, t, NAME, `start era=${era}`);
    small.forEach((pfn, i) => {
      faultIn(ctx, t, pfn, 1, i === 0);
      em.adv(rng.int(3, 30));
    });
    for (const head of heads) {
      // do_huge_pmd_anonymous_page-like: an order-2 folio mapped once (its LRU batch reference comes and goes).
      mm.alloc(t, head, { gfp: FAULT_GFP, mt: 1, allocMt: 1, order: 2 });
      em.adv(rng.int(1, 12));
      mm.mod(t, head, 1, { flags: 'uptodate|head|swapbacked', mapcount: 1, mapping: anonMapping(t), irq: '...1.', stack: S.lruAdd });
      em.adv(rng.int(1, 30));
      mm.modAndTest(t, head, -1, { flags: 'uptodate|lru|head|swapbacked', irq: '...2.' });
      em.adv(rng.int(3, 30));
    }
    await bg.run(rng.int(5_000, 15_000));

    // Batches of 6 small pages (GUP-fast or, outside 5.15, sometimes the slow path) and one large folio each
    // 2..5 ms apart, every pin released 40..140 ms later; everything at random moments in between.
    const t0 = em.now;
    const actions: { at: number; run: () => void }[] = [];
    let at = t0;
    for (let b = 0; b < 4; b++) {
      at += rng.int(2_000, 5_000);
      const fast = era === '5.15' || rng.chance(0.7);
      const batch = small.slice(b * 6, b * 6 + 6);
      const start = at;
      actions.push({
        at: start,
        run: () => {
          kprobe(em, t, 'gup', fast ? sh.fastCall : 'pin_user_pages', `start=${hx(buf + b * 0x6000)} nr_pages=6 gup_flags=0x1`, { stack: fast ? undefined : SLOW_CALL });
          em.adv(rng.int(2, 10));
          for (const pfn of batch) {
            pinSmall(pfn, fast);
            em.adv(rng.int(1, 8));
          }
          kretprobe(em, t, 'gup', fast ? `${sh.fastCall}_ret` : 'pin_user_pages_ret', fast ? sh.fastCall : 'pin_user_pages', 'pinbuf_pin+0x6e', 'ret=6');
        },
      });
      for (const pfn of batch) actions.push({ at: start + rng.int(40_000, 140_000), run: () => unpinSmall(pfn) });
      if (b < heads.length) {
        const head = heads[b]!;
        const when = at + rng.int(200, 1_500);
        actions.push({ at: when, run: () => pinLarge(head) }, { at: when + rng.int(40_000, 140_000), run: () => unpinLarge(head) });
      }
    }
    const end = at + 145_000;
    for (let i = 0; i < 20; i++) {
      const pfn = rng.pick(small);
      actions.push({ at: rng.int(t0, end), run: () => merge([], others(pfn)) });
    }
    actions.sort((a, b) => a.at - b.at);
    for (const a of actions) {
      if (a.at > em.now) await bg.run(a.at - em.now);
      a.run();
      em.adv(rng.int(1, 20));
    }
    // Whatever kcompactd still has isolated goes back before the pages are unmapped.
    for (const pfn of isolated.splice(0)) {
      mm.modAndTest(kcompactd, pfn, -1, { stack: PUTBACK });
      em.adv(rng.int(1, 20));
    }
    await bg.run(rng.int(10_000, 30_000));
    mark(ctx, t, NAME, 'munmap');
    munmapFree(ctx, t, small, buf);
    for (const head of heads) {
      mm.free(t, head, { flags: ANON_FLAGS + '|head' });
      em.adv(rng.int(1, 6));
    }
    await bg.run(rng.int(20_000, 50_000));
    mark(ctx, t, NAME, 'end');

    return {
      description: `gup_pinner (pid ${t.pid}, CPU 0, ${era} era) pins ${small.length} pages and ${heads.length} order-2 folios in two-event forms while pagecache_rd and kcompactd0 on CPU 1 get and put the same pages at the same microseconds, between the halves. Exactly ${pins.length} pins, no hold on these pages, no finding.`,
      expect: { pins, anomalies: [], leaks: [], cma_attempts: [] },
      forbid: forbidAllBut(),
    };
  },
};
