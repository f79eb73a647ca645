import type { EventBuilder } from '../builder.js';
import { decodingOf } from '../decode/catalogue.js';
import { kmemPage, type KmemFields } from '../decode/decoders.js';
import type { LineSink } from './sink.js';

/**
 * Tracepoint formats as the kernel prints them in `events/<sys>/<event>/format` (perf.data embeds them in
 * HEADER_TRACING_DATA, trace.dat in its event format sections), and the payload text of one raw record rendered from
 * them: `name=value` pairs in the format's field order, numbers as `perf script` prints the fields refscope decodes
 * (pfn=0x%lx, order=%d). A field that print fmt prints through __print_flags / __print_symbolic is rendered as
 * libtraceevent renders it (`gfp_flags=GFP_KERNEL|__GFP_ZERO`, as perf script and trace-cmd report print it), and
 * constant `key=<digits>` text of print fmt is added (perf prints it); print fmt is not evaluated otherwise.
 */

export interface Field {
  name: string;
  type: string;
  offset: number;
  size: number;
  signed: boolean;
  /** `__data_loc char[] name`: a u32 (offset | length << 16) to the bytes. */
  dataLoc: boolean;
  /** `char name[16]`: a NUL-padded string in place. */
  chars: boolean;
  /** Element count of another fixed array (`u64 ips[8]`), else 0. */
  array: number;
  hex: boolean;
  /** Set when print fmt prints the field through a flag or symbol table. */
  symbolic?: Symbolic;
}

export interface EventFormat {
  id: number;
  system: string;
  name: string;
  fields: Field[];
  /** `key=<digits>` constants of print fmt that are no field (mm_page_free_batched prints `order=0`). */
  constants: string;
  /** print fmt's arguments (the text after its format string): read for symbolic fields by `symbolize`. */
  printArgs: string;
  /** Set once `symbolize` has run (on the first render: most of a trace.dat's formats are never used). */
  symbolized: boolean;
}

const FIELD_RE = /^\s*field:(.*?);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/;
// Fields printed in hex by perf (their print fmt says 0x%lx or %p): pfns, pointers, addresses, flag words.
const HEX_NAME = /(?:^|_)(?:pfn|page|addr|address|ptr|mapping|flags|ip|site|caller|pgmap|folio)$/;

/**
 * Parse one format file; null when it has no `name:` / `ID:` (the caller names the offset in its error). The
 * fields and print fmt are parsed when first asked for: a trace.dat holds every event's format and uses a few.
 */
export function parseFormat(system: string, text: string): EventFormat | null {
  const name = /^name:\s*(\S+)/m.exec(text);
  const id = /^ID:\s*(\d+)/m.exec(text);
  if (!name || !id) return null;
  let body: Pick<EventFormat, 'fields' | 'constants' | 'printArgs'> | null = null;
  const parsed = () => (body ??= parseBody(text));
  return {
    id: Number(id[1]),
    system,
    name: name[1],
    get fields() {
      return parsed().fields;
    },
    get constants() {
      return parsed().constants;
    },
    get printArgs() {
      return parsed().printArgs;
    },
    symbolized: false,
  };
}

function parseBody(text: string): Pick<EventFormat, 'fields' | 'constants' | 'printArgs'> {
  const fields: Field[] = [];
  for (const line of text.split('\n')) {
    const m = FIELD_RE.exec(line);
    if (!m) continue;
    const decl = m[1].trim();
    const dataLoc = decl.startsWith('__data_loc ') || decl.startsWith('__rel_loc ');
    const arr = /^(.*?)\s*([A-Za-z_]\w*)\s*\[(\d*)\]$/.exec(decl);
    const plain = /^(.*?)\s*([A-Za-z_]\w*)$/.exec(decl);
    const fname = dataLoc ? decl.slice(decl.lastIndexOf(' ') + 1).replace(/\[\d*\]$/, '') : (arr ?? plain)?.[2] ?? decl;
    const type = dataLoc ? decl : (arr ?? plain)?.[1] ?? '';
    const size = Number(m[3]);
    const chars = !dataLoc && arr !== null && /\bchar$/.test(arr[1]);
    const count = !dataLoc && arr !== null && !chars ? Number(arr[3] || 0) : 0;
    fields.push({
      name: fname,
      type,
      offset: Number(m[2]),
      size,
      signed: m[4] === '1',
      dataLoc,
      chars,
      array: count,
      hex: type.includes('*') || HEX_NAME.test(fname),
    });
  }
  const pf = /^print fmt:\s*"((?:[^"\\]|\\.)*)"(.*)$/m.exec(text);
  const fmt = pf?.[1] ?? '';
  const names = new Set(fields.map((f) => f.name));
  const constants = [...fmt.matchAll(/(?:^|[\s,])(\w+)=(-?\d+)(?=[\s,]|$)/g)]
    .filter((m) => !names.has(m[1]))
    .map((m) => `${m[1]}=${m[2]}`)
    .join(' ');
  return { fields, constants, printArgs: pf?.[2] ?? '' };
}

/** Set `symbolic` on the fields print fmt prints through a flag or symbol table (once per format). */
export function symbolize(fmt: EventFormat): EventFormat {
  if (fmt.symbolized) return fmt;
  fmt.symbolized = true;
  for (const [name, render] of symbolicFields(fmt.printArgs)) {
    const f = fmt.fields.find((x) => x.name === name);
    if (f && !f.dataLoc && !f.chars && f.array === 0 && [1, 2, 4, 8].includes(f.size)) f.symbolic = render;
  }
  return fmt;
}

/** The payload of a raw record (`raw` starts at common_type) as `name=value` pairs; common_* fields left out. */
export function renderPayload(fmt: EventFormat, raw: Buffer, le: boolean): string {
  if (!fmt.symbolized) symbolize(fmt);
  return le ? renderLE(planOf(fmt), fmt.constants, raw, 0, raw.length) : renderFields(fmt, raw, le);
}

/**
 * renderPayload of the little-endian record at buf[start, end), without a Buffer for it. With `kmem` (a format
 * kmemFormat() accepts), also the values kmemPage would read back from the text (kmem.ok false: it must read them).
 */
export function renderPayloadAt(fmt: EventFormat, buf: Buffer, start: number, end: number, kmem: KmemFields | null = null): string {
  if (!fmt.symbolized) symbolize(fmt);
  if (kmem !== null) {
    const k = kmemPlans.get(fmt)!;
    kmem.ok = true;
    kmem.pfn = NaN;
    kmem.order = k.order;
    kmem.mt = k.mt;
    kmem.gfp = null;
    kmem.page = false;
  }
  return renderLE(planOf(fmt), fmt.constants, buf, start, end, kmem);
}

/** A sink that takes kmem page fields decoded from the record (the builder). */
export type DecodedSink = Pick<EventBuilder, 'eventDecoded'>;

export function decodedSink(sink: LineSink): DecodedSink | null {
  return typeof (sink as Partial<DecodedSink>).eventDecoded === 'function' ? (sink as unknown as DecodedSink) : null;
}

export function newKmemFields(): KmemFields {
  return { ok: false, pfn: NaN, order: NaN, mt: NaN, gfp: null, page: false, pageHi: 0, pageLo: 0 };
}

/** An event the catalogue decodes with kmemPage, in a layout renderPayloadAt hands its values over for. */
export function isKmemPage(fmt: EventFormat): boolean {
  return decodingOf(fmt.name).decode === kmemPage && kmemFormat(fmt);
}

/** Which column of kmemPage a field feeds (Step.slot). */
const S_NONE = 0, S_PFN = 1, S_ORDER = 2, S_MT = 3, S_GFP = 4, S_PAGE = 5;
const SLOTS: Record<string, number> = { pfn: S_PFN, order: S_ORDER, migratetype: S_MT, gfp_flags: S_GFP, page: S_PAGE };

/** A kmem page format's values that come from print fmt's constants (mm_page_free_batched's order=0), NaN if none. */
interface KmemPlan {
  order: number;
  mt: number;
}
const kmemPlans = new WeakMap<EventFormat, KmemPlan | null>();

/**
 * Whether renderPayloadAt can give kmemPage's values for `fmt` straight from the record: each field it reads is
 * printed as a number (gfp_flags: any text, checked per record), every other field as a number too (no text that
 * could hold a key), and no constant of print fmt stands for pfn, page or gfp_flags.
 */
export function kmemFormat(fmt: EventFormat): boolean {
  let k = kmemPlans.get(fmt);
  if (k !== undefined) return k !== null;
  if (!fmt.symbolized) symbolize(fmt);
  k = { order: NaN, mt: NaN };
  for (const f of planOf(fmt)) {
    const numeric = f.kind === K_HEX4 || f.kind === K_HEX8 || f.kind === K_DEC;
    const ok =
      f.slot === S_NONE ? numeric || f.kind === K_OTHER
      : f.slot === S_GFP ? numeric || f.kind === K_SYMBOLIC
      : f.slot === S_PFN ? numeric
      : f.slot === S_PAGE ? f.kind === K_HEX4 || f.kind === K_HEX8
      : f.kind === K_DEC;
    if (!ok) k = null;
  }
  for (const c of fmt.constants.length > 0 ? fmt.constants.split(' ') : []) {
    if (k === null) break;
    const eq = c.indexOf('=');
    const slot = SLOTS[c.slice(0, eq)] ?? S_NONE;
    // The first of a key is the one at() finds.
    if (slot === S_ORDER) k.order = k.order === k.order ? k.order : Number(c.slice(eq + 1));
    else if (slot === S_MT) k.mt = k.mt === k.mt ? k.mt : Number(c.slice(eq + 1));
    else if (slot !== S_NONE) k = null;
  }
  kmemPlans.set(fmt, k);
  return k !== null;
}

/** renderPayload field by field, either byte order (the reference renderLE's plan must agree with). */
export function renderFields(fmt: EventFormat, raw: Buffer, le: boolean): string {
  if (!fmt.symbolized) symbolize(fmt);
  let out = '';
  for (const f of fmt.fields) {
    if (f.name.startsWith('common_')) continue;
    if (f.offset + f.size > raw.length) continue; // a record shorter than its format: the field is absent
    let v: string;
    if (f.dataLoc) {
      const loc = le ? raw.readUInt32LE(f.offset) : raw.readUInt32BE(f.offset);
      let start = loc & 0xffff;
      if (f.type.startsWith('__rel_loc')) start += f.offset + f.size;
      v = cString(raw, start, Math.min(raw.length, start + (loc >>> 16)));
    } else if (f.chars) v = cString(raw, f.offset, f.offset + f.size);
    else if (f.array > 0) {
      const each = f.size / f.array;
      const parts: string[] = [];
      for (let i = 0; i < f.array; i++) parts.push(intText(raw, f.offset + i * each, each, f.signed, true, le));
      v = parts.join(',');
    } else {
      const sym = f.symbolic?.(uint(raw, f.offset, f.size, le));
      v = sym ?? intText(raw, f.offset, f.size, f.signed, f.hex, le);
    }
    out += (out.length > 0 ? ' ' : '') + f.name + '=' + v;
  }
  if (fmt.constants.length > 0) out += (out.length > 0 ? ' ' : '') + fmt.constants;
  return out;
}

/**
 * How a little-endian record's fields are rendered, worked out once per format: the common_* fields left out, each
 * field's `name=` prefix joined, its kind chosen (renderLE does per record what renderPayload's loop did per field).
 */
interface Step {
  /** `name=`, with the separating space for all but the first field. */
  prefix: string;
  kind: number;
  offset: number;
  size: number;
  signed: boolean;
  hex: boolean;
  /** Array element count and size. */
  count: number;
  each: number;
  symbolic: Symbolic | undefined;
  /** symbolic's text by value (below 2^53), to skip the bigint on a repeated value. */
  seen: Map<number, string | undefined> | null;
  /** The kmemPage value the field gives (S_*), for renderPayloadAt's `kmem`. */
  slot: number;
}

const K_HEX4 = 0, K_HEX8 = 1, K_DEC = 2, K_SYMBOLIC = 3, K_DATALOC = 4, K_RELLOC = 5, K_CHARS = 6, K_ARRAY = 7, K_OTHER = 8;

const plans = new WeakMap<EventFormat, Step[]>();

function planOf(fmt: EventFormat): Step[] {
  let plan = plans.get(fmt);
  if (plan !== undefined) return plan;
  plan = [];
  for (const f of fmt.fields) {
    if (f.name.startsWith('common_')) continue;
    const kind = f.dataLoc
      ? f.type.startsWith('__rel_loc') ? K_RELLOC : K_DATALOC
      : f.chars ? K_CHARS
      : f.array > 0 ? K_ARRAY
      : f.symbolic !== undefined ? K_SYMBOLIC
      : f.hex && f.size === 4 ? K_HEX4
      : f.hex && f.size === 8 ? K_HEX8
      : !f.hex && (f.size === 1 || f.size === 2 || f.size === 4) ? K_DEC
      : K_OTHER;
    plan.push({
      prefix: f.name + '=',
      kind,
      offset: f.offset,
      size: f.size,
      signed: f.signed,
      hex: f.hex,
      count: f.array,
      each: f.array > 0 ? f.size / f.array : 0,
      symbolic: f.symbolic,
      seen: f.symbolic !== undefined ? new Map() : null,
      slot: SLOTS[f.name] ?? S_NONE,
    });
  }
  plans.set(fmt, plan);
  return plan;
}

/** renderPayload for the little-endian record raw[base, end), by the format's plan: the same text. */
function renderLE(plan: Step[], constants: string, raw: Buffer, base: number, end: number, kmem: KmemFields | null = null): string {
  let out = '';
  const len = end - base;
  for (let i = 0; i < plan.length; i++) {
    const f = plan[i]!;
    if (f.offset + f.size > len) continue; // a record shorter than its format: the field is absent
    const o = base + f.offset;
    let v: string;
    switch (f.kind) {
      case K_HEX4: {
        const lo = raw.readUInt32LE(o);
        v = '0x' + lo.toString(16);
        if (kmem !== null && f.slot !== S_NONE) take(kmem, f.slot, 0, lo, lo, v);
        break;
      }
      case K_HEX8: {
        const hi = raw.readUInt32LE(o + 4);
        const lo = raw.readUInt32LE(o);
        v = hex64(hi, lo);
        if (kmem !== null && f.slot !== S_NONE) take(kmem, f.slot, hi, lo, hi * 4294967296 + lo, v);
        break;
      }
      case K_DEC: {
        const size = f.size;
        const u = size === 4 ? raw.readUInt32LE(o) : size === 2 ? raw.readUInt16LE(o) : raw[o]!;
        const bits = size * 8;
        const n = f.signed && u >= 2 ** (bits - 1) ? u - 2 ** bits : u;
        v = String(n);
        if (kmem !== null && f.slot !== S_NONE) take(kmem, f.slot, 0, 0, n, v);
        break;
      }
      case K_SYMBOLIC: {
        const size = f.size;
        const hi = size === 8 ? raw.readUInt32LE(o + 4) : 0;
        const lo = size === 8 || size === 4 ? raw.readUInt32LE(o) : size === 2 ? raw.readUInt16LE(o) : raw[o]!;
        const seen = f.seen!;
        const key = hi < 0x200000 ? hi * 4294967296 + lo : -1;
        let sym = key >= 0 ? seen.get(key) : undefined;
        if (sym === undefined && !(key >= 0 && seen.has(key))) {
          sym = f.symbolic!(uint(raw, o, size, true));
          if (key >= 0 && seen.size < 4096) seen.set(key, sym);
        }
        v = sym ?? intText(raw, o, size, f.signed, f.hex, true);
        if (kmem !== null && f.slot === S_GFP) take(kmem, S_GFP, 0, 0, NaN, v);
        break;
      }
      case K_DATALOC:
      case K_RELLOC: {
        const loc = raw.readUInt32LE(o);
        let start = loc & 0xffff;
        if (f.kind === K_RELLOC) start += f.offset + f.size;
        v = cString(raw, base + start, base + Math.min(len, start + (loc >>> 16)));
        break;
      }
      case K_CHARS:
        v = cString(raw, o, o + f.size);
        break;
      case K_ARRAY: {
        v = '';
        for (let k = 0; k < f.count; k++) v += (k > 0 ? ',' : '') + intText(raw, o + k * f.each, f.each, f.signed, true, true);
        break;
      }
      default:
        v = intText(raw, o, f.size, f.signed, f.hex, true);
    }
    out += out.length > 0 ? ' ' + f.prefix + v : f.prefix + v;
  }
  if (constants.length > 0) out += (out.length > 0 ? ' ' : '') + constants;
  return out;
}

/**
 * One field's value into `kmem`, as kmemPage reads its text: `n` the number num() gives (hex or decimal), hi:lo its
 * bits when printed in hex. kmemFormat() allows only the kinds each slot can read here.
 */
function take(kmem: KmemFields, slot: number, hi: number, lo: number, n: number, v: string): void {
  switch (slot) {
    case S_PFN:
      // pfnOf: exact below 2^52; -1UL is -1; anything else above is left to the text.
      if (n < 2 ** 52) kmem.pfn = n;
      else if (hi === 0xffffffff && lo === 0xffffffff) kmem.pfn = -1;
      else kmem.ok = false;
      break;
    case S_ORDER:
      kmem.order = n;
      break;
    case S_MT:
      kmem.mt = n;
      break;
    case S_PAGE:
      kmem.page = true;
      kmem.pageHi = hi;
      kmem.pageLo = lo;
      break;
    case S_GFP:
      // valueEnd stops at a blank, comma or tab, and at() finds a key after one or `(`: then read the text.
      kmem.gfp = v;
      for (let i = 0; i < v.length; i++) {
        const c = v.charCodeAt(i);
        if (c === 32 || c === 44 || c === 9 || c === 40) kmem.ok = false;
      }
      break;
  }
}

function cString(b: Buffer, start: number, end: number): string {
  const nul = b.indexOf(0, start);
  return b.toString('utf8', start, nul >= 0 && nul < end ? nul : end);
}

/** A 1/2/4/8-byte integer: decimal (signed per the format) or 0x hex. */
export function intText(b: Buffer, o: number, size: number, signed: boolean, hex: boolean, le: boolean): string {
  if (size === 8 && hex && le) return hex64(b.readUInt32LE(o + 4), b.readUInt32LE(o));
  if (size === 8) {
    const v = le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o);
    if (hex) return '0x' + v.toString(16);
    return (signed ? BigInt.asIntN(64, v) : v).toString();
  }
  let v: number;
  if (size === 4) v = le ? b.readUInt32LE(o) : b.readUInt32BE(o);
  else if (size === 2) v = le ? b.readUInt16LE(o) : b.readUInt16BE(o);
  else if (size === 1) v = b[o];
  else return '0x' + b.toString('hex', o, o + size);
  if (hex) return '0x' + v.toString(16);
  const bits = size * 8;
  return String(signed && v >= 2 ** (bits - 1) ? v - 2 ** bits : v);
}

/** A 1/2/4/8-byte field as tep_read_number reads it: unsigned. */
function uint(b: Buffer, o: number, size: number, le: boolean): bigint {
  if (size === 8) return le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o);
  if (size === 4) return BigInt(le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  if (size === 2) return BigInt(le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  return BigInt(b[o]!);
}

/** `0x` and the hex digits of the u64 hi:lo, no leading zeros. */
export function hex64(hi: number, lo: number): string {
  return hi === 0 ? '0x' + lo.toString(16) : '0x' + hi.toString(16) + lo.toString(16).padStart(8, '0');
}

// --- print fmt's __print_flags / __print_symbolic, rendered as libtraceevent's print_str_arg renders them ---

/** A field printed through a flag or symbol table: its rendering, or undefined (the value stays numeric). */
export type Symbolic = (value: bigint) => string | undefined;

type Node =
  | { k: 'num'; raw: string }
  | { k: 'str'; s: string }
  | { k: 'field'; name: string }
  | { k: 'id'; name: string }
  | { k: 'cast'; type: string; e: Node }
  | { k: 'un'; op: string; e: Node }
  | { k: 'bin'; op: string; l: Node; r: Node }
  | { k: 'cond'; c: Node; t: Node; f: Node }
  | { k: 'call'; name: string; args: Node[] }
  | { k: 'list'; items: Node[] };

interface Token {
  t: 'num' | 'str' | 'id' | 'op';
  v: string;
}

const TOKEN_RE = /\s*(?:((?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*)|"((?:[^"\\]|\\.)*)"|([A-Za-z_]\w*)|(->|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^~!<>?:(){}[\],.]))/y;

function tokenize(s: string): Token[] | null {
  const out: Token[] = [];
  TOKEN_RE.lastIndex = 0;
  while (TOKEN_RE.lastIndex < s.length) {
    const at = TOKEN_RE.lastIndex;
    const m = TOKEN_RE.exec(s);
    if (!m) return /^\s*$/.test(s.slice(at)) ? out : null;
    if (m[1] !== undefined) out.push({ t: 'num', v: m[1] });
    else if (m[2] !== undefined) out.push({ t: 'str', v: m[2] }); // libtraceevent keeps escapes as written
    else if (m[3] !== undefined) out.push({ t: 'id', v: m[3] });
    else out.push({ t: 'op', v: m[4]! });
  }
  return out;
}

const PREC: Record<string, number> = {
  '||': 1, '&&': 2, '|': 3, '^': 4, '&': 5, '==': 6, '!=': 6, '<': 7, '>': 7, '<=': 7, '>=': 7,
  '<<': 8, '>>': 8, '+': 9, '-': 9, '*': 10, '/': 10, '%': 10,
};

/** A C expression of print fmt; throws on what it does not know (that argument is then left alone). */
class Parser {
  private i = 0;
  constructor(private readonly tok: Token[]) {}

  whole(): Node {
    const n = this.expr();
    if (this.i !== this.tok.length) throw new Error('trailing tokens');
    return n;
  }

  private peek(o = 0): Token | undefined {
    return this.tok[this.i + o];
  }
  private isOp(v: string, o = 0): boolean {
    const t = this.tok[this.i + o];
    return t !== undefined && t.t === 'op' && t.v === v;
  }
  private expect(v: string): void {
    if (!this.isOp(v)) throw new Error(`expected ${v}`);
    this.i++;
  }

  private expr(): Node {
    const c = this.binary(1);
    if (!this.isOp('?')) return c;
    this.i++;
    const t = this.expr();
    this.expect(':');
    return { k: 'cond', c, t, f: this.expr() };
  }

  private binary(min: number): Node {
    let l = this.unary();
    for (;;) {
      const t = this.peek();
      const p = t?.t === 'op' ? PREC[t.v] : undefined;
      if (p === undefined || p < min) return l;
      this.i++;
      l = { k: 'bin', op: t!.v, l, r: this.binary(p + 1) };
    }
  }

  private unary(): Node {
    const t = this.peek();
    if (t?.t === 'op' && (t.v === '~' || t.v === '!' || t.v === '-' || t.v === '+')) {
      this.i++;
      return { k: 'un', op: t.v, e: this.unary() };
    }
    const castEnd = this.castEnd();
    if (castEnd > 0) {
      const type = this.tok.slice(this.i + 1, castEnd).map((x) => x.v).join(' ').replace(/ \*/g, '*');
      this.i = castEnd + 1;
      return { k: 'cast', type, e: this.unary() };
    }
    const n = this.primary();
    if (this.isOp('[') || this.isOp('.') || this.isOp('->') || this.isOp('(')) throw new Error('postfix');
    return n;
  }

  /** At `(`: the index of the `)` closing a type name (identifiers and `*`) that an operand follows, else 0. */
  private castEnd(): number {
    if (!this.isOp('(')) return 0;
    let j = this.i + 1;
    while (this.tok[j]?.t === 'id' || (this.tok[j]?.t === 'op' && this.tok[j]!.v === '*')) j++;
    if (j === this.i + 1 || this.tok[this.i + 1]!.v === 'REC' || !(this.tok[j]?.t === 'op' && this.tok[j]!.v === ')')) return 0;
    const next = this.tok[j + 1];
    if (next === undefined) return 0;
    return next.t === 'num' || next.t === 'id' || (next.t === 'op' && (next.v === '(' || next.v === '~' || next.v === '!')) ? j : 0;
  }

  private primary(): Node {
    const t = this.tok[this.i++];
    if (t === undefined) throw new Error('end of expression');
    if (t.t === 'num') return { k: 'num', raw: t.v };
    if (t.t === 'str') {
      let s = t.v;
      while (this.peek()?.t === 'str') s += this.tok[this.i++]!.v;
      return { k: 'str', s };
    }
    if (t.t === 'id') {
      if (t.v === 'REC' && this.isOp('->') && this.peek(1)?.t === 'id') {
        this.i += 2;
        return { k: 'field', name: this.tok[this.i - 1]!.v };
      }
      if (!this.isOp('(')) return { k: 'id', name: t.v };
      return { k: 'call', name: t.v, args: this.list(')') };
    }
    if (t.v === '(') {
      const e = this.expr();
      this.expect(')');
      return e;
    }
    if (t.v === '{') return { k: 'list', items: this.list('}') };
    throw new Error(`unexpected ${t.v}`);
  }

  /** Comma-separated expressions up to `close` (the opening token is consumed for calls here). */
  private list(close: string): Node[] {
    if (close === ')') this.i++;
    const items: Node[] = [];
    if (this.isOp(close)) return (this.i++, items);
    for (;;) {
      items.push(this.expr());
      if (this.isOp(close)) return (this.i++, items);
      this.expect(',');
    }
  }
}

// The binary operators arg_num_eval knows: a table entry using another one fails libtraceevent's parse.
const TABLE_OPS = new Set(['|', '&', '+', '-', '<<', '>>', '<', '>', '<=', '>=', '==', '!=', '&&', '||']);
const WIDTH: Record<string, bigint> = { u8: 0xffn, s8: 0xffn, char: 0xffn, u16: 0xffffn, s16: 0xffffn, short: 0xffffn, u32: 0xffffffffn, s32: 0xffffffffn, int: 0xffffffffn };

/**
 * An integer expression: signed 64-bit as libtraceevent evaluates table entries (arg_num_eval, long long), unsigned
 * as it evaluates a record (eval_num_arg). `value` stands for REC-><field>; any other field or name is unknown.
 */
function evalNum(n: Node, signed: boolean, field?: string, value?: bigint): bigint | undefined {
  const wrap = (v: bigint) => (signed ? BigInt.asIntN(64, v) : BigInt.asUintN(64, v));
  const sub = (x: Node) => evalNum(x, signed, field, value);
  switch (n.k) {
    case 'num': {
      // strtoll base 0: 0x hex, 0 octal, else decimal; the u/l suffix ignored.
      const d = /^(0[xX][0-9a-fA-F]+|\d+)/.exec(n.raw)![1]!;
      if (/^0\d/.test(d)) return /^0[0-7]+$/.test(d) ? wrap(BigInt('0o' + d.slice(1))) : undefined;
      return wrap(BigInt(d));
    }
    case 'field':
      return n.name === field ? value : undefined;
    case 'cast': {
      const v = sub(n.e);
      if (v === undefined) return undefined;
      // eval_type_str: a pointer, struct or 64-bit type keeps the value; narrower integer types are masked.
      const mask = n.type.endsWith('*') ? undefined : WIDTH[n.type.replace(/^unsigned /, '')];
      return mask === undefined ? v : wrap(v & mask);
    }
    case 'un': {
      const v = sub(n.e);
      if (v === undefined || (signed && n.op === '!')) return undefined;
      return n.op === '~' ? wrap(~v) : n.op === '!' ? (v === 0n ? 1n : 0n) : n.op === '-' ? wrap(-v) : v;
    }
    case 'bin': {
      const l = sub(n.l);
      const r = sub(n.r);
      if (l === undefined || r === undefined) return undefined;
      if (signed && !TABLE_OPS.has(n.op)) return undefined;
      const b = (x: boolean) => (x ? 1n : 0n);
      switch (n.op) {
        case '|': return l | r;
        case '&': return l & r;
        case '^': return l ^ r;
        case '+': return wrap(l + r);
        case '-': return wrap(l - r);
        case '*': return wrap(l * r);
        case '/': return r === 0n ? undefined : wrap(l / r);
        case '%': return r === 0n ? undefined : wrap(l % r);
        case '<<': return r < 0n || r > 63n ? undefined : wrap(l << r);
        case '>>': return r < 0n || r > 63n ? undefined : l >> r;
        case '<': return b(l < r);
        case '>': return b(l > r);
        case '<=': return b(l <= r);
        case '>=': return b(l >= r);
        case '==': return b(l === r);
        case '!=': return b(l !== r);
        case '&&': return b(l !== 0n && r !== 0n);
        case '||': return b(l !== 0n || r !== 0n);
      }
      return undefined;
    }
    case 'cond': {
      const c = sub(n.c);
      return c === undefined ? undefined : c !== 0n ? sub(n.t) : sub(n.f);
    }
    default:
      return undefined;
  }
}

/** A constant expression as libtraceevent evaluates a table entry (arg_num_eval: long long); undefined if it cannot. */
export function evalConstant(text: string): bigint | undefined {
  const tok = tokenize(text);
  if (!tok) return undefined;
  try {
    return evalNum(new Parser(tok).whole(), true);
  } catch {
    return undefined;
  }
}

interface Entry {
  /** eval_flag's value: -1 for what it cannot read as a number (a negative long long included). */
  v: bigint;
  s: string;
}

const uncast = (n: Node): Node => (n.k === 'cast' ? uncast(n.e) : n);

/** One `{ value, "name" }` of a table as process_fields + eval_flag read it; null when it is not constant. */
function entry(n: Node): Entry | null {
  if (n.k !== 'list' || n.items.length !== 2) return null;
  // arg_eval: a top-level cast is dropped, an atom is kept as written, an operation is printed %lld.
  const v = evalNum(uncast(n.items[0]!), true);
  const str = uncast(n.items[1]!);
  const s = str.k === 'str' ? str.s : str.k === 'num' ? str.raw : undefined;
  if (v === undefined || s === undefined) return null;
  return { v: v < 0n ? -1n : v, s };
}

function printFlags(val: bigint, delim: string, table: Entry[]): string {
  let out = '';
  let print = false;
  for (const f of table) {
    if (val === 0n && f.v < 0n) return out + f.s;
    if (f.v > 0n && (val & f.v) === f.v) {
      if (print) out += delim;
      out += f.s;
      print = true;
      val &= ~f.v;
    }
  }
  if (val !== 0n) out += (print ? delim : '') + '0x' + val.toString(16);
  return out;
}

function printSymbolic(val: bigint, table: Entry[]): string {
  for (const f of table) if (val === BigInt.asUintN(64, f.v)) return f.s;
  return '0x' + val.toString(16);
}

type Render = (value: bigint) => string | undefined;

/** A print fmt argument as a string of REC-><field>'s value; null when some part is not constant. */
function compile(n: Node, field: string): Render | null {
  if (n.k === 'str') return () => n.s;
  if (n.k === 'cond') {
    const t = compile(n.t, field);
    const f = compile(n.f, field);
    if (!t || !f) return null;
    return (v) => {
      const c = evalNum(n.c, false, field, v);
      return c === undefined ? undefined : c !== 0n ? t(v) : f(v);
    };
  }
  if (n.k !== 'call' || (n.name !== '__print_flags' && n.name !== '__print_symbolic') || n.args.length < 2) return null;
  const arg = n.args[0]!;
  const flags = n.name === '__print_flags';
  const delim = flags && n.args[1]!.k === 'str' ? n.args[1]!.s : '';
  const table: Entry[] = [];
  for (const item of n.args.slice(flags && n.args[1]!.k === 'str' ? 2 : 1)) {
    const e = entry(item);
    if (!e) return null;
    table.push(e);
  }
  return (v) => {
    const val = evalNum(arg, false, field, v);
    if (val === undefined) return undefined;
    return flags ? printFlags(val, delim, table) : printSymbolic(val, table);
  };
}

function fieldsOf(n: Node, out: Set<string>, calls: { n: number }): void {
  if (n.k === 'field') out.add(n.name);
  if (n.k === 'call' && (n.name === '__print_flags' || n.name === '__print_symbolic')) calls.n++;
  for (const c of Object.values(n)) {
    if (Array.isArray(c)) for (const x of c) fieldsOf(x as Node, out, calls);
    else if (typeof c === 'object' && c !== null) fieldsOf(c as Node, out, calls);
  }
}

/** Split tokens at top-level commas. */
function splitArgs(tok: Token[]): Token[][] {
  const out: Token[][] = [[]];
  let depth = 0;
  for (const t of tok) {
    if (t.t === 'op' && '({['.includes(t.v)) depth++;
    else if (t.t === 'op' && ')}]'.includes(t.v)) depth--;
    if (depth === 0 && t.t === 'op' && t.v === ',') out.push([]);
    else out[out.length - 1]!.push(t);
  }
  return out;
}

/**
 * The fields print fmt's arguments (`args`: the text after the format string) print through one __print_flags or
 * __print_symbolic of that field alone, each with its renderer (cached per value). A field printed by two different
 * such arguments, or an argument that does not parse or evaluate, is left out.
 */
export function symbolicFields(args: string): Map<string, Symbolic> {
  const out = new Map<string, Symbolic>();
  const seen = new Map<string, string>();
  const tok = tokenize(args);
  if (!tok) return out;
  for (const part of splitArgs(tok)) {
    if (part.length === 0) continue;
    let node: Node;
    try {
      node = new Parser(part).whole();
    } catch {
      continue;
    }
    const fields = new Set<string>();
    const calls = { n: 0 };
    fieldsOf(node, fields, calls);
    if (calls.n !== 1 || fields.size !== 1) continue;
    const [name] = fields as unknown as [string];
    // The same argument twice (xfs prints its group type twice) renders the same; two different ones are ambiguous.
    const text = part.map((t) => t.t + t.v).join(' ');
    if (seen.has(name)) {
      if (seen.get(name) !== text) (out.delete(name), seen.set(name, ''));
      continue;
    }
    seen.set(name, text);
    const render = compile(node, name);
    if (!render) continue;
    const cache = new Map<bigint, string | undefined>();
    out.set(name, (v) => {
      let s = cache.get(v);
      if (s === undefined && !cache.has(v)) cache.set(v, (s = render(v)));
      return s;
    });
  }
  return out;
}
