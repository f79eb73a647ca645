/**
 * `npm run check:traces [DIR]`: checks refscope's ingest against the facts written down next to the real
 * captures. For every NOTES.md under DIR (default ../shared/traces), it reads the per-file event count tables,
 * ingests each listed file (text, trace.dat, perf.data; .xz/.zst/.gz inside) into a temporary database and prints
 *
 *   file | event | notes | refscope | ok
 *
 * plus stack-block counts, lost markers, unparsed lines that look like MM events, and MM events whose payload
 * fields did not all land in their typed columns (decoding gaps). Exit status 1 on any mismatch.
 *
 * Table layouts (parseNotes): the file cell names a file, a comma list or a glob; the events cell lists `name N`
 * (`sys_enter/exit_x 1/1`, `sched_* 1/1/1`, `x 8 (+_ret 8)`), shorthand labels of several words resolved against
 * the event names refscope found (`filemap add 16418 / delete 1459`: the one event whose name or system holds
 * `filemap` and `add`; none or several is a mismatch, never a guess), `markers N`, `...` (a partial list), and
 * after `;` stacks and lost markers (`1 DROPPED marker`, `337 PERF_RECORD_LOST records`, quoted
 * `CPU:1 [49849 EVENTS DROPPED]`: compared with the lost_events rows, their sum and per-CPU sums); `no loss` in a
 * row means none. `same` takes the facts of `same data as X`; a row of files without counts sharing a capture's
 * stem is its text rendering (`X.report.txt.xz`, `X.script.txt.xz` of `X.dat`, `X.data`): its facts, and every
 * event count and lost marker must be the capture's.
 *
 * Counting methods. The NOTES count "lines per event name" (qemu-6.1 says how: `grep -c ' <event>: '`, syscalls
 * as sys_enter_/sys_exit_); refscope counts events per name, which is the same thing for these files because no
 * payload contains ` <event>: ` (checked: on a mismatch a grep-style count is computed from the raw text as well,
 * and reported). Stack blocks (`<stack trace>` lines) are compared with the number of events carrying a stack
 * (stack_id + user_stack_id); if two blocks attached to the same event, the difference between blocks parsed (sum
 * of stacks.uses) and events with a stack is reported. binary-6.18 counts events from the text renderings, which
 * the binary readers match exactly (checked per rendering).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listValue } from '../db/duckdb-api.js';
import { Db } from '../db/duckdb.js';
import { fillsOf, KPROBE_SYSTEMS, MM_SYSTEMS, systemOf } from '../ingest/decode/catalogue.js';
import { ingest } from '../ingest/ingest.js';
import { openSource } from '../ingest/source.js';

export interface Expect {
  /** What the NOTES say, e.g. `sys_enter/exit_munmap`, `sched_*` or `filemap add`. */
  label: string;
  /** Event names (for a wildcard: the prefix, matched against what refscope found). */
  events: string[];
  counts: number[];
  /**
   * resolve: a shorthand label (`filemap add`) naming the one event found whose name or system holds every word;
   * lost: counts[0] lost/dropped markers, with the lost events they quote.
   */
  kind: 'event' | 'wildcard' | 'stacks' | 'resolve' | 'lost';
  note?: string;
  /** kind 'resolve': the label's words, lower case. */
  words?: string[];
  /** kind 'lost': sum of the counts the markers quote (null: the NOTES do not give every count). */
  lostSum?: number | null;
  /** kind 'lost': [cpu, events lost] for each marker quoted with both. */
  lostByCpu?: [number, number][];
}

export interface NotesRow {
  file: string;
  expects: Expect[];
  /** Parenthesised remark in front of the list, e.g. `page_ref:* and kmem:* FILTERED to the CMA pfn range`. */
  note: string | null;
  /** `entries-in-buffer/entries-written: X/Y` when the row states it. */
  entries: [number, number] | null;
  /** The list ends with `...`: events it does not name are shown, not counted as mismatches. */
  open: boolean;
  /** The files this one is the text rendering of: every event count and lost marker must be theirs. */
  renders: string[];
  /** Why the row's facts could not be read: reported as a mismatch, the file is not ingested. */
  error: string | null;
}

/* ---- NOTES.md parsing ---- */

/** Split on `sep` outside parentheses and backticks. */
function splitTop(s: string, sep: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let tick = false;
  let cur = '';
  for (const ch of s) {
    if (ch === '`') tick = !tick;
    else if (!tick && ch === '(') depth++;
    else if (!tick && ch === ')') depth = Math.max(0, depth - 1);
    if (ch === sep && depth === 0 && !tick) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** `sys_enter/exit_io_uring_setup` -> sys_enter_io_uring_setup, sys_exit_io_uring_setup;
 *  `migrate_vma_setup/pages/finalize` -> migrate_vma_setup, migrate_vma_pages, migrate_vma_finalize. */
export function expandSlashed(name: string): string[] {
  const parts = name.split('/');
  if (parts.length === 1) return parts;
  const last = parts[parts.length - 1];
  const first = parts[0];
  if (parts.slice(1).some((x) => x.includes('_'))) {
    // Shared suffix: the later parts are "<token><suffix>", the first is "<prefix><token>".
    const token = last.split('_')[0];
    const suffix = last.slice(token.length);
    const cut = first.lastIndexOf('_');
    const prefix = first.slice(0, cut + 1);
    return [first + suffix, ...parts.slice(1).map((x) => (x.includes('_') ? prefix + x : prefix + x + suffix))];
  }
  // Shared prefix: the first part is "<prefix><token>", the others are tokens.
  const prefix = first.slice(0, first.lastIndexOf('_') + 1);
  return [first, ...parts.slice(1).map((x) => prefix + x)];
}

/** A lost marker as the tracers print it: ftrace `CPU:N [LOST M EVENTS]`, trace-cmd `CPU:N [M EVENTS DROPPED]` / `[EVENTS DROPPED]`. */
const LOST_QUOTE = /^CPU:?\s*(\d+)\s*\[(?:LOST\s+(\d+)\s+EVENTS|(\d+)?\s*EVENTS\s+DROPPED)\]$/i;
/** A count of markers: `1 DROPPED marker`, `337 PERF_RECORD_LOST records`. */
const LOST_COUNT = /^(\d+)\s+(?=\S*(?:LOST|DROPPED))\S+\s+(?:markers?|records?|lines?)$/i;

/** `filemap add 16418 / delete 1459`: later labels replace the last words of the first (`filemap delete`). */
function shorthand(item: string): [string, number][] | null {
  const parts = item.split(/\s+\/\s+/);
  if (parts.length < 2) return null;
  const out: [string, number][] = [];
  let first: string[] = [];
  for (const p of parts) {
    const m = /^(.*\S)\s+(\d+)$/.exec(p.trim());
    if (!m) return null;
    const words = m[1].split(/\s+/);
    if (!out.length) first = words;
    const label = words.length >= first.length ? words : [...first.slice(0, first.length - words.length), ...words];
    out.push([label.join(' '), Number(m[2])]);
  }
  return out;
}

/** One `name count` fact: an event, `markers`, `<stack trace>`, or a label of several words to resolve. */
function labelled(label: string, count: number, note?: string): Expect {
  const name = label.replace(/`/g, '').trim();
  // trace-cmd prints markers as `print: tracing_mark_write: ...`; refscope names them tracing_mark_write.
  if (/^markers?$/i.test(name)) return { label: note ? `markers (${note})` : 'markers', events: ['tracing_mark_write'], counts: [count], kind: 'event', note };
  if (name === '<stack trace>') return { label: name, events: [], counts: [count], kind: 'stacks' };
  if (/\s/.test(name)) return { label: name, events: [], counts: [count], kind: 'resolve', words: name.toLowerCase().split(/\s+/), note };
  return { label: name, events: [name], counts: [count], kind: 'event', note };
}

export function parseEventList(cell: string): { expects: Expect[]; note: string | null; open: boolean } {
  let s = cell.trim();
  let note: string | null = null;
  if (s.startsWith('(')) {
    let depth = 0;
    for (let i = 0; i < s.length; i++) {
      if (s[i] === '(') depth++;
      else if (s[i] === ')' && --depth === 0) {
        note = s.slice(1, i).trim();
        s = s.slice(i + 1).trim();
        break;
      }
    }
  }
  const expects: Expect[] = [];
  const stacks: Expect[] = [];
  let open = false;
  let lostCount: number | null = null;
  const quoted: [number, number | null][] = [];
  for (const raw of splitTop(s, ';').flatMap((part) => splitTop(part, ','))) {
    const item = raw.trim();
    const bare = item.replace(/`/g, '').trim();
    if (!item) continue;
    if (/^(\.\.\.|…)$/.test(bare)) {
      open = true;
      continue;
    }
    if (/^no stacks?$/i.test(bare)) {
      stacks.push({ label: '<stack trace>', events: [], counts: [0], kind: 'stacks' });
      continue;
    }
    const st = /^(\d+)\s+(?:<stack trace>\s+blocks|stacks?)$/i.exec(bare);
    if (st) {
      stacks.push({ label: '<stack trace>', events: [], counts: [Number(st[1])], kind: 'stacks' });
      continue;
    }
    const q = LOST_QUOTE.exec(bare);
    if (q) {
      const n = q[2] ?? q[3];
      quoted.push([Number(q[1]), n === undefined ? null : Number(n)]);
      continue;
    }
    const lc = LOST_COUNT.exec(bare);
    if (lc) {
      lostCount = (lostCount ?? 0) + Number(lc[1]);
      continue;
    }
    const sh = shorthand(item);
    if (sh) {
      for (const [label, count] of sh) expects.push(labelled(label, count));
      continue;
    }
    const m = /^(.*?)\s+(\d+(?:\/\d+)*)(?:\s*\(\+(_\w+)\s+(\d+)\))?$/.exec(item);
    if (!m) throw new Error(`NOTES: cannot read "${item}"`);
    let name = m[1].trim();
    let itemNote: string | undefined;
    const paren = /^(.*?)\s*\((.*)\)$/.exec(name);
    if (paren) {
      name = paren[1].trim();
      itemNote = paren[2].replace(/`/g, '');
    }
    name = name.replace(/`/g, '');
    const counts = m[2].split('/').map(Number);
    if (name.endsWith('*')) {
      expects.push({ label: name, events: [name.slice(0, -1)], counts, kind: 'wildcard' });
      continue;
    }
    if (counts.length === 1) {
      expects.push(labelled(name, counts[0], itemNote));
      if (m[3]) expects.push({ label: name + m[3], events: [name + m[3]], counts: [Number(m[4])], kind: 'event' });
      continue;
    }
    const names = expandSlashed(name);
    if (names.length !== counts.length) throw new Error(`NOTES: "${item}": ${names.length} names but ${counts.length} counts`);
    names.forEach((n, i) => expects.push({ label: n, events: [n], counts: [counts[i]], kind: 'event', note: itemNote }));
  }
  if (lostCount !== null || quoted.length) {
    const sums = quoted.map(([, n]) => n);
    expects.push({
      label: 'lost markers',
      events: [],
      counts: [lostCount ?? quoted.length],
      kind: 'lost',
      lostSum: quoted.length && sums.every((n) => n !== null) ? sums.reduce((a, n) => a + n!, 0) : null,
      lostByCpu: quoted.filter((x): x is [number, number] => x[1] !== null),
    });
  }
  return { expects: [...expects, ...stacks], note, open };
}

function cells(line: string): string[] {
  const c = splitTop(line.trim().replace(/^\|/, '').replace(/\|$/, ''), '|');
  return c.map((x) => x.trim());
}

/** `trace-cmd-v7-zstd.dat.xz` -> `trace-cmd-v7-zstd`: a capture and its renderings share it. */
export function stemOf(file: string): string {
  const base = file.replace(/\.(xz|zst|gz)$/, '');
  const dot = base.indexOf('.');
  return dot > 0 ? base.slice(0, dot) : base;
}

const tokens = (s: string) => s.toLowerCase().split(/[-_.\s]+/).filter(Boolean);

/** Files a file cell names: a comma list, each a name (`(12.1 MB)` after it dropped) or a glob (`*.script.txt.xz`). */
function filesOf(cell: string, dir: string): string[] {
  const out: string[] = [];
  for (const part of splitTop(cell.replace(/`/g, ''), ',')) {
    const name = part.replace(/\s*\(.*\)\s*$/, '').trim();
    if (!name) continue;
    const names = /[*?]/.test(name) && !name.includes('/')
      ? readdirSync(dir).filter((f) => new RegExp(`^${name.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(f)).sort()
      : [name];
    for (const f of names) {
      const path = join(dir, f);
      if (existsSync(path) && statSync(path).isFile()) out.push(f);
    }
  }
  return out;
}

interface RawRow {
  files: string[];
  line: string;
  /** The events cell's facts; null for `same` (inherited) or a cell without counts (perhaps a rendering). */
  list: ReturnType<typeof parseEventList> | null;
  same: boolean;
  error: string | null;
}

/**
 * The per-file tables of a NOTES.md. A file cell may name several files or a glob. `same` in the events cell takes
 * the facts of the file named by `same data as X` in the row (X a file, or words of exactly one file's name), else
 * of the row above; a row of files without counts whose names share a stem with listed captures
 * (`X.report.txt.xz` for `X.dat`) is their text rendering; `no loss` in a row means no lost markers.
 */
export function parseNotes(text: string, dir: string): NotesRow[] {
  const raws: RawRow[] = [];
  let eventsCol = -1;
  let inTable = false;
  for (const line of text.split('\n')) {
    if (!line.trim().startsWith('|')) {
      inTable = false;
      eventsCol = -1;
      continue;
    }
    const c = cells(line);
    if (!inTable) {
      inTable = true;
      eventsCol = c.findIndex((h) => /event/i.test(h));
      continue;
    }
    if (c.every((x) => /^:?-+:?$/.test(x))) continue;
    if (eventsCol < 0) continue;
    const files = filesOf(c[0], dir);
    if (!files.length) continue;
    const cell = c[eventsCol] ?? '';
    const row: RawRow = { files, line, list: null, same: /^same\b/i.test(cell.replace(/`/g, '').trim()), error: null };
    if (!row.same && /[A-Za-z_`*)]\s+\d+|\d+\s+\S*(?:LOST|DROPPED)/.test(cell)) {
      try {
        row.list = parseEventList(cell);
      } catch (e) {
        row.error = (e as Error).message;
      }
      if (row.list && /\bno loss\b/i.test(line) && !row.list.expects.some((x) => x.kind === 'lost'))
        row.list.expects.push({ label: 'lost markers', events: [], counts: [0], kind: 'lost', lostSum: 0, lostByCpu: [] });
    }
    raws.push(row);
  }
  const rows: NotesRow[] = [];
  const facts = new Map<string, NotesRow>(); // file -> its row, for `same` and renderings
  const add = (r: RawRow, f: string, from: Omit<NotesRow, 'file' | 'entries' | 'renders' | 'error'> | null, renders: string[], error: string | null) => {
    const e = /entries-in-buffer\/entries-written:\s*(\d+)\/(\d+)/.exec(r.line);
    const row: NotesRow = {
      file: f,
      expects: from ? structuredClone(from.expects) : [],
      note: from?.note ?? null,
      entries: e ? [Number(e[1]), Number(e[2])] : null,
      open: from?.open ?? false,
      renders,
      error,
    };
    rows.push(row);
    if (!error) facts.set(f, row);
  };
  const withFacts = () => [...facts.values()].filter((x) => !x.renders.length);
  const renderStems = new Set(raws.filter((x) => !x.list && !x.same && !x.error).flatMap((x) => x.files.map(stemOf)));
  let above: NotesRow | null = null;
  for (const r of raws) {
    if (r.error || r.list) {
      for (const f of r.files) add(r, f, r.list, [], r.error);
    } else if (r.same) {
      const ref = /same\s+(?:data\s+)?as\s+`?([^\s,;|`()]+)/i.exec(r.line)?.[1];
      let from: NotesRow | null = above;
      let error: string | null = from ? null : 'NOTES: "same" with no row above';
      if (ref) {
        const want = tokens(stemOf(ref));
        const hits = withFacts().filter((x) => x.file === ref || stemOf(x.file) === ref || tokens(stemOf(x.file)).some((_, i, t) => want.every((w, j) => t[i + j] === w)));
        from = hits.length === 1 ? hits[0] : null;
        error = from ? null : `NOTES: "same data as ${ref}" names ${hits.length ? hits.map((x) => x.file).join(', ') : 'no listed file'}`;
      }
      for (const f of r.files) add(r, f, from, [], error);
    } else {
      // A rendering: the capture with its stem, else those whose stem extends it and have no rendering of their own.
      for (const f of r.files) {
        const stem = stemOf(f);
        let src = withFacts().filter((x) => stemOf(x.file) === stem);
        if (!src.length) src = withFacts().filter((x) => /^[-_.]/.test(stemOf(x.file).slice(stem.length)) && stemOf(x.file).startsWith(stem) && !renderStems.has(stemOf(x.file)));
        if (!src.length) continue; // not a trace (a config, a script)
        const same = src.every((x) => JSON.stringify([x.expects, x.open, x.note]) === JSON.stringify([src[0].expects, src[0].open, src[0].note]));
        add(r, f, same ? src[0] : null, src.map((x) => x.file), same ? null : `NOTES: a rendering of ${src.map((x) => x.file).join(', ')}, whose facts differ`);
      }
      continue;
    }
    above = facts.get(r.files[r.files.length - 1]) ?? above;
  }
  return rows;
}

function findNotes(dir: string, depth = 3): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const st = statSync(p);
    if (st.isFile() && name === 'NOTES.md') out.push(p);
    else if (st.isDirectory() && depth > 0 && !name.startsWith('.') && name !== 'node_modules') out.push(...findNotes(p, depth - 1));
  }
  return out;
}

/* ---- checks against a database ---- */

/** Probe payload keys and the column each decodes into. */
const PROBE_KEYS: [string, string][] = [
  ['page', 'ptr'],
  ['folio', 'ptr'],
  ['refs', 'refs'],
  ['flags', 'gup_flags'],
  ['gup_flags', 'gup_flags'],
  ['start', 'addr'],
  ['addr', 'addr'],
  ['address', 'addr'],
  ['vaddr', 'addr'],
  ['nr_pages', 'nr_pages'],
  ['npages', 'nr_pages'],
  ['pgmap', 'pgmap'],
  ['ref', 'pgmap'],
  ['pfn', 'pfn'],
  ['ret', 'ret'],
];

interface Gap {
  event: string;
  what: string;
  rows: number;
}

async function decodingGaps(db: Db, traceId: number): Promise<Gap[]> {
  const gaps: Gap[] = [];
  const events = await db.all<{ event: string; n: number }>(
    'SELECT event, count(*)::INTEGER AS n FROM events WHERE trace_id = $1 AND list_contains($2::VARCHAR[], system) GROUP BY event',
    [traceId, listValue([...MM_SYSTEMS])],
  );
  for (const { event } of events) {
    // Decoded columns every row must have: the payload fields refscope decodes by name (the catalogue's `fills`).
    const fills = fillsOf(event);
    for (const col of fills) {
      const r = await db.one<{ n: number }>(
        `SELECT count(*)::INTEGER AS n FROM events WHERE trace_id = $1 AND event = $2 AND "${col}" IS NULL`,
        [traceId, event],
      );
      if (r?.n) gaps.push({ event, what: `${col} is NULL`, rows: r.n });
    }
    // Probe events decode by key (alloc_contig_range's start=/end= are pfns: covered by its `fills` instead).
    if (!KPROBE_SYSTEMS.has(systemOf(event) ?? '') || fills.length) continue;
    for (const [key, col] of PROBE_KEYS) {
      const r = await db.one<{ n: number }>(
        `SELECT count(*)::INTEGER AS n FROM events WHERE trace_id = $1 AND event = $2 AND "${col}" IS NULL
           AND regexp_matches(payload, $3)`,
        [traceId, event, `(^|[ ,(])${key}=`],
      );
      if (r?.n) gaps.push({ event, what: `${key}= not decoded into ${col}`, rows: r.n });
    }
    // Kprobe page/folio pointers become pfns once vmemmap_base is known (docs/model.md §11).
    const r = await db.one<{ n: number }>(
      `SELECT count(*)::INTEGER AS n FROM events e JOIN traces t USING (trace_id)
       WHERE e.trace_id = $1 AND e.event = $2 AND t.vmemmap_base IS NOT NULL AND e.pfn IS NULL AND e.ptr >= t.vmemmap_base
         AND regexp_matches(e.payload, '(^|[ ,(])(page|folio)=')`,
      [traceId, event],
    );
    if (r?.n) gaps.push({ event, what: 'page pointer not mapped to a pfn', rows: r.n });
  }
  return gaps;
}

/** `grep -c ' <event>: '` over the raw file, the NOTES' counting method (for syscalls: the `sys_x(` / `sys_x -> ` lines). */
function grepCounts(text: string, names: string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const n of names) {
    let needle = ` ${n}: `;
    if (n.startsWith('sys_enter_')) needle = ` sys_${n.slice(10)}(`;
    else if (n.startsWith('sys_exit_')) needle = ` sys_${n.slice(9)} -> `;
    else if (n === 'tracing_mark_write') needle = 'tracing_mark_write: ';
    let c = 0;
    for (const line of text.split('\n')) if (line.includes(needle)) c++;
    out.set(n, c);
  }
  return out;
}

/* ---- report ---- */

interface Line {
  file: string;
  event: string;
  notes: string;
  refscope: string;
  ok: boolean;
}

function table(lines: Line[]): string {
  const head: Line = { file: 'file', event: 'event', notes: 'notes', refscope: 'refscope', ok: true };
  const w = (k: keyof Omit<Line, 'ok'>) => Math.max(...[head, ...lines].map((l) => l[k].length));
  const wf = w('file');
  const we = w('event');
  const wn = w('notes');
  const wr = w('refscope');
  const fmt = (l: Line, ok: string) => `${l.file.padEnd(wf)} | ${l.event.padEnd(we)} | ${l.notes.padStart(wn)} | ${l.refscope.padStart(wr)} | ${ok}`;
  return [fmt(head, 'ok'), `${'-'.repeat(wf)}-|-${'-'.repeat(we)}-|-${'-'.repeat(wn)}-|-${'-'.repeat(wr)}-|---`, ...lines.map((l) => fmt(l, l.ok ? 'ok' : 'MISMATCH'))].join('\n');
}

/** Lost/dropped markers of a trace (table lost_events). */
interface Lost {
  markers: number;
  /** Sum of the counts markers give, and how many give none. */
  sum: number;
  unknown: number;
  byCpu: Map<number, number>;
  /** Markers without a CPU (perf script's LOST lines). */
  noCpu: number;
}

async function lostOf(db: Db, traceId: number): Promise<Lost> {
  const rows = await db.all<{ cpu: number | null; n: number; sum: number; unknown: number }>(
    `SELECT cpu::INTEGER AS cpu, count(*)::INTEGER AS n, coalesce(sum(lost), 0)::BIGINT AS sum, count(*) FILTER (WHERE lost IS NULL)::INTEGER AS unknown
       FROM lost_events WHERE trace_id = $1 GROUP BY cpu`,
    [traceId],
  );
  const l: Lost = { markers: 0, sum: 0, unknown: 0, byCpu: new Map(), noCpu: 0 };
  for (const r of rows) {
    l.markers += r.n;
    l.sum += Number(r.sum);
    l.unknown += r.unknown;
    if (r.cpu === null) l.noCpu += r.n;
    else l.byCpu.set(r.cpu, Number(r.sum));
  }
  return l;
}

const lostSum = (l: Lost) => `${l.sum}${l.unknown ? ` + ${l.unknown} unknown` : ''}`;

/** The decompressed text of a text trace, for the grep-style count; null for binary formats. */
async function textOf(path: string, format: string): Promise<string | null> {
  if (format === 'perf-data' || format === 'trace-dat' || format === 'arrow') return null;
  const src = await openSource(path);
  const blocks: Buffer[] = [];
  for await (const b of src.blocks({ hash: false })) blocks.push(b);
  return Buffer.concat(blocks).toString('utf8');
}

export async function checkTraces(root: string, log: (s: string) => void = console.log): Promise<boolean> {
  const notesFiles = findNotes(root);
  if (notesFiles.length === 0) {
    log(`no NOTES.md under ${root}`);
    return false;
  }
  const tmp = mkdtempSync(join(tmpdir(), 'refscope-check-'));
  let allOk = true;
  try {
    const db = await Db.open(join(tmp, 'check.duckdb'));
    try {
      for (const notesPath of notesFiles) {
        const dir = dirname(notesPath);
        const rows = parseNotes(readFileSync(notesPath, 'utf8'), dir);
        log(`\n${relative(process.cwd(), notesPath)}: ${rows.length} trace files`);
        const lines: Line[] = [];
        const remarks: string[] = [];
        const found = new Map<string, { counts: Map<string, number>; lost: Lost }>();
        const check = (file: string, event: string, notes: string, refscope: string, ok: boolean) => {
          lines.push({ file, event, notes, refscope, ok });
          allOk &&= ok;
        };
        for (const row of rows) {
          const file = row.file;
          if (row.error) {
            check(file, 'NOTES facts', '?', '-', false);
            remarks.push(`${file}: ${row.error}`);
            continue;
          }
          const path = join(dir, file);
          const s = await ingest(db, path, { replace: true });
          const id = s.trace_id;
          const bySystem = await db.all<{ system: string | null; event: string; n: number }>(
            'SELECT system, event, count(*)::INTEGER AS n FROM events WHERE trace_id = $1 GROUP BY system, event',
            [id],
          );
          const counts = new Map<string, number>();
          const words = new Map<string, Set<string>>();
          for (const r of bySystem) {
            counts.set(r.event, (counts.get(r.event) ?? 0) + r.n);
            const w = words.get(r.event) ?? new Set(tokens(r.event));
            for (const t of tokens(r.system ?? '')) w.add(t);
            words.set(r.event, w);
          }
          const lost = await lostOf(db, id);
          found.set(file, { counts, lost });
          const seen = new Set<string>();
          if (row.note) remarks.push(`${file}: NOTES remark: ${row.note}`);
          if (row.renders.length) remarks.push(`${file}: the text rendering of ${row.renders.join(', ')}: checked against their NOTES facts and their events`);
          let raw: string | null | undefined;
          const exact = new Set(row.expects.filter((e) => e.kind === 'event').map((e) => e.events[0]));
          for (const e of row.expects) {
            if (e.kind === 'stacks') {
              const st = await db.one<{ withStack: number; blocks: number }>(
                `SELECT (SELECT (count(stack_id) + count(user_stack_id))::INTEGER FROM events WHERE trace_id = $1) AS "withStack",
                        (SELECT coalesce(sum(uses), 0)::INTEGER FROM stacks WHERE trace_id = $1) AS blocks`,
                [id],
              );
              check(file, '<stack trace> blocks', String(e.counts[0]), String(st!.withStack), st!.withStack === e.counts[0]);
              if (st!.blocks !== st!.withStack)
                remarks.push(`${file}: ${st!.blocks} stack blocks parsed but ${st!.withStack} events carry a stack: ${st!.blocks - st!.withStack} block(s) attached to an event that already had one`);
              continue;
            }
            if (e.kind === 'wildcard') {
              const matched = [...counts].filter(([n]) => n.startsWith(e.events[0])).sort((a, b) => a[0].localeCompare(b[0]));
              matched.forEach(([n]) => seen.add(n));
              const got = matched.map(([, c]) => c);
              const ok = got.length === e.counts.length && [...got].sort().join('/') === [...e.counts].sort().join('/');
              check(file, `${e.label} (${matched.map(([n]) => n).join(', ')})`, e.counts.join('/'), got.join('/') || '0', ok);
              continue;
            }
            if (e.kind === 'lost') {
              check(file, 'lost markers', String(e.counts[0]), String(lost.markers), lost.markers === e.counts[0]);
              if (e.lostSum !== null && e.lostSum !== undefined)
                check(file, 'events lost (sum)', String(e.lostSum), lostSum(lost), lost.sum === e.lostSum && lost.unknown === 0);
              const byCpu = new Map<number, number>();
              for (const [cpu, n] of e.lostByCpu ?? []) byCpu.set(cpu, (byCpu.get(cpu) ?? 0) + n);
              for (const [cpu, n] of byCpu) check(file, `events lost on CPU ${cpu}`, String(n), String(lost.byCpu.get(cpu) ?? 0), lost.byCpu.get(cpu) === n);
              continue;
            }
            let n = e.events[0];
            let label = e.label;
            if (e.kind === 'resolve') {
              // Only an event name the words pick out alone; anything else is the NOTES' to fix, not ours to guess.
              const hits = [...counts.keys()].filter((x) => !exact.has(x) && e.words!.every((w) => words.get(x)!.has(w))).sort();
              if (hits.length !== 1) {
                check(file, `${e.label} (unresolved)`, String(e.counts[0]), '?', false);
                remarks.push(`${file}: "${e.label}" ${hits.length ? `names several events refscope found: ${hits.join(', ')}` : 'names no event refscope found'}`);
                continue;
              }
              n = hits[0];
              label = `${e.label} (${n})`;
            }
            seen.add(n);
            const got = counts.get(n) ?? 0;
            const ok = got === e.counts[0];
            check(file, label, String(e.counts[0]), String(got), ok);
            if (!ok) {
              if (raw === undefined) raw = await textOf(path, s.format);
              if (raw !== null) remarks.push(`${file}: ${n}: grep-style count of the raw file is ${grepCounts(raw, [n]).get(n)}`);
            }
          }
          for (const [n, c] of counts) {
            if (seen.has(n)) continue;
            check(file, n, row.open ? '...' : '-', String(c), row.open);
            if (!row.open) remarks.push(`${file}: refscope found ${c} ${n} events the NOTES do not list`);
          }
          if (lost.markers && !row.expects.some((e) => e.kind === 'lost'))
            remarks.push(`${file}: ${lost.markers} lost markers (${lostSum(lost)} events), which the NOTES do not mention`);
          if (row.entries) {
            const t = await db.one<{ b: number | null; w: number | null }>(
              'SELECT entries_in_buffer::INTEGER AS b, entries_written::INTEGER AS w FROM traces WHERE trace_id = $1',
              [id],
            );
            check(file, 'entries-in-buffer/written', row.entries.join('/'), `${t?.b}/${t?.w}`, t?.b === row.entries[0] && t?.w === row.entries[1]);
          }
          // Lines refscope could not read: any that looks like an MM event is a failure.
          const unparsed = await db.all<{ line_no: number; reason: string; text: string }>(
            'SELECT line_no::INTEGER AS line_no, reason, text FROM unparsed_lines WHERE trace_id = $1 ORDER BY line_no',
            [id],
          );
          const mmUnparsed = unparsed.filter((u) => [...u.text.matchAll(/([A-Za-z_][\w]*):/g)].some((m) => MM_SYSTEMS.has(systemOf(m[1]) ?? '')) || /\bpfn=/.test(u.text));
          check(file, 'unparsed lines (MM events)', '0', `${s.unparsed_lines} (${mmUnparsed.length})`, mmUnparsed.length === 0);
          for (const u of mmUnparsed.slice(0, 5)) remarks.push(`${file}:${u.line_no}: unparsed MM line (${u.reason}): ${u.text.slice(0, 160)}`);
          const gaps = await decodingGaps(db, id);
          const gapRows = gaps.reduce((a, g) => a + g.rows, 0);
          check(file, 'MM decoding gaps (rows)', '0', String(gapRows), gapRows === 0);
          for (const g of gaps) remarks.push(`${file}: ${g.event}: ${g.rows} rows: ${g.what}`);
        }
        // A text rendering gives exactly the events and lost markers of the capture it renders, listed or not.
        for (const row of rows) {
          const mine = found.get(row.file);
          for (const src of row.renders) {
            const theirs = found.get(src);
            if (!mine || !theirs) continue;
            const names = [...new Set([...mine.counts.keys(), ...theirs.counts.keys()])].sort();
            const diff = names.filter((n) => mine.counts.get(n) !== theirs.counts.get(n));
            const total = (m: Map<string, number>) => String([...m.values()].reduce((a, n) => a + n, 0));
            check(row.file, `events as in ${src}`, total(theirs.counts), total(mine.counts), diff.length === 0);
            for (const n of diff) remarks.push(`${row.file}: ${n}: ${mine.counts.get(n) ?? 0}, ${src}: ${theirs.counts.get(n) ?? 0}`);
            const a = mine.lost;
            const b = theirs.lost;
            // Per CPU only where both know it (perf script's LOST lines name none).
            const cpus = !a.noCpu && !b.noCpu ? [...new Set([...a.byCpu.keys(), ...b.byCpu.keys()])].sort((x, y) => x - y) : [];
            const fmt = (l: Lost) => `${l.markers}: ${lostSum(l)}` + (cpus.length ? ` (${cpus.map((c) => `CPU ${c}: ${l.byCpu.get(c) ?? 0}`).join(', ')})` : '');
            check(row.file, `lost markers as in ${src}`, fmt(b), fmt(a), fmt(a) === fmt(b));
          }
        }
        log(table(lines));
        for (const r of remarks) log(`  ${r}`);
      }
    } finally {
      db.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  log(allOk ? '\nall NOTES facts match' : '\nMISMATCH: see the rows marked above');
  return allOk;
}

const isMain = process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = resolve(process.argv[2] ?? join(here, '..', '..', 'shared', 'traces'));
  if (!existsSync(root)) {
    console.error(`check-traces: ${root}: no such directory`);
    process.exit(2);
  }
  const ok = await checkTraces(root);
  process.exit(ok ? 0 : 1);
}
