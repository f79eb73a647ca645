import type { Table } from '../columns.js';

/**
 * The tables replay writes, one row per entity. Every row carries trace_id; replaying a trace again
 * replaces its rows. Timestamps are ns (same clock as events.ts_ns); *_seq point at events.seq.
 */

const T = { name: 'trace_id', type: 'INTEGER NOT NULL', doc: '`traces.trace_id`.' };

export const REPLAY_RUNS: Table = {
  name: 'replay_runs',
  doc: 'One row per replayed trace: the options used and the summary `refscope replay` prints.',
  columns: [
    T,
    { name: 'replayed_at', type: 'TIMESTAMP NOT NULL', doc: 'When replay committed (UTC).' },
    { name: 'options', type: 'JSON NOT NULL', doc: 'Options in force (thresholds, migratetype layout, CMA ranges).' },
    { name: 'events', type: 'BIGINT NOT NULL', doc: 'Events of the trace replayed (kinds replay does not use are skipped while streaming).' },
    { name: 'pages', type: 'BIGINT NOT NULL', doc: 'Rows written to `pages`.' },
    { name: 'pins', type: 'BIGINT NOT NULL', doc: 'Rows written to `pins`.' },
    { name: 'holds', type: 'BIGINT NOT NULL', doc: 'Rows written to `holds`.' },
    { name: 'pgmaps', type: 'BIGINT NOT NULL', doc: 'Rows written to `pgmaps`.' },
    { name: 'cma_attempts', type: 'BIGINT NOT NULL', doc: 'Rows written to `cma_attempts`.' },
    { name: 'anomalies', type: 'BIGINT NOT NULL', doc: 'Rows written to `anomalies`.' },
    { name: 'checked', type: 'BIGINT NOT NULL', doc: 'page_ref events whose printed count= could be checked against the model.' },
    { name: 'agreed', type: 'BIGINT NOT NULL', doc: 'Checked events where the model predicted count= exactly.' },
    { name: 'checked_outside_lost', type: 'BIGINT NOT NULL', doc: 'Checked events outside lost-event windows.' },
    { name: 'agreed_outside_lost', type: 'BIGINT NOT NULL', doc: 'Agreeing events outside lost-event windows.' },
    { name: 'seconds', type: 'DOUBLE NOT NULL', doc: 'Wall time of the replay.' },
  ],
  constraints: ['PRIMARY KEY (trace_id)'],
};

export const PAGES: Table = {
  name: 'pages',
  doc:
    'Page lifetimes: one row per (pfn, allocation). A lifetime runs from allocation (mm_page_alloc, page_ref_set val=1, ' +
    'zone_device_page_init) to free (mm_page_free, mm_page_free_batched, final put of a ZONE_DEVICE page). Pages alive when ' +
    'the capture starts or still alive when it ends are marked as window edges, never guessed. An mm_page_free_batched right after ' +
    'the mm_page_free of the same pfn is the same free (free_unref_page_list / free_unref_folios print both), not a second one.',
  columns: [
    T,
    { name: 'pfn', type: 'BIGINT NOT NULL', doc: 'Page frame number (head pfn for a folio).' },
    { name: 'order', type: 'SMALLINT', doc: 'Allocation order (NULL when the allocation was not seen).' },
    { name: 'alloc_seq', type: 'BIGINT', doc: 'events.seq of the allocation (mm_page_alloc when seen, else page_ref_set / zone_device_page_init); NULL = alive when the capture started.' },
    { name: 'alloc_ts_ns', type: 'BIGINT', doc: 'Allocation time; NULL = before the capture.' },
    { name: 'free_seq', type: 'BIGINT', doc: 'events.seq of the free; NULL = still alive at the end.' },
    { name: 'free_ts_ns', type: 'BIGINT', doc: 'Free time; NULL = after the capture.' },
    { name: 'first_seq', type: 'BIGINT NOT NULL', doc: 'First event of this lifetime seen (6.1: the page_ref_set printed just before mm_page_alloc).' },
    { name: 'last_seq', type: 'BIGINT NOT NULL', doc: 'Last event of this lifetime seen.' },
    { name: 'alloc_event', type: 'VARCHAR', doc: 'Event that started the lifetime.' },
    { name: 'free_event', type: 'VARCHAR', doc: 'Event that ended it (the put that reached 0 when no mm_page_free followed before the pfn was allocated again or the trace ended).' },
    { name: 'alloc_pid', type: 'INTEGER', doc: 'Allocating task.' },
    { name: 'alloc_tgid', type: 'INTEGER', doc: 'Allocating thread group.' },
    { name: 'alloc_comm', type: 'VARCHAR', doc: 'Allocating task name (untrusted).' },
    { name: 'alloc_stack_id', type: 'INTEGER', doc: 'Stack of the allocation (mm_page_alloc or its page_ref_set).' },
    { name: 'free_pid', type: 'INTEGER', doc: 'Freeing task.' },
    { name: 'free_comm', type: 'VARCHAR', doc: 'Freeing task name.' },
    { name: 'gfp', type: 'VARCHAR', doc: 'gfp_flags of the allocation.' },
    { name: 'migratetype', type: 'SMALLINT', doc: 'Migratetype at allocation (numeric).' },
    { name: 'last_mt', type: 'SMALLINT', doc: 'Last migratetype seen (page_ref mt=).' },
    { name: 'in_cma', type: 'BOOLEAN NOT NULL', doc: 'The page was seen with migratetype CMA (or ISOLATE inside a CMA range) or lies in a known CMA range.' },
    { name: 'zone_device', type: 'BOOLEAN NOT NULL', doc: 'ZONE_DEVICE page (initialised by zone_device_page_init or inside a memremap_pages range).' },
    { name: 'pgmap', type: 'UBIGINT', doc: 'Owning dev_pagemap for ZONE_DEVICE pages.' },
    { name: 'start_edge', type: 'BOOLEAN NOT NULL', doc: 'Alive when the capture started (allocation not seen).' },
    { name: 'end_edge', type: 'BOOLEAN NOT NULL', doc: 'Still alive when the capture ended.' },
    { name: 'refcount_end', type: 'INTEGER', doc: 'Model refcount at free / end (NULL without page_ref events).' },
    { name: 'refcount_max', type: 'INTEGER', doc: 'Largest refcount seen.' },
    { name: 'mapcount_end', type: 'INTEGER', doc: 'Last mapcount printed (traces.mapcount_semantics).' },
    { name: 'pins_end', type: 'INTEGER NOT NULL', doc: 'Pins still open at free / end.' },
    { name: 'holds_end', type: 'INTEGER NOT NULL', doc: 'Plain references taken in the window and not returned at free / end.' },
    { name: 'ref_events', type: 'BIGINT NOT NULL', doc: 'page_ref events in this lifetime.' },
    { name: 'uncertain', type: 'BOOLEAN NOT NULL', doc: 'The lifetime crosses a lost-event window on some CPU: counts may be incomplete.' },
  ],
};

export const PINS: Table = {
  name: 'pins',
  doc:
    'FOLL_PIN intervals. A small-folio pin is a coalesced +1024*k on one pfn by one task (single event, or the +k/+1023k ' +
    'pair) or a GUP probe with FOLL_PIN; a large-folio pin is +refs on the head pfn identified by a FOLL_PIN probe or GUP frames. ' +
    'It closes on the matching coalesced -1024*k (or -refs on the head after an unpin probe).',
  columns: [
    T,
    { name: 'pin_id', type: 'BIGINT NOT NULL', doc: 'Identifier within the trace.' },
    { name: 'pfn', type: 'BIGINT NOT NULL', doc: 'Pinned pfn (the subpage for a large folio when known, else the head).' },
    { name: 'folio_pfn', type: 'BIGINT NOT NULL', doc: 'Head pfn of the folio whose refcount carries the pin.' },
    { name: 'large_folio', type: 'BOOLEAN NOT NULL', doc: 'Pin of a large folio (counted in _pincount, +refs on the head).' },
    { name: 'refs', type: 'INTEGER NOT NULL', doc: 'Pins taken by this interval (k).' },
    { name: 'start_seq', type: 'BIGINT NOT NULL', doc: 'Event that opened the pin (the first event of a +k/+1023k pair).' },
    { name: 'start_ts_ns', type: 'BIGINT NOT NULL', doc: 'When it opened.' },
    { name: 'end_seq', type: 'BIGINT', doc: 'Event that closed it (the last event of a -1023k/-k pair); NULL = still held at the end of the trace.' },
    { name: 'end_ts_ns', type: 'BIGINT', doc: 'When it closed.' },
    { name: 'duration_ns', type: 'BIGINT NOT NULL', doc: 'end - start, or trace end - start for pins still held.' },
    { name: 'holder_pid', type: 'INTEGER', doc: 'Task that pinned.' },
    { name: 'holder_tgid', type: 'INTEGER', doc: 'Its thread group.' },
    { name: 'holder_comm', type: 'VARCHAR', doc: 'Its name (untrusted).' },
    { name: 'stack_id', type: 'INTEGER', doc: 'Stack of the pinning event (or of the GUP probe).' },
    { name: 'release_pid', type: 'INTEGER', doc: 'Task that unpinned (may differ: io_uring teardown runs in a kworker).' },
    { name: 'release_comm', type: 'VARCHAR', doc: 'Its name.' },
    { name: 'release_stack_id', type: 'INTEGER', doc: 'Stack of the unpin.' },
    { name: 'longterm', type: 'BOOLEAN', doc: 'FOLL_LONGTERM: from probe flags or __gup_longterm_locked/pin_user_pages frames; NULL = unknown.' },
    { name: 'gup_flags', type: 'UBIGINT', doc: 'FOLL_* flags when a probe reported them.' },
    { name: 'source', type: 'VARCHAR NOT NULL', doc: "'refcount' (+1024 seen in page_ref), 'probe' (GUP probe confirmed), 'stack' (GUP frames)." },
    { name: 'mt', type: 'SMALLINT', doc: 'Migratetype of the page when pinned.' },
    { name: 'in_cma', type: 'BOOLEAN NOT NULL', doc: 'The page was in a CMA pageblock (mt CMA/ISOLATE or a known CMA range) when pinned.' },
    { name: 'movable_zone', type: 'BOOLEAN NOT NULL', doc: 'The page was in ZONE_MOVABLE (known only from user-given ranges).' },
    {
      name: 'migrate_seq',
      type: 'BIGINT',
      doc:
        'events.seq of the mm_migrate_pages reason=longterm_pin of the same task that this pin follows inside its pinning call ' +
        '(__gup_longterm_locked moved the pages it may not pin long-term out of CMA / ZONE_MOVABLE, then pinned again: the ' +
        'expected path); NULL = none (a FOLL_LONGTERM pin on a CMA page with NULL here was never migrated). Without GUP ' +
        'kretprobes the link lasts at most 1 s after the migration. Pins known not to be FOLL_LONGTERM are never linked.',
    },
    { name: 'uncertain', type: 'BOOLEAN NOT NULL', doc: 'The interval crosses a lost-event window.' },
  ],
};

export const HOLDS: Table = {
  name: 'holds',
  doc:
    'Plain references (gets that are not pins: FOLL_GET, vmsplice, get_page) held longer than the hold threshold, or ' +
    'still held when the trace ends, or alive during a failed CMA attempt. Puts that follow an unmap (mapcount dropped) ' +
    'return the mapping\'s reference, not a hold.',
  columns: [
    T,
    { name: 'hold_id', type: 'BIGINT NOT NULL', doc: 'Identifier within the trace.' },
    { name: 'pfn', type: 'BIGINT NOT NULL', doc: 'Referenced pfn.' },
    { name: 'refs', type: 'INTEGER NOT NULL', doc: 'References taken.' },
    { name: 'start_seq', type: 'BIGINT NOT NULL', doc: 'The get.' },
    { name: 'start_ts_ns', type: 'BIGINT NOT NULL', doc: 'When.' },
    { name: 'end_seq', type: 'BIGINT', doc: 'The matching put; NULL = still held at the end.' },
    { name: 'end_ts_ns', type: 'BIGINT', doc: 'When.' },
    { name: 'duration_ns', type: 'BIGINT NOT NULL', doc: 'Held for (to the end of the trace when still held).' },
    { name: 'holder_pid', type: 'INTEGER', doc: 'Task that took the reference.' },
    { name: 'holder_tgid', type: 'INTEGER', doc: 'Its thread group.' },
    { name: 'holder_comm', type: 'VARCHAR', doc: 'Its name (untrusted).' },
    { name: 'stack_id', type: 'INTEGER', doc: 'Stack of the get (or of the GUP probe that caused it).' },
    { name: 'release_pid', type: 'INTEGER', doc: 'Task that dropped it.' },
    { name: 'release_comm', type: 'VARCHAR', doc: 'Its name.' },
    { name: 'via', type: 'VARCHAR NOT NULL', doc: "'gup' (a GUP probe/frames with FOLL_GET), 'get' (any other get)." },
    { name: 'gup_flags', type: 'UBIGINT', doc: 'FOLL_* flags when a probe reported them.' },
    { name: 'mt', type: 'SMALLINT', doc: 'Migratetype when taken.' },
    { name: 'in_cma', type: 'BOOLEAN NOT NULL', doc: 'The page was in CMA when taken.' },
    { name: 'uncertain', type: 'BOOLEAN NOT NULL', doc: 'Crosses a lost-event window.' },
    {
      name: 'attribution', type: 'VARCHAR',
      doc: "How the holder is known (docs/model.md §13.5): 'exact' (no put had to choose between this reference and another " +
        "task's), 'inferred' (a put was matched to it or to another task's by a kernel rule: pipe release, LRU drain by a " +
        "kworker, thread group), 'ambiguous' (a put could have returned this or another task's reference: see candidates).",
    },
    { name: 'candidates', type: 'VARCHAR', doc: "When ambiguous: the other possible holders, 'pid:comm' comma-separated." },
  ],
};

export const CMA_ATTEMPTS: Table = {
  name: 'cma_attempts',
  doc:
    'One row per cma_alloc call (cma_alloc_start .. cma_alloc_finish) with its busy retries, and per cma_release. ' +
    'Ranges tried come from cma_alloc_busy_retry, alloc_contig_range probes and test_pages_isolated.',
  columns: [
    T,
    { name: 'attempt_id', type: 'BIGINT NOT NULL', doc: 'Identifier within the trace.' },
    { name: 'kind', type: 'VARCHAR NOT NULL', doc: "'alloc' or 'release'." },
    { name: 'cma_name', type: 'VARCHAR', doc: 'CMA area name.' },
    { name: 'pid', type: 'INTEGER', doc: 'Task calling cma_alloc.' },
    { name: 'comm', type: 'VARCHAR', doc: 'Its name.' },
    { name: 'start_seq', type: 'BIGINT NOT NULL', doc: 'cma_alloc_start (or first event of the attempt).' },
    { name: 'start_ts_ns', type: 'BIGINT NOT NULL', doc: 'When it started.' },
    { name: 'end_seq', type: 'BIGINT', doc: 'cma_alloc_finish; NULL if not seen.' },
    { name: 'end_ts_ns', type: 'BIGINT', doc: 'When it finished.' },
    { name: 'request_count', type: 'BIGINT', doc: 'Pages requested.' },
    { name: 'align', type: 'INTEGER', doc: 'Alignment order.' },
    { name: 'pfn', type: 'BIGINT', doc: 'First pfn allocated (success) or last tried.' },
    { name: 'busy_retries', type: 'INTEGER NOT NULL', doc: 'cma_alloc_busy_retry events.' },
    { name: 'ranges_tried', type: 'INTEGER NOT NULL', doc: 'alloc_contig_range attempts seen (probe or isolation tests).' },
    { name: 'failed_ranges', type: 'INTEGER NOT NULL', doc: 'Ranges that failed isolation or returned an error.' },
    { name: 'migrated', type: 'BIGINT', doc: 'mm_migrate_pages reason=contig_range nr_succeeded inside the attempt.' },
    { name: 'migrate_failed', type: 'BIGINT', doc: 'mm_migrate_pages reason=contig_range nr_failed inside the attempt.' },
    { name: 'errorno', type: 'INTEGER', doc: 'cma_alloc_finish errorno when printed.' },
    { name: 'succeeded', type: 'BOOLEAN', doc: 'true when a page was returned (page pointer non-NULL or errorno 0); NULL if unknown.' },
    { name: 'blockers', type: 'INTEGER NOT NULL', doc: 'Rows in `cma_blockers` for this attempt.' },
  ],
};

export const CMA_BLOCKERS: Table = {
  name: 'cma_blockers',
  doc:
    'Evidence for failed CMA ranges: for each failed range (busy retry, failed isolation, failed alloc_contig_range), every pin ' +
    'or plain hold alive at that moment on a pfn inside it, plus the first pfn that blocked isolation even when no holder is known.',
  columns: [
    T,
    { name: 'attempt_id', type: 'BIGINT NOT NULL', doc: '`cma_attempts.attempt_id`.' },
    { name: 'range_seq', type: 'BIGINT NOT NULL', doc: 'Event that first reported the range failed (test_pages_isolated ret=fail, alloc_contig_range_ret < 0 or cma_alloc_busy_retry): the moment the holders are taken.' },
    { name: 'range_ts_ns', type: 'BIGINT NOT NULL', doc: 'When.' },
    { name: 'range_start', type: 'BIGINT', doc: 'First pfn of the range.' },
    { name: 'range_end', type: 'BIGINT', doc: 'Exclusive end.' },
    { name: 'pfn', type: 'BIGINT NOT NULL', doc: 'Blocking pfn.' },
    { name: 'is_fin_pfn', type: 'BOOLEAN NOT NULL', doc: 'This pfn is test_pages_isolated fin_pfn (where isolation stopped).' },
    { name: 'holder_kind', type: 'VARCHAR NOT NULL', doc: "'pin', 'hold' (plain reference) or 'unknown' (fin_pfn with no known holder)." },
    { name: 'holder_id', type: 'BIGINT', doc: '`pins.pin_id` or `holds.hold_id`.' },
    { name: 'refs', type: 'INTEGER', doc: 'References the holder has on the pfn.' },
    { name: 'holder_pid', type: 'INTEGER', doc: 'Holder task.' },
    { name: 'holder_tgid', type: 'INTEGER', doc: 'Holder thread group.' },
    { name: 'holder_comm', type: 'VARCHAR', doc: 'Holder name (untrusted).' },
    { name: 'stack_id', type: 'INTEGER', doc: 'Stack of the get/pin.' },
    { name: 'since_ts_ns', type: 'BIGINT', doc: 'When the reference was taken.' },
    { name: 'longterm', type: 'BOOLEAN', doc: 'FOLL_LONGTERM pin (NULL unknown / not a pin).' },
    { name: 'refcount', type: 'INTEGER', doc: 'Model refcount of the pfn at that moment.' },
    { name: 'uncertain', type: 'BOOLEAN NOT NULL', doc: 'The holder crosses a lost-event window, or its attribution is ambiguous.' },
    { name: 'attribution', type: 'VARCHAR', doc: "`holds.attribution` of a plain hold when the range failed ('exact' for a pin, NULL for 'unknown')." },
    { name: 'candidates', type: 'VARCHAR', doc: "When ambiguous: the other possible holders, 'pid:comm' comma-separated." },
  ],
};

export const PGMAPS: Table = {
  name: 'pgmaps',
  doc:
    'One row per struct dev_pagemap seen (memremap_pages probe, pgmap= of zone_device probes) or, when no probe names one, ' +
    'inferred from ZONE_DEVICE pages: adjacent 128 MiB sections holding device pages (zone_device probes without pgmap=, ' +
    'zone_device_page_init frames, or page_ref_set ... put to 0 lifetimes with no page-allocator event in a section where ' +
    'no page sees one). References counted: zone_device_page_init / get_dev_pagemap (gets) against free_zone_device_page/folio ' +
    '(puts); for an inferred pgmap, the device page allocations seen against their puts to 0.',
  columns: [
    T,
    { name: 'pgmap', type: 'UBIGINT', doc: 'Pointer; NULL for an inferred pgmap.' },
    { name: 'pfn_start', type: 'BIGINT', doc: 'First pfn mapped (memremap_pages return vaddr, or the lowest device pfn seen: always for an inferred pgmap).' },
    { name: 'pfn_end', type: 'BIGINT', doc: 'Exclusive end: one past the highest device pfn seen on this pgmap (memremap_pages does not print its size); NULL when none was seen.' },
    { name: 'remap_ts_ns', type: 'BIGINT', doc: 'memremap_pages time.' },
    { name: 'unmap_ts_ns', type: 'BIGINT', doc: 'memunmap_pages entry time.' },
    { name: 'unmap_ret_ts_ns', type: 'BIGINT', doc: 'memunmap_pages return time (NULL: never returned: it waits for references).' },
    { name: 'released_ts_ns', type: 'BIGINT', doc: 'dev_pagemap_percpu_release time (the last reference dropped).' },
    { name: 'gets', type: 'BIGINT NOT NULL', doc: 'References taken (zone_device_page_init, get_dev_pagemap returning it).' },
    { name: 'puts', type: 'BIGINT NOT NULL', doc: 'References dropped (free_zone_device_page/folio).' },
    { name: 'outstanding_end', type: 'BIGINT NOT NULL', doc: 'gets - puts at the end of the trace (references from before the capture are not known; an inferred pgmap counts only the puts of pages allocated in the window).' },
    { name: 'outstanding_at_unmap', type: 'BIGINT', doc: 'gets - puts when memunmap_pages was entered.' },
    { name: 'puts_without_get', type: 'BIGINT NOT NULL', doc: 'Puts of pages whose get was not seen while the get side was traced (double put / extra put).' },
    { name: 'freed_without_put', type: 'BIGINT NOT NULL', doc: 'Device pages whose refcount reached 0 with no pgmap put (free_zone_device_page) following.' },
    { name: 'max_outstanding', type: 'BIGINT NOT NULL', doc: 'Largest balance seen.' },
    { name: 'source', type: 'VARCHAR NOT NULL', doc: "'probe' or 'inferred'." },
  ],
};

export const PGMAP_REFS: Table = {
  name: 'pgmap_refs',
  doc: 'Reference events of each pgmap over time, with the running balance (for charts and the evidence behind pgmap findings).',
  columns: [
    T,
    { name: 'pgmap', type: 'UBIGINT', doc: '`pgmaps.pgmap`; NULL for an inferred pgmap (the pfn falls in its pfn_start .. pfn_end).' },
    { name: 'seq', type: 'BIGINT NOT NULL', doc: 'Event.' },
    { name: 'ts_ns', type: 'BIGINT NOT NULL', doc: 'When.' },
    { name: 'pfn', type: 'BIGINT', doc: 'Device pfn concerned.' },
    { name: 'delta', type: 'INTEGER NOT NULL', doc: '+n get, -n put, 0 for lifecycle marks.' },
    { name: 'balance', type: 'BIGINT NOT NULL', doc: 'Running gets - puts after this event.' },
    { name: 'what', type: 'VARCHAR NOT NULL', doc: "'get' (zone_device_page_init/get_dev_pagemap), 'put' (free_zone_device_page), 'remap', 'unmap', 'unmap_ret', 'release', 'zero_without_put'." },
    { name: 'pid', type: 'INTEGER', doc: 'Task.' },
    { name: 'comm', type: 'VARCHAR', doc: 'Its name.' },
    { name: 'stack_id', type: 'INTEGER', doc: 'Stack.' },
  ],
};

export const ANOMALIES: Table = {
  name: 'anomalies',
  doc: 'Things that must not happen, each with the event that shows it.',
  columns: [
    T,
    { name: 'anomaly_id', type: 'BIGINT NOT NULL', doc: 'Identifier within the trace.' },
    {
      name: 'kind',
      type: 'VARCHAR NOT NULL',
      doc:
        "'refcount_underflow' (count < 0, or a put on a freed page), 'freed_while_mapped', 'freed_while_pinned', " +
        "'ref_after_free' (ref op on a pfn after its free with no new allocation), 'longterm_pin_in_cma' (FOLL_LONGTERM pin on a " +
        "CMA/ZONE_MOVABLE page), 'pin_never_released' (a pin still held at the end whose holder's process exited after pinning; the " +
        "event is the pin), 'refcount_not_baseline' (a page alive at the end whose count stayed, for at least " +
        "the hold threshold, above its lowest level net of what its mappings, page cache, fs private data, pins and GUP references " +
        "explain; the event is the get that raised it), " +
        "'pgmap_put_without_get', 'pgmap_refs_at_unmap', 'device_page_zero_without_put', 'pgmap_ref_never_released' (a device " +
        "page still holding its pgmap reference at the end whose taker's process exited after zone_device_page_init; the event is that get).",
    },
    { name: 'severity', type: 'VARCHAR NOT NULL', doc: "'error' (a kernel bug if certain), 'warning' (suspicious), 'info'." },
    { name: 'certain', type: 'BOOLEAN NOT NULL', doc: 'false when it lies in or crosses a lost-event window.' },
    { name: 'pfn', type: 'BIGINT', doc: 'Page concerned.' },
    { name: 'seq', type: 'BIGINT', doc: 'Event that shows it.' },
    { name: 'ts_ns', type: 'BIGINT', doc: 'When.' },
    { name: 'pid', type: 'INTEGER', doc: 'Task of that event.' },
    { name: 'comm', type: 'VARCHAR', doc: 'Its name (untrusted).' },
    { name: 'stack_id', type: 'INTEGER', doc: 'Stack of that event.' },
    { name: 'pin_id', type: 'BIGINT', doc: 'Pin concerned.' },
    { name: 'pgmap', type: 'UBIGINT', doc: 'pgmap concerned.' },
    { name: 'detail', type: 'VARCHAR NOT NULL', doc: 'One sentence for people.' },
  ],
};

export const DIVERGENCES: Table = {
  name: 'divergences',
  doc: 'page_ref events whose printed count= differs from the model (previous count + val, or val for set/unfreeze). The model then resyncs to the kernel.',
  columns: [
    T,
    { name: 'seq', type: 'BIGINT NOT NULL', doc: 'Event.' },
    { name: 'ts_ns', type: 'BIGINT NOT NULL', doc: 'When.' },
    { name: 'pfn', type: 'BIGINT NOT NULL', doc: 'Page.' },
    { name: 'event', type: 'VARCHAR NOT NULL', doc: 'page_ref event.' },
    { name: 'expected', type: 'INTEGER NOT NULL', doc: 'Model prediction.' },
    { name: 'printed', type: 'INTEGER NOT NULL', doc: 'count= printed by the kernel.' },
    { name: 'in_lost_window', type: 'BOOLEAN NOT NULL', doc: 'The pfn crossed a lost-event window since its last event.' },
    { name: 'explanation', type: 'VARCHAR NOT NULL', doc: "Why: 'lost' (the page crossed a lost-event window of the tracer), 'gap' (it crossed an untraced window replay inferred, table `gaps`), 'concurrent' (another CPU changed the count between the atomic op and the re-read), 'unknown' (nothing else explains it: the page's history since its last agreement is unobserved, and a `gaps` row 'count-jump' records it)." },
  ],
};

export const GAPS: Table = {
  name: 'gaps',
  doc:
    "Untraced windows replay inferred from evidence (docs/model.md §16), beside the tracer's own markers in `lost_events`. " +
    'State crossing one is uncertain like state crossing a lost-event window: every page for a silence, that page only for page evidence.',
  columns: [
    T,
    { name: 'seq', type: 'BIGINT NOT NULL', doc: 'First event after the window; for page evidence, the event that shows it.' },
    { name: 'ts_ns', type: 'BIGINT', doc: 'Its timestamp.' },
    { name: 'cpu', type: 'SMALLINT', doc: 'CPU the evidence names (NULL: every CPU).' },
    { name: 'pfn', type: 'BIGINT', doc: 'Page whose history has the gap (NULL: not page evidence).' },
    {
      name: 'kind',
      type: 'VARCHAR NOT NULL',
      doc:
        "'silence' (no event for > max(1 s, 1000x the median inter-event gap): tracing paused), 'overwritten' (entries-written > entries-in-buffer " +
        "beyond the markers), 'alive-on-free' (a get/put on a freed pfn whose count= shows the page alive: its allocation was not traced), " +
        "'double-free' (a free of a pfn already free, no allocation between), 'count-jump' (a count= divergence nothing else explains).",
    },
    { name: 'evidence', type: 'VARCHAR NOT NULL', doc: 'One sentence: what shows the window.' },
  ],
};

export const REPLAY_TABLES: Table[] = [REPLAY_RUNS, PAGES, PINS, HOLDS, CMA_ATTEMPTS, CMA_BLOCKERS, PGMAPS, PGMAP_REFS, ANOMALIES, DIVERGENCES, GAPS];
