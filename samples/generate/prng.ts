/**
 * Deterministic pseudo-random numbers for the scenario generators (mulberry32). Never Math.random:
 * the same seed must give byte-identical traces, and the ftrace writer runs every scenario twice
 * (a counting pass for the header, then the writing pass), so both runs must draw the same numbers.
 */
export class Rng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi] (both inclusive). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(a: readonly T[]): T {
    if (a.length === 0) throw new Error('pick from empty array');
    return a[Math.floor(this.next() * a.length)]!;
  }

  /** Exponentially distributed with the given mean (at least 1). */
  exp(mean: number): number {
    return Math.max(1, Math.round(-Math.log(1 - this.next()) * mean));
  }

  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [a[i], a[j]] = [a[j]!, a[i]!];
    }
    return a;
  }

  /** `n` distinct integers in [lo, hi), in random order, none in `avoid`. */
  distinct(n: number, lo: number, hi: number, avoid?: (x: number) => boolean): number[] {
    const seen = new Set<number>();
    const out: number[] = [];
    while (out.length < n) {
      const x = this.int(lo, hi - 1);
      if (seen.has(x) || (avoid && avoid(x))) continue;
      seen.add(x);
      out.push(x);
    }
    return out;
  }
}
