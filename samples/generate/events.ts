/**
 * Payload builders for the non-page_ref events, with the exact TP_printk / kprobe print formats of the
 * 6.1.192 kernel (its tracefs event formats, summarised in docs/formats.md). Where the formats differ,
 * the difference is the printer: the kernel prints `%p` raw (no_hash_pointers) without 0x and NULL as
 * 0000000000000000; libtraceevent (trace-cmd, perf) prints 0x... and (nil), cannot evaluate
 * `vmemmap_base + pfn` for kmem page= (so it shows the pfn), and prints kprobe `(%lx)` as an address where
 * the kernel prints `func+0x0/0xsize`.
 */
import type { EvOpts, Format, Payload, Task, Emitter } from './emit.js';
import { symAddr, symSize, addrPlus } from './kallsyms.js';

export const NULL_PTR = '0000000000000000';
/** x86-64, 5-level paging, nokaslr (qemu-6.1 NOTES): vmemmap_base and sizeof(struct page) = 64. */
export const VMEMMAP_BASE = 'ffd4000000000000';
export const PAGE_OFFSET_BASE = 'ff11000000000000';

export const hx = (n: number): string => '0x' + n.toString(16);

/** struct page pointer of a pfn, 16 hex digits without 0x: vmemmap_base + pfn * 64. */
export function pagePtr(pfn: number): string {
  return 'ffd4' + (pfn * 64).toString(16).padStart(12, '0');
}

/** A `%p` argument. */
export function pctr(hex: string, f: Format): string {
  if (f === 'ftrace') return hex;
  return hex === NULL_PTR ? '(nil)' : '0x' + hex.replace(/^0+(?=.)/, '');
}

/** A `0x%Lx` kprobe fetch argument (the same in every format). */
export function kx(hex: string): string {
  return '0x' + hex.replace(/^0+(?=.)/, '');
}

/** kmem `page=%p` computed from vmemmap_base: raw in the kernel, the pfn itself in libtraceevent. */
export function kmemPage(pfn: number, f: Format): string {
  return f === 'ftrace' ? pagePtr(pfn) : hx(pfn);
}

export function tp(em: Emitter, t: Task, sys: string, name: string, p: string | Payload, o: EvOpts = {}): void {
  em.ev(t, sys, name, p, o, 'tp');
}

/** A kprobe event `group/fn`: `(fn+0x0/0xsize) args` (kernel) or `(addr) args` (libtraceevent). */
export function kprobe(em: Emitter, t: Task, group: string, fn: string, args: string, o: EvOpts = {}): void {
  em.ev(t, group, fn, (f) => (f === 'ftrace' ? `(${fn}+0x0/0x${symSize(fn).toString(16)}) ${args}` : `(${symAddr(fn)}) ${args}`), {
    ...o,
    kind: 'kprobe',
  });
}

/**
 * A kretprobe event `group/name` on `fn` returning to `caller` (`func+0xoff` or a raw module address `0xffffffffc0...`).
 * The kernel prints `(caller+off/size <- fn)`; libtraceevent follows the print fmt `(%lx <- %lx)`,
 * __probe_func then __probe_ret_ip, so the order of the two addresses is reversed.
 */
export function kretprobe(em: Emitter, t: Task, group: string, name: string, fn: string, caller: string, args: string, o: EvOpts = {}): void {
  const tail = args ? ' ' + args : '';
  em.ev(
    t,
    group,
    name,
    (f) => {
      if (caller.startsWith('0x')) return f === 'ftrace' ? `(${caller} <- ${fn})${tail}` : `(${symAddr(fn)} <- ${caller.slice(2)})${tail}`;
      const [cfn, off] = caller.split('+') as [string, string];
      if (f === 'ftrace') return `(${cfn}+${off}/0x${symSize(cfn).toString(16)} <- ${fn})${tail}`;
      return `(${symAddr(fn)} <- ${addrPlus(cfn, parseInt(off, 16))})${tail}`;
    },
    { ...o, kind: 'kretprobe' },
  );
}

/** Syscall entry: `sys_munmap(addr: 7f4c81566000, len: 400000)` in the kernel, `addr: 0x7f4c81566000, len: 0x00400000` elsewhere. */
export function sysEnter(em: Emitter, t: Task, call: string, args: [string, number][], o: EvOpts = {}): void {
  em.ev(
    t,
    'syscalls',
    'sys_enter_' + call,
    (f) => args.map(([k, v]) => (f === 'ftrace' ? `${k}: ${v.toString(16)}` : `${k}: 0x${v.toString(16).padStart(8, '0')}`)).join(', '),
    { irq: '...1.', ...o, kind: 'sys_enter' },
  );
}

export function sysExit(em: Emitter, t: Task, call: string, ret: number, o: EvOpts = {}): void {
  em.ev(t, 'syscalls', 'sys_exit_' + call, () => hx(ret), { irq: '...1.', ...o, kind: 'sys_exit' });
}

/** A trace_marker write (`tracing_mark_write: text`); perf cannot record these. */
export function marker(em: Emitter, t: Task, text: string, o: EvOpts = {}): void {
  em.ev(t, 'ftrace', 'tracing_mark_write', () => text, { ...o, kind: 'marker' });
}

// ---- cma, page_isolation, migrate, compaction (include/trace/events/{cma,page_isolation,migrate,compaction}.h of 6.1)

export function cmaAllocStart(em: Emitter, t: Task, name: string, count: number, align: number, o: EvOpts = {}): void {
  tp(em, t, 'cma', 'cma_alloc_start', `name=${name} count=${count} align=${align}`, o);
}

/** cma_alloc_busy_retry / cma_alloc_finish (6.1: no errorno; a failed finish prints page=NULL). */
export function cmaAllocClass(em: Emitter, t: Task, ev: 'cma_alloc_busy_retry' | 'cma_alloc_finish', name: string, pfn: number, ok: boolean, count: number, align: number, o: EvOpts = {}): void {
  const page = ok ? pagePtr(pfn) : NULL_PTR;
  tp(em, t, 'cma', ev, (f) => `name=${name} pfn=${hx(pfn)} page=${pctr(page, f)} count=${count} align=${align}`, o);
}

export function cmaRelease(em: Emitter, t: Task, name: string, pfn: number, count: number, o: EvOpts = {}): void {
  tp(em, t, 'cma', 'cma_release', (f) => `name=${name} pfn=${hx(pfn)} page=${pctr(pagePtr(pfn), f)} count=${count}`, o);
}

export function testPagesIsolated(em: Emitter, t: Task, start: number, end: number, fin: number, o: EvOpts = {}): void {
  tp(em, t, 'page_isolation', 'test_pages_isolated', `start_pfn=${hx(start)} end_pfn=${hx(end)} fin_pfn=${hx(fin)} ret=${end <= fin ? 'success' : 'fail'}`, o);
}

export type MigrateReason = 'compaction' | 'contig_range' | 'longterm_pin';

export function migrateStart(em: Emitter, t: Task, reason: MigrateReason, o: EvOpts = {}): void {
  tp(em, t, 'migrate', 'mm_migrate_pages_start', `mode=MIGRATE_SYNC reason=${reason}`, o);
}

export function migrateDone(em: Emitter, t: Task, ok: number, failed: number, reason: MigrateReason, o: EvOpts = {}): void {
  tp(em, t, 'migrate', 'mm_migrate_pages', `nr_succeeded=${ok} nr_failed=${failed} nr_thp_succeeded=0 nr_thp_failed=0 nr_thp_split=0 mode=MIGRATE_SYNC reason=${reason}`, o);
}

/** set_migration_pte / remove_migration_pte: `addr=%lx, pte=%lx order=%d`. */
export function migrationPte(em: Emitter, t: Task, ev: 'set_migration_pte' | 'remove_migration_pte', addr: number, pte: string, o: EvOpts = {}): void {
  tp(em, t, 'migrate', ev, `addr=${addr.toString(16)}, pte=${pte} order=0`, { irq: '...1.', ...o });
}

export function isolateMigratepages(em: Emitter, t: Task, start: number, end: number, scanned: number, taken: number, o: EvOpts = {}): void {
  tp(em, t, 'compaction', 'mm_compaction_isolate_migratepages', `range=(${hx(start)} ~ ${hx(end)}) nr_scanned=${scanned} nr_taken=${taken}`, o);
}

export function pcpuDrain(em: Emitter, t: Task, pfn: number, mt: number, o: EvOpts = {}): void {
  tp(em, t, 'kmem', 'mm_page_pcpu_drain', (f) => `page=${kmemPage(pfn, f)} pfn=${hx(pfn)} order=0 migratetype=${mt}`, { irq: 'd..2.', ...o });
}

/** mm_filemap_add_to_page_cache / mm_filemap_delete_from_page_cache: `dev %d:%d ino %lx pfn=0x%lx ofs=%lu order=%u`. */
export function filemap(em: Emitter, t: Task, ev: 'mm_filemap_add_to_page_cache' | 'mm_filemap_delete_from_page_cache', ino: number, pfn: number, index: number, o: EvOpts = {}): void {
  tp(em, t, 'filemap', ev, `dev 254:0 ino ${ino.toString(16)} pfn=${hx(pfn)} ofs=${index * 4096} order=0`, o);
}
