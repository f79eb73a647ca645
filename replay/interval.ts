/**
 * What a pin (pins.ts) and a plain-reference hold (holds.ts) share: references on one pfn taken by one task at one
 * moment, given back later (possibly by another task), and the columns of `pins` and `holds` that describe it.
 */
import { id, num, type Output, type Row } from './output.js';

export class RefInterval {
  pfn = 0;
  /** References taken, and those not yet given back. */
  refs = 0;
  left = 0;
  startSeq = 0;
  /** Relative to the trace's first timestamp (Output.ts turns it back into events.ts_ns). */
  startTs = 0;
  pid = -1;
  tgid = -1;
  /** Ids into the driver's string tables; -1 for none. */
  comm = -1;
  stack = -1;
  /** FOLL_* flags from a GUP probe or call, NaN when unknown. */
  gupFlags = NaN;
  mt = NaN;
  inCma = false;
  /** Lost-event epoch when it opened (lost.ts). */
  epoch = 0;
}

/**
 * The shared columns of a pin or hold row: where and by whom it was taken, how it ended (endSeq/endTs NaN and
 * relPid/relComm -1 while still held at the end of the trace) and its duration up to `until`.
 */
export function writeInterval(r: Row, x: RefInterval, out: Output, endSeq: number, endTs: number, relPid: number, relComm: number, until: number): void {
  r.pfn = x.pfn;
  r.refs = x.refs;
  r.start_seq = x.startSeq;
  r.start_ts_ns = out.ts(x.startTs);
  r.end_seq = num(endSeq);
  r.end_ts_ns = out.ts(endTs);
  r.duration_ns = Math.max(0, until - x.startTs);
  r.holder_pid = id(x.pid);
  r.holder_tgid = id(x.tgid);
  r.holder_comm = out.comm(x.comm);
  r.stack_id = id(x.stack);
  r.release_pid = id(relPid);
  r.release_comm = out.comm(relComm);
  r.gup_flags = num(x.gupFlags);
  r.mt = num(x.mt);
  r.in_cma = x.inCma;
}
