/**
 * iouring-longterm: io_uring fixed buffers, i.e. FOLL_PIN | FOLL_LONGTERM pins (qemu-6.1 a-iouring-longterm).
 *
 * `iouring_pin` faults in a 16-page buffer, 4 of whose pages landed in CMA (mt=4), and registers it
 * (IORING_REGISTER_BUFFERS): kprobes pin_user_pages gup_flags=0x10001 (FOLL_WRITE|FOLL_LONGTERM),
 * __gup_longterm_locked gup_flags=0x50001 (+FOLL_PIN), __get_user_pages, then per page try_grab_page flags=0x50001
 * and page_ref_mod val=1024 (GUP_PIN_COUNTING_BIAS, the 6.1 slow path).
 * CMA pages are not long-term pinnable, so check_and_migrate_movable_pages (inlined in 6.1):
 * collect_longterm_unpinnable_pages isolates the 4 CMA folios from the LRU (folio_isolate_lru: +1), then
 * migrate_longterm_unpinnable_pages unpins EVERY page of the batch (unpin_user_page -> gup_put_folio ->
 * page_ref_mod_and_test val=-1024), migrates the 4 (mm_migrate_pages_start mode=MIGRATE_SYNC reason=longterm_pin,
 * new pages outside CMA with GFP_USER|__GFP_NOWARN, old ones freed) and returns -EAGAIN; __gup_longterm_locked then
 * pins all 16 (now non-CMA) pages again. They stay pinned ~1 s, until IORING_UNREGISTER_BUFFERS (unpin_user_page
 * + gup_put_folio refs=1 flags=0x40000 + page_ref_mod_and_test val=-1024), then the buffer is unmapped and freed.
 *
 * Truth: 32 pins: the first round's 16 (4 of them in_cma) released microseconds later by the kernel itself, and the
 * 16 long-term pins held ~1 s, linked to the migration (migrated); all longterm (probe flags 0x50001), all released. No finding: the CMA pins are the
 * kernel checking pinnability, released before pin_user_pages returned and followed by longterm_pin migration.
 *
 * iouring-longterm-cma (runIouring with bug=true): the pin lands on the CMA pages anyway (no migration round) and is
 * held ~1 s: 16 pins, longterm_pin_in_cma on each of the 4 CMA pfns.
 */
import { hx, kprobe, kretprobe, migrateDone, migrateStart, sysEnter, sysExit, tp } from '../events.js';
import { Background } from '../noise.js';
import { S } from '../stacks.js';
import { forbidAllBut, ns, type Ctx, type ScenarioDef, type ScenarioResult, type TruthAnomaly, type TruthPin } from '../types.js';
import { begin, faultIn, kptr, mark, migratePage, munmapFree, pageArg, task, userAddr } from './common.js';

const NPAGES = 16;

export async function runIouring(ctx: Ctx, bug: boolean): Promise<ScenarioResult> {
  const { em, mm, rng } = ctx;
  const name = bug ? 'iouring-longterm-cma' : 'iouring-longterm';
  const bg = new Background(ctx, { rate: 1.5 });
  begin(ctx);
  const t = task('iouring_pin', rng.int(3200, 3290), 0);
  const cmaIdx = new Set(rng.distinct(4, 0, NPAGES));
  const normal = rng.distinct(NPAGES, 0x70000, 0x7b000);
  const inCma = rng.distinct(NPAGES, 0x7bc00, 0x7e000);
  let pfns = normal.map((p, i) => (cmaIdx.has(i) ? inCma[i]! : p));
  const buf = userAddr(ctx);
  const ring = kptr(ctx, 0x1000);
  const mmPtr = kptr(ctx, 0x400);
  const pagesArr = kptr(ctx, 0x1000);
  const pins: TruthPin[] = [];
  const open = new Map<number, TruthPin>();

  const pinAll = (list: number[], migrated: boolean): void => {
    kprobe(em, t, 'gup', '__get_user_pages', `mm=0x${mmPtr} start=${hx(buf)} nr_pages=${NPAGES} gup_flags=0x50001`);
    for (const pfn of list) {
      em.adv(rng.int(5, 60));
      // follow_page_pte -> try_grab_page(FOLL_PIN): folio_ref_add(folio, GUP_PIN_COUNTING_BIAS).
      kprobe(em, t, 'gup', 'try_grab_page', `page=${pageArg(pfn)} flags=0x50001`, { irq: '...1.', stack: S.ioGrab });
      mm.mod(t, pfn, 1024, { irq: '...1.' });
      const mt = mm.get(pfn).mt;
      const pin: TruthPin = { pfn, refs: 1, holder_pid: t.pid, holder_comm: t.comm, start_ts_ns: ns(em.now), end_ts_ns: null, longterm: true, in_cma: mt === 4 || mt === 5, large_folio: false, migrated };
      pins.push(pin);
      open.set(pfn, pin);
    }
  };
  const unpinAll = (list: number[], stack: readonly string[]): void => {
    for (const pfn of list) {
      em.adv(rng.int(3, 40));
      // unpin_user_page -> gup_put_folio(folio, 1, FOLL_PIN) -> folio_put_refs(folio, 1024).
      kprobe(em, t, 'gup', 'unpin_user_page', `page=${pageArg(pfn)}`, { stack });
      kprobe(em, t, 'gup', 'gup_put_folio', `folio=${pageArg(pfn)} refs=1 flags=0x40000`);
      mm.modAndTest(t, pfn, -1024);
      open.get(pfn)!.end_ts_ns = ns(em.now);
      open.delete(pfn);
    }
  };

  await bg.run(rng.int(30_000, 80_000));
  mark(ctx, t, name, `start npages=${NPAGES}`);
  sysEnter(em, t, 'io_uring_setup', [['entries', 8], ['params', 0x7ffc1faf5000 + rng.int(0, 0xfff) * 0x10]]);
  em.adv(rng.int(100, 500));
  tp(em, t, 'io_uring', 'io_uring_create', (f) => `ring ${f === 'ftrace' ? ring : '0x' + ring}, fd 4 sq size 8, cq size 16, flags 0x0`);
  sysExit(em, t, 'io_uring_setup', 4);
  pfns.forEach((pfn, i) => {
    faultIn(ctx, t, pfn, cmaIdx.has(i) ? 4 : 1, i === 0);
    em.adv(rng.int(5, 40));
    bg.sprinkle(0.2);
  });
  await bg.run(rng.int(10_000, 30_000));

  mark(ctx, t, name, 'register_buffers begin');
  em.adv(rng.int(50, 300));
  sysEnter(em, t, 'io_uring_register', [['fd', 4], ['opcode', 0], ['arg', 0x7ffc1faf5db0], ['nr_args', 1]]);
  em.adv(rng.int(200, 2000));
  kprobe(em, t, 'gup', 'pin_user_pages', `start=${hx(buf)} nr_pages=${NPAGES} gup_flags=0x10001`, { stack: S.ioPin });
  em.adv(rng.int(50, 300));
  kprobe(em, t, 'gup', '__gup_longterm_locked', `mm=0x${mmPtr} start=${hx(buf)} nr_pages=${NPAGES} pages=0x${pagesArr} gup_flags=0x50001`, { stack: S.ioLongterm });
  em.adv(rng.int(50, 300));
  pinAll(pfns, false);
  const cmaPfns = pfns.filter((_, i) => cmaIdx.has(i));
  if (!bug) {
    em.adv(rng.int(20, 200));
    // collect_longterm_unpinnable_pages: folio_isolate_lru takes a reference on each CMA folio.
    for (const pfn of cmaPfns) {
      mm.mod(t, pfn, 1, { flags: 'uptodate|mappedtodisk|swapbacked' });
      em.adv(rng.int(2, 20));
    }
    // migrate_longterm_unpinnable_pages: unpin the whole batch...
    unpinAll(pfns, S.ioUnpinForMigrate);
    em.adv(rng.int(50, 400));
    // ...and migrate the unpinnable ones away from CMA (each now holds its mapping + the isolation reference).
    migrateStart(em, t, 'longterm_pin');
    const dst = rng.distinct(cmaPfns.length, 0x70000, 0x7b000, (x) => normal.includes(x));
    cmaPfns.forEach((pfn, j) => {
      migratePage(ctx, t, t, pfn, dst[j]!, buf + pfns.indexOf(pfn) * 0x1000, 'GFP_USER|__GFP_NOWARN');
      em.adv(rng.int(20, 200));
    });
    migrateDone(em, t, cmaPfns.length, 0, 'longterm_pin');
    pfns = pfns.map((p) => (cmaPfns.includes(p) ? dst[cmaPfns.indexOf(p)]! : p));
    em.adv(rng.int(50, 400));
    // -EAGAIN: __gup_longterm_locked pins the range again (these pins follow the longterm_pin migration).
    pinAll(pfns, true);
  }
  em.adv(rng.int(100, 800));
  kretprobe(em, t, 'gup', 'pin_user_pages_ret', 'pin_user_pages', 'io_pin_pages+0xc8', `ret=${NPAGES}`);
  em.adv(rng.int(200, 2000));
  tp(em, t, 'io_uring', 'io_uring_register', (f) => `ring ${f === 'ftrace' ? ring : '0x' + ring}, opcode 0, nr_user_files 0, nr_user_bufs 1, ret 0`);
  sysExit(em, t, 'io_uring_register', 0);
  mark(ctx, t, name, 'register_buffers done');

  await bg.run(rng.int(950_000, 1_100_000));

  t.cpu = 1; // the scheduler moved the task meanwhile
  mark(ctx, t, name, 'unregister_buffers begin');
  em.adv(rng.int(50, 300));
  sysEnter(em, t, 'io_uring_register', [['fd', 4], ['opcode', 1], ['arg', 0], ['nr_args', 0]]);
  em.adv(rng.int(2000, 15000));
  unpinAll(pfns, S.ioUnpin);
  em.adv(rng.int(100, 800));
  tp(em, t, 'io_uring', 'io_uring_register', (f) => `ring ${f === 'ftrace' ? ring : '0x' + ring}, opcode 1, nr_user_files 0, nr_user_bufs 0, ret 0`);
  sysExit(em, t, 'io_uring_register', 0);
  await bg.run(rng.int(100_000, 300_000));
  mark(ctx, t, name, 'munmap buffer');
  munmapFree(ctx, t, pfns, buf);
  await bg.run(rng.int(50_000, 100_000));
  mark(ctx, t, name, 'end');

  const anomalies: TruthAnomaly[] = bug ? cmaPfns.map((pfn) => ({ kind: 'longterm_pin_in_cma', pfn, certain: true, pid: t.pid, comm: t.comm })) : [];
  return {
    description: bug
      ? `iouring_pin (pid ${t.pid}) registers a 16-page fixed buffer; 4 pages are in CMA and stay FOLL_LONGTERM-pinned there ~1 s (no migration): longterm_pin_in_cma x4.`
      : `iouring_pin (pid ${t.pid}) registers a 16-page fixed buffer: the first pin round finds 4 CMA pages, unpins the batch, migrates them (reason=longterm_pin) and pins again; held ~1 s, all released. No finding.`,
    expect: { pins, anomalies, leaks: [], cma_attempts: [] },
    forbid: bug ? forbidAllBut('longterm_pin_in_cma') : forbidAllBut(),
  };
}

export const iouringLongterm: ScenarioDef = {
  name: 'iouring-longterm',
  summary: 'io_uring fixed buffer: FOLL_LONGTERM pins, CMA pages migrated away (reason=longterm_pin), held ~1 s, released: no finding',
  run: (ctx) => runIouring(ctx, false),
};
