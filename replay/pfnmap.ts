/**
 * A map from pfn to value for the hot path: pfns are dense integers, so a two-level table (a directory of 4096-slot
 * chunks) replaces hashing with two array loads. A chunk is created the first time a pfn of its range is stored and
 * kept (pages churn: dropping and re-creating chunks would cost more than the 32 KiB each holds), so memory is the
 * live entries plus 8 bytes per pfn of the ranges touched. Pfns beyond the directory fall back to a Map.
 */
const SHIFT = 12;
const SLOTS = 1 << SHIFT;
const MASK = SLOTS - 1;
/** pfns below 2^28 (1 TiB of 4 KiB pages) use the directory. */
const DIR = 1 << 16;

interface Chunk<T> {
  slots: (T | undefined)[];
  live: number;
}

export class PfnMap<T> {
  private readonly dir: (Chunk<T> | undefined)[] = [];
  private readonly far = new Map<number, T>();
  size = 0;

  get(pfn: number): T | undefined {
    const k = pfn >>> SHIFT;
    if (k < DIR && pfn >= 0) {
      const c = this.dir[k];
      return c === undefined ? undefined : c.slots[pfn & MASK];
    }
    return this.far.get(pfn);
  }

  set(pfn: number, v: T): void {
    const k = pfn >>> SHIFT;
    if (k < DIR && pfn >= 0) {
      let c = this.dir[k];
      if (c === undefined) {
        while (this.dir.length < k) this.dir.push(undefined);
        c = { slots: new Array<T | undefined>(SLOTS).fill(undefined), live: 0 };
        this.dir[k] = c;
      }
      const i = pfn & MASK;
      if (c.slots[i] === undefined) {
        c.live++;
        this.size++;
      }
      c.slots[i] = v;
      return;
    }
    if (!this.far.has(pfn)) this.size++;
    this.far.set(pfn, v);
  }

  delete(pfn: number): void {
    const k = pfn >>> SHIFT;
    if (k < DIR && pfn >= 0) {
      const c = this.dir[k];
      if (c === undefined) return;
      const i = pfn & MASK;
      if (c.slots[i] === undefined) return;
      c.slots[i] = undefined;
      this.size--;
      c.live--;
      return;
    }
    if (this.far.delete(pfn)) this.size--;
  }

  /** Call fn for every value (faster than values() on the hot path). */
  forEach(fn: (v: T) => void): void {
    for (const c of this.dir) {
      if (c === undefined || c.live === 0) continue;
      const slots = c.slots;
      for (let i = 0; i < SLOTS; i++) {
        const v = slots[i];
        if (v !== undefined) fn(v);
      }
    }
    for (const v of this.far.values()) fn(v);
  }

  *values(): IterableIterator<T> {
    for (const c of this.dir) {
      if (c === undefined || c.live === 0) continue;
      for (const v of c.slots) if (v !== undefined) yield v;
    }
    yield* this.far.values();
  }
}
