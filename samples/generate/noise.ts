/**
 * Background noise: ~50 ordinary tasks allocating, mapping, reading files, taking transient references and
 * freeing, the way e-mixed.trace.txt (qemu-6.1) and live-6.18 look, so a tool has to pick the scenario's rows
 * out of unrelated traffic. Every operation is complete when it returns (a transient get is put again a few µs
 * later), so the background never leaves a reference behind: it has no pins, no long holds, no leaks; pages
 * still allocated when the trace ends are window edges. Pages alive before the capture are adopted without an
 * allocation event (window start). Memory is bounded: at most LIVE_CAP pages are alive at once.
 */
import type { Task } from './emit.js';
import { NULL_PTR, cmaAllocClass, cmaAllocStart, cmaRelease, filemap, hx, kprobe, kretprobe, marker, pcpuDrain, testPagesIsolated, tp } from './events.js';
import { S } from './stacks.js';
import type { Ctx, TruthCmaAttempt } from './types.js';

type Kind = 'anon' | 'kernel' | 'file' | 'mapped-file';

interface BgPage {
  pfn: number;
  owner: Task;
  kind: Kind;
  order: number;
  ino: number;
  index: number;
}

export interface NoiseOptions {
  /** Operations per millisecond of trace time (each is 2..8 events), multiplied by the scale unless `fixedRate`. */
  rate?: number;
  fixedRate?: boolean;
  /** Fraction of operations whose key event gets a stack (~5% of all events with the default 0.15). */
  stackRate?: number;
  /** cma_alloc successes and cma_release in the background (only the noise scenario: keeps cma_attempts exact elsewhere). */
  cma?: boolean;
  /** Pages alive before the capture. */
  preexisting?: number;
}

const LIVE_CAP = 1500;
const NORMAL: [number, number] = [0x1000, 0x70000];
const CMA_MOVABLE: [number, number] = [0x7e000, 0x7f800];
const CMA_POOL: [number, number] = [0x7f800, 0x7fc00];

/** comm, kernel thread, thread-group leader comm. TASK_COMM_LEN is 16: at most 15 characters. */
const TASKS: [string, boolean, string?][] = [
  ['kworker/u4:0', true], ['kworker/u4:1', true], ['kworker/0:1', true], ['kworker/1:2H', true], ['ksoftirqd/0', true],
  ['ksoftirqd/1', true], ['kswapd0', true], ['khugepaged', true], ['kcompactd0', true], ['jbd2/vda1-8', true],
  ['rcu_preempt', true], ['irq/24-virtio0', true], ['migration/1', true], ['kworker/1:0', true],
  ['systemd', false], ['systemd-journal', false], ['systemd-udevd', false], ['dbus-daemon', false], ['NetworkManager', false],
  ['sshd', false], ['bash', false], ['Xwayland', false], ['gnome-shell', false], ['gmain', false, 'gnome-shell'],
  ['gdbus', false, 'gnome-shell'], ['pool-0', false, 'gnome-shell'], ['pulseaudio', false], ['firefox', false],
  ['Socket Thread', false, 'firefox'], ['IPC I/O Parent', false, 'firefox'], ['Web Content', false],
  ['DOM Worker', false, 'Web Content'], ['gmain-thr:3', false, 'Web Content'], ['WebExtensions', false],
  ['Chrome_IOThread', false], ['cc1plus', false], ['as', false], ['ld.lld', false], ['rustc', false], ['node', false],
  ['python3', false], ['java', false], ['C2 CompilerThre', false, 'java'], ['GC Thread#0', false, 'java'],
  ['containerd', false], ['postgres: walwr', false], ['sd-resolve', false, 'systemd'], ['cam-stream', false],
];

const ANON_FLAGS = 'uptodate|lru|mappedtodisk|swapbacked';
const FILE_FLAGS = 'referenced|uptodate|lru|mappedtodisk';

export class Background {
  readonly tasks: Task[] = [];
  readonly idle: Task[] = [{ comm: '<idle>', pid: 0, tgid: null, cpu: 0 }, { comm: '<idle>', pid: 0, tgid: null, cpu: 1 }];
  /** cma_alloc/cma_release calls made by the background, in trace order (for the truth). */
  readonly cmaAttempts: TruthCmaAttempt[] = [];
  private readonly live: BgPage[] = [];
  private readonly index = new Map<number, number>();
  private readonly occupied = new Set<number>();
  private readonly recentFree: [number, number][] = [];
  private readonly paused = new Set<number>();
  private readonly anonVma = new Map<number, string>();
  private readonly cmaLive: [number, number][] = [];
  private readonly rate: number;
  private readonly stackRate: number;
  private readonly cma: boolean;
  private nextChild = 30000;
  private ticks = 0;
  private readonly camera: Task;
  private readonly kthreads = new Set<Task>();

  constructor(private readonly ctx: Ctx, o: NoiseOptions = {}) {
    const { rng } = ctx;
    this.rate = (o.rate ?? 1) * (o.fixedRate ? 1 : ctx.scale);
    this.stackRate = o.stackRate ?? 0.15;
    this.cma = o.cma ?? false;
    const kpids = rng.distinct(TASKS.length, 2, 400);
    const upids = rng.distinct(TASKS.length, 400, 2000);
    const byComm = new Map<string, Task>();
    TASKS.forEach(([comm, kthread, leader], i) => {
      const pid = comm === 'systemd' ? 1 : kthread ? kpids[i]! : upids[i]!;
      const tgid = leader ? byComm.get(leader)!.tgid : pid;
      const t: Task = { comm, pid, tgid, cpu: rng.int(0, 1) };
      byComm.set(comm, t);
      this.tasks.push(t);
      if (kthread) this.kthreads.add(t);
    });
    this.camera = byComm.get('cam-stream')!;
    for (let i = 0; i < (o.preexisting ?? 150); i++) this.adoptOne();
  }

  /** Stop (or resume) background activity on a CPU, e.g. while the scenario loses that CPU's events. */
  pause(cpu: number, on: boolean): void {
    if (on) this.paused.add(cpu);
    else this.paused.delete(cpu);
  }

  /** Background traffic for `us` microseconds of trace time. */
  async run(us: number): Promise<void> {
    const { em, rng } = this.ctx;
    const end = em.now + us;
    const gap = 1000 / this.rate;
    while (em.now < end) {
      this.op();
      em.adv(Math.min(rng.exp(gap), Math.max(1, end - em.now)));
      if (++this.ticks % 64 === 0) await em.pump();
    }
  }

  /** Maybe one operation now (to interleave the background with a scenario's own steps). */
  sprinkle(p = 0.5): void {
    if (this.ctx.rng.chance(p)) this.op();
  }

  /** One background operation at the current time. */
  op(): void {
    const { rng } = this.ctx;
    const full = this.live.length >= LIVE_CAP;
    const r = rng.next() * 100;
    let done = false;
    if (r < (full ? 4 : 16)) done = this.fault();
    else if (r < 30) done = this.unmap();
    else if (r < 37) done = full ? this.kfree() : this.kalloc();
    else if (r < 43) done = this.kfree();
    else if (r < 68) done = this.transient();
    else if (r < 74) done = full ? this.fileDrop() : this.fileRead();
    else if (r < 80) done = this.fileDrop();
    else if (r < 84) done = this.drain();
    else if (r < 86) done = this.mark();
    else if (r < 88) done = this.rcuFree();
    else if (r < 89) done = this.forkExec();
    else if (r < 90 && this.cma && rng.chance(0.3)) done = this.cmaOp();
    else done = this.transient();
    if (!done) done = this.transient();
    // Nothing else to do: allocate, but never past the cap (kernel pages are not picked by transient(), so an
    // uncapped fallback would let them pile up and the live set grow with the trace).
    if (!done) done = full ? this.kfree() : this.kalloc();
  }

  // ---- operations (each returns false when it has nothing to work on)

  private fault(): boolean {
    const { mm, em, rng } = this.ctx;
    const t = this.user();
    if (!t) return false;
    const inCma = rng.chance(0.1);
    const pfn = this.freePfn(0, inCma ? CMA_MOVABLE : NORMAL);
    if (pfn === null) return false;
    // do_anonymous_page: allocate (page_ref_set + mm_page_alloc), page_add_new_anon_rmap, then
    // folio_add_lru_vma takes an LRU-batch reference that the batch drain drops again.
    mm.alloc(t, pfn, { gfp: 'GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO', mt: inCma ? 4 : 1, allocMt: 1, zoneLocked: rng.chance(0.08), stack: this.stack(S.anonAlloc) });
    em.adv(rng.int(0, 15));
    mm.mod(t, pfn, 1, { flags: 'uptodate|mappedtodisk|swapbacked', mapcount: 1, mapping: this.anon(t), irq: '...1.' });
    em.adv(rng.int(0, 40));
    mm.modAndTest(t, pfn, -1, { flags: ANON_FLAGS, irq: '...2.' });
    this.add({ pfn, owner: t, kind: 'anon', order: 0, ino: 0, index: 0 });
    return true;
  }

  private unmap(): boolean {
    const { mm, rng } = this.ctx;
    const p = this.pick('anon');
    if (!p) return false;
    // zap_pte_range removes the rmap; release_pages drops the mapping's reference (the last one).
    const exit = rng.chance(0.3);
    mm.free(p.owner, p.pfn, { batched: rng.chance(0.6), irq: '...1.', flags: ANON_FLAGS, stack: this.stack(exit ? S.exitPut : S.munmapPut) });
    this.remove(p);
    return true;
  }

  private kalloc(): boolean {
    const { mm, rng } = this.ctx;
    const t = this.anyTask();
    if (!t) return false;
    const order = rng.pick([0, 0, 0, 0, 0, 1, 2, 3]);
    const pfn = this.freePfn(order, NORMAL);
    if (pfn === null) return false;
    const [gfp, st] = rng.pick([
      ['GFP_KERNEL_ACCOUNT|__GFP_ZERO', S.ptAlloc],
      ['GFP_KERNEL_ACCOUNT|__GFP_ZERO', S.pgdAlloc],
      ['GFP_KERNEL|__GFP_NOWARN|__GFP_NORETRY|__GFP_COMP', S.slabAlloc],
      ['GFP_NOWAIT|__GFP_NOWARN', S.slabAlloc],
    ] as const);
    mm.alloc(t, pfn, { gfp: order > 0 && !gfp.includes('COMP') ? gfp + '|__GFP_COMP' : gfp, mt: 0, order, stack: this.stack(st), zoneLocked: order > 0 && rng.chance(0.3) });
    this.add({ pfn, owner: t, kind: 'kernel', order, ino: 0, index: 0 });
    return true;
  }

  private kfree(): boolean {
    const { mm, rng } = this.ctx;
    const p = this.pick('kernel');
    if (!p) return false;
    const t = rng.chance(0.6) ? p.owner : this.anyTask();
    if (!t) return false;
    mm.free(t, p.pfn, { stack: this.stack(rng.chance(0.5) ? S.slabFree : S.ptFreeExit) });
    this.remove(p);
    return true;
  }

  private rcuFree(): boolean {
    const { mm, rng } = this.ctx;
    const p = this.pick('kernel');
    const cpus = this.idle.filter((t) => !this.paused.has(t.cpu));
    if (!p || p.order !== 0 || cpus.length === 0) return false;
    // tlb_remove_table_rcu frees a page-table page from the RCU softirq, on an idle CPU.
    mm.free(rng.pick(cpus), p.pfn, { irq: '..s1.', stack: this.stack(S.rcuFree) });
    this.remove(p);
    return true;
  }

  /** A short-lived reference: folio_try_get/folio_put (page cache lookup, reclaim, khugepaged) or get_page/put_page. */
  private transient(): boolean {
    const { mm, em, rng } = this.ctx;
    const p = this.live.length ? rng.pick(this.live) : null;
    const t = this.anyTask();
    if (!p || !t || p.kind === 'kernel') return false;
    const kt = this.kthreads.has(t);
    const st = p.kind === 'anon' ? (kt ? S.khugepagedScan : S.numaFault) : kt ? S.lruIsolate : S.pagecacheGet;
    if (rng.chance(0.6)) mm.modUnless(t, p.pfn, 1, { stack: this.stack(st) });
    else mm.mod(t, p.pfn, 1, { irq: '...1.', stack: this.stack(st) });
    em.adv(rng.int(0, 120));
    mm.modAndTest(t, p.pfn, -1);
    return true;
  }

  private fileRead(): boolean {
    const { mm, em, rng } = this.ctx;
    const t = this.user();
    if (!t) return false;
    const pfn = this.freePfn(0, NORMAL);
    if (pfn === null) return false;
    const ino = 0x5249e0 + (t.pid % 7) * 0x11 + rng.int(0, 3);
    const index = rng.int(0, 4000);
    const mapping = 'ff11000003' + ((ino * 0x98) & 0xfffff).toString(16).padStart(5, '0') + '0'; // the inode's address_space
    // page_cache_ra_unbounded: filemap_alloc_folio, filemap_add_folio (folio_ref_add: the page cache's
    // reference), LRU batch get/put, then the reader's folio_put once the read is done.
    mm.alloc(t, pfn, { gfp: 'GFP_HIGHUSER_MOVABLE|__GFP_COMP', mt: 1, stack: this.stack(S.pagecacheAlloc) });
    mm.mod(t, pfn, 1, { flags: 'locked', mapping });
    filemap(em, t, 'mm_filemap_add_to_page_cache', ino, pfn, index);
    mm.mod(t, pfn, 1, { irq: '...1.' });
    mm.modAndTest(t, pfn, -1, { flags: 'locked|lru', irq: '...2.' });
    em.adv(rng.int(5, 80));
    mm.modAndTest(t, pfn, -1, { flags: FILE_FLAGS });
    this.add({ pfn, owner: t, kind: 'file', order: 0, ino, index });
    return true;
  }

  private fileDrop(): boolean {
    const { mm, em, rng } = this.ctx;
    const p = this.pick('file');
    if (!p) return false;
    const kswapd = this.tasks.find((t) => t.comm === 'kswapd0')!;
    const t = rng.chance(0.5) && !this.paused.has(kswapd.cpu) ? kswapd : p.owner;
    if (this.paused.has(t.cpu)) return false;
    filemap(em, t, 'mm_filemap_delete_from_page_cache', p.ino, p.pfn, p.index);
    mm.free(t, p.pfn, { flags: 'uptodate|lru', batched: rng.chance(0.5), stack: this.stack(S.pagecacheEvict) });
    this.remove(p);
    return true;
  }

  /** drain_pages_zone: pages going back from a per-cpu list to the buddy allocator. */
  private drain(): boolean {
    const { em, rng } = this.ctx;
    const t = this.anyTask();
    if (!t || this.recentFree.length === 0) return false;
    for (let n = rng.int(1, 6); n > 0 && this.recentFree.length > 0; n--) {
      const [pfn, mt] = this.recentFree.shift()!;
      if (!this.occupied.has(pfn)) pcpuDrain(em, t, pfn, mt);
    }
    return true;
  }

  private mark(): boolean {
    const { em, rng } = this.ctx;
    const t = this.user();
    if (!t) return false;
    const text = rng.pick([`B|${t.tgid}|frame`, `E|${t.tgid}`, `C|${t.tgid}|queue|${rng.int(0, 40)}`, `noise pid=${t.pid} step=tick`]);
    marker(em, t, text);
    return true;
  }

  private forkExec(): boolean {
    const { em } = this.ctx;
    const bash = this.tasks.find((t) => t.comm === 'bash')!;
    if (this.paused.has(bash.cpu)) return false;
    const pid = this.nextChild++;
    tp(em, bash, 'sched', 'sched_process_fork', `comm=bash pid=${bash.pid} child_comm=bash child_pid=${pid}`);
    const child: Task = { comm: 'true', pid, tgid: pid, cpu: bash.cpu };
    em.adv(40);
    tp(em, child, 'sched', 'sched_process_exec', `filename=/usr/bin/true pid=${pid} old_pid=${pid}`);
    em.adv(60);
    tp(em, child, 'sched', 'sched_process_exit', `comm=true pid=${pid} prio=120`);
    return true;
  }

  /** A successful cma_alloc from the camera task (dma_alloc_coherent on its CMA pool), or a cma_release. */
  private cmaOp(): boolean {
    const { em, mm, rng } = this.ctx;
    const t = this.camera;
    if (this.paused.has(t.cpu)) return false;
    if (this.cmaLive.length > 0 && (this.cmaLive.length > 6 || rng.chance(0.5))) {
      const [pfn, count] = this.cmaLive.splice(rng.int(0, this.cmaLive.length - 1), 1)[0]!;
      // cma_release -> free_contig_range (__free_page per page), then the trace event.
      for (let i = 0; i < count; i++) mm.free(t, pfn + i, { flags: 'none' });
      cmaRelease(em, t, 'reserved', pfn, count);
      this.cmaAttempts.push({ kind: 'release', cma_name: 'reserved', busy_retries: 0, succeeded: null });
      return true;
    }
    const align = rng.int(0, 3);
    const count = rng.pick([4, 8, 16, 32]);
    const pfn = this.cmaSlot(count, align);
    if (pfn === null) return false;
    cmaAllocStart(em, t, 'reserved', count, align);
    em.adv(rng.int(20, 200));
    kprobe(em, t, 'cmak', 'alloc_contig_range', `start=${hx(pfn)} end=${hx(pfn + count)} migratetype=4 gfp=0xcc0`);
    em.adv(rng.int(50, 900));
    testPagesIsolated(em, t, pfn & ~0x1ff, pfn + count, ((pfn + count + 0x1ff) & ~0x1ff));
    // isolate_freepages_range -> split_map_pages: each page gets set_page_refcounted while its pageblock is isolated (mt=5).
    for (let i = 0; i < count; i++) {
      mm.adopt(pfn + i, { count: 0, mapcount: 0, flags: 'none', mapping: NULL_PTR, mt: 5, order: 0 });
      mm.set(t, pfn + i, 1);
      mm.get(pfn + i).mt = 4;
    }
    kretprobe(em, t, 'cmak', 'alloc_contig_range_ret', 'alloc_contig_range', 'cma_alloc+0x149', 'ret=0');
    cmaAllocClass(em, t, 'cma_alloc_finish', 'reserved', pfn, true, count, align, { stack: this.stack(S.dmaCma) });
    this.cmaLive.push([pfn, count]);
    this.cmaAttempts.push({ kind: 'alloc', cma_name: 'reserved', busy_retries: 0, succeeded: true });
    return true;
  }

  // ---- bookkeeping

  private cmaSlot(count: number, align: number): number | null {
    const step = 1 << align;
    for (let pfn = CMA_POOL[0]; pfn + count <= CMA_POOL[1]; pfn += step) {
      if (this.cmaLive.every(([p, c]) => pfn + count <= p || pfn >= p + c)) return pfn;
    }
    return null;
  }

  private adoptOne(): void {
    const { mm, rng } = this.ctx;
    const t = this.user()!;
    const pfn = this.freePfn(0, NORMAL)!;
    if (rng.chance(0.6)) {
      mm.adopt(pfn, { count: 1, mapcount: 1, flags: ANON_FLAGS, mapping: this.anon(t), mt: 1, order: 0 });
      this.add({ pfn, owner: t, kind: 'anon', order: 0, ino: 0, index: 0 });
    } else {
      // A file page: the page cache's reference plus one per mapping.
      const maps = rng.pick([0, 0, 1, 2]);
      mm.adopt(pfn, { count: 1 + maps, mapcount: maps, flags: 'referenced|uptodate|lru|active|mappedtodisk', mapping: 'ff110000' + rng.int(0x2000000, 0x3ffffff).toString(16) + '0', mt: 1, order: 0 });
      this.add({ pfn, owner: t, kind: maps ? 'mapped-file' : 'file', order: 0, ino: 0x4a1 + rng.int(0, 50), index: rng.int(0, 500) });
    }
  }

  private freePfn(order: number, [lo, hi]: [number, number]): number | null {
    const { rng } = this.ctx;
    const n = 1 << order;
    for (let tries = 0; tries < 64; tries++) {
      const pfn = rng.int(lo / n, hi / n - 1) * n;
      let ok = true;
      for (let i = 0; i < n && ok; i++) ok = !this.occupied.has(pfn + i) && !this.ctx.mm.pages.has(pfn + i);
      if (ok) return pfn;
    }
    return null;
  }

  private add(p: BgPage): void {
    this.index.set(p.pfn, this.live.length);
    this.live.push(p);
    for (let i = 0; i < 1 << p.order; i++) this.occupied.add(p.pfn + i);
  }

  private remove(p: BgPage): void {
    const i = this.index.get(p.pfn)!;
    const last = this.live.pop()!;
    if (last !== p) {
      this.live[i] = last;
      this.index.set(last.pfn, i);
    }
    this.index.delete(p.pfn);
    for (let k = 0; k < 1 << p.order; k++) this.occupied.delete(p.pfn + k);
    if (p.order === 0) {
      this.recentFree.push([p.pfn, p.kind === 'kernel' ? 0 : 1]);
      if (this.recentFree.length > 64) this.recentFree.shift();
    }
  }

  /** A random live page of a kind whose owner can run (its CPU is not paused). */
  private pick(kind: Kind): BgPage | null {
    const { rng } = this.ctx;
    for (let tries = 0; tries < 12 && this.live.length > 0; tries++) {
      const p = rng.pick(this.live);
      if (p.kind === kind && !this.paused.has(p.owner.cpu)) return p;
    }
    return null;
  }

  private user(): Task | null {
    return this.choose((t) => !this.kthreads.has(t) && t !== this.camera);
  }

  private anyTask(): Task | null {
    return this.choose((t) => t !== this.camera);
  }

  private choose(ok: (t: Task) => boolean): Task | null {
    const { rng } = this.ctx;
    for (let tries = 0; tries < 16; tries++) {
      const t = rng.pick(this.tasks);
      if (ok(t) && !this.paused.has(t.cpu)) return t;
    }
    return null;
  }

  private anon(t: Task): string {
    const key = t.tgid ?? t.pid;
    let m = this.anonVma.get(key);
    if (!m) {
      m = 'ff11000003' + ((key * 0x2c41) & 0xffffff).toString(16).padStart(6, '0');
      m = m.slice(0, 15) + ((parseInt(m.slice(15), 16) | 1).toString(16));
      this.anonVma.set(key, m);
    }
    return m;
  }

  private stack(frames: readonly string[]): readonly string[] | undefined {
    return this.ctx.rng.chance(this.stackRate) ? frames : undefined;
  }
}
