/**
 * The page model behind every generated page_ref/kmem line, so that `count=` always equals the previous
 * count + val (or val for page_ref_set) per pfn, as CONFIG_DEBUG_PAGE_REF prints it in 6.1:
 * `pfn=0x%lx flags=%s count=%d mapcount=%d mapping=%p mt=%d val=%d [ret=%d]` where count is re-read after
 * the atomic op and mapcount is page_mapcount() at that moment (0 = not mapped). Kernels from ~6.10 print the raw
 * `_mapcount` instead (-1 = not mapped, 0 = mapped once: the 6.18 era, `rawMapcount`); the model keeps
 * page_mapcount() and converts when printing (shown()), so scenarios are written once for every era.
 *
 * Allocation is `page_ref_set val=1` (prep_new_page -> set_page_refcounted) followed by `mm_page_alloc`
 * (__alloc_pages); the last put is `page_ref_mod_and_test val=-1 ret=1` (put_page_testzero) followed by
 * `mm_page_free` (free_unref_page / __free_pages_ok) or `mm_page_free_batched` (free_unref_page_list from
 * release_pages). Only head pfns are tracked; the callers keep their own pfn bookkeeping.
 */
import type { Emitter, Task } from './emit.js';
import { NULL_PTR, hx, kmemPage, pctr, tp } from './events.js';

export interface PageState {
  count: number;
  mapcount: number;
  /** Page flags as __print_flags prints them (`uptodate|lru|swapbacked`, `none`). */
  flags: string;
  /** page->mapping as 16 hex digits (anon: anon_vma | 1, odd), or NULL_PTR. */
  mapping: string;
  /** Pageblock migratetype: 0 unmovable, 1 movable, 4 CMA, 5 isolated. */
  mt: number;
  order: number;
}

export interface RefOpts {
  flags?: string;
  mapcount?: number;
  mapping?: string;
  mt?: number;
  irq?: string;
  /** Frames from the caller of the page_ref helper; `__page_ref_*` is prepended here. */
  stack?: readonly string[];
  cpu?: number;
}

export interface AllocOpts {
  gfp: string;
  mt: number;
  /** migratetype= of mm_page_alloc: the allocation's type (gfp_migratetype), not the pageblock's (CMA pages print 1). */
  allocMt?: number;
  order?: number;
  irq?: string;
  stack?: readonly string[];
  /** Precede with mm_page_alloc_zone_locked (rmqueue_bulk refilling the per-cpu list). */
  zoneLocked?: boolean;
}

export interface FreeOpts {
  batched?: boolean;
  mapcount?: number;
  flags?: string;
  irq?: string;
  /** Stack of the final put (page_ref_mod_and_test). */
  stack?: readonly string[];
  cpu?: number;
}

type RefEvent = 'page_ref_set' | 'page_ref_mod' | 'page_ref_mod_and_test' | 'page_ref_mod_unless';

const REF_FN: Record<RefEvent, string> = {
  page_ref_set: '__page_ref_set',
  page_ref_mod: '__page_ref_mod',
  page_ref_mod_and_test: '__page_ref_mod_and_test',
  page_ref_mod_unless: '__page_ref_mod_unless',
};

/** `__page_ref_*` + the caller's frames, one array per (event, stack) so the emitter formats each stack once. */
const REF_STACKS = new WeakMap<readonly string[], Map<RefEvent, readonly string[]>>();
function refStack(ev: RefEvent, stack: readonly string[]): readonly string[] {
  let byEv = REF_STACKS.get(stack);
  if (!byEv) REF_STACKS.set(stack, (byEv = new Map()));
  let full = byEv.get(ev);
  if (!full) byEv.set(ev, (full = [REF_FN[ev], ...stack]));
  return full;
}

export class Mm {
  readonly pages = new Map<number, PageState>();

  constructor(
    private readonly em: Emitter,
    /** Print `mapcount=` as the raw _mapcount (page_mapcount() - 1), as kernels >= ~6.10 do. */
    readonly rawMapcount = false,
  ) {}

  /** `mapcount=` as this era's kernel prints a page_mapcount() (PTE mappings: raw = page_mapcount - 1). */
  shown(mapcount: number): number {
    return this.rawMapcount ? mapcount - 1 : mapcount;
  }

  get(pfn: number): PageState {
    const p = this.pages.get(pfn);
    if (!p) throw new Error(`generator bug: pfn ${hx(pfn)} is not alive`);
    return p;
  }

  /** A page alive before the capture started: no event, its later events continue from this state. */
  adopt(pfn: number, st: PageState): void {
    if (this.pages.has(pfn)) throw new Error(`generator bug: pfn ${hx(pfn)} adopted twice`);
    this.pages.set(pfn, st);
  }

  /** page_ref_set: count = val (set_page_count, init_page_count). */
  set(t: Task, pfn: number, val: number, o: RefOpts = {}): void {
    const p = this.get(pfn);
    this.apply(p, o);
    p.count = val;
    this.ref(t, 'page_ref_set', pfn, p, val, null, o);
  }

  /** page_ref_mod: page_ref_add/sub/inc/dec (get_page, folio_ref_add, ...). */
  mod(t: Task, pfn: number, val: number, o: RefOpts = {}): void {
    const p = this.get(pfn);
    this.apply(p, o);
    p.count += val;
    if (p.count <= 0) throw new Error(`generator bug: page_ref_mod to ${p.count} on ${hx(pfn)}`);
    this.ref(t, 'page_ref_mod', pfn, p, val, null, o);
  }

  /** page_ref_mod_and_test: put_page_testzero / folio_ref_sub_and_test; ret=1 when the count hit 0. */
  modAndTest(t: Task, pfn: number, val: number, o: RefOpts = {}): boolean {
    const p = this.get(pfn);
    this.apply(p, o);
    p.count += val;
    if (p.count < 0) throw new Error(`generator bug: count below 0 on ${hx(pfn)}`);
    const zero = p.count === 0;
    this.ref(t, 'page_ref_mod_and_test', pfn, p, val, zero ? 1 : 0, o);
    return zero;
  }

  /** page_ref_mod_unless: get_page_unless_zero / folio_try_get (GUP-fast, compaction, page cache lookups). */
  modUnless(t: Task, pfn: number, val: number, o: RefOpts = {}): void {
    const p = this.get(pfn);
    this.apply(p, o);
    p.count += val;
    this.ref(t, 'page_ref_mod_unless', pfn, p, val, 1, o);
  }

  /** Allocate a free pfn: page_ref_set val=1 then mm_page_alloc (a fresh page is unmapped, flags none). */
  alloc(t: Task, pfn: number, a: AllocOpts): void {
    if (this.pages.has(pfn)) throw new Error(`generator bug: pfn ${hx(pfn)} allocated while alive`);
    const order = a.order ?? 0;
    const irq = a.irq ?? '.....';
    if (a.zoneLocked) {
      tp(this.em, t, 'kmem', 'mm_page_alloc_zone_locked', (f) => `page=${kmemPage(pfn, f)} pfn=${hx(pfn)} order=${order} migratetype=${a.mt} percpu_refill=${order === 0 ? 1 : 0}`, { irq: 'd..3.' });
    }
    const p: PageState = { count: 0, mapcount: 0, flags: 'none', mapping: NULL_PTR, mt: a.mt, order };
    this.pages.set(pfn, p);
    this.set(t, pfn, 1, { irq });
    tp(this.em, t, 'kmem', 'mm_page_alloc', (f) => `page=${kmemPage(pfn, f)} pfn=${hx(pfn)} order=${order} migratetype=${a.allocMt ?? a.mt} gfp_flags=${a.gfp}`, { irq, stack: a.stack });
  }

  /** Final put (must take the count to 0) and the free event. */
  free(t: Task, pfn: number, o: FreeOpts = {}): void {
    const p = this.get(pfn);
    if (p.count !== 1) throw new Error(`generator bug: freeing ${hx(pfn)} with count ${p.count}`);
    this.modAndTest(t, pfn, -1, { mapcount: o.mapcount ?? 0, flags: o.flags, irq: o.irq, stack: o.stack, cpu: o.cpu });
    this.release(t, pfn, o);
  }

  /** The free event alone (after a put that already reached 0). */
  release(t: Task, pfn: number, o: FreeOpts = {}): void {
    const p = this.get(pfn);
    if (p.count !== 0) throw new Error(`generator bug: releasing ${hx(pfn)} with count ${p.count}`);
    this.pages.delete(pfn);
    if (o.batched && p.order === 0) {
      tp(this.em, t, 'kmem', 'mm_page_free_batched', (f) => `page=${kmemPage(pfn, f)} pfn=${hx(pfn)} order=0`, { irq: '...2.', cpu: o.cpu });
    } else {
      tp(this.em, t, 'kmem', 'mm_page_free', (f) => `page=${kmemPage(pfn, f)} pfn=${hx(pfn)} order=${p.order}`, { irq: o.irq, cpu: o.cpu });
    }
  }

  /** Drop a page from the model without an event (a ZONE_DEVICE page whose count reached 0). */
  forget(pfn: number): void {
    this.pages.delete(pfn);
  }

  private apply(p: PageState, o: RefOpts): void {
    if (o.flags !== undefined) p.flags = o.flags;
    if (o.mapcount !== undefined) p.mapcount = o.mapcount;
    if (o.mapping !== undefined) p.mapping = o.mapping;
    if (o.mt !== undefined) p.mt = o.mt;
  }

  private ref(t: Task, ev: RefEvent, pfn: number, p: PageState, val: number, ret: number | null, o: RefOpts): void {
    const { count, flags, mapping, mt } = p;
    const mapcount = this.shown(p.mapcount);
    const tail = ret === null ? '' : ` ret=${ret}`;
    tp(this.em, t, 'page_ref', ev, (f) => `pfn=${hx(pfn)} flags=${flags} count=${count} mapcount=${mapcount} mapping=${pctr(mapping, f)} mt=${mt} val=${val}${tail}`, {
      irq: o.irq,
      cpu: o.cpu,
      stack: o.stack ? refStack(ev, o.stack) : undefined,
    });
  }
}
