import { Decompress } from 'fzstd';

/**
 * Streaming zstd for source.ts: fzstd (pure JS: Node 20 has no zstd) decodes, and this wrapper follows the frames
 * itself (RFC 8878 §3.1: header, blocks, optional content checksum; skippable frames) to check each frame's
 * checksum, the low 32 bits of the XXH64 of its content, which fzstd skips: a flipped byte that still decodes is
 * refused instead of ingested. A frame's end is handed to fzstd as the end of a (final) piece, so the output
 * collected since the frame began is exactly its content.
 */

const MAGIC = 0xfd2fb528;
const MESSAGES = ['invalid zstd data', 'window size too large', 'invalid block type', 'FSE accuracy too high', 'match distance too far back', 'unexpected end of file'];

export class ZstdInflate {
  private parts: Buffer[] = [];
  private readonly d = new Decompress((data) => {
    if (data.length === 0) return;
    const b = Buffer.from(data.buffer, data.byteOffset, data.length);
    this.hash?.update(b);
    this.parts.push(b);
  });
  /** Where in the frame structure the input is; `want`: bytes of that field still to collect (or payload to pass by). */
  private state: 'magic' | 'skip-size' | 'skip' | 'fhd' | 'header' | 'block' | 'payload' | 'checksum' = 'magic';
  private want = 4;
  private held: number[] = [];
  private last = false;
  /** The frame's checksum: 0 until read when it has one, null when it has none. */
  private checksum: number | null = null;
  private hash: Xxh64 | null = null;
  /** A frame just ended. */
  private ended = false;

  push(chunk: Buffer): Buffer[] {
    let from = 0;
    for (let at = 0; at < chunk.length; ) {
      at = this.walk(chunk, at);
      if (this.ended) {
        // The frame's last byte is at `at`: pushed as fzstd's final piece (else it may hold a short frame back),
        // its content is all out; fzstd reads on after a final push that ends on a frame's end.
        this.decode(chunk.subarray(from, at), true);
        from = at;
        this.endFrame();
      }
    }
    this.decode(chunk.subarray(from));
    return this.take();
  }

  end(): Buffer[] {
    // fzstd says why first when it can (its own end-of-input check), else the frame walk does.
    this.decode(new Uint8Array(0), true);
    if (this.state !== 'magic' || this.held.length > 0) throw new Error(MESSAGES[5]);
    return this.take();
  }

  private take(): Buffer[] {
    const p = this.parts;
    this.parts = [];
    return p;
  }

  private decode(b: Uint8Array, final = false): void {
    if (b.length === 0 && !final) return;
    try {
      this.d.push(b, final);
    } catch (e) {
      const code = (e as { code?: number }).code;
      throw new Error(code !== undefined && MESSAGES[code] ? MESSAGES[code] : (e as Error).message);
    }
  }

  private endFrame(): void {
    const h = this.hash!;
    this.hash = null;
    this.ended = false;
    if (this.checksum !== null && h.digestLow32() !== this.checksum) throw new Error('content checksum mismatch');
  }

  /** Follows the frame structure over `b` from `at`; stops at the chunk's end or just after a frame's last byte. */
  private walk(b: Buffer, at: number): number {
    while (at < b.length) {
      if (this.state === 'payload' || this.state === 'skip') {
        const n = Math.min(this.want, b.length - at);
        at += n;
        this.want -= n;
        if (this.want > 0) return at;
        if (this.state === 'skip') this.next('magic', 4);
        else this.afterBlock();
      } else {
        this.held.push(b[at++]!);
        if (this.held.length < this.want) continue;
        const h = this.held;
        this.held = [];
        this.field(h);
      }
      if (this.ended) return at;
    }
    return at;
  }

  /** A field of `want` bytes is complete. */
  private field(h: number[]): void {
    const u32 = () => (h[0]! | (h[1]! << 8) | (h[2]! << 16)) + h[3]! * 16777216;
    switch (this.state) {
      case 'magic': {
        const m = u32();
        if (m === MAGIC) return this.next('fhd', 1);
        if (m >= 0x184d2a50 && m <= 0x184d2a5f) return this.next('skip-size', 4);
        throw new Error(MESSAGES[0]);
      }
      case 'skip-size':
        return u32() > 0 ? this.next('skip', u32()) : this.next('magic', 4);
      case 'fhd': {
        const fhd = h[0]!;
        const single = (fhd >> 5) & 1, fcs = fhd >> 6;
        this.checksum = (fhd >> 2) & 1 ? 0 : null;
        this.hash = new Xxh64();
        const rest = (single ? 0 : 1) + [0, 1, 2, 4][fhd & 3]! + (fcs === 0 ? single : [1, 2, 4, 8][fcs]!);
        return rest > 0 ? this.next('header', rest) : this.next('block', 3);
      }
      case 'header':
        return this.next('block', 3);
      case 'block': {
        const v = h[0]! | (h[1]! << 8) | (h[2]! << 16);
        this.last = (v & 1) === 1;
        const type = (v >> 1) & 3;
        if (type === 3) throw new Error(MESSAGES[2]);
        const size = type === 1 ? 1 : v >>> 3;
        return size > 0 ? this.next('payload', size) : this.afterBlock();
      }
      case 'checksum':
        this.checksum = u32();
        this.ended = true;
        return this.next('magic', 4);
    }
  }

  private afterBlock(): void {
    if (!this.last) return this.next('block', 3);
    if (this.checksum !== null) return this.next('checksum', 4);
    this.ended = true;
    this.next('magic', 4);
  }

  private next(state: ZstdInflate['state'], want: number): void {
    this.state = state;
    this.want = want;
  }
}

// XXH64 (xxhash.com spec) on 64-bit values as hi/lo uint32 halves, without allocating: the stripe loop runs over
// every byte of the content (BigInt or [hi, lo] arrays cost several times the decoding).
const P1H = 0x9e3779b1, P1L = 0x85ebca87, P2H = 0xc2b2ae3d, P2L = 0x27d4eb4f, P3H = 0x165667b1, P3L = 0x9e3779f9;
const P4H = 0x85ebca77, P4L = 0xc2b2ae63, P5H = 0x27d4eb2f, P5L = 0x165667c5;
/** High half of the last mul/add/rotl result (the low half is returned). */
let H = 0;

function mul(ah: number, al: number, bh: number, bl: number): number {
  H = (mulHi(al, bl) + Math.imul(al, bh) + Math.imul(ah, bl)) >>> 0;
  return Math.imul(al, bl) >>> 0;
}
function add(ah: number, al: number, bh: number, bl: number): number {
  const lo = al + bl;
  H = (ah + bh + (lo >= 4294967296 ? 1 : 0)) >>> 0;
  return lo >>> 0;
}
function rotl(h: number, l: number, r: number): number {
  H = ((h << r) | (l >>> (32 - r))) >>> 0;
  return ((l << r) | (h >>> (32 - r))) >>> 0;
}
/** round(acc, lane) = rotl(acc + lane * P2, 31) * P1. */
function round(ah: number, al: number, lh: number, ll: number): number {
  let l = mul(lh, ll, P2H, P2L);
  l = add(ah, al, H, l);
  l = rotl(H, l, 31);
  return mul(H, l, P1H, P1L);
}

/** The high 32 bits of a * b (uint32s), from 16-bit pieces: every partial product stays below 2^32. */
function mulHi(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p01 = a0 * b1, p10 = a1 * b0;
  return a1 * b1 + (p01 >>> 16) + (p10 >>> 16) + ((((a0 * b0) >>> 16) + (p01 & 0xffff) + (p10 & 0xffff)) >>> 16);
}

/** The 32-byte stripes of b[from, to) into the four accumulators (hi, lo pairs), with locals only: the hot loop. */
function stripes(b: Buffer, from: number, to: number, v: Uint32Array): void {
  if (from >= to) return;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const acc = [v[0]!, v[1]!, v[2]!, v[3]!, v[4]!, v[5]!, v[6]!, v[7]!];
  for (let o = from; o < to; o += 32)
    for (let i = 0; i < 8; i += 2) {
      const ll = dv.getUint32(o + 4 * i, true), lh = dv.getUint32(o + 4 * i + 4, true);
      // acc + lane * P2
      const tl = Math.imul(ll, P2L) >>> 0;
      const th = mulHi(ll, P2L) + Math.imul(ll, P2H) + Math.imul(lh, P2L);
      const sl = acc[i + 1]! + tl;
      const sh = (acc[i]! + th + (sl >= 4294967296 ? 1 : 0)) >>> 0;
      // rotl 31, then * P1
      const rh = ((sh << 31) | ((sl >>> 0) >>> 1)) >>> 0, rl = (((sl >>> 0) << 31) | (sh >>> 1)) >>> 0;
      acc[i + 1] = Math.imul(rl, P1L) >>> 0;
      acc[i] = (mulHi(rl, P1L) + Math.imul(rl, P1H) + Math.imul(rh, P1L)) >>> 0;
    }
  v.set(acc);
}

export class Xxh64 {
  private readonly v = new Uint32Array([0, 0, P2H, P2L, 0, 0, 0, 0]);
  private buf = Buffer.alloc(32);
  private held = 0;
  private total = 0;

  constructor() {
    const v = this.v;
    v[1] = add(P1H, P1L, P2H, P2L);
    v[0] = H;
    // seed - P1, two's complement (P1's low half is not 0: no carry into the high half)
    v[7] = -P1L >>> 0;
    v[6] = ~P1H >>> 0;
  }

  update(b: Buffer): void {
    this.total += b.length;
    let at = 0;
    if (this.held > 0) {
      const n = Math.min(32 - this.held, b.length);
      b.copy(this.buf, this.held, 0, n);
      this.held += n;
      at = n;
      if (this.held < 32) return;
      this.stripe(this.buf, 0);
      this.held = 0;
    }
    const whole = at + ((b.length - at) & ~31);
    stripes(b, at, whole, this.v);
    at = whole;
    if (at < b.length) this.held = b.copy(this.buf, 0, at);
  }

  private stripe(b: Buffer, o: number): void {
    stripes(b, o, o + 32, this.v);
  }

  digestLow32(): number {
    const v = this.v;
    let h: number, l: number;
    if (this.total >= 32) {
      l = rotl(v[0]!, v[1]!, 1);
      h = H;
      for (const [i, r] of [[2, 7], [4, 12], [6, 18]] as const) {
        const rl = rotl(v[i]!, v[i + 1]!, r);
        l = add(h, l, H, rl);
        h = H;
      }
      for (let i = 0; i < 8; i += 2) {
        // merge: acc = (acc ^ round(0, v)) * P1 + P4
        const rl = round(0, 0, v[i]!, v[i + 1]!);
        l = mul((h ^ H) >>> 0, (l ^ rl) >>> 0, P1H, P1L);
        l = add(H, l, P4H, P4L);
        h = H;
      }
    } else (h = P5H), (l = P5L);
    l = add(h, l, Math.floor(this.total / 4294967296), this.total >>> 0);
    h = H;
    const b = this.buf;
    let o = 0;
    for (; o + 8 <= this.held; o += 8) {
      const kl = round(0, 0, b.readUInt32LE(o + 4), b.readUInt32LE(o));
      l = rotl((h ^ H) >>> 0, (l ^ kl) >>> 0, 27);
      l = mul(H, l, P1H, P1L);
      l = add(H, l, P4H, P4L);
      h = H;
    }
    if (o + 4 <= this.held) {
      const kl = mul(0, b.readUInt32LE(o), P1H, P1L);
      l = rotl((h ^ H) >>> 0, (l ^ kl) >>> 0, 23);
      l = mul(H, l, P2H, P2L);
      l = add(H, l, P3H, P3L);
      h = H;
      o += 4;
    }
    for (; o < this.held; o++) {
      const kl = mul(0, b[o]!, P5H, P5L);
      l = rotl((h ^ H) >>> 0, (l ^ kl) >>> 0, 11);
      l = mul(H, l, P1H, P1L);
      h = H;
    }
    l = (l ^ (h >>> 1)) >>> 0;
    l = mul(h, l, P2H, P2L);
    h = H;
    l = (l ^ ((l >>> 29) | (h << 3))) >>> 0;
    h = (h ^ (h >>> 29)) >>> 0;
    l = mul(h, l, P3H, P3L);
    h = H;
    return (l ^ h) >>> 0;
  }
}
