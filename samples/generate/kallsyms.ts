/**
 * A fake, deterministic kallsyms for the generators: the kernel text address of a function and its size.
 * trace-cmd and perf print addresses where the kernel's own `trace` file prints symbols (kprobe `(%lx)`,
 * `=> func (addr)` stack frames, perf callchain `addr func+0xoff`), so every format needs the same
 * address for the same function. Sizes of probed functions are the ones seen in qemu-6.1's kprobe lines
 * (`try_grab_page+0x0/0x140`); the rest are hashed into a plausible range.
 */

const SIZES: Record<string, number> = {
  try_grab_page: 0x140,
  try_grab_folio: 0x170,
  unpin_user_page: 0x60,
  unpin_user_pages: 0x80,
  gup_put_folio: 0xa0,
  pin_user_pages: 0x50,
  pin_user_pages_fast: 0x30,
  get_user_pages_fast: 0x30,
  internal_get_user_pages_fast: 0x1170,
  __gup_longterm_locked: 0x730,
  __get_user_pages: 0x630,
  vm_insert_page: 0x1b0,
  vmf_insert_pfn: 0x20,
  zap_page_range_single: 0x150,
  memremap_pages: 0x650,
  memunmap_pages: 0x2b0,
  get_dev_pagemap: 0xe0,
  zone_device_page_init: 0xd0,
  free_zone_device_page: 0x140,
  dev_pagemap_percpu_release: 0x10,
  migrate_vma_setup: 0x220,
  migrate_vma_pages: 0x1a0,
  migrate_vma_finalize: 0x2f0,
  alloc_contig_range: 0x280,
  io_pin_pages: 0x240,
  cma_alloc: 0x3d0,
  __iov_iter_get_pages_alloc: 0x830,
};

/** FNV-1a, 32 bit. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function symSize(fn: string): number {
  return SIZES[fn] ?? 0x40 + ((hash32(fn) % 0x7c0) & ~0xf);
}

/** Start address of `fn` as 16 hex digits (no 0x). Frames already given as `0x...` keep their address. */
export function symAddr(fn: string): string {
  if (fn.startsWith('0x')) return fn.slice(2).padStart(16, '0');
  return 'ffffffff' + (0x81000000 + ((hash32(fn) % 0x1200000) & ~0xf)).toString(16);
}

/** A return-address offset inside `fn` (stable per caller/callee pair). */
export function frameOff(fn: string, salt: string): number {
  return 1 + (hash32(fn + '/' + salt) % Math.max(1, symSize(fn) - 1));
}

/** `symAddr(fn) + off` as 16 hex digits. */
export function addrPlus(fn: string, off: number): string {
  const base = symAddr(fn);
  const lo = (parseInt(base.slice(8), 16) + off) >>> 0;
  return base.slice(0, 8) + lo.toString(16).padStart(8, '0');
}
