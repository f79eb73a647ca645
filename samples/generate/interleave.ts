/**
 * Random valid interleavings of a generated ftrace trace (the property test of issue #18: the same per-CPU event
 * streams, merged differently, must give the same findings).
 *
 * The trace is split into per-CPU streams of entries (an event line with its `<stack trace>` entry and ` => func`
 * lines; a `CPU:N [LOST M EVENTS]` line goes with the next entry of CPU N). A new merge orders the entries of each
 * timestamp at random: every CPU's own order is kept, the output stays in timestamp order, and entries of equal
 * timestamps on different CPUs are interleaved at random, so other CPUs'
 * events land anywhere between the halves of a two-event operation when the generator gave them the same timestamp.
 *
 * `count=` of page_ref events is re-read after the atomic operation, so in the new order it is recomputed per pfn
 * (previous count + val; page_ref_set and page_ref_unfreeze: val; a successful page_ref_freeze: 0; a failed
 * page_ref_mod_unless or page_ref_freeze: unchanged), and so is `ret=` where it reports that count
 * (page_ref_mod_and_return: the new count; page_ref_mod_and_test: 1 when it reached 0): the merge is then the trace of an execution whose atomic
 * operations ran in that order. An operation may only be taken where it sees what it saw (a count reaching 0 only
 * where it did, never below 0, a page_ref_mod_unless ret=0 only on a page at 0 and ret=1 only on a live one, a
 * page_ref_freeze ret=1 only at its expected count val, an unfreeze only on a frozen page): each timestamp's
 * entries are ordered by a random search that backtracks out of dead ends (the original order is always valid).
 * Only the ftrace layout is handled (the generators' default).
 */
import { Rng } from './prng.js';

interface Entry {
  cpu: number;
  /** Printed µs clock. */
  us: number;
  lines: string[];
  /** page_ref events: pfn, val, the printed count, ret (or null), the event name. */
  ref: { pfn: number; val: number; count: number; ret: number | null; name: string } | null;
}

/** `comm-pid (tgid) [cpu] irq secs.usecs: ` (trace_print_context with record-tgid). */
const HEAD = /^.{16}-\d+\s+\(\s*[-\d]+\)\s+\[(\d{3})\]\s+\S{4,5}\s+(\d+)\.(\d{6}): (.*)$/;
const REF = /^(page_ref_\w+): pfn=0x([0-9a-f]+) flags=\S+ count=(-?\d+) .* val=(-?\d+)(?: ret=(-?\d+))?$/;

export interface Interleaving {
  text: string;
  /** Entries whose position relative to another CPU's entry of the same timestamp changed. */
  moved: number;
}

function parse(text: string): { header: string[]; entries: Entry[]; tail: string } {
  const lines = text.split('\n');
  const tail = lines.pop() ?? '';
  const header: string[] = [];
  const entries: Entry[] = [];
  const pendingLost = new Map<number, string>();
  let last: Entry | null = null;
  for (const l of lines) {
    if (entries.length === 0 && l.startsWith('#')) {
      header.push(l);
      continue;
    }
    if (l.startsWith(' => ')) {
      if (!last) throw new Error(`interleave: stack line before any event: ${l}`);
      last.lines.push(l);
      continue;
    }
    const lost = /^CPU:(\d+) \[LOST \d+ EVENTS\]$/.exec(l);
    if (lost) {
      pendingLost.set(Number(lost[1]), l);
      continue;
    }
    const m = HEAD.exec(l);
    if (!m) throw new Error(`interleave: not an ftrace event line: ${l}`);
    const cpu = Number(m[1]);
    const us = Number(m[2]) * 1e6 + Number(m[3]);
    if (m[4] === '<stack trace>' && last && last.cpu === cpu) {
      last.lines.push(l);
      continue;
    }
    const e: Entry = { cpu, us, lines: [], ref: null };
    const lm = pendingLost.get(cpu);
    if (lm !== undefined) {
      e.lines.push(lm);
      pendingLost.delete(cpu);
    }
    e.lines.push(l);
    const r = REF.exec(m[4]!);
    if (r) e.ref = { pfn: parseInt(r[2]!, 16), count: Number(r[3]), val: Number(r[4]), ret: r[5] === undefined ? null : Number(r[5]), name: r[1]! };
    entries.push(e);
    last = e;
  }
  return { header, entries, tail };
}

/**
 * The count after `e` when it runs on a page at `prev` (undefined: the pfn's first event, its printed count), or
 * null when it cannot run there without seeing something else than it saw.
 */
function after(e: Entry, prev: number | undefined): number | null {
  const r = e.ref!;
  if (r.name === 'page_ref_set') return r.val;
  if (prev === undefined) return r.count;
  let c: number;
  switch (r.name) {
    case 'page_ref_mod_unless':
      if (r.ret === 0) return prev === 0 ? 0 : null;
      if (prev === 0) return null;
      c = prev + r.val;
      break;
    case 'page_ref_freeze':
      if (r.ret === 1) return prev === r.val ? 0 : null;
      return prev !== r.val ? prev : null;
    case 'page_ref_unfreeze':
      return prev === 0 ? r.val : null;
    default:
      c = prev + r.val;
  }
  return c < 0 || (c === 0) !== (r.count === 0) ? null : c;
}

/**
 * One merge of the per-CPU streams: at each timestamp, the entries of that µs of every CPU are ordered by a
 * random depth-first search (each CPU's order kept, an entry taken only where it can run on the counts so far,
 * backtracking out of dead ends). Returns the order and each page_ref entry's count in it, or null when the
 * search gives up (`budget` steps per timestamp; the caller draws again).
 */
function merge(entries: Entry[], rng: Rng, budget = 5000): { order: number[]; counts: Map<number, number> } | null {
  const order: number[] = [];
  const counts = new Map<number, number>();
  const count = new Map<number, number>();
  let g = 0;
  while (g < entries.length) {
    // The entries of this µs (the input is in timestamp order): g..h-1.
    const us = entries[g]!.us;
    let h = g;
    while (h < entries.length && entries[h]!.us === us) h++;
    const byCpu = new Map<number, number[]>();
    for (let i = g; i < h; i++) {
      let s = byCpu.get(entries[i]!.cpu);
      if (!s) byCpu.set(entries[i]!.cpu, (s = []));
      s.push(i);
    }
    const qs = [...byCpu.values()];
    if (qs.length === 1) {
      for (const i of qs[0]!) {
        const r = entries[i]!.ref;
        if (r) {
          const c = after(entries[i]!, count.get(r.pfn));
          if (c === null) return null;
          count.set(r.pfn, c);
          counts.set(i, c);
        }
        order.push(i);
      }
      g = h;
      continue;
    }
    const pos = qs.map(() => 0);
    const path: number[] = [];
    let steps = 0;
    const dfs = (): boolean => {
      if (path.length === h - g) return true;
      if (++steps > budget) return false;
      const cand: number[] = [];
      for (let q = 0; q < qs.length; q++) if (pos[q]! < qs[q]!.length) cand.push(q);
      for (let k = cand.length - 1; k > 0; k--) {
        const j = rng.int(0, k);
        [cand[k], cand[j]] = [cand[j]!, cand[k]!];
      }
      for (const q of cand) {
        const i = qs[q]![pos[q]!]!;
        const r = entries[i]!.ref;
        let prev: number | undefined;
        if (r) {
          prev = count.get(r.pfn);
          const c = after(entries[i]!, prev);
          if (c === null) continue;
          count.set(r.pfn, c);
          counts.set(i, c);
        }
        pos[q]!++;
        path.push(i);
        if (dfs()) return true;
        path.pop();
        pos[q]!--;
        if (r) {
          if (prev === undefined) count.delete(r.pfn);
          else count.set(r.pfn, prev);
          counts.delete(i);
        }
      }
      return false;
    };
    if (!dfs()) return null;
    order.push(...path);
    g = h;
  }
  return { order, counts };
}

/** ret= of a page_ref event that ran to count `c` (the ops whose ret reports the count; else the printed one). */
function retAfter(r: NonNullable<Entry['ref']>, c: number): number | null {
  if (r.name === 'page_ref_mod_and_return') return c;
  if (r.name === 'page_ref_mod_and_test') return c === 0 ? 1 : 0;
  return r.ret;
}

/** The entries in `order`, count= (and ret= where it reports the count) rewritten where the new order changes them. */
function recount(entries: Entry[], order: number[], counts: Map<number, number>): string[][] {
  return order.map((i) => {
    const e = entries[i]!;
    const c = counts.get(i);
    if (!e.ref || c === undefined || c === e.ref.count) return e.lines;
    const lines = e.lines.slice();
    const k = lines.findIndex((l) => l.includes(': page_ref_'));
    const ret = retAfter(e.ref, c);
    lines[k] = lines[k]!.replace(/ count=-?\d+ /, ` count=${c} `).replace(/ ret=-?\d+$/, ret === null ? '' : ` ret=${ret}`);
    return lines;
  });
}

/**
 * A random valid interleaving of ftrace `text` for `seed` (deterministic). `moved` counts the entries that now
 * follow a different CPU's entry of the same timestamp than before (0: the draw kept every tie as it was).
 */
export function interleave(text: string, seed: number, attempts = 20): Interleaving {
  const { header, entries, tail } = parse(text);
  const rng = new Rng(seed >>> 0);
  for (let a = 0; a < attempts; a++) {
    const m = merge(entries, rng);
    if (!m) continue;
    const { order } = m;
    const lines = recount(entries, order, m.counts);
    let moved = 0;
    for (let k = 1; k < order.length; k++) if (order[k]! < order[k - 1]! && entries[order[k]!]!.us === entries[order[k - 1]!]!.us) moved++;
    return { text: [...header, ...lines.flat(), tail].join('\n'), moved };
  }
  return { text, moved: 0 };
}
