import { FS_DAX_EVENTS, isKnownEvent } from './decode/catalogue.js';

/**
 * `refscope probes`: a shell script of tracefs commands that captures exactly what refscope decodes:
 * the page_ref/kmem/cma/migrate/page_isolation/filemap/fs_dax tracepoints, record-tgid, and kprobes on the
 * GUP, dev_pagemap and alloc_contig_range functions with the field names the decoders read (`page=`, `refs=`,
 * `flags=`, `folio=`, `pgmap=`, `start=`, ...), plus `stacktrace` triggers on the probes whose callers matter.
 * Kprobe fetch args use the x86-64 calling convention (%di %si %dx %cx %r8 %r9, then the stack).
 * Function names and signatures change between kernel versions (reference §3 "Function names across
 * versions", §4): the probe *event* name stays the one refscope decodes, the probed function follows --kernel.
 */

export interface ProbeOptions {
  /** Kernel release, e.g. `6.1.192` or `6.12.0-rc3` (default in the CLI: the running kernel). */
  kernel: string;
  tracefs: string;
}

export interface KprobeDef {
  /** `gup`, `pgmap` or `cmak`. */
  group: string;
  event: string;
  kretprobe: boolean;
  func: string;
  args: string;
  /** Set a `stacktrace` trigger: the caller is what identifies the pin / pgmap user. */
  stack: boolean;
  note?: string;
}

type Version = [number, number];

export function parseKernel(release: string): Version | null {
  const m = /^(\d+)\.(\d+)/.exec(release.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
}

const atLeast = (v: Version, major: number, minor: number) => v[0] > major || (v[0] === major && v[1] >= minor);

const p = (group: string, event: string, func: string, args: string, stack = false, note?: string): KprobeDef => ({
  group,
  event,
  kretprobe: false,
  func,
  args,
  stack,
  note,
});
const r = (group: string, event: string, func: string, args: string, note?: string): KprobeDef => ({
  group,
  event,
  kretprobe: true,
  func,
  args,
  stack: false,
  note,
});

/** The kprobe definitions for a kernel version, in the order the qemu-6.1 captures defined them. */
export function kprobesFor(v: Version): KprobeDef[] {
  const out: KprobeDef[] = [];
  // GUP grab: try_grab_compound_head (<5.18) -> try_grab_folio(page) (5.18..6.9) -> try_grab_folio_fast(page)
  // for GUP-fast + try_grab_folio(folio) for the slow path, which replaced try_grab_page (>=6.10).
  if (atLeast(v, 6, 10)) {
    out.push(p('gup', 'try_grab_folio_fast', 'try_grab_folio_fast', 'page=%di:x64 refs=%si:s32 flags=%dx:x32', true, 'GUP-fast grab (>=6.10)'));
    out.push(p('gup', 'try_grab_folio', 'try_grab_folio', 'folio=%di:x64 refs=%si:s32 flags=%dx:x32', true, 'slow-path grab, was try_grab_page (>=6.10)'));
    out.push(r('gup', 'try_grab_folio_ret', 'try_grab_folio', 'ret=$retval:s32'));
  } else if (atLeast(v, 5, 18)) {
    out.push(p('gup', 'try_grab_folio', 'try_grab_folio', 'page=%di:x64 refs=%si:s32 flags=%dx:x32', true));
    out.push(r('gup', 'try_grab_folio_ret', 'try_grab_folio', 'folio=$retval:x64'));
    out.push(p('gup', 'try_grab_page', 'try_grab_page', 'page=%di:x64 flags=%si:x32', true));
  } else {
    out.push(p('gup', 'try_grab_folio', 'try_grab_compound_head', 'page=%di:x64 refs=%si:s32 flags=%dx:x32', true, 'try_grab_compound_head before 5.18'));
    out.push(r('gup', 'try_grab_folio_ret', 'try_grab_compound_head', 'folio=$retval:x64'));
    out.push(p('gup', 'try_grab_page', 'try_grab_page', 'page=%di:x64 flags=%si:x32', true));
  }
  out.push(p('gup', 'unpin_user_page', 'unpin_user_page', 'page=%di:x64', true));
  out.push(p('gup', 'unpin_user_pages', 'unpin_user_pages', 'pages=%di:x64 npages=%si:u64'));
  out.push(p('gup', 'unpin_user_pages_dirty_lock', 'unpin_user_pages_dirty_lock', 'pages=%di:x64 npages=%si:u64 make_dirty=%dx:u8'));
  out.push(p('gup', 'pin_user_pages', 'pin_user_pages', 'start=%di:x64 nr_pages=%si:u64 gup_flags=%dx:x32', true));
  out.push(r('gup', 'pin_user_pages_ret', 'pin_user_pages', 'ret=$retval:s64'));
  out.push(p('gup', 'pin_user_pages_fast', 'pin_user_pages_fast', 'start=%di:x64 nr_pages=%si:s32 gup_flags=%dx:x32'));
  out.push(r('gup', 'pin_user_pages_fast_ret', 'pin_user_pages_fast', 'ret=$retval:s32'));
  out.push(p('gup', 'get_user_pages_fast', 'get_user_pages_fast', 'start=%di:x64 nr_pages=%si:s32 gup_flags=%dx:x32', true));
  out.push(r('gup', 'get_user_pages_fast_ret', 'get_user_pages_fast', 'ret=$retval:s32'));
  // The task_struct argument went away in 5.10.
  const remote = atLeast(v, 5, 10)
    ? 'mm=%di:x64 start=%si:x64 nr_pages=%dx:u64 gup_flags=%cx:x32'
    : 'mm=%si:x64 start=%dx:x64 nr_pages=%cx:u64 gup_flags=%r8:x32';
  out.push(p('gup', 'pin_user_pages_remote', 'pin_user_pages_remote', remote));
  out.push(p('gup', 'get_user_pages_remote', 'get_user_pages_remote', remote));
  out.push(p('gup', '__get_user_pages', '__get_user_pages', remote));
  // __gup_longterm_locked(mm, start, nr_pages, pages, [vmas,] [locked,] gup_flags): gup_flags is the 6th argument
  // except 6.3..6.4 (vmas + locked: 7th, on the stack) and before 5.10 (task first: 7th).
  const longterm = !atLeast(v, 5, 10)
    ? 'mm=%si:x64 start=%dx:x64 nr_pages=%cx:u64 pages=%r8:x64 gup_flags=$stack1:x32'
    : atLeast(v, 6, 3) && !atLeast(v, 6, 5)
      ? 'mm=%di:x64 start=%si:x64 nr_pages=%dx:u64 pages=%cx:x64 gup_flags=$stack1:x32'
      : 'mm=%di:x64 start=%si:x64 nr_pages=%dx:u64 pages=%cx:x64 gup_flags=%r9:x32';
  out.push(p('gup', '__gup_longterm_locked', '__gup_longterm_locked', longterm, true));
  out.push(p('gup', 'vm_insert_page', 'vm_insert_page', 'vma=%di:x64 addr=%si:x64 page=%dx:x64'));

  // dev_pagemap lifecycle (reference §4). vmemmap_base lets refscope turn page pointers into pfns (§8).
  out.push(
    p('pgmap', 'memremap_pages', 'memremap_pages', 'pgmap=%di:x64 nid=%si:s32 vmemmap_base=@vmemmap_base:x64 page_offset_base=@page_offset_base:x64', true),
  );
  out.push(r('pgmap', 'memremap_pages_ret', 'memremap_pages', 'vaddr=$retval:x64'));
  out.push(p('pgmap', 'memunmap_pages', 'memunmap_pages', 'pgmap=%di:x64', true));
  out.push(r('pgmap', 'memunmap_pages_ret', 'memunmap_pages', ''));
  out.push(
    atLeast(v, 6, 15)
      ? p('pgmap', 'get_dev_pagemap', 'get_dev_pagemap', 'pfn=%di:x64', false, 'get_dev_pagemap(pfn) since ~6.15')
      : p('pgmap', 'get_dev_pagemap', 'get_dev_pagemap', 'pfn=%di:x64 pgmap=%si:x64'),
  );
  out.push(r('pgmap', 'get_dev_pagemap_ret', 'get_dev_pagemap', 'ret=$retval:x64'));
  // struct page->pgmap sits at offset 8 (after flags) on x86-64.
  out.push(p('pgmap', 'zone_device_page_init', 'zone_device_page_init', 'page=%di:x64 pgmap=+8(%di):x64', true));
  out.push(
    atLeast(v, 6, 14)
      ? p('pgmap', 'free_zone_device_folio', 'free_zone_device_folio', 'folio=%di:x64 pgmap=+8(%di):x64', true, 'was free_zone_device_page before 6.14')
      : p('pgmap', 'free_zone_device_page', 'free_zone_device_page', 'page=%di:x64 pgmap=+8(%di):x64', true),
  );
  out.push(p('pgmap', 'dev_pagemap_percpu_release', 'dev_pagemap_percpu_release', 'ref=%di:x64', true));
  out.push(p('pgmap', 'migrate_vma_setup', 'migrate_vma_setup', 'args=%di:x64'));
  out.push(p('pgmap', 'migrate_vma_pages', 'migrate_vma_pages', 'args=%di:x64'));
  out.push(p('pgmap', 'migrate_vma_finalize', 'migrate_vma_finalize', 'args=%di:x64'));

  // alloc_contig_range(start, end, migratetype, gfp): the symbol is alloc_contig_range_noprof since 6.10
  // (memory allocation profiling wrappers).
  const acr = atLeast(v, 6, 10) ? 'alloc_contig_range_noprof' : 'alloc_contig_range';
  out.push(p('cmak', 'alloc_contig_range', acr, 'start=%di:x64 end=%si:x64 migratetype=%dx:u32 gfp=%cx:x32'));
  out.push(r('cmak', 'alloc_contig_range_ret', acr, 'ret=$retval:s32'));

  // GUP release: put_compound_head (<5.18) -> gup_put_folio.
  out.push(
    atLeast(v, 5, 18)
      ? p('gup', 'gup_put_folio', 'gup_put_folio', 'folio=%di:x64 refs=%si:s32 flags=%dx:x32')
      : p('gup', 'gup_put_folio', 'put_compound_head', 'page=%di:x64 refs=%si:s32 flags=%dx:x32', false, 'put_compound_head before 5.18'),
  );
  // internal_get_user_pages_fast was renamed gup_fast_fallback (~6.9).
  out.push(
    p(
      'gup',
      'internal_get_user_pages_fast',
      atLeast(v, 6, 9) ? 'gup_fast_fallback' : 'internal_get_user_pages_fast',
      'start=%di:x64 nr_pages=%si:u64 gup_flags=%dx:x32',
      true,
    ),
  );
  out.push(p('gup', 'vmf_insert_pfn', 'vmf_insert_pfn', 'vma=%di:x64 addr=%si:x64 pfn=%dx:x64'));
  out.push(p('gup', 'zap_page_range_single', 'zap_page_range_single', 'vma=%di:x64 address=%si:x64 size=%dx:x64', false, 'may be inlined'));
  return out;
}

export function kprobeLine(k: KprobeDef): string {
  return `${k.kretprobe ? 'r' : 'p'}:${k.group}/${k.event} ${k.func}${k.args ? ' ' + k.args : ''}`;
}

/** Tracepoints refscope decodes, by system (each checked for existence by the script). */
export function tracepointsFor(): { system: string; events: string[]; optional?: boolean; why?: string }[] {
  return [
    {
      system: 'page_ref',
      events: ['page_ref_set', 'page_ref_mod', 'page_ref_mod_and_test', 'page_ref_mod_and_return', 'page_ref_mod_unless', 'page_ref_freeze', 'page_ref_unfreeze'],
      why: 'needs CONFIG_DEBUG_PAGE_REF=y',
    },
    {
      system: 'kmem',
      events: ['mm_page_alloc', 'mm_page_free', 'mm_page_free_batched', 'mm_page_alloc_zone_locked', 'mm_page_pcpu_drain', 'mm_page_alloc_extfrag'],
    },
    { system: 'kmem', events: ['mm_alloc_contig_migrate_range_info'], why: 'only some kernels have it' },
    { system: 'cma', events: ['cma_alloc_start', 'cma_alloc_finish', 'cma_alloc_busy_retry', 'cma_release', 'cma_alloc', 'cma_alloc_info'] },
    { system: 'migrate', events: ['mm_migrate_pages', 'mm_migrate_pages_start', 'set_migration_pte', 'remove_migration_pte', 'mm_migrate_unmap_folio'] },
    { system: 'page_isolation', events: ['test_pages_isolated'] },
    { system: 'filemap', events: ['mm_filemap_add_to_page_cache', 'mm_filemap_delete_from_page_cache'] },
    { system: 'fs_dax', events: FS_DAX_EVENTS },
    { system: 'kmem', events: ['rss_stat'], optional: true, why: 'per-mm RSS counters; frequent' },
  ];
}

function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function probesScript(opts: ProbeOptions): string {
  const parsed = parseKernel(opts.kernel);
  const v: Version = parsed ?? [6, 1];
  const probes = kprobesFor(v);
  for (const k of probes) if (!isKnownEvent(k.event)) throw new Error(`probes: ${k.event} is not in the decoder catalogue`);
  const L: string[] = [];
  const say = (...lines: string[]) => L.push(...lines);
  say(
    '#!/bin/sh',
    `# Generated by \`refscope probes --kernel ${opts.kernel}\`${parsed ? '' : ' (version not understood: using 6.1 probe definitions)'}.`,
    '# Sets up tracefs to record what refscope decodes: page refcount, allocator, CMA, migration, isolation and',
    '# page-cache tracepoints, plus kprobes on the GUP pin / dev_pagemap / alloc_contig_range functions (x86-64).',
    '# Run as root on the machine to trace. Kernel requirements:',
    '#   CONFIG_DEBUG_PAGE_REF=y       for page_ref:* events (refcount changes; without it only kmem/cma/... events)',
    '#   CONFIG_KPROBE_EVENTS=y        for the gup/, pgmap/ and cmak/ probe events',
    '#   boot with no_hash_pointers    so page=/folio=/pgmap= pointers are real: refscope maps struct page pointers',
    '#                                 to pfns through vmemmap_base; hashed pointers cannot be mapped',
    '# Probe fetch args follow the x86-64 calling convention (%di %si %dx %cx %r8 %r9, then $stackN).',
    '',
    `T=\${TRACEFS:-${opts.tracefs}}`,
    'BUF_KB=${BUF_KB:-32768}   # per-CPU ring buffer; raise it if the trace header shows entries-written > entries-in-buffer',
    'OUT=${OUT:-refscope-trace.txt}',
    'HERE=$(pwd)',
    'case $OUT in /*) ;; *) OUT="$HERE/$OUT" ;; esac',
    'cd "$T" || { echo "no tracefs at $T (mount -t tracefs nodev $T)" >&2; exit 1; }',
    '',
    '# 0. start clean: tracing off, every event off, empty buffer',
    'echo 0 > tracing_on',
    'echo 0 > events/enable',
    'echo > trace',
    '[ -d events/page_ref ] || echo "warning: no page_ref events: this kernel lacks CONFIG_DEBUG_PAGE_REF=y (refcounts will be missing)" >&2',
    'grep -q no_hash_pointers /proc/cmdline || echo "warning: no_hash_pointers is not on the kernel command line: page pointers cannot be mapped to pfns" >&2',
    '',
    '# 1. options',
    'echo 1 > options/record-tgid',
    'echo "$BUF_KB" > buffer_size_kb',
    '',
    '# 2. kprobes (refscope decodes these field names; keep them)',
    'probe() {',
    '  ev=$(echo "$1" | sed -e "s/^[pr][0-9]*://" -e "s/ .*//")',
    '  [ -e "events/$ev/trigger" ] && echo \'!stacktrace\' > "events/$ev/trigger" 2>/dev/null',
    '  echo "-:$ev" >> kprobe_events 2>/dev/null',
    '  echo "$1" >> kprobe_events 2>/dev/null || echo "kprobe not set (function missing or inlined?): $1" >&2',
    '}',
  );
  for (const k of probes) say(`probe ${sq(kprobeLine(k))}${k.note ? `   # ${k.note}` : ''}`);
  say('', '# 3. enable the tracepoints and probe events', 'on() { [ -e "events/$1/enable" ] && echo 1 > "events/$1/enable"; }');
  for (const t of tracepointsFor()) {
    const prefix = t.optional ? '# ' : '';
    const why = t.why ? `   # ${t.optional ? 'optional: ' : ''}${t.why}` : t.optional ? '   # optional' : '';
    say(`${prefix}for e in ${t.events.join(' ')}; do on ${t.system}/$e; done${why}`);
  }
  for (const k of probes) say(`on ${k.group}/${k.event}`);
  say('', '# 4. stack traces of the probes whose caller identifies the pin holder / pgmap user');
  for (const k of probes) if (k.stack) say(`[ -e events/${k.group}/${k.event}/trigger ] && echo stacktrace > events/${k.group}/${k.event}/trigger`);
  say(
    '[ -e events/cma/cma_alloc_busy_retry/trigger ] && echo stacktrace > events/cma/cma_alloc_busy_retry/trigger',
    '[ -e events/cma/cma_alloc_finish/trigger ] && echo stacktrace > events/cma/cma_alloc_finish/trigger',
  );
  say(
    '',
    '# 5. capture: `sh THIS_SCRIPT ./workload args` traces the workload; without arguments, until Enter is pressed.',
    'echo 1 > tracing_on',
    'echo "refscope capture start" > trace_marker',
    'if [ $# -gt 0 ]; then (cd "$HERE" && "$@"); else echo "tracing; press Enter to stop" >&2; read -r _; fi',
    'echo "refscope capture end" > trace_marker',
    'echo 0 > tracing_on',
    'cat trace > "$OUT"      # then: refscope ingest "$OUT"',
    'echo "wrote $OUT: refscope ingest $OUT" >&2',
    '',
    '# or record the same events (set_event now lists them) with trace-cmd; stacks come from the triggers above:',
    'EVENTS=$(sed "s/^/-e /" set_event | tr "\\n" " ")',
    '# trace-cmd record -O record-tgid -b "$BUF_KB" $EVENTS -- ./workload',
    '# trace-cmd report > trace-cmd.txt && refscope ingest trace-cmd.txt',
    '# or with perf (-g adds kernel and user callchains to every sample):',
    '# perf record -a -g $EVENTS -- ./workload',
    '# perf script > perf.txt && refscope ingest perf.txt',
    '',
  );
  return L.join('\n');
}
