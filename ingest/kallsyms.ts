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

/**
 * The same, for a text of ASCII without `\r` (a kallsyms is): the line start is `^` of a multiline regex and `\s`
 * within a line is [ \t\v\f]. One native scan of the whole text; the name and module are read at lookup.
 */
const FAST = /^[ \t\v\f]*([0-9a-fA-F]{1,16})[ \t\v\f]+(\S)[ \t\v\f]+(?=\S)/gm;
const NAME_END = /[\s]|$/g;
const MODULE = /[ \t\v\f]+\[([^\]\n]*)\]/y;

export class Kallsyms {
  private constructor(
    private readonly text: string,
    private readonly hi: Uint32Array,
    private readonly lo: Uint32Array,
    /** Where each symbol's name starts in `text` (ASCII text), or its index in `named` (other text). */
    private readonly at: Int32Array,
    /** Names and modules read by LINE (text the fast scan does not cover). */
    private readonly named: [string, string | null][] | null,
  ) {}

  static parse(text: string): Kallsyms {
    const his: number[] = [], los: number[] = [], ats: number[] = [];
    let named: [string, string | null][] | null = null;
    let sorted = true;
    const add = (a: string, type: string, name: string | number): void => {
      if (type === 'A' || type === 'a') return;
      if ((typeof name === 'number' ? text.charCodeAt(name) : name.charCodeAt(0)) === 36 /* $ */) return;
      const hi = a.length > 8 ? parseInt(a.slice(0, a.length - 8), 16) : 0;
      const lo = parseInt(a.length > 8 ? a.slice(a.length - 8) : a, 16);
      if (hi === 0 && lo === 0) return;
      const n = his.length;
      if (n > 0 && (hi < his[n - 1]! || (hi === his[n - 1]! && lo <= los[n - 1]!))) sorted = false;
      his.push(hi); los.push(lo); ats.push(typeof name === 'number' ? name : n);
    };
    if (!/[^\x00-\x0c\x0e-\x7f]/.test(text)) {
      // The regex and a string per line were most of the parse of a 120k-symbol table.
      FAST.lastIndex = 0;
      for (let m: RegExpExecArray | null; (m = FAST.exec(text)); ) add(m[1]!, m[2]!, FAST.lastIndex);
    } else {
      named = [];
      for (let at = 0; at < text.length; ) {
        let eol = text.indexOf('\n', at);
        if (eol < 0) eol = text.length;
        const m = LINE.exec(text.slice(at, eol));
        at = eol + 1;
        if (!m) continue;
        const n = his.length;
        add(m[1]!, m[2]!, m[3]!);
        if (his.length > n) named.push([m[3]!, m[4] ?? null]);
      }
    }
    const n = his.length;
    if (sorted) return new Kallsyms(text, Uint32Array.from(his), Uint32Array.from(los), Int32Array.from(ats), named);
    // Of symbols sharing an address the one listed first wins, as in libtraceevent (its list is built in reverse
    // and sorted stably; a lookup takes the last symbol at or below the address): listed first, sorted last.
    const order = sameHigh(his) && n < 1 << 20 ? byLow(los) : his.map((_, i) => i).sort((x, y) => his[x]! - his[y]! || los[x]! - los[y]! || y - x);
    const hi = new Uint32Array(n), lo = new Uint32Array(n), at = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const j = order[i]!;
      hi[i] = his[j]!;
      lo[i] = los[j]!;
      at[i] = ats[j]!;
    }
    return new Kallsyms(text, hi, lo, at, named);
  }

  get size(): number {
    return this.hi.length;
  }

  /** The symbol containing the address (hi/lo 32-bit halves, as perfdata reads u64), or null. */
  lookup(hi: number, lo: number): KernelSymbol | null {
    hi >>>= 0; lo >>>= 0;
    // The last symbol whose address is <= (hi, lo).
    let a = 0, b = this.hi.length;
    while (a < b) {
      const m = (a + b) >>> 1;
      const mh = this.hi[m]!;
      if (mh < hi || (mh === hi && this.lo[m]! <= lo)) a = m + 1;
      else b = m;
    }
    const i = a - 1;
    if (i < 0) return null;
    if (i === this.hi.length - 1 && (this.hi[i] !== hi || this.lo[i] !== lo)) return null;
    const offset = (hi - this.hi[i]!) * 4294967296 + (lo - this.lo[i]!);
    if (this.named !== null) {
      const [name, module] = this.named[this.at[i]!]!;
      return { name, offset, module };
    }
    const start = this.at[i]!;
    NAME_END.lastIndex = start;
    const end = NAME_END.exec(this.text)!.index;
    MODULE.lastIndex = end;
    const mod = MODULE.exec(this.text);
    return { name: this.text.slice(start, end), offset, module: mod ? mod[1]! : null };
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
