/**
 * `refscope probes`: the capture script defines the kprobes the qemu-6.1 captures used (exact lines), picks the
 * function names of the kernel version asked for, enables only events the decoder catalogue knows, and is
 * valid shell.
 */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { isKnownEvent } from '../../ingest/decode/catalogue.js';
import { kprobesFor, parseKernel, probesScript } from '../../ingest/probes.js';
import { runCli } from '../lib/cli.js';

/** The kprobe definitions the qemu-6.1 captures were taken with (samples/real/capture/qemu-6.1-kprobes.txt.gz: capture/kprobes.txt). */
const KPROBES_61 = gunzipSync(readFileSync(new URL('../../samples/real/capture/qemu-6.1-kprobes.txt.gz', import.meta.url))).toString('utf8');

const eventOf = (line: string) => /^[pr]\d*:\w+\/(\w+)/.exec(line)![1];

/** Events the script enables: `on sys/name` lines and the tracepoint loops. */
function enabledEvents(script: string): string[] {
  const out: string[] = [];
  for (const line of script.split('\n')) {
    if (line.startsWith('#')) continue;
    let m = /^on (\w+)\/(\w+)$/.exec(line);
    if (m) out.push(m[2]);
    m = /^for e in ([\w ]+); do on (\w+)\/\$e; done/.exec(line);
    if (m) out.push(...m[1].trim().split(/\s+/));
  }
  return out;
}

describe('refscope probes', () => {
  const s61 = probesScript({ kernel: '6.1.192', tracefs: '/sys/kernel/tracing' });

  it('6.1: every probe line of the qemu-6.1 capture that refscope decodes, verbatim', () => {
    const lines = KPROBES_61.split('\n').filter((l) => l.trim());
    assert.equal(lines.length, 33);
    for (const l of lines) {
      assert.ok(isKnownEvent(eventOf(l)), `${eventOf(l)} is decoded`);
      assert.ok(s61.includes(`probe '${l}'`), `missing: ${l}`);
    }
  });

  it('function names follow the kernel version', () => {
    const s612 = probesScript({ kernel: '6.12.3-arch1', tracefs: '/sys/kernel/tracing' });
    assert.ok(s612.includes("probe 'p:gup/try_grab_folio_fast try_grab_folio_fast page=%di:x64 refs=%si:s32 flags=%dx:x32'"));
    assert.ok(s612.includes("probe 'p:gup/try_grab_folio try_grab_folio folio=%di:x64"), '6.10+: try_grab_folio takes the folio (was try_grab_page)');
    assert.ok(!s612.includes("probe 'p:gup/try_grab_page "), 'no try_grab_page after 6.10');
    assert.ok(s612.includes(' alloc_contig_range_noprof start='));
    assert.ok(s612.includes('p:gup/internal_get_user_pages_fast gup_fast_fallback '));
    assert.ok(s612.includes('p:pgmap/free_zone_device_page free_zone_device_page page='));
    assert.ok(!s61.includes('try_grab_folio_fast'));
    const s614 = probesScript({ kernel: '6.14.0', tracefs: '/sys/kernel/tracing' });
    assert.ok(s614.includes("probe 'p:pgmap/free_zone_device_folio free_zone_device_folio folio=%di:x64 pgmap=+8(%di):x64'"));
    assert.ok(!s614.includes("probe 'p:pgmap/free_zone_device_page "));
    const s615 = probesScript({ kernel: '6.15', tracefs: '/sys/kernel/tracing' });
    assert.ok(s615.includes("probe 'p:pgmap/get_dev_pagemap get_dev_pagemap pfn=%di:x64'"), 'get_dev_pagemap(pfn) since 6.15');
    const s515 = probesScript({ kernel: '5.15.0-91-generic', tracefs: '/sys/kernel/tracing' });
    assert.ok(s515.includes("probe 'p:gup/try_grab_folio try_grab_compound_head page=%di:x64 refs=%si:s32 flags=%dx:x32'"));
    assert.ok(s515.includes("probe 'p:gup/gup_put_folio put_compound_head page=%di:x64"));
    const s63 = probesScript({ kernel: '6.3', tracefs: '/sys/kernel/tracing' });
    assert.ok(s63.includes('__gup_longterm_locked mm=%di:x64 start=%si:x64 nr_pages=%dx:u64 pages=%cx:x64 gup_flags=$stack1:x32'), '6.3/6.4: 7th argument');
    assert.deepEqual(parseKernel('6.18.44-fc-v669'), [6, 18]);
    assert.equal(parseKernel('weird'), null);
  });

  it('enables only events the decoder catalogue knows, with record-tgid, stack triggers, and the capture commands', () => {
    for (const kernel of ['5.10', '6.1.192', '6.6', '6.12.3', '6.14', '6.18.44']) {
      const s = probesScript({ kernel, tracefs: '/sys/kernel/tracing' });
      const enabled = enabledEvents(s);
      assert.ok(enabled.length > 40);
      for (const e of enabled) assert.ok(isKnownEvent(e), `${kernel}: ${e} is not in the catalogue`);
      for (const k of kprobesFor(parseKernel(kernel)!)) assert.ok(isKnownEvent(k.event), k.event);
      for (const e of ['page_ref_mod', 'mm_page_alloc', 'mm_page_free_batched', 'mm_page_alloc_zone_locked', 'mm_page_pcpu_drain', 'mm_page_alloc_extfrag', 'cma_alloc_busy_retry', 'mm_migrate_pages', 'test_pages_isolated', 'mm_filemap_add_to_page_cache', 'mm_filemap_delete_from_page_cache', 'dax_pte_fault'])
        assert.ok(enabled.includes(e), `${kernel}: ${e} enabled`);
    }
    assert.ok(s61.includes('echo 1 > options/record-tgid'));
    assert.ok(s61.includes('echo stacktrace > events/gup/try_grab_page/trigger'));
    assert.ok(s61.includes('echo stacktrace > events/pgmap/zone_device_page_init/trigger'));
    assert.match(s61, /buffer_size_kb/);
    assert.match(s61, /no_hash_pointers/);
    assert.match(s61, /CONFIG_DEBUG_PAGE_REF/);
    assert.match(s61, /^cat trace > "\$OUT"/m);
    assert.match(s61, /^# The same events with trace-cmd or perf: refscope probes --as trace-cmd \| --as perf$/m);
    assert.match(s61, /^# for e in rss_stat; do on kmem\/\$e; done/m, 'rss_stat is optional');
  });

  it('is valid sh, and the CLI prints it', () => {
    for (const kernel of ['5.15', '6.1', '6.12'])
      for (const as of ['tracefs', 'trace-cmd', 'perf'] as const) {
        const r = spawnSync('sh', ['-n'], { input: probesScript({ kernel, tracefs: '/sys/kernel/tracing', as }), encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
      }
    const r = runCli(['probes', '--kernel', '6.1.192', '--tracefs', '/mnt/tracing']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, probesScript({ kernel: '6.1.192', tracefs: '/mnt/tracing' }));
    assert.match(r.stdout, /^T=\$\{TRACEFS:-\/mnt\/tracing\}$/m);
    const perf = runCli(['probes', '--as', 'perf', '--kernel', '6.1.192']);
    assert.equal(perf.stdout, probesScript({ kernel: '6.1.192', tracefs: '/sys/kernel/tracing', as: 'perf' }));
  });
});
