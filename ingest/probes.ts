import { CATALOGUE, inEra, type Enable, type EventRow, type Version } from './decode/catalogue.js';

/**
 * `refscope probes`: a shell script of tracefs commands that captures exactly what refscope decodes:
 * the page_ref/kmem/cma/migrate/page_isolation/filemap/fs_dax tracepoints, record-tgid, and kprobes on the
 * GUP, dev_pagemap and alloc_contig_range functions with the field names the decoders read (`page=`, `refs=`,
 * `flags=`, `folio=`, `pgmap=`, `start=`, ...), plus `stacktrace` triggers on the probes whose callers matter.
 * Kprobe fetch args use the x86-64 calling convention (%di %si %dx %cx %r8 %r9, then the stack).
 * Function names and signatures change between kernel versions (docs/model.md §4.3, §7): the probe *event* name
 * stays the one refscope decodes, the probed function follows --kernel.
 * What to enable and define comes from the event catalogue's rows (decode/catalogue.ts).
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

export function parseKernel(release: string): Version | null {
  const m = /^(\d+)\.(\d+)/.exec(release.trim());
  return m ? [Number(m[1]), Number(m[2])] : null;
}

/** The kprobe definitions for a kernel version: the catalogue's probe rows, in their order. */
export function kprobesFor(v: Version): KprobeDef[] {
  return CATALOGUE.flatMap((e) =>
    (e.probes ?? [])
      .filter((d) => inEra(d, v))
      .map((d) => ({ group: e.system, event: e.name, kretprobe: d.kretprobe === true, func: d.func, args: d.args, stack: e.stack === true, note: d.note })),
  );
}

export function kprobeLine(k: KprobeDef): string {
  return `${k.kretprobe ? 'r' : 'p'}:${k.group}/${k.event} ${k.func}${k.args ? ' ' + k.args : ''}`;
}

/** Tracepoints refscope enables, one entry per line of the script: the catalogue rows sharing an Enable. */
export function tracepointsFor(): { system: string; events: string[]; optional?: boolean; why?: string }[] {
  const lines = new Map<Enable, { system: string; events: string[]; optional?: boolean; why?: string }>();
  for (const e of CATALOGUE) {
    if (!e.enable) continue;
    const line = lines.get(e.enable) ?? { system: e.system, events: [], optional: e.enable.optional, why: e.enable.why };
    if (line.system !== e.system) throw new Error(`probes: ${e.name} shares an enable line with system ${line.system}`);
    line.events.push(e.name);
    lines.set(e.enable, line);
  }
  return [...lines.values()];
}

/** Tracepoints whose stacktrace trigger the script sets. */
const stackTracepoints = (): EventRow[] => CATALOGUE.filter((e) => e.enable && e.stack);

function sq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Step 0 of the script: checks of the running kernel. Each missing capability is one line saying what refscope
 * loses (docs/model.md §1, §11); the steps that need it are skipped instead of failing once per probe or event.
 * TRACEFS and CMDLINE (a file like /proc/cmdline) come from the environment so the checks can be run on a copy.
 */
const KERNEL_CHECKS = [
  'cd "$T" 2>/dev/null && [ -d events ] || { echo "refscope: no tracefs at $T (mount -t tracefs nodev $T, or set TRACEFS): nothing can be traced" >&2; exit 1; }',
  '[ -w tracing_on ] || { echo "refscope: $T/tracing_on is not writable (run as root): nothing can be set up" >&2; exit 1; }',
  'KPROBES=1',
  'if [ ! -e kprobe_events ]; then KPROBES=0; WHY="no kprobe_events in $T (CONFIG_KPROBE_EVENTS=n)"',
  'elif [ ! -w kprobe_events ]; then KPROBES=0; WHY="$T/kprobe_events is not writable (kernel lockdown?)"; fi',
  '[ "$KPROBES" = 1 ] || echo "refscope: $WHY: no GUP, dev_pagemap or alloc_contig_range probes, so no pin call paths or FOLL flags, pgmap references only as inferred from page events, CMA ranges only from cma events" >&2',
  '[ -d events/page_ref ] || echo "refscope: no page_ref events (CONFIG_DEBUG_PAGE_REF=n): no refcount changes, so no holds, pins, refcount check or reference leaks; only allocations, frees, CMA and migrations" >&2',
  '[ -d events/cma ] || echo "refscope: no cma events (CONFIG_CMA=n): no CMA allocation attempts or what blocked them" >&2',
  '[ "$KPROBES" = 1 ] && ! grep -qw no_hash_pointers "$CMDLINE" 2>/dev/null && echo "refscope: pointers are hashed (no no_hash_pointers on the kernel command line): probe page=/folio=/pgmap= pointers cannot be mapped to pfns, so probe events keep no pfn" >&2',
];

/** What `refscope probes` prints: the tracefs script, or a script that records the same events with a tool. */
export type ProbesAs = 'tracefs' | 'trace-cmd' | 'perf';

/** What each form writes, and how it is read: refscope reads trace.dat and perf.data itself. */
const OUTPUT: Record<ProbesAs, string> = { tracefs: 'refscope-trace.txt', 'trace-cmd': 'trace.dat', perf: 'perf.data' };

/** Every event the scripts enable (`system/event`), and whether its stack is recorded (trigger, -R, call-graph). */
export function recordedEvents(v: Version): { event: string; stack: boolean; optional: boolean }[] {
  const stacked = new Set(stackTracepoints().map((e) => `${e.system}/${e.name}`));
  return [
    ...tracepointsFor().flatMap((t) => t.events.map((e) => ({ event: `${t.system}/${e}`, stack: stacked.has(`${t.system}/${e}`), optional: t.optional === true }))),
    ...kprobesFor(v).map((k) => ({ event: `${k.group}/${k.event}`, stack: k.stack, optional: false })),
  ];
}

export function probesScript(opts: ProbeOptions & { as?: ProbesAs }): string {
  const as = opts.as ?? 'tracefs';
  const parsed = parseKernel(opts.kernel);
  const v: Version = parsed ?? [6, 1];
  const probes = kprobesFor(v);
  const L: string[] = [];
  const say = (...lines: string[]) => L.push(...lines);
  const how = { tracefs: 'Sets up tracefs to record', 'trace-cmd': 'Records with `trace-cmd record`', perf: 'Records with `perf record`' }[as];
  say(
    '#!/bin/sh',
    `# Generated by \`refscope probes${as === 'tracefs' ? '' : ` --as ${as}`} --kernel ${opts.kernel}\`${parsed ? '' : ' (version not understood: using 6.1 probe definitions)'}.`,
    `# ${how} what refscope decodes: page refcount, allocator, CMA, migration, isolation and`,
    '# page-cache tracepoints, plus kprobes on the GUP pin / dev_pagemap / alloc_contig_range functions (x86-64).',
    '# Run as root on the machine to trace. Kernel requirements:',
    '#   CONFIG_DEBUG_PAGE_REF=y       for page_ref:* events (refcount changes; without it only kmem/cma/... events)',
    '#   CONFIG_KPROBE_EVENTS=y        for the gup/, pgmap/ and cmak/ probe events',
    '#   boot with no_hash_pointers    so page=/folio=/pgmap= pointers are real: refscope maps struct page pointers',
    '#                                 to pfns through vmemmap_base; hashed pointers cannot be mapped',
    '# Probe fetch args follow the x86-64 calling convention (%di %si %dx %cx %r8 %r9, then $stackN).',
    ...(as === 'tracefs' ? ['# The same events with trace-cmd or perf: refscope probes --as trace-cmd | --as perf'] : []),
    '',
    `T=\${TRACEFS:-${opts.tracefs}}`,
    'CMDLINE=${CMDLINE:-/proc/cmdline}',
    `BUF_KB=\${BUF_KB:-32768}   # per-CPU ring buffer; raise it if ${as === 'perf' ? 'perf reports lost samples' : 'the trace header shows entries-written > entries-in-buffer'}`,
    `OUT=\${OUT:-${OUTPUT[as]}}`,
    ...(as === 'perf' ? ['KALLSYMS=${KALLSYMS:-/proc/kallsyms}   # copied beside $OUT: perf.data holds kernel addresses only'] : []),
    'HERE=$(pwd)',
    'case $OUT in /*) ;; *) OUT="$HERE/$OUT" ;; esac',
    '',
    '# 0. what the running kernel offers: one line per missing capability and what refscope loses without it;',
    '#    what cannot work is skipped, not tried',
    ...KERNEL_CHECKS,
    '',
  );
  if (as === 'tracefs')
    say(
      '# 1. start clean: tracing off, every event off, empty buffer',
      'echo 0 > tracing_on',
      'echo 0 > events/enable',
      'echo > trace',
      '',
      '# 2. options',
      'echo 1 > options/record-tgid',
      'echo "$BUF_KB" > buffer_size_kb',
      '',
    );
  say(
    `# ${as === 'tracefs' ? 3 : 1}. kprobes (refscope decodes these field names; keep them); functions this kernel lacks are listed once`,
    ...(as === 'tracefs' ? [] : [`#    (defined here first: ${as} enables events that exist)`]),
    'MISSING=',
    'probe() {',
    '  [ "$KPROBES" = 1 ] || return 0',
    '  ev=$(echo "$1" | sed -e "s/^[pr][0-9]*://" -e "s/ .*//")',
    '  [ -e "events/$ev/trigger" ] && echo \'!stacktrace\' > "events/$ev/trigger"',
    '  [ -e "events/$ev" ] && echo "-:$ev" >> kprobe_events',
    '  echo "$1" >> kprobe_events 2>/dev/null || MISSING="$MISSING ${ev#*/}"',
    '}',
  );
  for (const k of probes) say(`probe ${sq(kprobeLine(k))}${k.note ? `   # ${k.note}` : ''}`);
  say('[ -n "$MISSING" ] && echo "refscope: kprobes not set (function missing or inlined in this kernel):$MISSING" >&2', '');
  if (as === 'tracefs') tracefsCapture(say, probes);
  else recordWith(as, say, v);
  return L.join('\n');
}

function tracefsCapture(say: (...lines: string[]) => void, probes: KprobeDef[]): void {
  say('# 4. enable the tracepoints and probe events', 'on() { [ -e "events/$1/enable" ] && echo 1 > "events/$1/enable"; }');
  for (const t of tracepointsFor()) {
    const prefix = t.optional ? '# ' : '';
    const why = t.why ? `   # ${t.optional ? 'optional: ' : ''}${t.why}` : t.optional ? '   # optional' : '';
    say(`${prefix}for e in ${t.events.join(' ')}; do on ${t.system}/$e; done${why}`);
  }
  for (const k of probes) say(`on ${k.group}/${k.event}`);
  say('', '# 5. stack traces of the probes whose caller identifies the pin holder / pgmap user');
  for (const k of probes) if (k.stack) say(`[ -e events/${k.group}/${k.event}/trigger ] && echo stacktrace > events/${k.group}/${k.event}/trigger`);
  for (const e of stackTracepoints()) say(`[ -e events/${e.system}/${e.name}/trigger ] && echo stacktrace > events/${e.system}/${e.name}/trigger`);
  say(
    '',
    '# 6. capture: `sh THIS_SCRIPT ./workload args` traces the workload; without arguments, until Enter is pressed.',
    'echo 1 > tracing_on',
    'echo "refscope capture start" > trace_marker',
    'if [ $# -gt 0 ]; then (cd "$HERE" && "$@"); else echo "tracing; press Enter to stop" >&2; read -r _; fi',
    'echo "refscope capture end" > trace_marker',
    'echo 0 > tracing_on',
    'cat trace > "$OUT"      # then: refscope ingest "$OUT"',
    'echo "wrote $OUT: refscope ingest $OUT" >&2',
    '',
  );
}

/**
 * The same events recorded by trace-cmd (`-e sys:event`, `-R stacktrace` where the tracefs script sets a stacktrace
 * trigger: the kernel_stack entries follow the event, as in `trace`) or perf (`-e sys:event`, with the
 * `/call-graph=fp/` term on those events only: kernel + user callchains), system-wide as the tracefs capture is.
 * Only events this kernel has are named: perf refuses an unknown one.
 */
function recordWith(as: 'trace-cmd' | 'perf', say: (...lines: string[]) => void, v: Version): void {
  const stackArg = as === 'trace-cmd' ? ' -R stacktrace' : '/call-graph=fp/';
  say(
    `# 2. the events this kernel has; ${as === 'trace-cmd' ? '-R stacktrace' : 'call-graph=fp'} on those whose caller identifies the pin holder / pgmap user`,
    'EV=',
    'ev() { [ -e "events/${1%%:*}/${1#*:}/enable" ] && EV="$EV -e $1$2"; }',
  );
  for (const e of recordedEvents(v)) {
    const name = e.event.replace('/', ':');
    say(`${e.optional ? '# ' : ''}ev ${name}${e.stack ? ` '${stackArg}'` : ''}${e.optional ? '   # optional' : ''}`);
  }
  const cmd =
    as === 'trace-cmd'
      ? 'trace-cmd record -o "$OUT" -b "$BUF_KB" -O record-tgid $EV'
      : 'perf record -a -o "$OUT" -m "${BUF_KB}K" $EV';
  say(
    '',
    '# 3. record: `sh THIS_SCRIPT ./workload args` traces the workload (system-wide); without arguments, until Ctrl-C.',
    'cd "$HERE" || exit 1',
    // The command as run ($EV starts with its blank).
    `echo "${cmd.replace(/"/g, '').replace(' $EV', '$EV')}\${*:+ -- $*}" >&2`,
    `if [ $# -gt 0 ]; then ${cmd} -- "$@"; else ${cmd}; fi`,
    // The recorder's own errors (no permission, an event it refuses) are above; never claim a file that is not there.
    `[ -s "$OUT" ] || { echo "${as} record wrote no $OUT: see its errors above" >&2; exit 1; }`,
    ...(as === 'perf'
      ? ['cat "$KALLSYMS" > "$OUT.kallsyms"   # read as root: real addresses, which name the callchains\' kernel frames',
         'echo "wrote $OUT and $OUT.kallsyms: refscope ingest $OUT --kallsyms $OUT.kallsyms" >&2']
      : ['echo "wrote $OUT: refscope ingest $OUT" >&2']),
    '',
  );
}
