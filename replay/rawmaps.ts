/**
 * Raw PFN mappings: vmf_insert_pfn / vmf_insert_mixed / remap_pfn_range put a pfn into a process's page tables
 * without a page reference or mapcount, so only their probes show the mapping. It lasts until a
 * zap_page_range_single probe or a munmap (sys_enter_munmap) of the same task covers its address. A page freed
 * while such a mapping is in place is freed while mapped (a use-after-free through the mapping).
 */
import type { Ev } from './event.js';

interface RawMap {
  addr: number;
  task: number;
  seq: number;
  epoch: number;
}

const PAGE = 4096;

export class RawMaps {
  private readonly byPfn = new Map<number, RawMap[]>();

  get size(): number {
    return this.byPfn.size;
  }

  private static task(ev: Ev): number {
    return ev.tgid >= 0 ? ev.tgid : ev.pid;
  }

  map(ev: Ev, epoch: number): void {
    const pfn = ev.pfn;
    const s = ev.side;
    if (pfn < 0 || !s) return;
    const addr = s.addr ? parseInt(s.addr, 16) : NaN;
    const size = sizeOf(s.payload, /\bsize=(0x[0-9a-fA-F]+|\d+)/);
    const n = size === size && size > PAGE ? Math.ceil(size / PAGE) : 1;
    for (let i = 0; i < n; i++) {
      const list = this.byPfn.get(pfn + i) ?? [];
      list.push({ addr: addr + i * PAGE, task: RawMaps.task(ev), seq: ev.seq, epoch });
      this.byPfn.set(pfn + i, list);
    }
  }

  /** zap_page_range_single(vma, address, size) or munmap(addr, len) of this task. */
  unmap(ev: Ev, munmap: boolean): void {
    const s = ev.side;
    if (!s || this.byPfn.size === 0) return;
    const addr = s.addr ? parseInt(s.addr, 16) : NaN;
    const len = munmap ? sizeOf(s.payload, /\blen: ([0-9a-fA-F]+)/, true) : sizeOf(s.payload, /\bsize=(0x[0-9a-fA-F]+|\d+)/);
    if (addr !== addr) return;
    const end = len === len ? addr + len : addr + PAGE;
    const task = RawMaps.task(ev);
    for (const [pfn, list] of this.byPfn) {
      const keep = list.filter((m) => m.task !== task || m.addr !== m.addr || m.addr < addr || m.addr >= end);
      if (keep.length === 0) this.byPfn.delete(pfn);
      else if (keep.length !== list.length) this.byPfn.set(pfn, keep);
    }
  }

  /** The mapping still in place for pfn, if any. */
  mapped(pfn: number): RawMap | undefined {
    const l = this.byPfn.get(pfn);
    return l && l.length ? l[0] : undefined;
  }

  /** The pfn was freed: its mappings (already reported) are dropped so a later allocation starts clean. */
  forget(pfn: number): void {
    this.byPfn.delete(pfn);
  }
}

function sizeOf(payload: string, re: RegExp, hexBare = false): number {
  const m = re.exec(payload);
  if (!m) return NaN;
  const v = m[1];
  return hexBare ? parseInt(v, 16) : v.startsWith('0x') ? parseInt(v, 16) : Number(v);
}
