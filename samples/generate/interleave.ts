/**
 * Random valid interleavings of a generated ftrace trace (the property test of issue #18: the same per-CPU event
 * streams, merged differently, must give the same findings).
 *
 * The trace is split into per-CPU streams of entries (an event line with its `<stack trace>` entry and ` => func`
 * lines; a `CPU:N [LOST M EVENTS]` line goes with the next entry of CPU N). A new merge repeatedly takes, among the
 * CPUs whose next entry has the smallest timestamp, one at random: every CPU's own order is kept, the output stays
 * in timestamp order, and entries of equal timestamps on different CPUs are interleaved at random, so other CPUs'
 * events land anywhere between the halves of a two-event operation when the generator gave them the same timestamp.
 *
 * `count=` of page_ref events is re-read after the atomic operation, so in the new order it is recomputed per pfn
 * (previous count + val; page_ref_set: val): the merge is then the trace of an execution whose atomic operations ran
 * in that order. A merge that would change what an operation saw (a count reaching 0 elsewhere, a count below 0,
 * a page_ref_mod_and_test's ret=) is not valid; it is drawn again (the original order is always valid).
 * Only the ftrace layout is handled (the generators' default).
 */
import { Rng } from './prng.js';

interface Entry {
  cpu: number;
  /** Printed µs clock. */
  us: number;
  lines: string[];
  /** page_ref events: pfn, val, the printed count, ret (or null), the event name. */
  ref: { pfn: number; val: number; count: number; ret: number | null; set: boolean } | null;
}

/** `comm-pid (tgid) [cpu] irq secs.usecs: ` (trace_print_context with record-tgid). */
const HEAD = /^.{16}-\d+\s+\(\s*[-\d]+\)\s+\[(\d{3})\]\s+\S{4,5}\s+(\d+)\.(\d{6}): (.*)$/;
const REF = /^(page_ref_\w+): pfn=0x([0-9a-f]+) flags=\S+ count=(-?\d+) .* val=(-?\d+)(?: ret=(\d+))?$/;

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
    if (r) e.ref = { pfn: parseInt(r[2]!, 16), count: Number(r[3]), val: Number(r[4]), ret: r[5] === undefined ? null : Number(r[5]), set: r[1] === 'page_ref_set' };
    entries.push(e);
    last = e;
  }
  return { header, entries, tail };
}

/** One merge of the per-CPU streams: indexes into entries, ties between CPUs broken by `rng`. */
function merge(entries: Entry[], rng: Rng): number[] {
  const streams = new Map<number, number[]>();
  entries.forEach((e, i) => {
    let s = streams.get(e.cpu);
    if (!s) streams.set(e.cpu, (s = []));
    s.push(i);
  });
  const qs = [...streams.values()];
  const pos = qs.map(() => 0);
  const out: number[] = [];
  const ready: number[] = [];
  while (out.length < entries.length) {
    let min = Infinity;
    ready.length = 0;
    for (let q = 0; q < qs.length; q++) {
      if (pos[q]! >= qs[q]!.length) continue;
      const us = entries[qs[q]![pos[q]!]!]!.us;
      if (us < min) {
        min = us;
        ready.length = 0;
      }
      if (us === min) ready.push(q);
    }
    const q = ready.length === 1 ? ready[0]! : ready[rng.int(0, ready.length - 1)]!;
    out.push(qs[q]![pos[q]!++]!);
  }
  return out;
}

/** count= recomputed in the new order; null when the order changes what an operation saw. */
function recount(entries: Entry[], order: number[]): string[][] | null {
  const count = new Map<number, number>();
  const out: string[][] = [];
  for (const i of order) {
    const e = entries[i]!;
    const r = e.ref;
    if (!r) {
      out.push(e.lines);
      continue;
    }
    const prev = count.get(r.pfn);
    const c = r.set || prev === undefined ? (r.set ? r.val : r.count) : prev + r.val;
    if (c < 0 || (c === 0) !== (r.count === 0)) return null;
    count.set(r.pfn, c);
    if (c === r.count) out.push(e.lines);
    else {
      const lines = e.lines.slice();
      const k = lines.findIndex((l) => l.includes(': page_ref_'));
      lines[k] = lines[k]!.replace(/ count=-?\d+ /, ` count=${c} `);
      out.push(lines);
    }
  }
  return out;
}

/**
 * A random valid interleaving of ftrace `text` for `seed` (deterministic). `moved` counts the entries that now
 * follow a different CPU's entry of the same timestamp than before (0: the draw kept every tie as it was).
 */
export function interleave(text: string, seed: number, attempts = 20): Interleaving {
  const { header, entries, tail } = parse(text);
  const rng = new Rng(seed >>> 0);
  for (let a = 0; a < attempts; a++) {
    const order = merge(entries, rng);
    const lines = recount(entries, order);
    if (!lines) continue;
    let moved = 0;
    for (let k = 1; k < order.length; k++) if (order[k]! < order[k - 1]! && entries[order[k]!]!.us === entries[order[k - 1]!]!.us) moved++;
    return { text: [...header, ...lines.flat(), tail].join('\n'), moved };
  }
  return { text, moved: 0 };
}
