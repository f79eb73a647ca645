/**
 * trace_printk()'s binary form (ftrace `bprint`): the format string lives in the file's printk formats, the
 * arguments in the record as lib/vsprintf.c vbin_printf() stored them, read as libtraceevent's make_bprint_args()
 * reads them: every number 4-byte aligned, 4 bytes (8 with ll/L, a long with l/z and for pointers), each %s
 * inline with its NUL. Rendered as printf would for the common conversions (flags, width, precision,
 * d i u x X o c s p); `%pS`/`%ps` print the symbol.
 */

const SPEC = /%([-+ #0]*)(\*|\d+)?(?:\.(\*|\d+))?(hh|h|ll|l|z|t|j|L)?([diouxXcspn%])([sSfFbBx]?)/g;

export function formatBprint(fmt: string, args: Buffer, longSize: number, symbol: (hi: number, lo: number) => string | null): string {
  let at = 0;
  const align = (n: number): void => {
    at = (at + n - 1) & ~(n - 1);
  };
  const int = (size: number, signed: boolean): bigint => {
    align(size === 1 ? 1 : 4);
    if (at + size > args.length) return 0n;
    let v: bigint;
    if (size === 8) v = signed ? args.readBigInt64LE(at) : args.readBigUInt64LE(at);
    else if (size === 4) v = BigInt(signed ? args.readInt32LE(at) : args.readUInt32LE(at));
    else if (size === 2) v = BigInt(signed ? args.readInt16LE(at) : args.readUInt16LE(at));
    else v = BigInt(signed ? args.readInt8(at) : args.readUInt8(at));
    at += size;
    return v;
  };
  return fmt.replace(SPEC, (all, flags: string, width: string | undefined, prec: string | undefined, len: string | undefined, conv: string, ext: string) => {
    if (conv === '%') return '%' + ext;
    if (conv === 'n') return '';
    const w = width === '*' ? Number(int(4, true)) : width !== undefined ? Number(width) : 0;
    const p = prec === '*' ? Number(int(4, true)) : prec !== undefined ? Number(prec) : -1;
    let body: string;
    let rest = ext;
    if (conv === 's') {
      const nul = args.indexOf(0, at);
      const end = nul < 0 ? args.length : nul;
      body = args.toString('utf8', at, end);
      at = end + 1;
      if (p >= 0) body = body.slice(0, p);
    } else if (conv === 'p') {
      const v = int(longSize, false);
      const hex = v.toString(16);
      if (ext === 's' || ext === 'S' || ext === 'f' || ext === 'F') {
        body = symbol(Number(v >> 32n), Number(v & 0xffffffffn)) ?? '0x' + hex;
        rest = '';
      } else if (ext === 'x') {
        body = hex.padStart(longSize * 2, '0');
        rest = '';
      } else body = '0x' + hex;
    } else if (conv === 'c') {
      body = String.fromCharCode(Number(int(1, false)));
    } else {
      const size = len === 'll' || len === 'L' || len === 'j' ? 8 : len === 'l' || len === 'z' || len === 't' ? longSize : 4;
      const signed = conv === 'd' || conv === 'i';
      const v = int(size, signed);
      const neg = v < 0n;
      const abs = neg ? -v : v;
      body = conv === 'x' ? abs.toString(16) : conv === 'X' ? abs.toString(16).toUpperCase() : conv === 'o' ? abs.toString(8) : abs.toString();
      if (p >= 0) body = body.padStart(p, '0');
      if (flags.includes('#') && v !== 0n) body = (conv === 'o' ? '0' : conv === 'x' ? '0x' : conv === 'X' ? '0X' : '') + body;
      const sign = neg ? '-' : signed && flags.includes('+') ? '+' : signed && flags.includes(' ') ? ' ' : '';
      if (flags.includes('0') && !flags.includes('-') && p < 0) body = body.padStart(w - sign.length, '0');
      body = sign + body;
    }
    void all;
    if (body.length < w) body = flags.includes('-') ? body.padEnd(w) : body.padStart(w);
    return body + rest;
  });
}
