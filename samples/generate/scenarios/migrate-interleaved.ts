/**
 * migrate-interleaved: page-cache migration (freeze / unfreeze) and compaction isolation / putback while other
 * CPUs' speculative gets land between the halves at the very same microsecond (issue #18: multi-event kernel
 * operations are paired by task and CPU, not adjacency). Used by the interleaving property test
 * (test/unit/interleave.test.ts), which re-merges the per-CPU streams, and a CLI scenario (`generate migrate-interleaved`).
 *
 * `migrate_test` (CPU 0) migrates 6 page-cache pages (count 1: the cache's reference), each at one µs
 * (6.1 migrate_pages -> folio_migrate_mapping of a file folio): isolation +1 (folio_try_get: count 2), the new
 * page's allocation (page_ref_set 1 + mm_page_alloc), `page_ref_freeze val=2 ret=1` (count 0),
 * `folio_ref_add(newfolio, 1)` (+1 on the new page: the cache's reference, count 2),
 * `page_ref_unfreeze val=1` (count 1: only the isolation reference left), the put of the isolation reference
 * (ret=1) and mm_page_free of the old page, then the new page's allocation reference dropped (count 1).
 * At that same µs `pagecache_rd` (CPU 1) fails a speculative get on the old page (page_ref_mod_unless val=1
 * ret=0 count=0: frozen, or already at 0), gets/puts a live cache page and sometimes the old page after its unfreeze
 * (a lookup that found it before the slot was replaced), and `kcompactd0` (CPU 2) isolates
 * (+1) and puts back (-1) another live cache page. The interleaving draws move those events anywhere valid.
 * The reader also keeps a reference on a page that is never migrated (splice into a pipe) for 150..250 ms, taken at
 * one migration's µs beside kcompactd's isolation / putback of that page, dropped at the µs of another one.
 * At the end the reader drops every cache page (delete_from_page_cache: -1, freed).
 *
 * Expected: no pin, no anomaly, no leak, no CMA call, no pgmap, nothing outstanding at the end (every page is freed
 * or back to the cache's reference), no inferred gap, one hold (the reader's, closed when the pipe is read); the same
 * findings in every valid interleaving.
 */
import type { Task } from '../emit.js';
import { hx, NULL_PTR, pctr, tp } from '../events.js';
import { Background } from '../noise.js';
import { forbidAllBut, ns, type Ctx, type ScenarioDef } from '../types.js';
import { begin, mark, task } from './common.js';

const NAME = 'migrate-interleaved';
const FILE_FLAGS = 'referenced|uptodate|lru|mappedtodisk';
const MAPPING = 'ff11000006a3c5e8';
const SPEC_GET = ['filemap_get_read_batch', 'filemap_get_pages', 'filemap_read', 'ext4_file_read_iter', 'vfs_read', 'ksys_read', '__x64_sys_read', 'do_syscall_64', 'entry_SYSCALL_64_after_hwframe'];
const SPLICE = ['filemap_splice_read', 'splice_file_to_pipe', 'do_splice', '__x64_sys_splice', 'do_syscall_64', 'entry_SYSCALL_64_after_hwframe'];
const PIPE_RELEASE = ['folio_put', 'page_cache_pipe_buf_release', 'pipe_read', 'vfs_read', 'ksys_read', '__x64_sys_read', 'do_syscall_64', 'entry_SYSCALL_64_after_hwframe'];
const MIGRATE = ['folio_migrate_mapping', 'migrate_folio', 'move_to_new_folio', 'migrate_pages_batch', 'migrate_pages', 'do_move_pages_to_node', 'kernel_move_pages', '__x64_sys_move_pages', 'do_syscall_64', 'entry_SYSCALL_64_after_hwframe'];

/** page_ref_freeze / page_ref_unfreeze (mm.ts has no freeze): the page model's count is kept in step. */
function freezeEv(ctx: Ctx, t: Task, pfn: number, name: 'page_ref_freeze' | 'page_ref_unfreeze', val: number, stack?: readonly string[]): void {
  const p = ctx.mm.get(pfn);
  if (name === 'page_ref_freeze') {
    if (p.count !== val) throw new Error(`generator bug: freezing ${hx(pfn)} at ${p.count}, expected ${val}`);
    p.count = 0;
  } else {
    if (p.count !== 0) throw new Error(`generator bug: unfreezing ${hx(pfn)} at ${p.count}`);
    p.count = val;
  }
  const { count, flags, mapping, mt } = p;
  const mapcount = ctx.mm.shown(p.mapcount);
  const tail = name === 'page_ref_freeze' ? ' ret=1' : '';
  tp(ctx.em, t, 'page_ref', name, (f) => `pfn=${hx(pfn)} flags=${flags} count=${count} mapcount=${mapcount} mapping=${pctr(mapping, f)} mt=${mt} val=${val}${tail}`, {
    stack: stack ? [name === 'page_ref_freeze' ? '__page_ref_freeze' : '__page_ref_unfreeze', ...stack] : undefined,
  });
}

/** A speculative get that fails (get_page_unless_zero on a page at count 0): nothing changes. */
function failedGet(ctx: Ctx, t: Task, pfn: number, p: { flags: string; mapcount: number; mapping: string; mt: number }): void {
  tp(ctx.em, t, 'page_ref', 'page_ref_mod_unless', (f) => `pfn=${hx(pfn)} flags=${p.flags} count=0 mapcount=${ctx.mm.shown(p.mapcount)} mapping=${pctr(p.mapping, f)} mt=${p.mt} val=1 ret=0`, {
    stack: ctx.rng.chance(0.5) ? ['__page_ref_mod_unless', ...SPEC_GET] : undefined,
  });
}

export const migrateInterleaved: ScenarioDef = {
  name: NAME,
  summary: 'page-cache migration (freeze/unfreeze) and kcompactd isolation/putback with other CPUs\' speculative gets at the same µs',
  async run(ctx) {
    const { em, mm, rng } = ctx;
    const bg = new Background(ctx, { rate: 1 });
    begin(ctx);
    const mig = task('migrate_test', rng.int(5100, 5190), 0);
    const reader = task('pagecache_rd', rng.int(5200, 5290), 1);
    const kcd = task('kcompactd0', rng.int(40, 60), 2);
    const cache = rng.distinct(10, 0x60000, 0x68000);
    const targets = rng.distinct(6, 0x68000, 0x6f000);

    await bg.run(rng.int(20_000, 40_000));
    mark(ctx, reader, NAME, 'read file');
    for (const pfn of cache) {
      // filemap_add_folio: the allocation reference becomes the cache's after its +1 and the reader's put.
      mm.alloc(reader, pfn, { gfp: 'GFP_HIGHUSER_MOVABLE', mt: 1 });
      em.adv(rng.int(1, 5));
      mm.mod(reader, pfn, 1, { flags: 'locked|uptodate', mapping: MAPPING, irq: '...1.' });
      em.adv(rng.int(1, 5));
      mm.modAndTest(reader, pfn, -1, { flags: FILE_FLAGS });
      em.adv(rng.int(5, 30));
    }
    await bg.run(rng.int(5_000, 15_000));
    mark(ctx, mig, NAME, 'move_pages');
    const live = cache.slice();
    // Never migrated: the reader keeps a reference on it for > 100 ms (a splice into a pipe), taken and dropped at
    // the µs of kcompactd's isolation / putback of the same page.
    const kept = cache[cache.length - 1]!;
    for (let i = 0; i < targets.length; i++) {
      const old = live[i]!;
      const dst = targets[i]!;
      const others = live.filter((p) => p !== old && p !== kept);
      const q = rng.pick(others);
      const q2 = rng.pick(others.filter((p) => p !== q));
      // One µs: CPU 0's migration with CPU 1's and CPU 2's events in between, in one valid order.
      mm.modUnless(mig, old, 1, { flags: 'referenced|uptodate|mappedtodisk', irq: 'd..1.' });
      mm.alloc(mig, dst, { gfp: 'GFP_HIGHUSER_MOVABLE|__GFP_THISNODE', mt: 1 });
      freezeEv(ctx, mig, old, 'page_ref_freeze', 2, rng.chance(0.5) ? MIGRATE : undefined);
      failedGet(ctx, reader, old, mm.get(old));
      mm.modUnless(kcd, q2, 1, { flags: 'referenced|uptodate|mappedtodisk', irq: 'd..1.' });
      mm.mod(mig, dst, 1, { flags: 'locked|uptodate', mapping: MAPPING, stack: rng.chance(0.5) ? MIGRATE : undefined });
      freezeEv(ctx, mig, old, 'page_ref_unfreeze', 1);
      if (i === 1) {
        mm.modUnless(reader, kept, 1, { stack: SPLICE });
        mm.modUnless(kcd, kept, 1, { flags: 'referenced|uptodate|mappedtodisk', irq: 'd..1.' });
        mm.modAndTest(kcd, kept, -1, { flags: FILE_FLAGS });
      }
      mm.modUnless(reader, q, 1, { stack: rng.chance(0.5) ? SPEC_GET : undefined });
      mm.modAndTest(reader, q, -1);
      if (rng.chance(0.5)) {
        // A lookup that found the old page before the cache slot was replaced: its get succeeds after the unfreeze.
        mm.modUnless(reader, old, 1, { stack: rng.chance(0.5) ? SPEC_GET : undefined });
        mm.modAndTest(reader, old, -1);
      }
      mm.modAndTest(kcd, q2, -1, { flags: FILE_FLAGS });
      const gone = mm.get(old);
      mm.free(mig, old, { flags: 'uptodate|mappedtodisk' });
      if (rng.chance(0.5)) failedGet(ctx, reader, old, { ...gone, mapping: NULL_PTR });
      mm.modAndTest(mig, dst, -1, { flags: FILE_FLAGS });
      live[i] = dst;
      em.adv(rng.int(50, 400));
      bg.sprinkle(0.3);
    }
    await bg.run(rng.int(150_000, 250_000));
    // The pipe is read: the reader's reference goes at the µs of another isolation / putback by kcompactd.
    mm.modUnless(kcd, kept, 1, { flags: 'referenced|uptodate|mappedtodisk', irq: 'd..1.' });
    mm.modAndTest(reader, kept, -1, { stack: PIPE_RELEASE });
    const keptTo = em.now;
    mm.modAndTest(kcd, kept, -1, { flags: FILE_FLAGS });
    await bg.run(rng.int(5_000, 15_000));
    mark(ctx, reader, NAME, 'drop caches');
    for (const pfn of live) {
      mm.free(reader, pfn, { flags: 'uptodate|mappedtodisk', batched: true });
      em.adv(rng.int(1, 10));
    }
    await bg.run(rng.int(10_000, 20_000));
    mark(ctx, mig, NAME, 'end');
    return {
      description: `migrate_test (pid ${mig.pid}, CPU 0) migrates ${targets.length} page-cache pages (freeze/unfreeze) while pagecache_rd (CPU 1) and kcompactd0 (CPU 2) get, fail to get and isolate/put back at the same µs. pagecache_rd holds one page through a pipe for 150..250 ms. No pin, no finding.`,
      expect: {
        pins: [],
        anomalies: [],
        leaks: [],
        cma_attempts: [],
        cma_blockers: [],
        pgmaps: [],
        outstanding: [],
        gaps: [],
        lost_events: 0,
        holds: [{ pfn: kept, refs: 1, holder_pid: reader.pid, holder_comm: reader.comm, end_ts_ns: ns(keptTo) }],
      },
      forbid: forbidAllBut(),
    };
  },
};
