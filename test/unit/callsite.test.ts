/**
 * The one call-site rule (ingest/stack.ts CALLSITE_SKIP, docs/formats.md §1.9) on stacks of the real
 * captures in samples/real, the frames shown without the tracing machinery, and `ingest --callsite-skip`.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { ingestCommand } from '../../cli/commands/ingest.js';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { callsiteOf, callsiteRule, shownFrames } from '../../ingest/stack.js';
import { shortStack } from '../../reports/stackfmt.js';

// a-iouring-longterm: a THP subpage pin of the io_uring buffer registration (line 75652).
const THP_PIN = [
  'kprobe_trace_func', 'kprobe_dispatcher', 'kprobe_ftrace_handler', '0xffffffffc00000c8', 'try_grab_page',
  'follow_trans_huge_pmd', 'follow_page_mask', '__get_user_pages', '__gup_longterm_locked', 'io_pin_pages',
  'io_sqe_buffer_register', 'io_sqe_buffers_register.cold', '__x64_sys_io_uring_register', 'do_syscall_64',
  'entry_SYSCALL_64_after_hwframe',
];
// ... and a small-page pin of the same registration.
const SMALL_PIN = [
  'kprobe_trace_func', 'kprobe_dispatcher', 'kprobe_ftrace_handler', '0xffffffffc00000c8', 'try_grab_page',
  'follow_page_pte', '__get_user_pages', '__gup_longterm_locked', 'io_pin_pages', 'io_sqe_buffer_register',
  'io_sqe_buffers_register.cold', '__x64_sys_io_uring_register', 'do_syscall_64', 'entry_SYSCALL_64_after_hwframe',
];
// d-pgmap-hmm: the kprobe on memremap_pages (aggr_pre_handler: two probes on one function), called by the
// unsymbolized test module.
const PGMAP = [
  'kprobe_trace_func', 'kprobe_dispatcher', 'aggr_pre_handler', 'kprobe_ftrace_handler', '0xffffffffc00000c8',
  'memremap_pages', '0xffffffffc0002373', '0xffffffffc000b11c', 'do_one_initcall', 'do_init_module',
  '__do_sys_finit_module', 'do_syscall_64', 'entry_SYSCALL_64_after_hwframe',
];
// ftrace-raw-stacktrace-pidfiltered: an mm_page_alloc stack (tracepoint) and an mm_page_free one.
const KMEM_ALLOC = [
  'trace_event_raw_event_mm_page_alloc', '__alloc_frozen_pages_noprof', 'alloc_pages_mpol', 'vma_alloc_folio_noprof',
  'do_anonymous_page', '__handle_mm_fault', 'handle_mm_fault', 'exc_page_fault', 'asm_exc_page_fault',
];
const KMEM_FREE = [
  'trace_event_raw_event_mm_page_free', '__free_frozen_pages', 'tlb_remove_table_rcu', 'rcu_do_batch', 'rcu_core',
  'handle_softirqs',
];
// perf-task-callgraph: perf keeps offsets; the caller of __free_frozen_pages is named.
const PERF_FREE = ['__free_frozen_pages+0x2f9', 'anon_pipe_read+0x1db', 'vfs_read+0x32c', 'ksys_read+0xba'];

describe('call-site rule', () => {
  it('names the caller of pin_user_pages for THP and small-page pins of one registration', () => {
    assert.equal(callsiteOf(THP_PIN), 'io_pin_pages');
    assert.equal(callsiteOf(SMALL_PIN), 'io_pin_pages');
  });

  it('passes over kprobe machinery and the raw trampoline, keeps the probed function', () => {
    assert.equal(callsiteOf(PGMAP), 'memremap_pages');
  });

  it('passes over the page allocator in kmem stacks (alloc and free, perf offsets removed)', () => {
    assert.equal(callsiteOf(KMEM_ALLOC), 'do_anonymous_page');
    assert.equal(callsiteOf(KMEM_FREE), 'tlb_remove_table_rcu');
    assert.equal(callsiteOf(PERF_FREE), 'anon_pipe_read');
  });

  it('user additions are matched whole on the name without clone suffix', () => {
    assert.equal(callsiteOf(THP_PIN, callsiteRule('io_pin_pages')), 'io_sqe_buffer_register');
    assert.equal(callsiteOf(THP_PIN, callsiteRule('io_pin_pages|io_sqe_buffer_register|io_sqe_buffers_register')), '__x64_sys_io_uring_register');
    assert.equal(callsiteOf(THP_PIN, callsiteRule('io_pin')), 'io_pin_pages');
    assert.throws(() => callsiteRule('io_pin_pages('), /call-site skip "io_pin_pages\(" is not a regular expression/);
  });

  it('frames shown drop the tracing machinery on top only', () => {
    assert.deepEqual(shownFrames(THP_PIN), THP_PIN.slice(4));
    assert.deepEqual(shownFrames(PGMAP), PGMAP.slice(5)); // the module's own unsymbolized frames stay
    assert.deepEqual(shownFrames(KMEM_ALLOC), KMEM_ALLOC.slice(1));
    assert.deepEqual(shownFrames(PERF_FREE), PERF_FREE);
    assert.deepEqual(shortStack(SMALL_PIN, 3), ['try_grab_page', '...', 'io_sqe_buffer_register', 'io_sqe_buffers_register.cold']);
  });
});

// The THP pin of a-iouring-longterm with its header: one event, one stack.
const EXCERPT = `# tracer: nop
#
# entries-in-buffer/entries-written: 3/3   #P:2
#
#           TASK-PID       TGID    CPU#  |||||  TIMESTAMP  FUNCTION
#              | |           |       |   |||||     |         |
     iouring_pin-234     (    234) [001] ...1.     7.362474: try_grab_page: (try_grab_page+0x0/0x140) page=0xffd4000000218000 flags=0x50001
     iouring_pin-234     (    234) [001] ...1.     7.362506: <stack trace>
${THP_PIN.map((f) => ` => ${f}`).join('\n')}
`;

describe('ingest --callsite-skip', () => {
  let dir: string;
  let file: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-callsite-'));
    file = join(dir, 'thp-pin.txt');
    writeFileSync(file, EXCERPT);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function stacksOf(dbPath: string): Promise<{ callsite: string; frames_shown: string; skip: string | null }[]> {
    const db = await Db.open(dbPath, { readOnly: true });
    try {
      return await db.all(
        'SELECT s.callsite, s.frames_shown, t.callsite_skip AS skip FROM stacks s JOIN traces t USING (trace_id) ORDER BY trace_id',
      );
    } finally {
      db.close();
    }
  }

  it('the documented rule alone: recorded as NULL, frames shown without kprobe frames', async () => {
    const path = join(dir, 'plain.duckdb');
    const db = await Db.open(path);
    await ingest(db, file, {});
    db.close();
    const [s] = await stacksOf(path);
    assert.equal(s!.callsite, 'io_pin_pages');
    assert.equal(s!.skip, null);
    assert.equal(s!.frames_shown.split('\n')[0], 'try_grab_page');
  });

  async function cli(args: string[]): Promise<void> {
    const program = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    ingestCommand(program);
    const log = console.log;
    console.log = () => undefined;
    try {
      await program.parseAsync(['ingest', '--no-replay', ...args], { from: 'user' });
    } finally {
      console.log = log;
    }
  }

  it('the flag adds to the rule and is recorded in traces', async () => {
    const path = join(dir, 'flag.duckdb');
    await cli(['--db', path, '--callsite-skip', 'io_pin_pages', file]);
    const [s] = await stacksOf(path);
    assert.equal(s!.callsite, 'io_sqe_buffer_register');
    assert.equal(s!.skip, 'io_pin_pages');
  });

  it('REFSCOPE_CALLSITE_SKIP does the same; a bad expression is refused before anything is written', async () => {
    const path = join(dir, 'env.duckdb');
    process.env.REFSCOPE_CALLSITE_SKIP = 'io_pin_pages|io_sqe_buffer_register';
    try {
      await cli(['--db', path, file]);
    } finally {
      delete process.env.REFSCOPE_CALLSITE_SKIP;
    }
    const [s] = await stacksOf(path);
    assert.equal(s!.callsite, 'io_sqe_buffers_register.cold');
    assert.equal(s!.skip, 'io_pin_pages|io_sqe_buffer_register');
    await assert.rejects(cli(['--db', join(dir, 'bad.duckdb'), '--callsite-skip', '(', file]), /not a regular expression/);
  });
});
