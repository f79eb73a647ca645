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

const NAME_END = /[\s]|$/g;
const MODULE = /[ \t\v\f]+\[([^\]\n]*)\]/y;

export class Kallsyms {
  private constructor(
    private readonly text: string,
    private readonly hi: Uint32Array,
    private readonly lo: Uint32Array,
    /** Where each symbol's name starts in `text` (ASCII text), or its index in `named` (other text). */
    private readonly at: Int32Array,
    /** Names and modules read by LINE (text the byte scan does not cover). */
    private readonly named: [string, string | null][] | null,
  ) {}

  static parse(text: string): Kallsyms {
    const fast = scanAscii(text);
    if (fast !== null) return new Kallsyms(text, ...fast.sorted(), null);
    // Text with a non-ASCII byte or a `\r`: line by line with LINE, names kept as strings.
    const t = new Table(0);
    const named: [string, string | null][] = [];
    for (let at = 0; at < text.length; ) {
      let eol = text.indexOf('\n', at);
      if (eol < 0) eol = text.length;
      const m = LINE.exec(text.slice(at, eol));
      at = eol + 1;
      if (!m || m[2] === 'A' || m[2] === 'a' || m[3]!.charCodeAt(0) === 36 /* $ */) continue;
      const a = m[1]!;
      if (t.add(a.length > 8 ? parseInt(a.slice(0, a.length - 8), 16) : 0, parseInt(a.length > 8 ? a.slice(a.length - 8) : a, 16), named.length))
        named.push([m[3]!, m[4] ?? null]);
    }
    return new Kallsyms(text, ...t.sorted(), named);
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

/**
 * Symbols as they are read, before sorting: addresses as hi/lo halves and where each name is (its offset in the
 * text, or its index in the caller's list of names), in typed arrays that grow by doubling.
 */
class Table {
  hi: Uint32Array;
  lo: Uint32Array;
  at: Int32Array;
  n = 0;
  /** Whether every symbol so far was added at a higher address than the one before. */
  inOrder = true;

  constructor(capacity: number) {
    this.hi = new Uint32Array(Math.max(capacity, 16));
    this.lo = new Uint32Array(this.hi.length);
    this.at = new Int32Array(this.hi.length);
  }

  /** Adds a symbol unless its address is 0 (kptr_restrict prints every address as 0); says whether it did. */
  add(hi: number, lo: number, at: number): boolean {
    if (hi === 0 && lo === 0) return false;
    const n = this.n;
    if (n === this.hi.length) {
      const grow = <T extends Uint32Array | Int32Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(n * 2);
        b.set(a);
        return b;
      };
      this.hi = grow(this.hi);
      this.lo = grow(this.lo);
      this.at = grow(this.at);
    }
    if (n > 0 && (hi < this.hi[n - 1]! || (hi === this.hi[n - 1]! && lo <= this.lo[n - 1]!))) this.inOrder = false;
    this.hi[n] = hi;
    this.lo[n] = lo;
    this.at[n] = at;
    this.n = n + 1;
    return true;
  }

  /** The symbols in address order. */
  sorted(): [Uint32Array, Uint32Array, Int32Array] {
    const n = this.n;
    const his = this.hi.subarray(0, n), los = this.lo.subarray(0, n), ats = this.at.subarray(0, n);
    if (this.inOrder) return [his, los, ats];
    // Of symbols sharing an address the one listed first wins, as in libtraceevent (its list is built in reverse
    // and sorted stably; a lookup takes the last symbol at or below the address): listed first, sorted last.
    const order = sameHigh(his) && n < 1 << 20 ? byLow(los) : Array.from({ length: n }, (_, i) => i).sort((x, y) => his[x]! - his[y]! || los[x]! - los[y]! || y - x);
    const hi = new Uint32Array(n), lo = new Uint32Array(n), at = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const j = order[i]!;
      hi[i] = his[j]!;
      lo[i] = los[j]!;
      at[i] = ats[j]!;
    }
    return [hi, lo, at];
  }
}

const SP = 32, TAB = 9, NL = 10, VT = 11, FF = 12;
const blank = (c: number) => c === SP || c === TAB || c === VT || c === FF;
/** Value of an ASCII hex digit, -1 for any other byte. */
const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 256; c++) {
  if (c >= 48 && c <= 57) HEX[c] = c - 48;
  else if (c >= 97 && c <= 102) HEX[c] = c - 87;
  else if (c >= 65 && c <= 70) HEX[c] = c - 55;
}

/**
 * LINE over the bytes of a text of ASCII without `\r`, where `\s` within a line is [ \t\v\f] and a name's offset in
 * the bytes is its offset in the string (names and modules are read at lookup): a line is blanks, 1 to 16 hex
 * digits, blanks, a one-character type, blanks, and a name. A regex scan and a string per line were most of the
 * parse of a 120k-symbol table. null: text it does not cover (checked first, so latin1 bytes are the characters).
 */
function scanAscii(text: string): Table | null {
  if (/[^\x00-\x0c\x0e-\x7f]/.test(text)) return null;
  const b = Buffer.from(text, 'latin1');
  const t = new Table(b.length >>> 5);
  const end = b.length;
  for (let i = 0; i < end; ) {
    let eol = b.indexOf(NL, i);
    if (eol < 0) eol = end;
    let p = i;
    i = eol + 1;
    while (p < eol && blank(b[p]!)) p++;
    const a0 = p;
    while (p < eol && HEX[b[p]!]! >= 0) p++;
    const digits = p - a0;
    if (digits < 1 || digits > 16 || p === eol || !blank(b[p]!)) continue;
    // The last 8 digits are the low word, those before them the high word.
    let hi = 0, lo = 0;
    const split = p - Math.min(digits, 8);
    for (let q = a0; q < split; q++) hi = (hi << 4) | HEX[b[q]!]!;
    for (let q = split; q < p; q++) lo = (lo << 4) | HEX[b[q]!]!;
    while (p < eol && blank(b[p]!)) p++;
    if (p === eol) continue;
    const type = b[p++]!;
    if (p === eol || !blank(b[p]!)) continue; // a type of more than one character, or no name
    while (p < eol && blank(b[p]!)) p++;
    if (p === eol) continue; // no name
    if (type === 65 /* A */ || type === 97 /* a */ || b[p] === 36 /* $ */) continue;
    t.add(hi >>> 0, lo >>> 0, p);
  }
  return t;
}

function sameHigh(his: ArrayLike<number>): boolean {
  for (let i = 1; i < his.length; i++) if (his[i] !== his[0]) return false;
  return true;
}

/**
 * The order by low word when every high word is the same (a kernel's symbols all sit in one 4 GiB span): a numeric
 * sort of lo * 2^20 + (n - 1 - index), exact below 2^52, without a comparator (a third of the parse with one).
 */
function byLow(los: ArrayLike<number>): number[] {
  const n = los.length;
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = los[i]! * 1048576 + (n - 1 - i);
  keys.sort();
  const order = new Array<number>(n);
  for (let i = 0; i < n; i++) order[i] = n - 1 - (keys[i]! % 1048576);
  return order;
}
