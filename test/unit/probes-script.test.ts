/**
 * The script `refscope probes` prints, run under sh against a fake tracefs (a temp directory laid out like
 * /sys/kernel/tracing): each missing kernel capability is one line saying what refscope loses, and what cannot
 * work is skipped instead of failing once per probe.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { kprobesFor, probesScript } from '../../ingest/probes.js';

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

function run(tracefs: string, cmdline: string): { status: number | null; lines: string[]; out: string } {
  const script = join(root, 'probes.sh');
  writeFileSync(script, probesScript({ kernel: '6.1.0', tracefs: '/nonexistent' }));
  writeFileSync(join(root, 'cmdline'), cmdline);
  const out = join(tracefs, 'out.txt');
  const r = spawnSync('sh', [script, 'true'], {
    cwd: root,
    env: { PATH: process.env.PATH, TRACEFS: tracefs, CMDLINE: join(root, 'cmdline'), OUT: out },
    encoding: 'utf8',
  });
  return { status: r.status, lines: r.stderr.split('\n').filter(Boolean), out };
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
