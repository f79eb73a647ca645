/**
 * Collects `anomalies` rows from the other trackers: each names its kind, the page, the event that shows it and
 * whether it is certain (false when the state involved crossed a lost-event window).
 */
import type { Ev } from './event.js';
import { id, num, ptr, type Output, type Row } from './output.js';

export type AnomalyKind =
  | 'refcount_underflow'
  | 'freed_while_mapped'
  | 'freed_while_pinned'
  | 'ref_after_free'
  | 'longterm_pin_in_cma'
  | 'pin_never_released'
  | 'refcount_not_baseline'
  | 'pgmap_put_without_get'
  | 'pgmap_refs_at_unmap'
  | 'device_page_zero_without_put'
  | 'pgmap_ref_never_released';

const SEVERITY: Record<AnomalyKind, string> = {
  refcount_underflow: 'error',
  freed_while_mapped: 'error',
  freed_while_pinned: 'error',
  ref_after_free: 'error',
  longterm_pin_in_cma: 'warning',
  pin_never_released: 'error',
  refcount_not_baseline: 'warning',
  pgmap_put_without_get: 'error',
  pgmap_refs_at_unmap: 'error',
  device_page_zero_without_put: 'error',
  pgmap_ref_never_released: 'error',
};

/** Who/when of the event that shows an anomaly, when it is not the current Ev. */
export interface At {
  seq: number;
  ts: number;
  pid: number;
  comm: number;
  stack: number;
}

export class Anomalies {
  count = 0;
  certain = 0;
  readonly byKind = new Map<string, number>();
  private readonly row: Row = {};

  constructor(private readonly out: Output) {
    this.row.trace_id = out.traceId;
  }

  /** Record one anomaly shown by event `ev` (or by `at` for state that ended earlier). */
  add(
    kind: AnomalyKind,
    certain: boolean,
    pfn: number,
    at: Ev | At | null,
    detail: string,
    extra: { pinId?: number; pgmap?: string | null; severity?: string } = {},
  ): void {
    const r = this.row;
    r.anomaly_id = this.count++;
    r.kind = kind;
    r.severity = extra.severity ?? SEVERITY[kind];
    r.certain = certain;
    r.pfn = num(pfn);
    r.seq = at ? at.seq : null;
    r.ts_ns = at ? this.out.ts(at.ts) : null;
    r.pid = at ? id(at.pid) : null;
    r.comm = at ? this.out.comm(at.comm) : null;
    r.stack_id = at ? id(at.stack) : null;
    r.pin_id = extra.pinId ?? null;
    r.pgmap = extra.pgmap ? ptr(extra.pgmap) : null;
    r.detail = detail;
    this.out.anomalies.add(r);
    if (certain) this.certain++;
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
  }
}

export const hex = (pfn: number): string => '0x' + pfn.toString(16);
