import { Decompress } from 'fzstd';
import xxhash from 'xxhash-wasm';

/**
 * Streaming zstd for source.ts: fzstd (pure JS: Node 20 has no zstd) decodes, and this wrapper follows the frames
 * itself (RFC 8878 §3.1: header, blocks, optional content checksum; skippable frames) to check each frame's
 * checksum, the low 32 bits of the XXH64 of its content (xxhash-wasm), which fzstd skips: a flipped byte that still decodes is
 * refused instead of ingested. A frame's end is handed to fzstd as the end of a (final) piece, so the output
 * collected since the frame began is exactly its content.
 */

const MAGIC = 0xfd2fb528;
const { create64 } = await xxhash();
type Xxh64 = ReturnType<typeof create64>;
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
    if (this.checksum !== null && Number(h.digest() & 0xffffffffn) !== this.checksum) throw new Error('content checksum mismatch');
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
        this.hash = create64();
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
