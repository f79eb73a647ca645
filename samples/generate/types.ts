/**
 * Shared types of the scenario generators: the scenario context and the truth file a generated trace comes with.
 *
 * pfn layout used by every scenario (so the background never touches a scenario's pages):
 *   0x01000..0x70000    background pages (noise.ts), mt 0/1
 *   0x70000..0x7bc00    scenario pages outside CMA
 *   0x7bc00..0x7fc00    CMA area "reserved", 16384 pages, as in qemu-6.1 (base_pfn 0x7bc00):
 *     0x7bc00..0x7e000  scenario pages in CMA
 *     0x7e000..0x7f800  background movable pages in CMA (mt=4)
 *     0x7f800..0x7fc00  background cma_alloc/cma_release (noise scenario only)
 *   0xfcf0000..0xfd00000 device-private dev_pagemap (dax-pgmap*), as test_hmm's dmirror0 in qemu-6.1
 */
import type { Emitter, Format } from './emit.js';
import type { Mm } from './mm.js';
import type { Rng } from './prng.js';

/**
 * Scenario names, in the order `refscope generate` lists them. Here, apart from the scenarios' code, so that the
 * CLI names them without loading the generator; index.ts checks its definitions against this list.
 */
export const SCENARIO_NAMES = [
  'vmalloc-remap', 'vmalloc-uaf', 'vmsplice-cma', 'iouring-longterm', 'iouring-longterm-cma', 'dax-pgmap', 'dax-pgmap-leak',
  'gup-fast-split', 'gup-interleaved', 'pin-leak', 'lost-window', 'noise', 'tracing-gap', 'cma-lru-drain', 'exit-with-pins',
  'migrate-interleaved',
] as const;

export type Scenario = (typeof SCENARIO_NAMES)[number];

export const KERNEL = '6.1.192';

/**
 * Kernel eras. Some scenarios imitate several in the shape of their operations (gup-interleaved, cma-lru-drain,
 * tracing-gap, exit-with-pins: drawn from the seed when no era is given, keeping 6.1's line formats). An era given
 * (`generate --era`, any scenario) also decides the formats: '6.18' prints `mapcount=` as the raw _mapcount
 * (mm.ts), and the truth's kernel is the era's (ERA_KERNEL: `ingest --kernel` reads mapcount= by it; without it,
 * ingest decides by the values, a -1 meaning raw).
 */
export type Era = '5.15' | '6.1' | '6.18';

export const ERA_KERNEL: Record<Era, string> = { '5.15': '5.15.131', '6.1': KERNEL, '6.18': '6.18.0' };

export interface Ctx {
  em: Emitter;
  mm: Mm;
  rng: Rng;
  format: Format;
  scale: number;
  seed: number;
  /** The era asked for (absent: the scenario's default, drawn from the seed where it imitates several, 6.1 formats). */
  era?: Era;
}

/** A pin row (replay `pins`): the EXACT set. Times are the printed µs clock x 1000. */
export interface TruthPin {
  pfn: number;
  refs: number;
  holder_pid: number;
  holder_comm: string;
  start_ts_ns: number;
  /** null: still held when the trace ends (or its release was lost). */
  end_ts_ns: number | null;
  /** From the FOLL_ flags of a GUP probe; null when no probe reported them (then any answer is accepted). */
  longterm: boolean | null;
  in_cma: boolean;
  large_folio: boolean;
  /** The interval crosses a lost-event window (absent = false). */
  uncertain?: boolean;
  /** Opened after a reason=longterm_pin migration inside its pinning call (replay `pins.migrate_seq`; absent = false). */
  migrated?: boolean;
}

/** A plain-reference hold (replay `holds`) that must be present (not an exact set). */
export interface TruthHold {
  pfn: number;
  refs: number;
  holder_pid: number;
  holder_comm: string;
  end_ts_ns: number | null;
}

/** An anomaly row: the EXACT set (kind, pfn, certain); pid/comm/pgmap say which event shows it. */
export interface TruthAnomaly {
  kind: string;
  pfn: number | null;
  certain: boolean;
  pid?: number;
  comm?: string;
  pgmap?: string;
}

/** cma_alloc / cma_release calls: the EXACT list, in trace order. */
export interface TruthCmaAttempt {
  kind: 'alloc' | 'release';
  cma_name: string;
  busy_retries: number;
  succeeded: boolean | null;
}

/** Distinct (pfn, holder) pairs of cma_blockers: the EXACT set. */
export interface TruthCmaBlocker {
  pfn: number;
  holder_kind: 'pin' | 'hold' | 'unknown';
  holder_pid: number | null;
  holder_comm: string | null;
  /** References the holder has on the pfn when the range fails (absent: not stated). */
  refs?: number;
}

/** pgmaps rows: the EXACT set; pgmap as 0x-prefixed hex. */
export interface TruthPgmap {
  pgmap: string;
  gets: number;
  puts: number;
  outstanding_end: number;
  outstanding_at_unmap: number | null;
}

/** An untraced window replay must infer (replay table `gaps`): the EXACT set of (kind, pfn). */
export interface TruthGap {
  kind: 'silence' | 'overwritten' | 'alive-on-free' | 'double-free' | 'count-jump';
  pfn: number | null;
}

/**
 * A pin or pgmap reference outstanding at the end of the trace (queries/outstanding.sql, kinds 'pin' and 'pgmap'):
 * the EXACT set. holder_exited: its holder's process exited after taking it; certain: a certain leak.
 */
export interface TruthOutstanding {
  kind: 'pin' | 'pgmap';
  pfn: number;
  holder_pid: number;
  holder_exited: boolean;
  certain: boolean;
}

/** Every key present is checked; an absent key is not checked. */
export interface Expect {
  pins?: TruthPin[];
  holds?: TruthHold[];
  anomalies?: TruthAnomaly[];
  cma_attempts?: TruthCmaAttempt[];
  cma_blockers?: TruthCmaBlocker[];
  pgmaps?: TruthPgmap[];
  /** The EXACT set of pins and pgmap references outstanding at the end (absent: not checked). */
  outstanding?: TruthOutstanding[];
  /** The EXACT set of pages a leak query must report as certain leaks. */
  leaks?: { pfn: number }[];
  /** Lost events the trace declares (`[LOST N EVENTS]` / `[N EVENTS DROPPED]` lines). */
  lost_events?: number;
  /** Untraced windows replay infers (table `gaps`): the EXACT set. */
  gaps?: TruthGap[];
}

export interface Truth {
  scenario: Scenario;
  seed: number;
  format: Format;
  kernel: string;
  scale: number;
  description: string;
  /** Lines written. */
  lines: number;
  /** Event name -> event lines written (syscalls as sys_enter_X/sys_exit_X, markers as tracing_mark_write; stacks not counted). */
  events: Record<string, number>;
  expect: Expect;
  /** Finding kinds (anomaly kinds, plus 'leak') that must not appear at all, certain or not. */
  forbid: string[];
}

export interface ScenarioResult {
  description: string;
  expect: Expect;
  forbid: string[];
}

export interface ScenarioDef {
  name: Scenario;
  summary: string;
  run(ctx: Ctx): Promise<ScenarioResult>;
}

export const FINDINGS = [
  'refcount_underflow',
  'freed_while_mapped',
  'freed_while_pinned',
  'ref_after_free',
  'longterm_pin_in_cma',
  'pin_never_released',
  'refcount_not_baseline',
  'pgmap_put_without_get',
  'pgmap_refs_at_unmap',
  'device_page_zero_without_put',
  'pgmap_ref_never_released',
  'leak',
] as const;

/** Every finding kind except the ones given (those a scenario expects or leaves unchecked). */
export function forbidAllBut(...allowed: string[]): string[] {
  return FINDINGS.filter((k) => !allowed.includes(k));
}

/** Printed timestamps have µs resolution: truth times are the µs clock x 1000. */
export const ns = (us: number): number => us * 1000;
