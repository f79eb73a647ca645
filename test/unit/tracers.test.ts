/**
 * Other tracers' records and stack frames, on real lines (sources in test/fixtures/wild-b/README.md and quoted
 * below): function, function_graph (events inside comments too), latency format, wakeup/hwlat, trace_printk
 * (bputs/bprint), and the one frame form whatever the renderer (ftrace, trace-cmd, perf, with kernel vs user
 * decided by the symbol's origin). Every record is an event of its kind; a stack whose event is missing or did
 * not parse is kept with uses 0.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { getInt, getStr, type BatchColumn, type ColumnarBatch } from '../../db/batch.js';
import { EventBuilder } from '../../ingest/builder.js';
import { longLine, readerFor, type TextFormat } from '../../ingest/parse.js';
import { LineSplitter } from '../../ingest/source.js';
import { accountLines } from '../lib/line-accounting.js';

interface Row {
  line: number;
  event: string;
  system: string | null;
  payload: string;
  comm: string | null;
  pid: number | null;
  cpu: number | null;
  ts: number | null;
  stack: number | null;
  ustack: number | null;
}

const fixture = (f: string): string => readFileSync(new URL(`../fixtures/wild-b/${f}`, import.meta.url), 'utf8');

function parse(format: TextFormat, text: string) {
  const rows: Row[] = [];
  const take = (b: ColumnarBatch) => {
    const c = Object.fromEntries(b.columns.map((col) => [col.name, col])) as Record<string, BatchColumn>;
    for (let r = 0; r < b.rows; r++)
      rows.push({
        line: getInt(c.line_no, r)!,
        event: getStr(c.event, r)!,
        system: getStr(c.system, r),
        payload: getStr(c.payload_text, r) ?? '',
        comm: getStr(c.comm, r),
        pid: getInt(c.pid, r),
        cpu: getInt(c.cpu, r),
        ts: getInt(c.ts_ns, r),
        stack: getInt(c.stack_id, r),
        ustack: getInt(c.user_stack_id, r),
      });
  };
  const builder = new EventBuilder(1, take);
  const reader = readerFor(format, builder);
  const sp = new LineSplitter((t, n) => reader.line(t, n), longLine(builder));
  sp.push(Buffer.from(text));
  sp.end();
  reader.end();
  builder.finish();
  const acc = accountLines(format, Buffer.from(text));
  assert.deepEqual(acc.silent, [], 'every line accounted');
  return { rows, stacks: builder.stacks.rows, unparsed: builder.unparsedRows, builder };
}

describe('function tracer', () => {
  it('func <-parent, noprint-parent, sym-offset and sym-addr lines are function events (ftrace.rst)', () => {
    const { rows, unparsed } = parse('ftrace', fixture('function.txt'));
    assert.deepEqual(unparsed, []);
    assert.equal(rows.length, 9);
    assert.ok(rows.every((r) => r.event === 'function' && r.system === 'ftrace'));
    assert.deepEqual(
      { comm: rows[0].comm, pid: rows[0].pid, cpu: rows[0].cpu, ts: rows[0].ts, payload: rows[0].payload },
      { comm: 'usleep', pid: 2665, cpu: 1, ts: 4186_475355_000, payload: 'sys_nanosleep <-system_call_fastpath' },
    );
    assert.deepEqual(
      rows.slice(5).map((r) => r.payload),
      ['simple_strtoul <-kstrtoul', 'simple_strtoul', 'simple_strtoul+0x6/0xa0', 'simple_strtoul <c0339346>'],
    );
  });

  it('sym-offset with parent, 5-char flags, and its <stack trace> (arm64 capture)', () => {
    const { rows, stacks } = parse('ftrace', fixture('function-stack.txt'));
    assert.deepEqual(rows.map((r) => r.event), ['irq_handler_entry', 'function']);
    assert.equal(rows[1].payload, 'bcm2835_mbox_irq+0x4/0xc0 <-__handle_irq_event_percpu+0x60/0x250');
    assert.equal(rows[1].stack, stacks[0].id);
    assert.equal(stacks[0].frames.length, 19);
    assert.equal(stacks[0].frames[0], 'bcm2835_mbox_irq+0x8/0xc0');
    assert.equal(stacks[0].callsite, 'bcm2835_mbox_irq');
  });
});

describe('latency format', () => {
  it('irqsoff: `0d.s2    0us+:` and `17us :` lines are function events at relative time, the stack is the last one\'s', () => {
    const { rows, stacks, builder } = parse('ftrace', fixture('irqsoff.txt'));
    assert.deepEqual(
      rows.map((r) => [r.event, r.cpu, r.ts, r.payload]),
      [
        ['function', 0, 0, '_raw_spin_lock_irq <-run_timer_softirq'],
        ['function', 0, 17_000, '_raw_spin_unlock_irq <-run_timer_softirq'],
        ['function', 0, 17_000, 'trace_hardirqs_on <-run_timer_softirq'],
      ],
    );
    assert.equal(builder.clockKind, 'relative-us');
    assert.equal(rows[2].stack, stacks[0].id);
    assert.equal(rows[1].stack, null);
    assert.equal(stacks[0].frames.length, 14);
  });

  it('wakeup_rt records are wakeup / context_switch events; hwlat records are hwlat events', () => {
    const { rows, unparsed } = parse('ftrace', fixture('wakeup-hwlat.txt'));
    assert.deepEqual(unparsed, []);
    assert.deepEqual(
      rows.map((r) => r.event),
      ['wakeup', 'function', 'sched_wakeup', 'function', 'context_switch', 'hwlat', 'hwlat'],
    );
    assert.equal(rows[0].payload, '0:120:R   + [002]  5882: 94:R sleep');
    assert.equal(rows[5].payload, '#1     inner/outer(us):   12/14    ts:1499801089.066141940');
  });
});

describe('function_graph', () => {
  it('entries, leaves, exits (with overhead marks and tails), proc, abstime, comments, events in comments, switches', () => {
    const { rows, unparsed, builder } = parse('ftrace', fixture('function_graph.txt'));
    assert.deepEqual(unparsed, []);
    const kinds = rows.map((r) => r.event);
    assert.deepEqual(kinds, [
      'funcgraph_entry', 'funcgraph_entry', 'funcgraph_entry', 'funcgraph_entry', 'funcgraph_entry', 'funcgraph_exit',
      'funcgraph_exit', 'funcgraph_exit', 'funcgraph_exit',
      'funcgraph_entry', 'funcgraph_exit',
      'funcgraph_exit', 'funcgraph_entry',
      'funcgraph_entry', 'funcgraph_comment', 'funcgraph_exit',
      'irq_handler_entry', 'funcgraph_entry', 'irq_handler_exit',
      'funcgraph_switch',
      'sched_wakeup', 'funcgraph_comment',
    ]);
    assert.equal(rows[4].payload.trim(), '1.382 us    |          __might_sleep();');
    assert.equal(rows[6].payload.trim(), '# 1837.709 us |          } /* __switch_to */');
    assert.deepEqual([rows[9].comm, rows[9].pid], ['sh', 4802]);
    assert.equal(rows[11].ts, 360_774522_000);
    assert.equal(rows[14].payload, "I'm a comment!");
    assert.deepEqual([rows[16].cpu, rows[16].payload], [0, 'irq=17 name=3f00b880.mailbox']);
    assert.equal(rows[19].payload, 'kworker-32 => chromiu-919');
    assert.equal(rows[21].payload, '[+] irq: [86] handler: bcm2835_mmc_irq+0x0/0x6ec caller: (handle_irq_event_percpu)');
    assert.ok(rows.filter((r) => r.event.startsWith('funcgraph_')).every((r) => r.system === 'ftrace'));
    assert.equal(builder.unparsedCount, 0);
  });
});

describe('trace_printk', () => {
  it('trace-cmd bputs lines stay bputs events (not trace markers)', () => {
    // LKML, sched_balance_softirq thread (2024).
    const { rows } = parse('trace-cmd', fixture('trace-cmd-printk.txt'));
    assert.deepEqual(rows.map((r) => r.event), ['softirq_entry', 'bputs', 'bputs', 'softirq_entry']);
    assert.equal(rows[1].payload, 'sched_balance_softirq: starting nohz');
    assert.equal(rows[3].comm, 'bt.B.x');
  });

  it('trace-cmd bprint with a comm holding a space (LKML KVM dump_vmcs thread)', () => {
    const line = '      CPU 0/KVM-251862 [019]  6384.132433: bprint:               dump_vmcs: VMCS 0xffff906388d0c000, last attempted VM-entry on CPU 19\n';
    const { rows } = parse('trace-cmd', line);
    assert.deepEqual([rows[0].event, rows[0].comm, rows[0].pid], ['bprint', 'CPU 0/KVM', 251862]);
    assert.equal(rows[0].payload, 'dump_vmcs: VMCS 0xffff906388d0c000, last attempted VM-entry on CPU 19');
  });

  it('bpf_trace_printk lines (bcc docs, include/uapi/linux/bpf.h): an ip without a symbol, printed empty or 0x%08lx, is bprint', () => {
    // `: Hello, World!` (kernels before 5.x print nothing for bpf's fake ip 1), `0x00000001: <formatted msg>`.
    const { rows, unparsed } = parse('ftrace', fixture('bpf-trace-printk.txt'));
    assert.deepEqual(unparsed, []);
    assert.deepEqual(
      rows.map((r) => [r.system, r.event, r.comm, r.pid, r.cpu, r.payload]),
      [
        ['ftrace', 'bprint', 'bash', 13364, 2, ': Hello, World!'],
        ['ftrace', 'bprint', 'bash', 13364, 3, ': Hello, World!'],
        ['ftrace', 'bprint', 'python', 7282, 2, ': Hello, World!'],
        ['ftrace', 'bprint', 'telnet', 470, 1, '0x00000001: <formatted msg>'],
      ],
    );
    assert.equal(rows[0].ts, 24573433_052937_000);
  });

  it('trace_marker records in the four ip renderings (this machine, 6.18: default, sym-offset, both, sym-addr) are markers', () => {
    // print entries (trace_print_print) print their ip as trace_printk does: `tracing_mark_write+0x91/0x170`,
    // ` <ffffffff814abf11>` with sym-addr.
    const { rows, unparsed } = parse('ftrace', fixture('marker-sym-6.18.txt'));
    assert.deepEqual(unparsed, []);
    assert.deepEqual(
      rows.map((r) => [r.event, r.payload]),
      Array(4).fill([['tracing_mark_write', 'refscope #23 step=begin'], ['tracing_mark_write', 'refscope #23 step=end']]).flat(),
    );
    assert.deepEqual([...new Set(rows.map((r) => `${r.comm}/${r.pid}/${r.cpu}/${r.ts}`))].length, 2);
  });

  it('ftrace sym-offset trace_printk (`func+0x12/0x40: text`) is bprint; a trace_marker write stays a marker', () => {
    // Built from the documented format (no public sym-offset trace_printk line from code other than the marker
    // was found): the symbol prefix as trace_bprint_print() prints it with sym-offset; the function name and
    // offsets are those of the real arm64 line in function-stack.txt.
    const text =
      '           <idle>-0       [000] d.h1.   327.007806: bcm2835_mbox_irq+0x4/0xc0: mbox irq\n' +
      '           <idle>-0       [000] d.h1.   327.007807: tracing_mark_write+0x0/0x10: step 1\n';
    const { rows } = parse('ftrace', text);
    assert.deepEqual(rows.map((r) => [r.event, r.payload]), [
      ['bprint', 'bcm2835_mbox_irq+0x4/0xc0: mbox irq'],
      ['tracing_mark_write', 'step 1'],
    ]);
  });
});

describe('function_graph times', () => {
  it('without funcgraph-abstime no line prints a time: ts 0 on every event and no clock (time unknown), file order kept', () => {
    // A real headerless capture (test/fixtures/wild/fgraph-headerless.txt), default options.
    const text = readFileSync(new URL('../fixtures/wild/fgraph-headerless.txt', import.meta.url), 'utf8');
    const { rows, builder } = parse('ftrace', text);
    assert.ok(rows.length >= 4);
    assert.ok(rows.every((r) => r.ts === 0));
    assert.equal(builder.clockKind, null);
    assert.deepEqual(rows.map((r) => r.line), [...rows.map((r) => r.line)].sort((a, b) => a - b));
  });

  it('with funcgraph-abstime each line has its time; the task-switch line (printed without one) has the time before it', () => {
    // ftrace.rst's funcgraph-abstime lines, then the kernel's task-switch block (verif_pid prints cpu and tasks only).
    const lines = fixture('function_graph.txt').split('\n');
    const text = [lines[16], lines[17], ...lines.slice(24, 28)].join('\n') + '\n';
    const { rows, builder } = parse('ftrace', text);
    assert.deepEqual(
      rows.map((r) => [r.event, r.ts]),
      [
        ['funcgraph_exit', 360_774522_000],
        ['funcgraph_entry', 360_774528_000],
        ['funcgraph_switch', 360_774528_000],
      ],
    );
    assert.equal(builder.clockKind, 'us');
  });
});

describe('stack frames, one form', () => {
  it('trace-cmd `=> func (addr)` and ftrace sym-addr `<addr>` drop the address; ftrace `[module]` is kept', () => {
    // Joonsoo Kim, LKML 2016-02-15 (trace-cmd, kernel 4.5), as quoted in ../shared/docs/kernel-traces-reference.md.
    const tc =
      '<...>-9018  [004]    92.678375: page_ref_set:         pfn=0x17ac9 flags=0x0 count=1 mapcount=0 mapping=(nil) mt=4 val=1\n' +
      '<...>-9018  [004]    92.678378: kernel_stack:\n' +
      '=> get_page_from_freelist (ffffffff81176659)\n' +
      '=> release_pages (ffffffff8117c9e4)\n';
    const a = parse('trace-cmd', tc);
    assert.deepEqual(a.stacks[0].frames, ['get_page_from_freelist', 'release_pages']);
    assert.equal(a.rows[0].stack, a.stacks[0].id);
    const ft =
      '           <idle>-0       [000] d.h1.   327.007806: bcm2835_mbox_irq+0x4/0xc0 <-__handle_irq_event_percpu+0x60/0x250\n' +
      '           <idle>-0       [000] d.h1.   327.007812: <stack trace>\n' +
      ' => bcm2835_mbox_irq+0x8/0xc0 <ffffffc0087a1c08>\n' +
      ' => __handle_irq_event_percpu+0x60/0x250 [mailbox]\n' +
      ' => <ffffffc0087a1c08>\n';
    assert.deepEqual(parse('ftrace', ft).stacks[0].frames, [
      'bcm2835_mbox_irq+0x8/0xc0',
      '__handle_irq_event_percpu+0x60/0x250 [mailbox]',
      '0xffffffc0087a1c08',
    ]);
  });

  it('perf: kernel frames by [kernel.kallsyms], a vmlinux path or a module; user frames keep their dso', () => {
    // tools/perf merged deferred callchains commit message (Namhyung Kim, 2025) and tip commit d15d356887e7
    // (2019, vmlinux path); the ppc64 frames keep the kernel symbol with a c000... address (no ffff...).
    const text =
      'pwd    2312 [000]   121.163435: sched:sched_process_exec: filename=/usr/bin/pwd pid=2312 old_pid=2312\n' +
      '\tffffffff845b78d8 __build_id_parse.isra.0+0x218 ([kernel.kallsyms])\n' +
      '\tffffffffbe23e32e __alloc_pages_nodemask+0x22e (/lib/modules/5.1.0-rc3+/build/vmlinux)\n' +
      '\tffffffffc0a1b2c3 nvme_queue_rq+0x1c ([nvme])\n' +
      '\t    7f18fe337fa7 mprotect+0x7 (/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2)\n' +
      '\t    7f18fe331448 [unknown] ([unknown])\n' +
      '\n' +
      'pwd    2312 [000]   121.163436: sched:sched_process_exec: filename=/usr/bin/pwd pid=2312 old_pid=2312\n' +
      '\tc00000000047d72c __do_softirq+0xd4 (/boot/vmlinux)\n' +
      '\tc00000000047d8ac [unknown] ([unknown])\n' +
      '\n';
    const { rows, stacks } = parse('perf', text);
    const byId = new Map(stacks.map((s) => [s.id, s]));
    assert.deepEqual(byId.get(rows[0].stack!)!.frames, ['__build_id_parse.isra.0+0x218', '__alloc_pages_nodemask+0x22e', 'nvme_queue_rq+0x1c [nvme]']);
    assert.deepEqual(byId.get(rows[0].ustack!)!.frames, ['mprotect+0x7 [/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2]', '0x7f18fe331448']);
    assert.deepEqual(byId.get(rows[1].stack!)!.frames, ['__do_softirq+0xd4', '0xc00000000047d8ac']);
    assert.equal(rows[1].ustack, null);
  });

  it('perf: kernel frames whose addresses are not ffff... (real lines) are kernel frames, by their dso', () => {
    // tstack/lnav issue #643 (2019): a real `perf script -g` callchain whose [kernel.kallsyms] frames print
    // 7fff81... addresses. An address-shape rule would call them user frames.
    const { rows, stacks } = parse('perf', fixture('perf-kernel-7fff.txt'));
    assert.equal(rows.length, 1);
    assert.equal(rows[0].ustack, null);
    const kernel = stacks.find((s) => s.id === rows[0].stack);
    assert.deepEqual(kernel?.frames, ['set_next_entity', 'pick_next_task_fair', '__schedule', 'schedule_preempt_disabled']);
    assert.deepEqual([rows[0].system, rows[0].event], [null, 'cycles']);
  });

  it('perf: samples of counter events (period, then the event with its modifiers) are events of their own kind', () => {
    // brendangregg/perf-tools issue #96 (2020) and the tools/perf deferred-callchain commit message (2025).
    const text =
      '            perf 32224 15889777.194652:          1 cycles:ppp:  ffffffff8826e448 native_write_msr ([kernel.kallsyms]) insn:\n' +
      '  pwd    2312   121.163435:     249113 cpu/cycles/P:\n';
    const { rows, builder } = parse('perf', text);
    assert.deepEqual(
      rows.map((r) => [r.comm, r.pid, r.system, r.event]),
      [['perf', 32224, null, 'cycles:ppp'], ['pwd', 2312, null, 'cpu/cycles/P']],
    );
    assert.equal(builder.unparsedCount, 0);
  });
});

describe('stacks without their event', () => {
  it('a <stack trace> after an event line that did not parse is kept with uses 0, not given to the event before', () => {
    // irqsoff.txt with the trace_hardirqs_on line trimmed to its timestamp (as pasted excerpts are).
    const lines = fixture('irqsoff.txt').split('\n');
    const i = lines.findIndex((l) => l.includes('trace_hardirqs_on'));
    lines[i] = lines[i].slice(0, lines[i].indexOf('us+') + 3);
    const { rows, stacks, builder } = parse('ftrace', lines.join('\n'));
    assert.equal(rows.length, 2);
    assert.ok(rows.every((r) => r.stack === null));
    assert.equal(stacks.length, 1);
    assert.deepEqual([stacks[0].uses, stacks[0].frames.length], [0, 14]);
    assert.equal(builder.unparsedCount, 1);
    assert.equal(builder.unparsedRows[0].lineNo, i + 1);
  });

  it('a kernel_stack block with no event before it (trace-cmd excerpt starting at the stack) is kept with uses 0', () => {
    const tc =
      '<...>-9018  [004]    92.678378: kernel_stack:\n' +
      '=> get_page_from_freelist (ffffffff81176659)\n' +
      '=> release_pages (ffffffff8117c9e4)\n' +
      '<...>-9018  [004]    92.678379: page_ref_mod:         pfn=0x17ac9 flags=0x40048 count=2 mapcount=1 mapping=0xffff880015a78dc1 mt=4 val=1\n';
    const { rows, stacks, builder } = parse('trace-cmd', tc);
    assert.deepEqual([stacks.length, stacks[0].uses], [1, 0]);
    assert.equal(rows[0].stack, null);
    assert.equal(builder.unparsedCount, 0);
  });
});
