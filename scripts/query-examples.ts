/**
 * The example of every library query in docs/queries.md: which input shows the query finding something, and the exact
 * `refscope` command lines. scripts/readme-queries.ts runs them and writes their output between the markers;
 * test/e2e/readme-queries.test.ts checks that every query has a block and that each block is what this file says.
 * The reference part of each query (what the report and `check` make of it, its parameters and columns) is
 * generated from the parsed header of its file (QueryDef), between `reference NAME` markers.
 */
import type { QueryCommandOptions } from '../cli/commands/query.js';
import { listQueries, type QueryDef } from '../queries/runner.js';
import type { Scenario } from '../samples/generate/index.js';

/** A bundled real capture (samples/real/NAME) or a generated scenario (`refscope generate NAME`, seed 1). */
export type Input = { real: string } | { scenario: Scenario };

export interface Example {
  /** Marker key in docs/queries.md: the query name, or name-2 for a second example. */
  id: string;
  query: string;
  inputs: Input[];
  /** Arguments after `--db FILE`. */
  args: string[];
  /** One sentence: what the input is and what the output shows. */
  note: string;
}

const real = (name: string): Input => ({ real: name });
const scenario = (name: Scenario): Input => ({ scenario: name });

export const EXAMPLES: Example[] = [
  {
    id: 'summary',
    query: 'summary',
    inputs: [real('c-cma-blocked.trace.txt.gz'), scenario('dax-pgmap-leak')],
    args: ['--columns', 'trace_id,source,events,leaks,pin_leaks,cma_failed_allocs,cma_blockers,pgmap_imbalance,use_after_free,long_pins,agreement,lost_events'],
    note: 'two traces in one database, one row each: the CMA allocation blocked by vmsplice references, and the leaked device page with its dev_pagemap reference.',
  },
  {
    id: 'leaks',
    query: 'leaks',
    inputs: [scenario('dax-pgmap-leak')],
    args: ['--columns', 'grouping,callsite,stack_id,pages,bytes,refs_outstanding,holders,first_seen_ns,last_seen_ns,example_pfns'],
    note: 'a snapshot ioctl takes a reference on a device-private page and never drops it; the process exits. The page is listed under the stack that allocated it and under the stack of the unreturned get.',
  },
  {
    id: 'pin-leaks',
    query: 'pin-leaks',
    inputs: [scenario('pin-leak')],
    args: ['--columns', 'holder_comm,holder_pid,callsite,pins,pages,longterm_pins,first_pin_ns,max_duration_ns,holder_exited,certain,example_pfns'],
    note: 'a driver FOLL_LONGTERM-pins 8 pages for a process that exits without unpinning them.',
  },
  {
    id: 'outstanding',
    query: 'outstanding',
    inputs: [scenario('exit-with-pins')],
    args: ['--columns', 'kind,holder_comm,holder_pid,holder_state,callsite,outstanding,pages,since_ns,holder_exit_ns,leak,certain,example_pfns'],
    note: 'a process pins pages and takes device pages, then exits without releasing them (certain leaks); another keeps its pins to the end (alive: information).',
  },
  {
    id: 'long-pins',
    query: 'long-pins',
    inputs: [scenario('iouring-longterm-cma')],
    args: ['--columns', 'priority,kind,pfn,holder_comm,holder_pid,duration_ns,held_to_end,longterm,mt_name,in_cma,longterm_in_cma,callsite', '--limit', '6'],
    note: 'an io_uring fixed buffer stays FOLL_LONGTERM-pinned ~1 s with 4 of its pages in CMA (not migrated out first): those rank first.',
  },
  {
    id: 'long-pins-2',
    query: 'long-pins',
    inputs: [real('b-vmsplice.trace.txt.gz')],
    args: ['--param', 'min_duration_ns=500ms', '--columns', 'priority,kind,pfn,refs,holder_comm,holder_pid,start_ts_ns,duration_ns,foll_get,gup_flags,mt_name,callsite', '--limit', '3'],
    note: 'a plain reference still held when the capture ends ranks above released ones; then the 256 vmsplice references, FOLL_GET (gup_flags 0x4, plain references, not pins), held ~1 s by the pipe after the buffer was unmapped.',
  },
  {
    id: 'sessions',
    query: 'sessions',
    inputs: [real('a-iouring-longterm.trace.txt.gz')],
    args: ['--param', 'kind=pin', '--columns', 'session,kind,longterm,refs_taken,pages,holder_comm,holder_tgid,callsite,start_ts_ns,held_ns,release_comm,release_pid,release_via'],
    note: 'three io_uring buffer registrations of 1024 FOLL_LONGTERM pins each, one session each; ring 2 is torn down by kworker/u4:0 in io_ring_exit_work after its fd was closed without unregistering; ring 3 pins two THPs and names the same call site as the small-page pins.',
  },
  {
    id: 'cma-blockers',
    query: 'cma-blockers',
    inputs: [real('c-cma-blocked.trace.txt.gz')],
    args: ['--columns', 'what,attempt_comm,request_count,busy_retries,succeeded,pfn,is_fin_pfn,ref_type,refs,holder_comm,holder_pid,since_ts_ns,released_ts_ns,callsite', '--limit', '6'],
    note: 'cma_alloc of 16380 pages fails after 5 busy retries because pid 352 holds vmsplice (FOLL_GET) references on 5 CMA pfns, 4 of them on 0x7dc00, where isolation stopped (is_fin_pfn).',
  },
  {
    id: 'cma-blockers-2',
    query: 'cma-blockers',
    inputs: [scenario('iouring-longterm-cma')],
    args: ['--columns', 'what,pfn,ref_type,refs,holder_comm,holder_pid,since_ts_ns,released_ts_ns,gup_flags,callsite,certain'],
    note: 'FOLL_LONGTERM pins kept on CMA pages block CMA even when no cma_alloc ran in the trace.',
  },
  {
    id: 'pgmap-imbalance',
    query: 'pgmap-imbalance',
    inputs: [scenario('dax-pgmap-leak')],
    args: ['--columns', 'pgmap,pfn_start,pfn_end,gets,puts,outstanding_end,outstanding_at_unmap,unmap_ts_ns,problems,certain'],
    note: 'a device-private page keeps its dev_pagemap reference, so memunmap_pages (rmmod) never returns.',
  },
  {
    id: 'pgmap-imbalance-2',
    query: 'pgmap-imbalance',
    inputs: [real('d-pgmap-hmm.trace.txt.gz')],
    args: ['--param', 'all=true', '--columns', 'pgmap,pfn_start,pfn_end,source,gets,puts,outstanding_end,outstanding_at_unmap,max_outstanding,problems'],
    note: 'test_hmm on a real kernel, balanced (all=true lists balanced pgmaps too): 128 gets and 128 puts on dmirror0, dmirror1 unused.',
  },
  {
    id: 'use-after-free',
    query: 'use-after-free',
    inputs: [scenario('vmalloc-uaf')],
    args: ['--columns', 'kind,severity,pfn,ts_ns,comm,pid,event,callsite,prev_free_comm,detail', '--limit', '3'],
    note: 'a driver vfree()s 16 vmalloc pages a process still maps through vmf_insert_pfn.',
  },
  {
    id: 'top-callers',
    query: 'top-callers',
    inputs: [real('a-iouring-longterm.trace.txt.gz')],
    args: ['--columns', 'callsite,allocs_alive_at_end,allocs,holds_open,pins_open,pins,pin_seconds,holds,hold_seconds,stacks', '--limit', '5'],
    note: 'io_pin_pages took the 2048 small-page FOLL_LONGTERM pins and follow_trans_huge_pmd the 1024 THP subpage pins, all released (pins_open 0), ranked by pin-seconds; only GUP events have stacks in this capture, so the window-edge pages and references are under (no stack).',
  },
  {
    id: 'divergence',
    query: 'divergence',
    inputs: [scenario('lost-window')],
    args: ['--columns', 'what,seq,ts_ns,cpu,pfn,event,expected,printed,explanation,lost,line_no'],
    note: 'CPU 1 lost 4096 events while pages were pinned: the lost-event window that makes those pins uncertain.',
  },
  {
    id: 'divergence-2',
    query: 'divergence',
    inputs: [real('e-mixed.trace.txt.gz')],
    args: ['--columns', 'what,seq,ts_ns,cpu,pid,comm,pfn,event,expected,printed,delta,explanation,line_no'],
    note: 'the one page_ref count= of 24684 that the model did not predict: another CPU changed the count in between (explanation concurrent); no event was lost.',
  },
  {
    id: 'kmem-summary',
    query: 'kmem-summary',
    inputs: [real('perf-kmem-a.script.txt.gz')],
    args: ['--columns', 'alloc_requests,alloc_kb,free_requests,free_kb,free_batched_only,alloc_freed,alloc_only,alive_at_end,live_pfn_allocs,free_only,median_lifetime_ns'],
    note: 'perf script of a system-wide perf record of kmem events on 6.18 (no page_ref events): the figures perf kmem --page stat prints for the same perf.data (docs/kmem.md).',
  },
  {
    id: 'kmem-allocs',
    query: 'kmem-allocs',
    inputs: [scenario('lost-window')],
    args: ['--param', 'by=gfp', '--columns', 'key,allocs,kb,frees,alive_at_end,live_pfn_allocs,median_lifetime_ns', '--limit', '5'],
    note: 'a generated trace by gfp flags (kmem events beside page_ref events: every trace with mm_page_alloc has the allocator tables).',
  },
  {
    id: 'kmem-orders',
    query: 'kmem-orders',
    inputs: [scenario('lost-window')],
    args: ['--columns', 'order,unmovable,movable,reclaimable,allocs,kb'],
    note: "perf kmem's order x migratetype table (perf 6.1 prints the movable column as 'Reclaimable': docs/kmem.md).",
  },
  {
    id: 'kmem-alive',
    query: 'kmem-alive',
    inputs: [real('perf-task-callgraph.script.txt.gz')],
    args: ['--columns', 'edge,callsite,comm,allocs,pages,kb', '--limit', '5'],
    note: 'window edges by call site (perf record -g): alive at the end, or freed without their allocation in the trace.',
  },
  {
    id: 'kmem-live-pfn',
    query: 'kmem-live-pfn',
    inputs: [real('perf-task.script.txt.gz')],
    args: ['--columns', 'pfn,alloc_ns,alloc_comm,gfp,next_alloc_ns,next_comm,lost_between', '--limit', '3'],
    note: 'a capture of some tasks only: 248 pfns allocated again with no free seen (another task freed them).',
  },
];

/** File name of an input in the example's directory (real captures are read from samples/real/). */
export function inputFile(i: Input): string {
  return 'real' in i ? `samples/real/${i.real}` : `${i.scenario}.trace`;
}

/** Database of an example: named after its single input, or after the example. */
export function dbName(ex: Example): string {
  if (ex.inputs.length > 1) return `${ex.id}.duckdb`;
  const i = ex.inputs[0]!;
  return `${'real' in i ? i.real.replace(/\.trace\.txt\.gz$|\.txt\.gz$|\.gz$/, '') : i.scenario}.duckdb`;
}

/** The command lines of an example, as `refscope` argument lists, in order. */
export function commands(ex: Example): string[][] {
  const gen = ex.inputs.flatMap((i) => ('scenario' in i ? [['generate', i.scenario, '-o', inputFile(i)]] : []));
  return [...gen, ['ingest', '--db', dbName(ex), ...ex.inputs.map(inputFile)], ['query', ex.query, '--db', dbName(ex), ...ex.args]];
}

/** The options `refscope query` gets from an example's arguments (for running it in-process). */
export function queryOptions(ex: Example, db: string): QueryCommandOptions {
  const o: QueryCommandOptions = { db, param: [] };
  for (let i = 0; i < ex.args.length; i += 2) {
    const [flag, v] = [ex.args[i]!, ex.args[i + 1]!];
    if (flag === '--param') o.param!.push(v);
    else if (flag === '--columns') o.columns = v;
    else if (flag === '--limit') o.limit = v;
    else if (flag === '--format') o.format = v;
    else throw new Error(`example ${ex.id}: unexpected argument ${flag}`);
  }
  return o;
}

/** Shell quoting for docs/queries.md (arguments here are plain words; quote anything else). */
const sh = (a: string): string => (/^[\w./=,:@-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);

export const commandLine = (args: string[]): string => `$ npx refscope ${args.map(sh).join(' ')}`;

export function inputText(i: Input): string {
  return 'real' in i ? `the real capture \`${inputFile(i)}\`` : `the \`${i.scenario}\` scenario`;
}

export const beginMarker = (id: string): string =>
  `<!-- example ${id} begin: generated by \`npm run readme:queries\`; do not edit by hand -->`;
export const endMarker = (id: string): string => `<!-- example ${id} end -->`;

/** The generated block of an example (between its markers) for the query output `output`. */
export function block(ex: Example, output: string): string {
  const inputs = ex.inputs.map(inputText).join(' and ');
  return [
    `Input: ${inputs}; ${ex.note}`,
    '',
    '```',
    ...commands(ex).map(commandLine),
    output.trimEnd(),
    '```',
  ].join('\n');
}

/** docs/queries.md with every example block replaced; throws when a block's markers are missing. */
export function withExamples(readme: string, outputs: Map<string, string>): string {
  let out = readme;
  for (const ex of EXAMPLES) {
    const b = beginMarker(ex.id);
    const e = endMarker(ex.id);
    const i = out.indexOf(b);
    const j = out.indexOf(e);
    if (i < 0 || j < i) throw new Error(`docs/queries.md has no markers for example ${ex.id}: add\n${b}\n${e}`);
    const text = outputs.get(ex.id);
    if (text === undefined) throw new Error(`no output for example ${ex.id}`);
    out = out.slice(0, i + b.length) + '\n' + block(ex, text) + '\n' + out.slice(j);
  }
  return out;
}

/** The text between an example's markers in docs/queries.md (null when absent). */
export function readmeBlock(readme: string, id: string): string | null {
  const b = beginMarker(id);
  const i = readme.indexOf(b);
  const j = readme.indexOf(endMarker(id));
  return i < 0 || j < i ? null : readme.slice(i + b.length, j).trim();
}

export const referenceBegin = (name: string): string =>
  `<!-- reference ${name} begin: generated from queries/${name}.sql by \`npm run readme:queries\`; do not edit by hand -->`;
export const referenceEnd = (name: string): string => `<!-- reference ${name} end -->`;

const cell = (t: string): string => t.replace(/\|/g, '\\|');

/** The generated reference of one query: its role in reports and `check`, then its parameters and columns. */
export function referenceBlock(def: QueryDef): string {
  const role =
    def.finding === null
      ? `Report section "${def.title}" (not a finding).`
      : `Report section "${def.title}", a finding` +
        (def.verdict ? `: verdict line "${def.verdict.label}" (count: \`summary.${def.verdict.column}\`${def.verdict.level === 'error' ? ', red when a certain row is an error' : ', a warning'})` : '') +
        (def.gate !== null ? `; \`refscope check\` gates on it (\`--fail-on ${def.name}\`, \`--max ${def.name}=N\`)` : '') +
        '.';
  return [
    role,
    '',
    '| parameter | type | default | meaning |',
    '|---|---|---|---|',
    ...def.params.map((p) => `| \`${p.name}\` | ${p.type} | \`${cell(p.defaultText)}\` | ${cell(p.description)} |`),
    '',
    '| column | meaning |',
    '|---|---|',
    ...def.columns.map((c) => `| \`${c.name}\` | ${cell(c.description)} |`),
  ].join('\n');
}

/** docs/queries.md with every query's reference block replaced; throws when a query's markers are missing. */
export function withReference(doc: string, defs: QueryDef[] = listQueries()): string {
  let out = doc;
  for (const d of defs) {
    const b = referenceBegin(d.name);
    const e = referenceEnd(d.name);
    const i = out.indexOf(b);
    const j = out.indexOf(e);
    if (i < 0 || j < i) throw new Error(`docs/queries.md has no reference markers for query ${d.name}: add\n${b}\n${e}`);
    out = out.slice(0, i + b.length) + '\n' + referenceBlock(d) + '\n' + out.slice(j);
  }
  return out;
}

/** The text between a query's reference markers in docs/queries.md (null when absent). */
export function referenceText(doc: string, name: string): string | null {
  const b = referenceBegin(name);
  const i = doc.indexOf(b);
  const j = doc.indexOf(referenceEnd(name));
  return i < 0 || j < i ? null : doc.slice(i + b.length, j).trim();
}
