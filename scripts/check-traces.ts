/**
 * `npm run check:traces [DIR]`: checks refscope's ingest against the facts written down next to the real
 * captures. For every NOTES.md under DIR (default ../shared/traces), it reads the per-file event count table,
 * ingests each listed file into a temporary database and prints
 *
 *   file | event | notes | refscope | ok
 *
 * plus stack-block counts, unparsed lines that look like MM events, and MM events whose payload fields did not
 * all land in their typed columns (decoding gaps). Exit status 1 on any mismatch.
 *
 * Counting methods. The NOTES count "lines per event name" (qemu-6.1 says how: `grep -c ' <event>: '`, syscalls
 * as sys_enter_/sys_exit_); refscope counts events per name, which is the same thing for these files because no
 * payload contains ` <event>: ` (checked: a grep-style count is computed from the raw file as well, and reported
 * if it ever differs from refscope's). Stack blocks (`<stack trace>` lines) are compared with the number of
 * events carrying a stack (stack_id + user_stack_id); if two blocks attached to the same event, the difference
 * between blocks parsed (sum of stacks.uses) and events with a stack is reported.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listValue } from '@duckdb/node-api';
import { Db } from '../db/duckdb.js';
import { fillsOf, KPROBE_SYSTEMS, MM_SYSTEMS, systemOf } from '../ingest/decode/catalogue.js';
import { ingest } from '../ingest/ingest.js';

export interface Expect {
  /** What the NOTES say, e.g. `sys_enter/exit_munmap` or `sched_*`. */
  label: string;
  /** Event names (for a wildcard: the prefix, matched against what refscope found). */
  events: string[];
  counts: number[];
  kind: 'event' | 'wildcard' | 'stacks';
  note?: string;
}

export interface NotesRow {
  file: string;
  expects: Expect[];
  /** Parenthesised remark in front of the list, e.g. `page_ref:* and kmem:* FILTERED to the CMA pfn range`. */
  note: string | null;
  /** `entries-in-buffer/entries-written: X/Y` when the row states it. */
  entries: [number, number] | null;
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

export function parseEventList(cell: string): { expects: Expect[]; note: string | null } {
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
  const [list, ...tails] = splitTop(s, ';');
  for (const tail of tails) {
    const t = tail.replace(/`/g, '').trim();
    if (/^no stacks?$/i.test(t)) stacks.push({ label: '<stack trace>', events: [], counts: [0], kind: 'stacks' });
    else {
      const m = /^(\d+)\s+(?:<stack trace>\s+blocks|stacks?)$/i.exec(t);
      if (m) stacks.push({ label: '<stack trace>', events: [], counts: [Number(m[1])], kind: 'stacks' });
      else throw new Error(`NOTES: cannot read "${tail.trim()}"`);
    }
  }
  for (const raw of splitTop(list, ',')) {
    const item = raw.trim();
    if (!item) continue;
    const m = /^(.*?)\s+(\d+(?:\/\d+)*)(?:\s*\(\+(_\w+)\s+(\d+)\))?$/.exec(item);
    if (!m) throw new Error(`NOTES: cannot read event count "${item}"`);
    let name = m[1].trim();
    let itemNote: string | undefined;
    const paren = /^(.*?)\s*\((.*)\)$/.exec(name);
    if (paren) {
      name = paren[1].trim();
      itemNote = paren[2].replace(/`/g, '');
    }
    name = name.replace(/`/g, '');
    const counts = m[2].split('/').map(Number);
    if (name === '<stack trace>') {
      expects.push({ label: name, events: [], counts, kind: 'stacks' });
      continue;
    }
    if (name === 'markers') {
      // trace-cmd prints markers as `print: tracing_mark_write: ...`; refscope names them tracing_mark_write.
      expects.push({ label: `markers (${itemNote ?? ''})`, events: ['tracing_mark_write'], counts, kind: 'event', note: itemNote });
      continue;
    }
    if (name.endsWith('*')) {
      expects.push({ label: name, events: [name.slice(0, -1)], counts, kind: 'wildcard' });
      continue;
    }
    const names = expandSlashed(name);
    if (names.length !== counts.length) throw new Error(`NOTES: "${item}": ${names.length} names but ${counts.length} counts`);
    names.forEach((n, i) => expects.push({ label: n, events: [n], counts: [counts[i]], kind: 'event', note: itemNote }));
    if (m[3]) expects.push({ label: name + m[3], events: [name + m[3]], counts: [Number(m[4])], kind: 'event' });
  }
  return { expects: [...expects, ...stacks], note };
}

function cells(line: string): string[] {
  const c = splitTop(line.trim().replace(/^\|/, '').replace(/\|$/, ''), '|');
  return c.map((x) => x.trim());
}

export function parseNotes(text: string, dir: string): NotesRow[] {
  const rows: NotesRow[] = [];
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
    const file = c[0].replace(/`/g, '').replace(/\s*\(.*\)\s*$/, '').trim();
    const path = join(dir, file);
    if (!file || !existsSync(path) || !statSync(path).isFile()) continue;
    const cell = c[eventsCol] ?? '';
    if (!/[A-Za-z_`*]\s+\d+/.test(cell)) continue; // a file that is not a trace (config, scripts)
    const { expects, note } = parseEventList(cell);
    const e = /entries-in-buffer\/entries-written:\s*(\d+)\/(\d+)/.exec(line);
    rows.push({ file, expects, note, entries: e ? [Number(e[1]), Number(e[2])] : null });
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
        for (const row of rows) {
          const path = join(dir, row.file);
          const s = await ingest(db, path, { replace: true });
          const id = s.trace_id;
          const counts = new Map(
            (
              await db.all<{ event: string; n: number }>(
                'SELECT event, count(*)::INTEGER AS n FROM events WHERE trace_id = $1 GROUP BY event',
                [id],
              )
            ).map((r) => [r.event, r.n]),
          );
          const seen = new Set<string>();
          const file = row.file;
          if (row.note) remarks.push(`${file}: NOTES remark: ${row.note}`);
          let raw: string | null = null;
          for (const e of row.expects) {
            if (e.kind === 'stacks') {
              const st = await db.one<{ withStack: number; blocks: number }>(
                `SELECT (SELECT (count(stack_id) + count(user_stack_id))::INTEGER FROM events WHERE trace_id = $1) AS "withStack",
                        (SELECT coalesce(sum(uses), 0)::INTEGER FROM stacks WHERE trace_id = $1) AS blocks`,
                [id],
              );
              const ok = st!.withStack === e.counts[0];
              lines.push({ file, event: '<stack trace> blocks', notes: String(e.counts[0]), refscope: String(st!.withStack), ok });
              if (st!.blocks !== st!.withStack)
                remarks.push(`${file}: ${st!.blocks} stack blocks parsed but ${st!.withStack} events carry a stack: ${st!.blocks - st!.withStack} block(s) attached to an event that already had one`);
              allOk &&= ok;
              continue;
            }
            if (e.kind === 'wildcard') {
              const matched = [...counts].filter(([n]) => n.startsWith(e.events[0])).sort((a, b) => a[0].localeCompare(b[0]));
              matched.forEach(([n]) => seen.add(n));
              const got = matched.map(([, c]) => c);
              const ok = got.length === e.counts.length && [...got].sort().join('/') === [...e.counts].sort().join('/');
              lines.push({ file, event: `${e.label} (${matched.map(([n]) => n).join(', ')})`, notes: e.counts.join('/'), refscope: got.join('/') || '0', ok });
              allOk &&= ok;
              continue;
            }
            const n = e.events[0];
            seen.add(n);
            const got = counts.get(n) ?? 0;
            const ok = got === e.counts[0];
            lines.push({ file, event: e.label, notes: String(e.counts[0]), refscope: String(got), ok });
            if (!ok) {
              raw ??= readFileSync(path, 'utf8');
              const g = grepCounts(raw, [n]).get(n);
              remarks.push(`${file}: ${n}: grep-style count of the raw file is ${g}`);
            }
            allOk &&= ok;
          }
          for (const [n, c] of counts) {
            if (seen.has(n)) continue;
            lines.push({ file, event: n, notes: '-', refscope: String(c), ok: false });
            remarks.push(`${file}: refscope found ${c} ${n} events the NOTES do not list`);
            allOk = false;
          }
          if (row.entries) {
            const t = await db.one<{ b: number | null; w: number | null }>(
              'SELECT entries_in_buffer::INTEGER AS b, entries_written::INTEGER AS w FROM traces WHERE trace_id = $1',
              [id],
            );
            const ok = t?.b === row.entries[0] && t?.w === row.entries[1];
            lines.push({ file, event: 'entries-in-buffer/written', notes: row.entries.join('/'), refscope: `${t?.b}/${t?.w}`, ok });
            allOk &&= ok;
          }
          // Lines refscope could not read: any that looks like an MM event is a failure.
          const unparsed = await db.all<{ line_no: number; reason: string; text: string }>(
            'SELECT line_no::INTEGER AS line_no, reason, text FROM unparsed_lines WHERE trace_id = $1 ORDER BY line_no',
            [id],
          );
          const mmUnparsed = unparsed.filter((u) => [...u.text.matchAll(/([A-Za-z_][\w]*):/g)].some((m) => MM_SYSTEMS.has(systemOf(m[1]) ?? '')) || /\bpfn=/.test(u.text));
          lines.push({ file, event: 'unparsed lines (MM events)', notes: '0', refscope: `${s.unparsed_lines} (${mmUnparsed.length})`, ok: mmUnparsed.length === 0 });
          allOk &&= mmUnparsed.length === 0;
          for (const u of mmUnparsed.slice(0, 5)) remarks.push(`${file}:${u.line_no}: unparsed MM line (${u.reason}): ${u.text.slice(0, 160)}`);
          const gaps = await decodingGaps(db, id);
          const gapRows = gaps.reduce((a, g) => a + g.rows, 0);
          lines.push({ file, event: 'MM decoding gaps (rows)', notes: '0', refscope: String(gapRows), ok: gapRows === 0 });
          allOk &&= gapRows === 0;
          for (const g of gaps) remarks.push(`${file}: ${g.event}: ${g.rows} rows: ${g.what}`);
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
