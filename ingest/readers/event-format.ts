/**
 * Tracepoint formats as the kernel prints them in `events/<sys>/<event>/format` (perf.data embeds them in
 * HEADER_TRACING_DATA), and the payload text of one raw record rendered from them: `name=value` pairs in the
 * format's field order, numbers as `perf script` prints the fields refscope decodes (pfn=0x%lx, order=%d).
 * Constant `key=<digits>` text of print fmt is added (perf prints it); print fmt is not evaluated otherwise: symbolic flags (__print_flags, __print_symbolic) stay numeric (`gfp_flags=0xcc0`).
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
}

export interface EventFormat {
  id: number;
  system: string;
  name: string;
  fields: Field[];
  /** `key=<digits>` constants of print fmt that are no field (mm_page_free_batched prints `order=0`). */
  constants: string;
}

const FIELD_RE = /^\s*field:(.*?);\s*offset:(\d+);\s*size:(\d+);\s*signed:(\d+);/;
// Fields printed in hex by perf (their print fmt says 0x%lx or %p): pfns, pointers, addresses, flag words.
const HEX_NAME = /(?:^|_)(?:pfn|page|addr|address|ptr|mapping|flags|ip|site|caller|pgmap|folio)$/;

/** Parse one format file; null when it has no `name:` / `ID:` (the caller names the offset in its error). */
export function parseFormat(system: string, text: string): EventFormat | null {
  const name = /^name:\s*(\S+)/m.exec(text);
  const id = /^ID:\s*(\d+)/m.exec(text);
  if (!name || !id) return null;
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
  const fmt = /^print fmt:\s*"((?:[^"\\]|\\.)*)"/m.exec(text)?.[1] ?? '';
  const names = new Set(fields.map((f) => f.name));
  const constants = [...fmt.matchAll(/(?:^|[\s,])(\w+)=(-?\d+)(?=[\s,]|$)/g)]
    .filter((m) => !names.has(m[1]))
    .map((m) => `${m[1]}=${m[2]}`)
    .join(' ');
  return { id: Number(id[1]), system, name: name[1], fields, constants };
}

/** The payload of a raw record (`raw` starts at common_type) as `name=value` pairs; common_* fields left out. */
export function renderPayload(fmt: EventFormat, raw: Buffer, le: boolean): string {
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
    } else v = intText(raw, f.offset, f.size, f.signed, f.hex, le);
    out += (out.length > 0 ? ' ' : '') + f.name + '=' + v;
  }
  if (fmt.constants.length > 0) out += (out.length > 0 ? ' ' : '') + fmt.constants;
  return out;
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

/** `0x` and the hex digits of the u64 hi:lo, no leading zeros. */
export function hex64(hi: number, lo: number): string {
  return hi === 0 ? '0x' + lo.toString(16) : '0x' + hi.toString(16) + lo.toString(16).padStart(8, '0');
}
