/**
 * A kernel symbol table from /proc/kallsyms text (`addr type name [module]` lines; trace.dat carries one, perf.data
 * takes one by --kallsyms). Addresses are u64, kept as hi/lo 32-bit halves in sorted typed arrays (the way the
 * binary readers read a u64 without BigInt) and found by binary search. A symbol at address 0 is unusable (a
 * kptr_restrict'ed kallsyms prints every address as zero), so such a file makes an empty table. As libtraceevent
 * (tep_parse_kallsyms, __find_func) does for trace-cmd report: absolute symbols (type A/a: x86-64's per-cpu
 * offsets) and ARM's `$` mapping symbols are left out, and an address past the last symbol matches only that
 * symbol's own address (its end is unknown).
 */
export interface KernelSymbol {
  name: string;
  /** Bytes from the symbol's start. */
  offset: number;
  module: string | null;
}

// addr type name [module]: the module's brackets are optional whitespace-separated text after the name.
const LINE = /^\s*([0-9a-fA-F]{1,16})\s+(\S)\s+(\S+)(?:\s+\[([^\]]*)\])?/;

export class Kallsyms {
  private constructor(
    private readonly hi: Uint32Array,
    private readonly lo: Uint32Array,
    private readonly names: string[],
    private readonly modules: (string | null)[],
  ) {}

  static parse(text: string): Kallsyms {
    const his: number[] = [], los: number[] = [], names: string[] = [], mods: (string | null)[] = [];
    let sorted = true;
    for (let at = 0; at < text.length; ) {
      let eol = text.indexOf('\n', at);
      if (eol < 0) eol = text.length;
      // addr type name [module]; a hand-split line: the regex costs a third of the parse on a 120k-symbol table.
      const line = text.slice(at, eol);
      at = eol + 1;
      const m = LINE.exec(line);
      if (!m || m[2] === 'A' || m[2] === 'a' || m[3]!.charCodeAt(0) === 36 /* $ */) continue;
      const a = m[1]!;
      const hi = a.length > 8 ? parseInt(a.slice(0, a.length - 8), 16) : 0;
      const lo = parseInt(a.length > 8 ? a.slice(a.length - 8) : a, 16);
      if (hi === 0 && lo === 0) continue;
      const n = his.length;
      if (n > 0 && (hi < his[n - 1]! || (hi === his[n - 1]! && lo <= los[n - 1]!))) sorted = false;
      his.push(hi); los.push(lo); names.push(m[3]!); mods.push(m[4] ?? null);
    }
    if (sorted) return new Kallsyms(Uint32Array.from(his), Uint32Array.from(los), names, mods);
    // Of symbols sharing an address the one listed first wins, as in libtraceevent (its list is built in reverse
    // and sorted stably; a lookup takes the last symbol at or below the address): listed first, sorted last.
    const order = sameHigh(his) && his.length < 1 << 20 ? byLow(los) : his.map((_, i) => i).sort((x, y) => his[x]! - his[y]! || los[x]! - los[y]! || y - x);
    return new Kallsyms(
      Uint32Array.from(order, (i) => his[i]!), Uint32Array.from(order, (i) => los[i]!),
      order.map((i) => names[i]!), order.map((i) => mods[i]!),
    );
  }

  get size(): number {
    return this.names.length;
  }

  /** The symbol containing the address (hi/lo 32-bit halves, as perfdata reads u64), or null. */
  lookup(hi: number, lo: number): KernelSymbol | null {
    hi >>>= 0; lo >>>= 0;
    // The last symbol whose address is <= (hi, lo).
    let a = 0, b = this.names.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      const mh = this.hi[m]!;
      if (mh < hi || (mh === hi && this.lo[m]! <= lo)) a = m + 1;
      else b = m;
    }
    const i = a - 1;
    if (i < 0) return null;
    if (i === this.names.length - 1 && (this.hi[i] !== hi || this.lo[i] !== lo)) return null;
    const offset = (hi - this.hi[i]!) * 4294967296 + (lo - this.lo[i]!);
    return { name: this.names[i]!, offset, module: this.modules[i]! };
  }
}

function sameHigh(his: number[]): boolean {
  for (let i = 1; i < his.length; i++) if (his[i] !== his[0]) return false;
  return true;
}

/**
 * The order by low word when every high word is the same (a kernel's symbols all sit in one 4 GiB span): a numeric
 * sort of lo * 2^20 + (n - 1 - index), exact below 2^52, without a comparator (a third of the parse with one).
 */
function byLow(los: number[]): number[] {
  const n = los.length;
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = los[i]! * 1048576 + (n - 1 - i);
  keys.sort();
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) order[i] = n - 1 - (keys[i]! % 1048576);
  return order;
}
