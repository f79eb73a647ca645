import type { CpuBuffer, TraceDat } from './header.js';

/**
 * One CPU's ring-buffer pages read as libtraceevent's kbuffer reads them (src/kbuffer-parse.c; the layout is the
 * kernel's kernel/trace/ring_buffer.c): a page is a u64 timestamp, a `commit` long (data size in the low 27
 * bits, RB_MISSED_EVENTS bit 31, RB_MISSED_STORED bit 30 with the count stored after the data), then events
 * whose u32 header holds type_len (5 bits) and time_delta (27 bits): 29 padding, 30 time extend, 31 absolute
 * time stamp, 0 a length word first, 1..28 the data length in words. Times are kept as (seconds, ns) so a u64 of
 * nanoseconds past 2^53 stays exact.
 */

const TYPE_PADDING = 29;
const TYPE_TIME_EXTEND = 30;
const TYPE_TIME_STAMP = 31;
const COMMIT_MASK = (1 << 27) - 1;
const MISSING_EVENTS = 0x80000000;
const MISSING_STORED = 0x40000000;
const TS_SHIFT = 134217728; // 2^27
const E9 = 1e9;

export class CpuStream {
  readonly cpu: number;
  private readonly data: Buffer;
  private readonly pageSize: number;
  private readonly start: number;
  private readonly long8: boolean;
  /** Offset of the loaded page in `data`, -1 before the first. */
  private page = -1;
  private size = 0;
  private lost = 0;
  private curr = 0;
  private next = 0;
  private sec = 0;
  private ns = 0;
  /** The current event: its data in `data`, its time, the drops before it. */
  has = false;
  dataStart = 0;
  dataEnd = 0;
  tsSec = 0;
  tsNs = 0;
  missed = 0;

  constructor(
    b: CpuBuffer,
    f: TraceDat,
    private readonly adjust: ((sec: number, ns: number) => [number, number]) | null,
  ) {
    this.cpu = b.cpu;
    this.data = b.data;
    this.pageSize = f.pageSize;
    this.start = f.pageData;
    this.long8 = f.kernelLong === 8;
    this.loadNextPage();
  }

  /** Move to the next event; `has` is false at the end of the CPU's data. */
  advance(): void {
    if (this.nextEvent()) return this.take();
    this.loadNextPage();
  }

  private loadNextPage(): void {
    for (;;) {
      const p = this.page < 0 ? 0 : this.page + this.pageSize;
      // trace-input.c get_next_page: no page once less than one page's bytes remain after the current one.
      if (this.page >= 0 ? this.data.length - this.page <= this.pageSize : this.data.length === 0) {
        this.has = false;
        return;
      }
      this.page = p;
      this.loadPage();
      if (this.nextEvent()) return this.take();
    }
  }

  private loadPage(): void {
    const d = this.data;
    const p = this.page;
    const end = Math.min(d.length, p + this.pageSize);
    if (p + this.start > end) throw new PageError(p, `a ${end - p}-byte page is shorter than its header`);
    this.setTs(d.readUInt32LE(p + 4), d.readUInt32LE(p));
    const flags = d.readUInt32LE(p + 8);
    this.size = flags & COMMIT_MASK;
    if (p + this.start + this.size > end) throw new PageError(p, `page commit ${this.size} runs past the page's ${end - p - this.start} data bytes`);
    if (flags & MISSING_EVENTS) {
      if (flags & MISSING_STORED) {
        const at = p + this.start + this.size;
        if (at + (this.long8 ? 8 : 4) > end) throw new PageError(p, 'the missed-events count stored after the data runs past the page');
        // kbuffer_missed_events() returns an int: the count's low 32 bits, signed (negative prints "[EVENTS DROPPED]").
        this.lost = d.readInt32LE(at);
      } else this.lost = -1;
    } else this.lost = 0;
    this.curr = 0;
    this.next = 0;
  }

  private setTs(hi: number, lo: number): void {
    if (hi < 0x200000) {
      const t = hi * 4294967296 + lo;
      let s = Math.floor(t / E9);
      let n = t - s * E9;
      if (n < 0) (s--, (n += E9));
      else if (n >= E9) (s++, (n -= E9));
      this.sec = s;
      this.ns = n;
    } else {
      const t = (BigInt(hi) << 32n) | BigInt(lo);
      this.sec = Number(t / 1_000_000_000n);
      this.ns = Number(t % 1_000_000_000n);
    }
  }

  private addNs(d: number): void {
    let n = this.ns + d;
    if (n >= E9) {
      const q = Math.floor(n / E9);
      this.sec += q;
      n -= q * E9;
      if (n >= E9) (this.sec++, (n -= E9));
      else if (n < 0) (this.sec--, (n += E9));
    }
    this.ns = n;
  }

  /** kbuffer's next_event(): skip padding and time records; false when the page has no more events. */
  private nextEvent(): boolean {
    const d = this.data;
    const base = this.page + this.start;
    const limit = Math.min(d.length, this.page + this.pageSize) - base;
    for (;;) {
      this.curr = this.next;
      if (this.next >= this.size) return false;
      const at = base + this.curr;
      if (this.curr + 4 > limit) throw new PageError(this.page, `an event header at ${this.curr} runs past the page`);
      const h = d.readUInt32LE(at);
      const type = h & 31;
      const delta = h >>> 5;
      let index = this.curr + 4;
      let length: number;
      if (type === TYPE_PADDING) {
        if (this.curr + 8 > limit) throw new PageError(this.page, 'a padding event runs past the page');
        length = d.readUInt32LE(at + 4);
        this.addNs(delta);
      } else if (type === TYPE_TIME_EXTEND || type === TYPE_TIME_STAMP) {
        if (this.curr + 8 > limit) throw new PageError(this.page, 'a time event runs past the page');
        const ext = d.readUInt32LE(at + 4);
        index += 4;
        length = 0;
        if (type === TYPE_TIME_STAMP) {
          // Absolute: 59 bits; the 5 most significant come from the current time (kbuffer TS_MSB).
          const now = BigInt(this.sec) * 1_000_000_000n + BigInt(this.ns);
          const t = ((BigInt(ext) << 27n) + BigInt(delta)) | (now & (0xf8n << 56n));
          this.sec = Number(t / 1_000_000_000n);
          this.ns = Number(t % 1_000_000_000n);
        } else if (ext < 0x2000000) this.addNs(ext * TS_SHIFT + delta);
        else {
          const t = BigInt(this.sec) * 1_000_000_000n + BigInt(this.ns) + (BigInt(ext) << 27n) + BigInt(delta);
          this.sec = Number(t / 1_000_000_000n);
          this.ns = Number(t % 1_000_000_000n);
        }
      } else if (type === 0) {
        if (this.curr + 8 > limit) throw new PageError(this.page, 'an event length word runs past the page');
        length = (d.readUInt32LE(at + 4) - 4 + 3) & ~3;
        index += 4;
        this.addNs(delta);
      } else {
        length = type * 4;
        this.addNs(delta);
      }
      const next = index + length;
      if (length < 0 || next > limit) throw new PageError(this.page, `an event of ${length} bytes at ${this.curr} runs past the page`);
      this.next = next;
      if (type < TYPE_PADDING) {
        this.dataStart = base + index;
        this.dataEnd = base + next;
        return true;
      }
    }
  }

  private take(): void {
    this.has = true;
    // kbuffer_missed_events(): only an event at the very start of the page carries the page's drops.
    this.missed = this.curr === 0 ? this.lost : 0;
    if (this.adjust === null) {
      this.tsSec = this.sec;
      this.tsNs = this.ns;
    } else [this.tsSec, this.tsNs] = this.adjust(this.sec, this.ns);
  }

  get buffer(): Buffer {
    return this.data;
  }
}

/** A page that does not hold together; the caller adds the file offset. */
export class PageError extends Error {
  constructor(
    readonly page: number,
    reason: string,
  ) {
    super(reason);
  }
}

/** trace-input.c timestamp_calc: TSC2NSEC's mult/shift, then the DATE / OFFSET options' offset; null when neither. */
export function timeAdjust(f: TraceDat): ((sec: number, ns: number) => [number, number]) | null {
  if (f.tsc === null && f.tsOffset === 0n) return null;
  const tsc = f.tsc;
  return (sec, ns) => {
    let t = BigInt(sec) * 1_000_000_000n + BigInt(ns);
    if (tsc !== null) t = (t * BigInt(tsc.mult)) >> BigInt(tsc.shift);
    t += f.tsOffset;
    if (t < 0n) t = 0n;
    return [Number(t / 1_000_000_000n), Number(t % 1_000_000_000n)];
  };
}
