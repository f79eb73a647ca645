/**
 * dev_pagemap references (docs/model.md §7), from the pgmap kprobes.
 *
 * memremap_pages (pgmap=, page_offset_base=) + its kretprobe (vaddr = __va(range start): pfn_start =
 * (vaddr - page_offset_base) / 4096) create a pgmap. Gets: zone_device_page_init (the reference a device-private
 * page holds) and get_dev_pagemap returning non-NULL; puts: free_zone_device_page/folio. memunmap_pages records
 * the balance when it is entered (it then waits for it to reach 0), dev_pagemap_percpu_release (ref = &pgmap->ref,
 * pgmap + 0x30 in 6.1: matched to the pgmap closest below within 0x100) when the last reference went, and
 * memunmap_pages_ret when it returned. Every get/put/lifecycle event is a `pgmap_refs` row with the running
 * balance. A device page whose refcount reached 0 must be followed by its free_zone_device_page.
 * Without any probe naming a pgmap, pgmaps-infer.ts infers them from the device pages after the replay.
 */
import type { Anomalies } from './anomalies.js';
import type { Ev } from './event.js';
import type { LostWindows } from './lost.js';
import { id, num, ptr, type Output, type Row } from './output.js';
import type { Tasks } from './tasks.js';

class Pgmap {
  big: bigint;
  pfnStart = NaN;
  minPfn = Infinity;
  maxPfn = -1;
  remapTs = NaN;
  unmapTs = NaN;
  unmapRetTs = NaN;
  releasedTs = NaN;
  gets = 0;
  puts = 0;
  putsWithoutGet = 0;
  freedWithoutPut = 0;
  maxOutstanding = 0;
  outstandingAtUnmap = NaN;
  remapSeen = false;
  pageOffsetBase: bigint | null = null;
  constructor(readonly hex: string) {
    this.big = BigInt('0x' + hex);
  }
  get balance(): number {
    return this.gets - this.puts;
  }
}

interface DevPage {
  pgmap: Pgmap;
  got: boolean;
  put: boolean;
  epoch: number;
  /** The put that brought the device page's refcount to 0, awaiting free_zone_device_page; -1 none. */
  zeroSeq: number;
  zeroTs: number;
  zeroPid: number;
  zeroComm: number;
  zeroStack: number;
  /** The get (zone_device_page_init) of an outstanding reference: who took it, when (-1 / 0 when none). */
  getSeq: number;
  getTs: number;
  getPid: number;
  getTgid: number;
  getComm: number;
  getStack: number;
}

const devPage = (pgmap: Pgmap, got: boolean, put: boolean, epoch: number, ev: Ev | null): DevPage => ({
  pgmap, got, put, epoch, zeroSeq: -1, zeroTs: 0, zeroPid: -1, zeroComm: -1, zeroStack: -1,
  getSeq: ev ? ev.seq : -1, getTs: ev ? ev.ts : 0, getPid: ev ? ev.pid : -1, getTgid: ev ? ev.tgid : -1,
  getComm: ev ? ev.comm : -1, getStack: ev ? ev.stack : -1,
});

export class PgmapTracker {
  private readonly maps = new Map<string, Pgmap>();
  private readonly dev = new Map<number, DevPage>();
  private readonly pendingRemap = new Map<number, Pgmap>();
  private readonly pendingUnmap = new Map<number, Pgmap>();
  private readonly row: Row = {};
  private freeProbeSeen = false;

  constructor(
    private readonly out: Output,
    private readonly lost: LostWindows,
    private readonly anomalies: Anomalies,
  ) {
    this.row.trace_id = out.traceId;
  }

  get count(): number {
    return this.maps.size;
  }

  /** Any pgmap with a known pfn range (lets the driver mark ZONE_DEVICE pages it first sees in page_ref events). */
  get hasRanges(): boolean {
    for (const m of this.maps.values()) if (m.pfnStart === m.pfnStart) return true;
    return false;
  }

  /** The pgmap whose range contains pfn (start known; end = start of the next pgmap or the highest device pfn seen). */
  ownerOf(pfn: number): string | null {
    let best: Pgmap | null = null;
    for (const m of this.maps.values()) if (m.pfnStart === m.pfnStart && m.pfnStart <= pfn && (!best || m.pfnStart > best.pfnStart)) best = m;
    if (!best) return null;
    const end = this.endOf(best);
    return pfn < end ? best.hex : null;
  }

  private endOf(m: Pgmap): number {
    let end = Infinity;
    for (const o of this.maps.values()) if (o !== m && o.pfnStart === o.pfnStart && o.pfnStart > m.pfnStart && o.pfnStart < end) end = o.pfnStart;
    return end;
  }

  private get(hex: string | null): Pgmap | null {
    if (!hex || /^0+$/.test(hex)) return null;
    let m = this.maps.get(hex);
    if (!m) this.maps.set(hex, (m = new Pgmap(hex)));
    return m;
  }

  private ref(m: Pgmap, ev: Ev, pfn: number, delta: number, what: string): void {
    const r = this.row;
    r.pgmap = m.big;
    r.seq = ev.seq;
    r.ts_ns = this.out.ts(ev.ts);
    r.pfn = num(pfn);
    r.delta = delta;
    r.balance = m.balance;
    r.what = what;
    r.pid = id(ev.pid);
    r.comm = this.out.comm(ev.comm);
    r.stack_id = id(ev.stack);
    this.out.pgmapRefs.add(r);
    if (m.balance > m.maxOutstanding) m.maxOutstanding = m.balance;
  }

  private seePfn(m: Pgmap, pfn: number): void {
    if (pfn < 0) return;
    if (pfn < m.minPfn) m.minPfn = pfn;
    if (pfn > m.maxPfn) m.maxPfn = pfn;
  }

  remap(ev: Ev): void {
    const m = this.get(ev.side?.pgmap ?? null);
    if (!m) return;
    m.remapSeen = true;
    m.remapTs = ev.ts;
    const pob = ev.side ? /\bpage_offset_base=(0x[0-9a-fA-F]+)/.exec(ev.side.payload) : null;
    if (pob) m.pageOffsetBase = BigInt(pob[1]);
    this.pendingRemap.set(ev.pid, m);
    this.ref(m, ev, NaN, 0, 'remap');
  }

  remapRet(ev: Ev): void {
    const m = this.pendingRemap.get(ev.pid);
    if (!m) return;
    this.pendingRemap.delete(ev.pid);
    const vaddr = ev.side?.addr;
    if (vaddr && m.pageOffsetBase !== null) {
      const v = BigInt('0x' + vaddr);
      if (v >= m.pageOffsetBase) m.pfnStart = Number((v - m.pageOffsetBase) / 4096n);
    }
  }

  /** zone_device_page_init: the page takes a reference on its pgmap. Returns the pgmap (hex). */
  init(ev: Ev): string | null {
    const m = this.get(ev.side?.pgmap ?? null);
    const pfn = ev.pfn;
    const old = this.dev.get(pfn);
    if (old && old.zeroSeq >= 0 && this.freeProbeSeen) this.zeroWithoutPut(pfn, old);
    if (!m) return null;
    this.seePfn(m, pfn);
    m.gets++;
    this.dev.set(pfn, devPage(m, true, false, this.lost.epoch, ev));
    this.ref(m, ev, pfn, 1, 'get');
    return m.hex;
  }

  /** free_zone_device_page/folio: the page's pgmap reference is dropped. */
  free(ev: Ev): void {
    this.freeProbeSeen = true;
    const pfn = ev.pfn;
    const st = this.dev.get(pfn);
    const m = this.get(ev.side?.pgmap ?? null) ?? st?.pgmap ?? null;
    if (!m) return;
    this.seePfn(m, pfn);
    m.puts++;
    const ok = st !== undefined && st.got && !st.put;
    if (!ok && ((st !== undefined && st.put) || (st === undefined && m.remapSeen))) {
      m.putsWithoutGet++;
      const certain = !this.lost.crossedAny(st ? st.epoch : 0);
      this.anomalies.add('pgmap_put_without_get', certain, pfn, ev,
        `free_zone_device_page on pfn 0x${pfn.toString(16)} drops a reference of pgmap 0x${m.hex} that ${st?.put ? 'was already dropped' : 'was never taken'}`,
        { pgmap: m.hex });
    }
    this.dev.set(pfn, devPage(m, false, true, this.lost.epoch, null));
    this.ref(m, ev, pfn, -1, 'put');
  }

  /** The refcount of device page pfn reached 0 (its free_zone_device_page must follow). */
  zero(ev: Ev, pfn: number, pgmap: string | null): void {
    let st = this.dev.get(pfn);
    if (!st) {
      const m = this.get(pgmap);
      if (!m) return;
      st = devPage(m, false, false, this.lost.epoch, null);
      this.dev.set(pfn, st);
    }
    st.zeroSeq = ev.seq;
    st.zeroTs = ev.ts;
    st.zeroPid = ev.pid;
    st.zeroComm = ev.comm;
    st.zeroStack = ev.stack;
  }

  getDevPagemapRet(ev: Ev): void {
    if (!(ev.ret !== 0 && ev.ret === ev.ret)) return;
    const hex = ev.side ? /\bret=0x([0-9a-fA-F]+)/.exec(ev.side.payload)?.[1]?.toLowerCase() : undefined;
    const m = this.get(hex ?? null);
    if (!m) return;
    m.gets++;
    this.ref(m, ev, NaN, 1, 'get');
  }

  unmap(ev: Ev): void {
    const m = this.get(ev.side?.pgmap ?? null);
    if (!m) return;
    m.unmapTs = ev.ts;
    m.outstandingAtUnmap = m.balance;
    this.pendingUnmap.set(ev.pid, m);
    this.ref(m, ev, NaN, 0, 'unmap');
    if (m.balance > 0) {
      const certain = this.lost.epoch === 0;
      let n = 0;
      for (const [pfn, st] of this.dev)
        if (st.pgmap === m && st.got && !st.put) {
          n++;
          this.anomalies.add('pgmap_refs_at_unmap', certain, pfn, ev,
            `memunmap_pages(0x${m.hex}) entered while device pfn 0x${pfn.toString(16)} still holds a pgmap reference (${m.balance} outstanding): it waits for it`,
            { pgmap: m.hex });
        }
      if (n === 0)
        this.anomalies.add('pgmap_refs_at_unmap', certain, NaN, ev, `memunmap_pages(0x${m.hex}) entered with ${m.balance} pgmap reference(s) outstanding`, { pgmap: m.hex });
    }
  }

  unmapRet(ev: Ev): void {
    const m = this.pendingUnmap.get(ev.pid);
    if (!m) return;
    this.pendingUnmap.delete(ev.pid);
    m.unmapRetTs = ev.ts;
    this.ref(m, ev, NaN, 0, 'unmap_ret');
  }

  /** dev_pagemap_percpu_release(ref): ref = &pgmap->ref, a small offset into the pgmap. */
  release(ev: Ev): void {
    const hex = ev.side?.pgmap;
    if (!hex) return;
    const ref = BigInt('0x' + hex);
    let best: Pgmap | null = null;
    for (const m of this.maps.values()) if (m.big <= ref && ref - m.big < 0x100n && (!best || m.big > best.big)) best = m;
    if (!best) return;
    best.releasedTs = ev.ts;
    this.ref(best, ev, NaN, 0, 'release');
  }

  private zeroWithoutPut(pfn: number, st: DevPage): void {
    st.pgmap.freedWithoutPut++;
    this.anomalies.add('device_page_zero_without_put', !this.lost.crossedAny(st.epoch), pfn,
      { seq: st.zeroSeq, ts: st.zeroTs, pid: st.zeroPid, comm: st.zeroComm, stack: st.zeroStack },
      `device pfn 0x${pfn.toString(16)} reached refcount 0 but free_zone_device_page never dropped its pgmap reference`, { pgmap: st.pgmap.hex });
    st.zeroSeq = -1;
  }

  /**
   * End of the trace. A device page's pgmap reference still outstanding whose taker exited after taking it is
   * pgmap_ref_never_released (docs/model.md §15): certain when no lost window came after the get, no task forked from
   * the taker after the get is still alive and the last of those exits is older than the exit grace. Other outstanding references are information (queries/outstanding.sql).
   */
  /** Whether `fn` is true for the taker (pid, tgid, seq of the get) of a reference end() may ask Tasks about. */
  holdersAtEnd(fn: (pid: number, tgid: number, seq: number) => boolean): boolean {
    for (const st of this.dev.values()) if (st.got && st.getSeq >= 0 && fn(st.getPid, st.getTgid, st.getSeq)) return true;
    return false;
  }

  end(endTs: number, tasks: Tasks): void {
    if (this.freeProbeSeen) for (const [pfn, st] of this.dev) if (st.zeroSeq >= 0) this.zeroWithoutPut(pfn, st);
    for (const [pfn, st] of this.dev) {
      if (!st.got || st.put || st.getSeq < 0) continue;
      const rel = tasks.release(st.getPid, st.getTgid, st.getSeq);
      if (!rel) continue;
      const lost = this.lost.crossedAny(st.epoch);
      const child = rel.alive >= 0;
      const late = tasks.late(rel.last, endTs);
      this.anomalies.add('pgmap_ref_never_released', !lost && !child && !late, pfn,
        { seq: st.getSeq, ts: st.getTs, pid: st.getPid, comm: st.getComm, stack: st.getStack },
        `device pfn 0x${pfn.toString(16)} still holds the pgmap 0x${st.pgmap.hex} reference pid ${st.getPid} took, after pid ${st.getPid} exited` +
          (lost ? ' (its put may be among lost events)'
            : child ? ` (pid ${rel.alive}, forked from it after the get, did not exit: a child may still map the page)`
            : late ? ' (the exit is too recent: its teardown may still free the page)' : ''),
        { pgmap: st.pgmap.hex });
    }
    const r: Row = { trace_id: this.out.traceId };
    for (const m of this.maps.values()) {
      r.pgmap = ptr(m.hex);
      r.pfn_start = num(m.pfnStart === m.pfnStart ? m.pfnStart : m.minPfn === Infinity ? NaN : m.minPfn);
      r.pfn_end = num(m.maxPfn >= 0 ? m.maxPfn + 1 : NaN);
      r.remap_ts_ns = this.out.ts(m.remapTs);
      r.unmap_ts_ns = this.out.ts(m.unmapTs);
      r.unmap_ret_ts_ns = this.out.ts(m.unmapRetTs);
      r.released_ts_ns = this.out.ts(m.releasedTs);
      r.gets = m.gets;
      r.puts = m.puts;
      r.outstanding_end = m.balance;
      r.outstanding_at_unmap = num(m.outstandingAtUnmap);
      r.puts_without_get = m.putsWithoutGet;
      r.freed_without_put = m.freedWithoutPut;
      r.max_outstanding = m.maxOutstanding;
      r.source = 'probe';
      this.out.pgmaps.add(r);
    }
  }
}
