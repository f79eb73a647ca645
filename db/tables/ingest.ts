import type { Column, Table } from '../columns.js';

/**
 * The tables ingest writes. Replay, queries and reports read only these (and replay's own tables).
 * Columns are keyed by field name from the event payload, never by position.
 */

export const TRACES: Table = {
  name: 'traces',
  doc: 'One row per ingested input (file or stdin).',
  columns: [
    { name: 'trace_id', type: 'INTEGER NOT NULL', doc: 'Identifier used by every other table.' },
    { name: 'source', type: 'VARCHAR NOT NULL', doc: "File name as given on the command line, or '-' for stdin." },
    { name: 'size_bytes', type: 'BIGINT NOT NULL', doc: 'Bytes read (after gunzip for .gz input).' },
    { name: 'sha256', type: 'VARCHAR NOT NULL', doc: 'SHA-256 of the content read; the same content is never ingested twice.' },
    { name: 'format', type: 'VARCHAR NOT NULL', doc: "The reader that read it: 'ftrace', 'console' (ftrace lines under a printk prefix), 'trace-cmd', 'perf', 'perf-data', 'trace-dat', 'csv' or 'arrow'." },
    { name: 'ingested_at', type: 'TIMESTAMP NOT NULL', doc: 'When the ingest committed (UTC).' },
    { name: 'tracer', type: 'VARCHAR', doc: "ftrace `# tracer:` header (usually 'nop')." },
    { name: 'cpus', type: 'INTEGER', doc: 'Number of CPUs from `#P:` (ftrace) or `cpus=` (trace-cmd).' },
    { name: 'entries_in_buffer', type: 'BIGINT', doc: 'ftrace header `entries-in-buffer`.' },
    { name: 'entries_written', type: 'BIGINT', doc: 'ftrace header `entries-written`; written - in_buffer = events lost to ring-buffer overwrite.' },
    { name: 'kernel_version', type: 'VARCHAR', doc: "Kernel release if the input says it (trace-cmd `version =` is the file version, not the kernel's)." },
    { name: 'file_version', type: 'VARCHAR', doc: 'trace-cmd `version =` preamble.' },
    { name: 'lines', type: 'BIGINT NOT NULL', doc: 'Lines read.' },
    { name: 'events', type: 'BIGINT NOT NULL', doc: 'Rows written to `events` for this trace.' },
    { name: 'stacks', type: 'BIGINT NOT NULL', doc: 'Distinct stacks written to `stacks`.' },
    { name: 'unparsed_lines', type: 'BIGINT NOT NULL', doc: 'Lines that matched no layout (kept in `unparsed_lines`).' },
    { name: 'lost_events', type: 'BIGINT NOT NULL', doc: 'Events lost: the larger of the `[LOST N EVENTS]` / `[N EVENTS DROPPED]` counts and entries_written - entries_in_buffer (the `trace` file reports the same overwrite both ways).' },
    { name: 'lost_markers', type: 'BIGINT NOT NULL', doc: 'Number of lost/dropped-event marker lines (rows of `lost_events`).' },
    { name: 'first_ts_ns', type: 'BIGINT', doc: 'Smallest event timestamp (ns).' },
    { name: 'last_ts_ns', type: 'BIGINT', doc: 'Largest event timestamp (ns).' },
    { name: 'clock', type: 'VARCHAR', doc: "'us' (secs.usecs), 'ns' (9-digit fraction), 'counter' (raw counter clock), 'relative-us' (latency format)." },
    { name: 'has_tgid', type: 'BOOLEAN NOT NULL', doc: 'Whether the input carried a TGID column.' },
    { name: 'mapcount_semantics', type: 'VARCHAR', doc: "'page_mapcount' (kernels before ~6.10: 0 = unmapped) or 'raw' (raw _mapcount: -1 = unmapped); NULL when no page_ref events. Decided from the kernel version when known, else from the values (a -1 means raw)." },
    { name: 'mt_layout', type: 'VARCHAR NOT NULL', doc: "Migratetype numbering used to decode mt=/migratetype= ('mainline': CMA=4 ISOLATE=5; 'nocma': ISOLATE=4; 'pre4.4'); see table `migratetypes`. Set with `ingest --mt-layout`, overridable in replay." },
    { name: 'vmemmap_base', type: 'UBIGINT', doc: 'Base of the struct page array learned from events that print both a raw page pointer and its pfn (or the memremap_pages kprobe); used to turn kprobe page=/folio= pointers into pfns. NULL when pointers are hashed.' },
    { name: 'struct_page_size', type: 'INTEGER', doc: 'sizeof(struct page) used with vmemmap_base (64).' },
    { name: 'event_counts', type: 'JSON', doc: 'Object: event name -> rows.' },
    { name: 'unparsed_examples', type: 'JSON', doc: 'Up to 10 unparsed lines: [{line, reason, text}].' },
    { name: 'parse_seconds', type: 'DOUBLE', doc: 'Wall time of the ingest.' },
    { name: 'truncated', type: 'BOOLEAN DEFAULT false', doc: 'The input was cut short: `ingest` stopped by SIGINT/SIGTERM, or a read error on stdin. Its complete lines were kept; the trace ends with the last of them (a capture end like any other). false on a database made before this column.' },
    { name: 'callsite_skip', type: 'VARCHAR', doc: "What `ingest --callsite-skip` (or REFSCOPE_CALLSITE_SKIP) added to the call-site rule of docs/formats.md §1.9 for this trace's `stacks.callsite`; NULL: the documented rule alone." },
  ],
  constraints: ['PRIMARY KEY (trace_id)'],
};

/**
 * `events.payload`: the stored text (event_rows.payload_text), else the page_ref payload rendered from the row's
 * columns. Ingest leaves payload_text NULL only where the text is exactly this rendering (scan.ts refScan.canonical:
 * the format of include/trace/events/page_ref.h, `pfn=0x%lx flags=%s count=%d mapcount=%d mapping=%p mt=%d val=%d`
 * and ` ret=%d` for the _and_test / _unless / _freeze kinds, %p printed as 16 hex digits), so that most rows of a
 * page trace store no text, which DuckDB inserts faster. The view computes it only for queries that read it (as a
 * generated column, DuckDB would compute it at every insert).
 */
const PAYLOAD =
  "coalesce(payload_text, 'pfn=0x' || printf('%x', pfn) || ' flags=' || page_flags || ' count=' || count || ' mapcount=' || mapcount" +
  " || ' mapping=' || printf('%016x', mapping) || ' mt=' || mt || ' val=' || val || coalesce(' ret=' || ret, ''))";

export const EVENTS: Table = {
  name: 'events',
  doc:
    'One row per trace event, in input order. Payload fields are decoded by name into the typed columns below; ' +
    'a column is NULL when the event has no such field. The raw payload is always kept. ' +
    'A view over the stored rows of `event_rows`.',
  columns: [
    { name: 'trace_id', type: 'INTEGER NOT NULL', doc: '`traces.trace_id`.' },
    { name: 'seq', type: 'BIGINT NOT NULL', doc: 'Position in the input (0-based, no gaps). Replay order: many events share a timestamp, so order by seq, never by ts alone.' },
    { name: 'line_no', type: 'BIGINT NOT NULL', doc: '1-based line number of the event line in the input.' },
    { name: 'ts_ns', type: 'BIGINT NOT NULL', doc: 'Timestamp in nanoseconds (exact int64; `secs.usecs` x 1000). Counter clocks: the raw counter.' },
    { name: 'cpu', type: 'SMALLINT', doc: 'CPU number.' },
    { name: 'pid', type: 'INTEGER', doc: 'Task id (perf: tid).' },
    { name: 'tgid', type: 'INTEGER', doc: 'Thread-group id when recorded (ftrace record-tgid, perf pid/tid); NULL if absent or `(-------)`.' },
    { name: 'comm', type: 'VARCHAR', doc: "Task name as printed (`<...>` when unknown). Untrusted text from the traced machine.", compression: 'dict' },
    { name: 'irq_flags', type: 'VARCHAR', doc: "irq-info column (`d..1.`, 4 or 5 chars); NULL when absent.", compression: 'dict' },
    { name: 'system', type: 'VARCHAR', doc: "Event system (`page_ref`, `kmem`, `cma`, ...; perf prints it, otherwise from refscope's catalogue; 'kprobe' for probe events not in it).", compression: 'dict' },
    { name: 'event', type: 'VARCHAR NOT NULL', doc: "Event name without system: `page_ref_mod`, `mm_page_alloc`, `try_grab_folio`, `tracing_mark_write`, `sys_enter_vmsplice` (syscall lines), ...", compression: 'dict' },
    { name: 'pfn', type: 'BIGINT', doc: "Page frame number: `pfn=` (hex with 0x, otherwise decimal; cma before 5.14: hex without 0x), or derived from a kprobe `page=`/`folio=` pointer via `traces.vmemmap_base`. Never from `page=` of kmem events." },
    { name: 'order', type: 'SMALLINT', doc: '`order=` (kmem, filemap), `alloc_order=` (extfrag), `align=` (cma: the alignment the allocation asked for, an order).' },
    { name: 'nr_pages', type: 'BIGINT', doc: 'Pages the event covers: 2^order for kmem alloc/free, `count=` for cma events, `nr_pages=`/`npages=` for GUP probes, end-start for pfn ranges.' },
    { name: 'count', type: 'INTEGER', doc: 'page_ref `count=`: refcount AFTER the operation (a re-read snapshot).' },
    { name: 'mapcount', type: 'INTEGER', doc: 'page_ref `mapcount=` as printed; meaning per `traces.mapcount_semantics`.' },
    { name: 'val', type: 'INTEGER', doc: 'page_ref `val=`: delta for mod events, new count for set/unfreeze, expected count for freeze.' },
    { name: 'ret', type: 'BIGINT', doc: "`ret=` of page_ref mod_and_test/unless/return/freeze, kretprobe return values, cma `errorno=`, test_pages_isolated (0 = success, 1 = fail)." },
    { name: 'page_flags', type: 'VARCHAR', doc: "Page flags as printed (`uptodate|lru|head`, `none`, or hex).", compression: 'dict' },
    { name: 'mapping', type: 'UBIGINT', doc: 'page_ref `mapping=` token (an opaque, possibly hashed pointer; 0 for NULL).' },
    { name: 'mt', type: 'SMALLINT', doc: 'Migratetype: page_ref `mt=`, kmem `migratetype=`, `alloc_migratetype=`, alloc_contig_range `migratetype=`. Decode with `migratetypes`.' },
    { name: 'gfp', type: 'VARCHAR', doc: '`gfp_flags=` / `gfp=` as printed (symbolic or hex).', compression: 'dict' },
    { name: 'refs', type: 'INTEGER', doc: 'GUP probe `refs=` (try_grab_folio, gup_put_folio).' },
    { name: 'gup_flags', type: 'UBIGINT', doc: 'FOLL_* flags of GUP probes (`flags=`, `gup_flags=`). 6.1 values: WRITE 0x1, GET 0x4, LONGTERM 0x10000, PIN 0x40000.' },
    { name: 'ptr', type: 'UBIGINT', doc: 'Raw `struct page *`/folio pointer of probe events (`page=`, `folio=`, `pages=`), or the page= of cma events.' },
    { name: 'pgmap', type: 'UBIGINT', doc: '`struct dev_pagemap *` of pgmap probes (`pgmap=`); for `dev_pagemap_percpu_release` the `ref=` pointer (&pgmap->ref).' },
    { name: 'addr', type: 'UBIGINT', doc: 'User address: `start=` of GUP probes, `addr=`/`address` of migration/dax events.' },
    { name: 'pfn_end', type: 'BIGINT', doc: 'Exclusive end of a pfn range: test_pages_isolated `end_pfn`, alloc_contig_range `end`, cma `pfn+count`.' },
    { name: 'fin_pfn', type: 'BIGINT', doc: 'test_pages_isolated `fin_pfn`: on failure, the first pfn that blocked isolation.' },
    { name: 'name', type: 'VARCHAR', doc: 'cma area `name=`, migrate `reason=`, rss_stat `type=`, module name.', compression: 'dict' },
    { name: 'mode', type: 'VARCHAR', doc: 'migrate `mode=`.', compression: 'dict' },
    { name: 'nr_succeeded', type: 'BIGINT', doc: 'mm_migrate_pages `nr_succeeded=`, alloc_contig_range_info `nr_migrated=`.' },
    { name: 'nr_failed', type: 'BIGINT', doc: 'mm_migrate_pages `nr_failed=`.' },
    { name: 'stack_id', type: 'INTEGER', doc: 'Kernel stack of this event (`stacks.stack_id`), from `<stack trace>`, `kernel_stack:` or a perf callchain.' },
    { name: 'user_stack_id', type: 'INTEGER', doc: 'User stack (`<user stack trace>`).' },
    { name: 'args', type: 'JSON', doc: 'Fields of events refscope has no decoder for, as a JSON object of strings (generic key=value); NULL for decoded events.' },
    { name: 'payload', type: 'VARCHAR NOT NULL', doc: 'Raw text after `event:` (marker text for trace markers). Untrusted.', generated: PAYLOAD },
  ],
};

export const STACKS: Table = {
  name: 'stacks',
  doc: 'Distinct stack traces of a trace; events point here with `stack_id`/`user_stack_id`.',
  columns: [
    { name: 'trace_id', type: 'INTEGER NOT NULL', doc: '`traces.trace_id`.' },
    { name: 'stack_id', type: 'INTEGER NOT NULL', doc: 'Identifier within the trace.' },
    { name: 'kind', type: 'VARCHAR NOT NULL', doc: "'kernel' or 'user'." },
    { name: 'depth', type: 'INTEGER NOT NULL', doc: 'Number of frames.' },
    { name: 'frames', type: 'VARCHAR NOT NULL', doc: "Frames innermost first, one per line, as `func+0xoff/0xsize` or `func` (addresses dropped; perf DSOs kept as `func+0xoff [dso]`)." },
    { name: 'callsite', type: 'VARCHAR', doc: 'The function that asked: the first frame outside tracing machinery, refcount helpers, GUP and page-allocator internals (docs/formats.md §1.9, plus `traces.callsite_skip`), offset removed. NULL when every frame is skipped.' },
    { name: 'uses', type: 'BIGINT NOT NULL', doc: 'Events pointing at this stack.' },
    { name: 'frames_shown', type: 'VARCHAR', doc: 'The frames to show: `frames` without the tracing machinery a probe or tracepoint adds on top (kprobe / ftrace / trace_event / perf frames, the raw trampoline address). NULL on a database made before this column.' },
  ],
  constraints: ['PRIMARY KEY (trace_id, stack_id)'],
};

export const LOST_EVENTS: Table = {
  name: 'lost_events',
  doc: 'Lost/dropped-event markers: replay treats state crossing them on that CPU as uncertain.',
  columns: [
    { name: 'trace_id', type: 'INTEGER NOT NULL', doc: '`traces.trace_id`.' },
    { name: 'seq', type: 'BIGINT NOT NULL', doc: '`events.seq` of the first event after the marker (the loss happened before it).' },
    { name: 'line_no', type: 'BIGINT NOT NULL', doc: 'Line of the marker.' },
    { name: 'cpu', type: 'SMALLINT', doc: 'CPU whose buffer lost events (NULL: unknown / all).' },
    { name: 'lost', type: 'BIGINT', doc: 'Number of events lost (NULL when the marker does not say).' },
    { name: 'kind', type: 'VARCHAR NOT NULL', doc: "'lost' (ftrace `CPU:N [LOST M EVENTS]`), 'dropped' (trace-cmd `[N EVENTS DROPPED]`), 'perf-lost' (perf PERF_RECORD_LOST), 'buffer-started' (`##### CPU N buffer started ####`: events before it on that CPU were overwritten)." },
  ],
};

export const UNPARSED: Table = {
  name: 'unparsed_lines',
  doc: 'Lines that no reader understood (the first 1000 of each trace), so nothing is dropped silently.',
  columns: [
    { name: 'trace_id', type: 'INTEGER NOT NULL', doc: '`traces.trace_id`.' },
    { name: 'line_no', type: 'BIGINT NOT NULL', doc: 'Line number.' },
    { name: 'reason', type: 'VARCHAR NOT NULL', doc: 'Why it was not parsed.' },
    { name: 'text', type: 'VARCHAR NOT NULL', doc: 'The line (truncated to 1000 characters).' },
  ],
};

export const MIGRATETYPES: Table = {
  name: 'migratetypes',
  doc: 'Migratetype numbering per kernel layout (docs/model.md §9): join on (traces.mt_layout, events.mt).',
  columns: [
    { name: 'layout', type: 'VARCHAR NOT NULL', doc: "'mainline' (>=4.4 with CONFIG_CMA), 'nocma' (>=4.4 without CMA), 'pre4.4'." },
    { name: 'mt', type: 'SMALLINT NOT NULL', doc: 'Number as printed.' },
    { name: 'name', type: 'VARCHAR NOT NULL', doc: 'MIGRATE_* name without the prefix: UNMOVABLE, MOVABLE, RECLAIMABLE, HIGHATOMIC, RESERVE, CMA, ISOLATE.' },
  ],
};

export const MT_LAYOUTS: Record<string, string[]> = {
  mainline: ['UNMOVABLE', 'MOVABLE', 'RECLAIMABLE', 'HIGHATOMIC', 'CMA', 'ISOLATE'],
  nocma: ['UNMOVABLE', 'MOVABLE', 'RECLAIMABLE', 'HIGHATOMIC', 'ISOLATE'],
  'pre4.4': ['UNMOVABLE', 'RECLAIMABLE', 'MOVABLE', 'RESERVE', 'CMA', 'ISOLATE'],
};

/** What event_rows stores beyond the columns of `events`: how `payload` is kept. */
export const PAYLOAD_STORAGE: Column[] = [
  {
    name: 'payload_text',
    type: 'VARCHAR',
    doc: "`events.payload` when stored; NULL where the view renders it from the row's columns (a page_ref payload in the kernel's exact format, db/tables/ingest.ts PAYLOAD).",
    compression: 'long',
  },
];

/** Where the rows of `events` are stored: its columns but the computed ones, and PAYLOAD_STORAGE. */
export const EVENT_ROWS: Table = {
  name: 'event_rows',
  doc: 'The stored rows of the view `events`: its columns but `payload`, and how the payload is kept. Write rows here; read `events`.',
  columns: [...EVENTS.columns.filter((c) => c.generated === undefined), ...PAYLOAD_STORAGE],
};

/** The view `events`: event_rows and the columns computed from them. */
const EVENTS_VIEW = `CREATE OR REPLACE VIEW events AS SELECT ${EVENTS.columns
  .map((c) => (c.generated === undefined ? `"${c.name}"` : `${c.generated} AS "${c.name}"`))
  .join(', ')} FROM event_rows`;

export const INGEST_TABLES: Table[] = [TRACES, EVENT_ROWS, STACKS, LOST_EVENTS, UNPARSED, MIGRATETYPES];

/** `events` (made first: the others read it), then views for people typing SQL by hand. */
export const INGEST_VIEWS: { name: string; doc: string; sql: string }[] = [
  { name: 'events', doc: 'the columns documented under `events` above, over the stored rows of `event_rows` (`payload` computed).', sql: EVENTS_VIEW },
  {
    name: 'events_readable',
    doc: 'events with `pfn_hex`, `ts_s` (seconds, DOUBLE), the migratetype name and the stack\'s callsite.',
    sql: `CREATE OR REPLACE VIEW events_readable AS
      SELECT e.*, CASE WHEN e.pfn IS NOT NULL THEN printf('0x%x', e.pfn) END AS pfn_hex, e.ts_ns / 1e9 AS ts_s,
             m.name AS mt_name, s.callsite
      FROM events e JOIN traces t USING (trace_id)
      LEFT JOIN migratetypes m ON m.layout = t.mt_layout AND m.mt = e.mt
      LEFT JOIN stacks s ON s.trace_id = e.trace_id AND s.stack_id = e.stack_id`,
  },
  {
    name: 'stack_frames',
    doc: 'One row per frame: (trace_id, stack_id, kind, depth_index 0 = innermost, frame).',
    sql: `CREATE OR REPLACE VIEW stack_frames AS
      SELECT trace_id, stack_id, kind, generate_subscripts(string_split(frames, chr(10)), 1) - 1 AS depth_index,
             unnest(string_split(frames, chr(10))) AS frame
      FROM stacks`,
  },
];
