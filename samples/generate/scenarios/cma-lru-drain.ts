/**
 * cma-lru-drain: vmsplice references on CMA pages whose LRU batch reference is still held, an LRU drain by a
 * kworker, and a cma_alloc that fails while its own migration rounds take and drop references on the same pages.
 *
 * `pipe_hold` faults in 3..8 anonymous pages in the CMA area. do_anonymous_page: the allocation's reference becomes
 * the mapping's, and folio_add_lru_vma's +1 (mapcount=1, flags without `lru`) sits in the CPU's LRU batch until a
 * drain sets PG_lru and drops it (a `kworker` running lru_add_drain_per_cpu: -1 with `lru` in the flags). It then
 * vmsplice()s them into a pipe (GUP-fast FOLL_GET: page_ref_mod_unless val=1, kprobes with the era's names). Per
 * page and seed the drain comes before the GUP get, after it, or only when the CMA attempt drains every CPU
 * (lru_add_drain_all at the start of alloc_contig_range) - possibly between the requester's isolation get and its
 * put on another CPU.
 * `cma_test` then runs cma_alloc(count=512) over the range: 3..5 attempts, each alloc_contig_range, the kworkers'
 * drain, the isolation pass over every in-use page of the range, the migration of another process's movable pages
 * (first attempt), test_pages_isolated ret=fail at the lowest held pfn, alloc_contig_range_ret -16 and a busy retry;
 * cma_alloc_finish page=NULL. Per held page and attempt, the isolation is either the probe (+1, then -1: the page
 * has more references than mappings, or, 6.1/6.18, it is not on the LRU yet: the get comes before the LRU test)
 * or a full isolation (+1, migration fails, putback_lru_page: folio_add_lru's +1 into the requester's LRU batch,
 * then the isolation reference dropped; the batch reference stays until the next drain by a kworker).
 * Kernel eras (drawn from the seed, or `generate --era`): 5.15 (try_grab_compound_head, the LRU test before the get: a page off the LRU gets no
 * probe), 6.1 (try_grab_folio), 6.18 (try_grab_folio_fast, folio batch names in the drain stacks). Every
 * drain put may carry its stack, or none (the flags alone must tell).
 * Optionally a reader task drains the pipe afterwards (anon_pipe_buf_release: -1 per page).
 *
 * Truth: the blockers of every failed range are the GUP holder only (its pid, 1 reference per held pfn, the held
 * pfns), never the requester (its isolation and LRU batch references are its own migration's), never the kworker;
 * holds: one per held pfn, by the holder, ended by the reader's put when the pipe is drained, else held to the end.
 */
import type { Emitter, EvOpts, Task } from '../emit.js';
import { symAddr, symSize } from '../kallsyms.js';
import { cmaAllocClass, cmaAllocStart, hx, kprobe, kretprobe, pcpuDrain, sysEnter, sysExit } from '../events.js';
import { Background } from '../noise.js';
import { S } from '../stacks.js';
import { forbidAllBut, ns, type Era, type ScenarioDef } from '../types.js';
import { anonMapping, ANON_FLAGS, begin, failedContigRound, FAULT_GFP, faultIn, mark, pageArg, task, userAddr } from './common.js';

const NAME = 'cma-lru-drain';
const BASE = 0x7c000;
const COUNT = 512;
const SYSCALL = ['do_syscall_64', 'entry_SYSCALL_64_after_hwframe'];
const OFF_LRU = 'uptodate|mappedtodisk|swapbacked';
const ISOLATED = 'referenced|uptodate|mappedtodisk|swapbacked';

const ERAS: Era[] = ['5.15', '6.1', '6.18'];

/** A kprobe event `group/name` placed on function `fn` (5.15: the try_grab_folio probe sits on try_grab_compound_head). */
function kprobeOn(em: Emitter, t: Task, group: string, name: string, fn: string, args: string, o: EvOpts = {}): void {
  em.ev(t, group, name, (f) => (f === 'ftrace' ? `(${fn}+0x0/0x${symSize(fn).toString(16)}) ${args}` : `(${symAddr(fn)}) ${args}`), { ...o, kind: 'kprobe' });
}

/** What differs between kernel eras on this path. */
function eraNames(era: Era): { probe: string; grab: string; drain: string[]; putback: string[]; release: string[] } {
  const kw = ['process_one_work', 'worker_thread', 'kthread', 'ret_from_fork'];
  if (era === '5.15')
    return {
      probe: 'try_grab_folio',
      grab: 'try_grab_compound_head',
      drain: ['release_pages', '__pagevec_lru_add', 'lru_add_drain_cpu', 'lru_add_drain_per_cpu', ...kw],
      putback: ['lru_cache_add', 'putback_lru_page', 'putback_movable_pages', '__alloc_contig_migrate_range', 'alloc_contig_range', 'cma_alloc'],
      release: ['anon_pipe_buf_release', 'pipe_read', 'new_sync_read', 'vfs_read', 'ksys_read', ...SYSCALL],
    };
  if (era === '6.1')
    return {
      probe: 'try_grab_folio',
      grab: 'try_grab_folio',
      drain: ['release_pages', 'folio_batch_move_lru', 'lru_add_drain_cpu', 'lru_add_drain_per_cpu', ...kw],
      putback: ['folio_add_lru', 'folio_putback_lru', 'putback_movable_pages', '__alloc_contig_migrate_range', 'alloc_contig_range', 'cma_alloc'],
      release: ['anon_pipe_buf_release', 'pipe_read', 'vfs_read', 'ksys_read', ...SYSCALL],
    };
  return {
    probe: 'try_grab_folio_fast',
    grab: 'try_grab_folio_fast',
    drain: ['folios_put_refs', 'folio_batch_move_lru', 'lru_add_drain_cpu', 'lru_add_drain_per_cpu', ...kw],
    putback: ['folio_add_lru', 'folio_putback_lru', 'putback_movable_pages', '__alloc_contig_migrate_range', 'alloc_contig_range_noprof', '__cma_alloc'],
    release: ['anon_pipe_buf_release', 'pipe_read', 'vfs_read', 'ksys_read', ...SYSCALL],
  };
}

export const cmaLruDrain: ScenarioDef = {
  name: NAME,
  summary: 'vmsplice gets on CMA pages with their LRU batch reference pending, a kworker drain, cma_alloc isolating/putting back: blockers = the GUP holder only',
  async run(ctx) {
    const { em, mm, rng } = ctx;
    const bg = new Background(ctx, { rate: 1 });
    begin(ctx);
    const drawn = ERAS[rng.int(0, 2)]!;
    const era: Era = ctx.era ?? drawn;
    const names = eraNames(era);
    const holder = task('pipe_hold', rng.int(3100, 3190), 1);
    const reader = task('pipe_reader', rng.int(3200, 3290), 1);
    const other = task('java', rng.int(3300, 3390), 0);
    const cma = task('cma_test', rng.int(3400, 3490), 0);
    const kworkers = [task(`kworker/0:${rng.int(0, 3)}`, rng.int(20, 60), 0), task(`kworker/1:${rng.int(0, 3)}`, rng.int(61, 99), 1)];
    const nHeld = rng.int(3, 8);
    // At least 3 busy retries: each prints a struct page pointer with its pfn, the evidence from which the trace-cmd
    // and perf layouts (whose kmem events print no pointer) learn vmemmap_base to place the GUP probes' page=.
    const attempts = rng.int(3, 5);
    const inRange = rng.distinct(nHeld + 3, BASE + 0x10, BASE + COUNT - 0x10);
    const held = inRange.slice(0, nHeld);
    const movable = inRange.slice(nHeld).sort((a, b) => a - b);
    const targets = rng.distinct(movable.length, 0x70000, 0x7b000);
    const heldVa = userAddr(ctx);
    const otherVa = userAddr(ctx);
    // Pages whose LRU batch reference is still pending (no drain yet), and the batch holding it (its CPU's kworker).
    const pending = new Set<number>();
    const drainStack = rng.chance(0.5);
    const drainOne = (pfn: number, kw: Task): void => {
      if (!pending.delete(pfn)) return;
      // lru_add_fn sets PG_lru, then the batch's reference is dropped.
      mm.modAndTest(kw, pfn, -1, { flags: ANON_FLAGS, irq: '...1.', stack: drainStack ? names.drain : undefined });
      em.adv(rng.int(1, 8));
    };
    // A page whose drain is not the requester's interleaving: 0 before the GUP get, 1 after it, 2 at the CMA attempt.
    const when = new Map(held.map((pfn) => [pfn, rng.int(0, 2)]));

    await bg.run(rng.int(20_000, 40_000));
    mark(ctx, other, NAME, 'touch heap');
    movable.forEach((pfn) => {
      faultIn(ctx, other, pfn, 4);
      em.adv(rng.int(5, 40));
    });
    mark(ctx, holder, NAME, `start npages=${held.length} era=${era}`);
    for (const pfn of held) {
      // do_anonymous_page: allocation (the mapping's reference), then folio_add_lru_vma's +1 into the LRU batch.
      mm.alloc(holder, pfn, { gfp: FAULT_GFP, mt: 4, allocMt: 1 });
      em.adv(rng.int(1, 12));
      mm.mod(holder, pfn, 1, { flags: OFF_LRU, mapcount: 1, mapping: anonMapping(holder), irq: '...1.' });
      pending.add(pfn);
      em.adv(rng.int(5, 30));
      if (when.get(pfn) === 0 && rng.chance(0.5)) drainOne(pfn, kworkers[holder.cpu]!);
    }
    for (const pfn of held) if (when.get(pfn) === 0) drainOne(pfn, kworkers[rng.int(0, 1)]!);
    em.adv(rng.int(50, 300));
    sysEnter(em, holder, 'vmsplice', [['fd', 5], ['uiov', rng.int(0x30000000, 0x3fffffff)], ['nr_segs', held.length], ['flags', 0]]);
    for (const [i, pfn] of held.entries()) {
      const va = heldVa + i * 0x1000;
      em.adv(rng.int(10, 60));
      kprobe(em, holder, 'gup', 'get_user_pages_fast', `start=${hx(va)} nr_pages=1 gup_flags=0x0`, { stack: S.vmspliceGupFast });
      em.adv(rng.int(2, 20));
      kprobe(em, holder, 'gup', 'internal_get_user_pages_fast', `start=${hx(va)} nr_pages=1 gup_flags=0x4`);
      em.adv(rng.int(2, 20));
      kprobeOn(em, holder, 'gup', names.probe, names.grab, `page=${pageArg(pfn)} refs=1 flags=0x4`, { irq: 'd....' });
      mm.modUnless(holder, pfn, 1, { irq: 'd....' });
      em.adv(rng.int(1, 10));
      kretprobe(em, holder, 'gup', `${names.probe}_ret`, names.grab, 'internal_get_user_pages_fast+0x59d', `folio=${pageArg(pfn)}`, { irq: 'd....' });
      // A drain on the other CPU right after the get.
      if (when.get(pfn) === 1 && rng.chance(0.5)) drainOne(pfn, kworkers[1 - holder.cpu]!);
    }
    em.adv(rng.int(5, 30));
    sysExit(em, holder, 'vmsplice', held.length * 0x1000);
    for (const pfn of held) if (when.get(pfn) === 1) drainOne(pfn, kworkers[rng.int(0, 1)]!);
    mark(ctx, holder, NAME, `vmsplice done bytes=${held.length * 4096}`);
    await bg.run(rng.int(100_000, 300_000));

    mark(ctx, cma, NAME, `cma_alloc begin count=${COUNT}`);
    em.adv(rng.int(200, 1500));
    cmaAllocStart(em, cma, 'reserved', COUNT, 0);
    const fin = Math.min(...held);
    const inUse = [...held, ...movable].sort((a, b) => a - b);
    // The requester's putback LRU batch references, dropped by the next drain.
    const putback = new Set<number>();
    for (let k = 0; k < attempts; k++) {
      em.adv(rng.int(100, 2500));
      kprobe(em, cma, 'cmak', 'alloc_contig_range', `start=${hx(BASE + k)} end=${hx(BASE + COUNT + k)} migratetype=4 gfp=0xcc0`);
      em.adv(rng.int(200, 1200));
      for (let d = rng.int(1, 4); d > 0; d--) pcpuDrain(em, cma, BASE + COUNT + 0x40 + rng.int(0, 0x1a0), 5);
      // lru_add_drain_all: each CPU's kworker drains its batch; some pages' drain lands inside the isolation pass.
      const late = new Set<number>();
      for (const pfn of [...pending].sort((a, b) => a - b)) if (rng.chance(0.5)) late.add(pfn);
      for (const pfn of [...pending, ...putback]) if (!late.has(pfn)) {
        if (putback.delete(pfn)) {
          mm.modAndTest(kworkers[cma.cpu]!, pfn, -1, { flags: ANON_FLAGS, irq: '...1.', stack: drainStack ? names.drain : undefined });
          em.adv(rng.int(1, 8));
        } else drainOne(pfn, kworkers[rng.int(0, 1)]!);
      }
      em.adv(rng.int(200, 3000));
      let taken = 0;
      for (const pfn of inUse) {
        if (held.includes(pfn)) {
          const onLru = !pending.has(pfn) && !putback.has(pfn);
          if (era === '5.15' && !onLru) {
            // The LRU test comes first: a page off the LRU is skipped without a reference.
            if (late.has(pfn)) drainOne(pfn, kworkers[1 - cma.cpu]!);
            continue;
          }
          mm.modUnless(cma, pfn, 1, { mt: 5, flags: onLru ? 'referenced|' + ANON_FLAGS : OFF_LRU });
          em.adv(rng.int(1, 10));
          // The kworker's drain on the other CPU, between the requester's get and its put.
          if (late.has(pfn)) drainOne(pfn, kworkers[1 - cma.cpu]!);
          if (!onLru || rng.chance(0.5)) {
            // Not on the LRU (6.1+: folio_test_lru after the get), or page_count > mapcount: put, skip.
            mm.modAndTest(cma, pfn, -1, {});
          } else {
            // Isolated (PG_lru cleared); migrate_pages fails on the extra reference; putback_lru_page:
            // folio_add_lru takes the batch's reference, then the isolation reference is dropped.
            mm.get(pfn).flags = ISOLATED;
            em.adv(rng.int(20, 400));
            mm.mod(cma, pfn, 1, { flags: OFF_LRU, stack: rng.chance(0.5) ? names.putback : undefined });
            em.adv(rng.int(1, 10));
            mm.modAndTest(cma, pfn, -1, {});
            putback.add(pfn);
          }
        } else if (mm.pages.has(pfn)) {
          mm.modUnless(cma, pfn, 1, { mt: 5, irq: 'd..1.' });
          taken++;
        }
        em.adv(rng.int(3, 120));
      }
      for (const pfn of late) drainOne(pfn, kworkers[rng.int(0, 1)]!);
      failedContigRound(ctx, { cma, other, base: BASE, count: COUNT, taken, movable, targets, otherVa, held, fin, k });
      bg.sprinkle(0.3);
    }
    em.adv(rng.int(100, 400));
    cmaAllocClass(em, cma, 'cma_alloc_finish', 'reserved', BASE + attempts - 1, false, COUNT, 0, { stack: S.cmaAlloc });
    mark(ctx, cma, NAME, 'cma_alloc done ret=-12');
    // A later drain (vmstat, another lru_add_drain_all) returns the requester's putback batch references.
    em.adv(rng.int(1000, 20_000));
    for (const pfn of [...putback].sort((a, b) => a - b)) {
      mm.modAndTest(kworkers[cma.cpu]!, pfn, -1, { flags: ANON_FLAGS, irq: '...1.', stack: drainStack ? names.drain : undefined });
      em.adv(rng.int(1, 8));
    }
    putback.clear();
    await bg.run(rng.int(50_000, 150_000));
    // Sometimes the pipe is read: each buffer's release drops the vmsplice reference (another task: the reader).
    const ends = new Map<number, number>();
    if (rng.chance(0.5)) {
      mark(ctx, reader, NAME, 'read pipe');
      for (const pfn of held) {
        em.adv(rng.int(5, 40));
        mm.modAndTest(reader, pfn, -1, { flags: ANON_FLAGS, stack: rng.chance(0.5) ? names.release : undefined });
        ends.set(pfn, ns(em.now));
      }
    }
    await bg.run(rng.int(50_000, 100_000));

    return {
      description:
        `${era}: pipe_hold (pid ${holder.pid}) holds vmsplice (FOLL_GET) references on ${held.length} CMA pages, their LRU batch ` +
        `references drained by kworkers before/after the get or during the CMA attempt; cma_test (pid ${cma.pid}) cma_alloc(reserved, ${COUNT}) ` +
        `fails after ${attempts} busy retries while isolating and putting back those pages${ends.size ? '; the pipe is read afterwards' : ''}.`,
      expect: {
        pins: [],
        anomalies: [],
        leaks: [],
        holds: held.map((pfn) => ({ pfn, refs: 1, holder_pid: holder.pid, holder_comm: holder.comm, end_ts_ns: ends.get(pfn) ?? null })),
        cma_attempts: [{ kind: 'alloc', cma_name: 'reserved', busy_retries: attempts, succeeded: false }],
        cma_blockers: held.map((pfn) => ({ pfn, holder_kind: 'hold' as const, holder_pid: holder.pid, holder_comm: holder.comm, refs: 1 })),
      },
      forbid: forbidAllBut(),
    };
  },
};
