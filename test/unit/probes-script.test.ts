/**
 * The script `refscope probes` prints, run under sh against a fake tracefs (a temp directory laid out like
 * /sys/kernel/tracing): each missing kernel capability is one line saying what refscope loses, and what cannot
 * work is skipped instead of failing once per probe. `--as trace-cmd` / `--as perf` run against the same fake
 * tracefs with stand-in trace-cmd and perf commands that write down their arguments: they record exactly the
 * events the tracefs script enables, with stacks where it sets stacktrace triggers.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { chmodSync, readdirSync } from 'node:fs';
import { kprobesFor, probesScript, recordedEvents, type ProbesAs } from '../../ingest/probes.js';

const root = mkdtempSync(join(tmpdir(), 'refscope-probes-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** A tracefs copy with the given events (system/event); kprobe_events only when `kprobes` names what it is. */
function fakeTracefs(name: string, o: { systems: string[]; kprobes?: 'file' | 'full' }): string {
  const t = join(root, name);
  mkdirSync(join(t, 'options'), { recursive: true });
  for (const f of ['tracing_on', 'trace', 'trace_marker', 'set_event', 'buffer_size_kb', 'options/record-tgid']) writeFileSync(join(t, f), '');
  mkdirSync(join(t, 'events'));
  writeFileSync(join(t, 'events/enable'), '');
  for (const s of o.systems) {
    mkdirSync(join(t, 'events', s), { recursive: true });
    writeFileSync(join(t, 'events', s, 'enable'), '');
  }
  // /dev/full: opens for writing, every write fails (ENOSPC), as a kprobe definition on a missing function does.
  if (o.kprobes === 'file') writeFileSync(join(t, 'kprobe_events'), '');
  if (o.kprobes === 'full') symlinkSync('/dev/full', join(t, 'kprobe_events'));
  return t;
}

const kallsyms = join(root, 'kallsyms');
writeFileSync(kallsyms, 'ffffffff81000000 T _text\n');

/**
 * Stand-ins for trace-cmd and perf: each writes its arguments, one per line, to $ARGS, then the file named by -o
 * (or, with $FAIL set, fails as trace-cmd does in a container: an error and no file).
 */
const bin = join(root, 'bin');
mkdirSync(bin);
for (const tool of ['trace-cmd', 'perf']) {
  writeFileSync(
    join(bin, tool),
    '#!/bin/sh\nprintf "%s\\n" "$@" > "$ARGS"\n' +
      '[ -n "$FAIL" ] && { echo "$0: Operation not permitted" >&2; exit 1; }\n' +
      'while [ $# -gt 0 ]; do [ "$1" = -o ] && { echo data > "$2"; break; }; shift; done\n',
  );
  chmodSync(join(bin, tool), 0o755);
}

function run(tracefs: string, cmdline: string, as: ProbesAs = 'tracefs', fail = false): { status: number | null; lines: string[]; out: string; args: string } {
  const script = join(root, 'probes.sh');
  writeFileSync(script, probesScript({ kernel: '6.1.0', tracefs: '/nonexistent', as }));
  writeFileSync(join(root, 'cmdline'), cmdline);
  const out = join(tracefs, 'out.txt');
  const args = join(root, `${as}.args`);
  const r = spawnSync('sh', [script, 'true'], {
    cwd: root,
    env: { PATH: `${bin}:${process.env.PATH}`, TRACEFS: tracefs, CMDLINE: join(root, 'cmdline'), OUT: out, ARGS: args, KALLSYMS: kallsyms, ...(fail ? { FAIL: '1' } : {}) },
    encoding: 'utf8',
  });
  return { status: r.status, lines: r.stderr.split('\n').filter(Boolean), out, args };
}

describe('refscope probes script on a kernel that lacks capabilities', () => {
  it('no kprobe_events and no page_ref: two lines, no per-probe errors, the capture still runs', () => {
    const t = fakeTracefs('bare', { systems: ['kmem/mm_page_alloc', 'cma/cma_release', 'sched/sched_process_exit'] });
    const r = run(t, 'BOOT_IMAGE=/vmlinuz ro quiet\n');
    assert.equal(r.status, 0);
    assert.deepEqual(r.lines, [
      `refscope: no kprobe_events in ${t} (CONFIG_KPROBE_EVENTS=n): no GUP, dev_pagemap or alloc_contig_range probes, so no pin call paths or FOLL flags, pgmap references only as inferred from page events, CMA ranges only from cma events`,
      'refscope: no page_ref events (CONFIG_DEBUG_PAGE_REF=n): no refcount changes, so no holds, pins, refcount check or reference leaks; only allocations, frees, CMA and migrations',
      `wrote ${r.out}: refscope ingest ${r.out}`,
    ]);
    // Nothing tried to define probes, and the tracepoints that exist were enabled.
    assert.equal(readFileSync(join(t, 'events/kmem/mm_page_alloc/enable'), 'utf8'), '1\n');
    assert.match(readFileSync(join(t, 'trace_marker'), 'utf8'), /refscope capture end/);
  });

  it('kprobe writes all failing: one line naming the functions; hashed pointers and no CMA said once each', () => {
    const t = fakeTracefs('full', { systems: ['page_ref/page_ref_mod', 'kmem/mm_page_alloc'], kprobes: 'full' });
    const r = run(t, 'ro quiet\n');
    assert.equal(r.status, 0);
    const names = kprobesFor([6, 1]).map((k) => k.event);
    assert.deepEqual(r.lines, [
      'refscope: no cma events (CONFIG_CMA=n): no CMA allocation attempts or what blocked them',
      'refscope: pointers are hashed (no no_hash_pointers on the kernel command line): probe page=/folio=/pgmap= pointers cannot be mapped to pfns, so probe events keep no pfn',
      `refscope: kprobes not set (function missing or inlined in this kernel): ${names.join(' ')}`,
      `wrote ${r.out}: refscope ingest ${r.out}`,
    ]);
  });

  it('everything present: no warning, the probes are defined', () => {
    const t = fakeTracefs('full-kernel', { systems: ['page_ref/page_ref_mod', 'kmem/mm_page_alloc', 'cma/cma_release'], kprobes: 'file' });
    const r = run(t, 'ro no_hash_pointers\n');
    assert.deepEqual(r.lines, [`wrote ${r.out}: refscope ingest ${r.out}`]);
    assert.equal(readFileSync(join(t, 'kprobe_events'), 'utf8').split('\n').filter(Boolean).length, kprobesFor([6, 1]).length);
  });

  it('no tracefs: one line and exit 1', () => {
    const r = run(join(root, 'missing'), '');
    assert.equal(r.status, 1);
    assert.deepEqual(r.lines, [`refscope: no tracefs at ${join(root, 'missing')} (mount -t tracefs nodev ${join(root, 'missing')}, or set TRACEFS): nothing can be traced`]);
  });
});

describe('refscope probes --as trace-cmd | perf: the record command for the same events', () => {
  /** A tracefs with every event the scripts name (the kprobe events as if defined), each with enable and trigger. */
  function everyEvent(name: string): string {
    const t = fakeTracefs(name, { systems: [], kprobes: 'file' });
    for (const { event } of recordedEvents([6, 1])) {
      mkdirSync(join(t, 'events', event), { recursive: true });
      writeFileSync(join(t, 'events', event, 'enable'), '');
      writeFileSync(join(t, 'events', event, 'trigger'), '');
    }
    return t;
  }
  /** What the tracefs script left: the events it enabled, and those given a stacktrace trigger. */
  function tracefsChoice(t: string): { enabled: string[]; stacked: string[] } {
    const enabled: string[] = [], stacked: string[] = [];
    for (const sys of readdirSync(join(t, 'events'), { withFileTypes: true }).filter((d) => d.isDirectory()))
      for (const ev of readdirSync(join(t, 'events', sys.name))) {
        const dir = join(t, 'events', sys.name, ev);
        if (readFileSync(join(dir, 'enable'), 'utf8') === '1\n') enabled.push(`${sys.name}:${ev}`);
        if (readFileSync(join(dir, 'trigger'), 'utf8') === 'stacktrace\n') stacked.push(`${sys.name}:${ev}`);
      }
    return { enabled: enabled.sort(), stacked: stacked.sort() };
  }

  const t = everyEvent('tracefs-choice');
  const want = tracefsChoice((run(t, 'no_hash_pointers\n'), t));

  it('the tracefs script enables every recorded event and triggers stacks on some (what the others must match)', () => {
    assert.ok(want.enabled.length > 60 && want.stacked.length > 5 && want.stacked.length < want.enabled.length);
  });

  it('trace-cmd record: -e for every event the tracefs script enables, -R stacktrace where it sets a trigger', () => {
    const r = run(everyEvent('tc'), 'no_hash_pointers\n', 'trace-cmd');
    assert.equal(r.status, 0, r.lines.join('\n'));
    const argv = readFileSync(r.args, 'utf8').split('\n').slice(0, -1);
    assert.deepEqual(argv.slice(0, 7), ['record', '-o', r.out, '-b', '32768', '-O', 'record-tgid']);
    assert.deepEqual(argv.slice(-2), ['--', 'true']);
    const enabled: string[] = [], stacked: string[] = [];
    for (let i = 7; i < argv.length - 2; i++) {
      if (argv[i] === '-e') enabled.push(argv[++i]!);
      else if (argv[i] === '-R' && argv[i + 1] === 'stacktrace') stacked.push(argv[(i += 1) - 2]!);
      else assert.fail(`unexpected argument ${argv[i]}`);
    }
    assert.deepEqual({ enabled: enabled.sort(), stacked: stacked.sort() }, want);
    assert.equal(r.lines.at(-1), `wrote ${r.out}: refscope ingest ${r.out}`);
    assert.match(r.lines.at(-2)!, /^trace-cmd record -o \S+ -b 32768 -O record-tgid -e page_ref:page_ref_set .* -- true$/);
  });

  it('a recorder that fails (no permission) is not followed by a claim that the file was written', () => {
    for (const as of ['trace-cmd', 'perf'] as const) {
      const r = run(everyEvent(`fail-${as}`), 'no_hash_pointers\n', as, true);
      assert.equal(r.status, 1, r.lines.join('\n'));
      assert.equal(r.lines.at(-1), `${as} record wrote no ${r.out}: see its errors above`);
      assert.ok(!r.lines.some((l) => l.startsWith('wrote ')), r.lines.join('\n'));
    }
  });

  it('perf record: -a, -e for every event the tracefs script enables, /call-graph=fp/ where it sets a trigger', () => {
    const r = run(everyEvent('perf'), 'no_hash_pointers\n', 'perf');
    assert.equal(r.status, 0, r.lines.join('\n'));
    const argv = readFileSync(r.args, 'utf8').split('\n').slice(0, -1);
    assert.deepEqual(argv.slice(0, 6), ['record', '-a', '-o', r.out, '-m', '32768K']);
    assert.deepEqual(argv.slice(-2), ['--', 'true']);
    const enabled: string[] = [], stacked: string[] = [];
    for (let i = 6; i < argv.length - 2; i += 2) {
      assert.equal(argv[i], '-e');
      const m = /^([\w]+:[\w]+)(\/call-graph=fp\/)?$/.exec(argv[i + 1]!);
      assert.ok(m, argv[i + 1]);
      enabled.push(m[1]!);
      if (m[2]) stacked.push(m[1]!);
    }
    assert.deepEqual({ enabled: enabled.sort(), stacked: stacked.sort() }, want);
    // perf.data names no kernel symbol: the kallsyms is saved beside it, and the last line says how to ingest both.
    assert.equal(readFileSync(`${r.out}.kallsyms`, 'utf8'), readFileSync(kallsyms, 'utf8'));
    assert.equal(r.lines.at(-1), `wrote ${r.out} and ${r.out}.kallsyms: refscope ingest ${r.out} --kallsyms ${r.out}.kallsyms`);
  });

  it('an event this kernel lacks is left out (perf refuses an unknown event), kprobes still defined first', () => {
    const t = fakeTracefs('tc-partial', { systems: ['kmem/mm_page_alloc', 'cma/cma_alloc_finish'], kprobes: 'file' });
    const r = run(t, 'no_hash_pointers\n', 'perf');
    assert.equal(r.status, 0);
    assert.deepEqual(readFileSync(r.args, 'utf8').split('\n').slice(4, -3), ['-m', '32768K', '-e', 'kmem:mm_page_alloc', '-e', 'cma:cma_alloc_finish/call-graph=fp/']);
    assert.equal(readFileSync(join(t, 'kprobe_events'), 'utf8').split('\n').filter(Boolean).length, kprobesFor([6, 1]).length);
  });
});
