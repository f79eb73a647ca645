/**
 * Traces as people paste them (issue #23): excerpts without their header, function_graph output, `trace-cmd
 * report` starting with `CPU N is empty` or run with `-l`, console logs holding an ftrace dump. Every input is
 * real lines (test/fixtures/wild/SOURCES.md names where each comes from). Detection reads the structure of the
 * record lines; --format forces any reader.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { chooseFormat, detectFormat, FORMATS, type Format } from '../../ingest/detect.js';
import { ingest } from '../../ingest/ingest.js';

const FIXTURES = new URL('../fixtures/wild/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');
/** Lines 13-32 of a real capture: 20 event lines, the header block left out as a paste does. */
const excerpt = (): string =>
  gunzipSync(readFileSync(new URL('../../samples/real/b-vmsplice.trace.txt.gz', import.meta.url)))
    .toString('utf8')
    .split('\n')
    .slice(12, 32)
    .join('\n') + '\n';

/** Tracepoint events only: function and function_graph records are events of their own kind (issue #23, part B). */
const tracepoints = <T extends { event: string }>(events: T[]): T[] =>
  events.filter((e) => e.event !== 'function' && !e.event.startsWith('funcgraph_'));

let dir: string;
let db: Db;
let n = 0;

async function load(text: string, format?: Format) {
  const file = join(dir, `in-${n++}.txt`);
  writeFileSync(file, text);
  const s = await ingest(db, file, { format, replace: true });
  const events = await db.all<{ comm: string; pid: number; cpu: number; event: string; payload: string }>(
    'SELECT comm, pid, cpu, event, payload FROM events WHERE trace_id = $1 ORDER BY seq',
    [s.trace_id],
  );
  const lost = await db.all<{ cpu: number; lost: number; kind: string }>(
    'SELECT cpu, lost::BIGINT AS lost, kind FROM lost_events WHERE trace_id = $1 ORDER BY seq',
    [s.trace_id],
  );
  const trace = (await db.one<{ cpus: number | null; entries_in_buffer: number | null; entries_written: number | null; format: string }>(
    'SELECT cpus, entries_in_buffer, entries_written, format FROM traces WHERE trace_id = $1',
    [s.trace_id],
  ))!;
  const unparsed = await db.all<{ line_no: number; reason: string; text: string }>(
    'SELECT line_no::INTEGER AS line_no, reason, text FROM unparsed_lines WHERE trace_id = $1 ORDER BY line_no',
    [s.trace_id],
  );
  return { s, events, lost: lost.map((l) => ({ ...l, lost: Number(l.lost) })), trace, unparsed };
}

/** A fresh database for the suite it is called in. */
function withDatabase(): void {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-wild-'));
    db = await Db.open(join(dir, 't.duckdb'));
  });
  after(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });
}

describe('detection by structure (real excerpts)', () => {
  withDatabase();

  it('a headerless ftrace excerpt of 20 lines ingests; its header facts are unknown and the summary says so', async () => {
    const text = excerpt();
    assert.equal(text.split('\n').length - 1, 20);
    assert.equal(detectFormat(Buffer.from(text)), 'ftrace');
    const { s, events, trace } = await load(text);
    assert.equal(s.events, 20);
    assert.equal(s.unparsed_lines, 0);
    assert.deepEqual([trace.cpus, trace.entries_in_buffer, trace.entries_written], [null, null, null]);
    assert.deepEqual(s.notes, ['no header: cpus, buffer sizes and loss counts unknown']);
    assert.deepEqual(events[0], {
      comm: 'init',
      pid: 1,
      cpu: 0,
      event: 'tracing_mark_write',
      payload: 'scenario=b-vmsplice step=begin',
    });
    // With its header the same capture has no note.
    const whole = gunzipSync(readFileSync(new URL('../../samples/real/b-vmsplice.trace.txt.gz', import.meta.url))).toString('utf8');
    const withHeader = await load(whole.split('\n').slice(0, 40).join('\n') + '\n');
    assert.deepEqual(withHeader.s.notes, []);
    assert.equal(withHeader.trace.cpus, 2);
  });

  it('lines cut at the timestamp (a paste trimmed to fit) are ftrace, not refused; each is counted unparsed', async () => {
    // The same 20 real lines, each cut just after its `secs.usecs:` as a narrow paste leaves them.
    const cut = excerpt()
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => l.slice(0, l.indexOf(': ') + 1));
    assert.equal(cut[0], '            init-1       (      1) [000] .....    12.844760:');
    const text = cut.join('\n') + '\n';
    assert.equal(detectFormat(Buffer.from(text)), 'ftrace');
    const { s } = await load(text);
    assert.equal(s.unparsed_lines, 20);
  });

  it('headerless function_graph output: the events inside /* */ are read', async () => {
    const text = fixture('fgraph-headerless.txt');
    assert.equal(detectFormat(Buffer.from(text)), 'ftrace');
    const events = tracepoints((await load(text)).events);
    assert.deepEqual(
      events.map((e) => [e.cpu, e.event]),
      [
        [0, 'sched_wakeup'],
        [0, 'sched_switch'],
        [2, 'sched_wakeup'],
        [0, 'irq_handler_entry'],
      ],
    );
    assert.equal(events[3].payload, 'irq=86 name=mmc1');
  });

  it('perf script -F without the trace field (tracepoints with no payload) is perf: the events are kept', async () => {
    const text = fixture('perf-no-payload.txt');
    assert.equal(detectFormat(Buffer.from(text)), 'perf');
    const { events, unparsed } = await load(text);
    assert.deepEqual(unparsed, []);
    assert.deepEqual(
      events.map((e) => [e.comm, e.pid, e.event, e.payload]),
      [...Array(6).fill(['sh', 16949, 'mm_page_alloc', '']), ...Array(2).fill(['sh', 16949, 'mm_page_free', '']), ...Array(2).fill(['sh', 16952, 'mm_page_free', ''])],
    );
  });

  it('trace-cmd report starting with `CPU N is empty` is trace-cmd: cpus from its preamble', async () => {
    const text = fixture('tracecmd-cpu-empty.txt');
    assert.equal(detectFormat(Buffer.from(text)), 'trace-cmd');
    const { s, events, trace } = await load(text);
    assert.equal(trace.cpus, 16);
    assert.deepEqual(s.notes, []);
    assert.deepEqual(
      events.map((e) => [e.comm, e.pid, e.cpu, e.event]),
      Array(4).fill(['kworker/12:2', 31208, 12, 'function']),
    );
  });

  it('`trace-cmd report -l` (latency flags glued to the cpu) is trace-cmd', async () => {
    const text = fixture('tracecmd-latency.txt');
    assert.equal(detectFormat(Buffer.from(text)), 'trace-cmd');
    const { events, s } = await load(text);
    assert.deepEqual(events, [{ comm: '<idle>', pid: 0, cpu: 0, event: 'function', payload: 'ktime_get <-- tick_check_idle' }]);
    assert.deepEqual(s.notes, ['no preamble: cpus unknown']);
  });

  it('a console ftrace dump: printk prefixes stripped, real comms kept, LOST markers recorded per cpu', async () => {
    const text = fixture('console-rcu-dump.txt');
    assert.equal(detectFormat(Buffer.from(text)), 'console');
    const { s, events: all, lost, unparsed } = await load(text);
    const events = tracepoints(all);
    assert.equal(s.format, 'console');
    // Latency format prints the comm as %8.8s: `rcu_tort` is what the kernel wrote.
    assert.deepEqual(
      [...new Set(events.map((e) => e.comm))].sort(),
      ['<idle>', 'ksoftirq', 'rcu_tort', 'rcub/1', 'rcuc/1', 'rcuc/2'].sort(),
    );
    assert.deepEqual(events[0], {
      comm: 'rcu_tort',
      pid: 70,
      cpu: 1,
      event: 'sched_wakeup',
      payload: 'comm=rcu_torture_fak pid=65 prio=139 target_cpu=001',
    });
    assert.deepEqual(lost, [
      { cpu: 1, lost: 16689746, kind: 'lost' },
      { cpu: 0, lost: 41556131, kind: 'lost' },
      { cpu: 2, lost: 16225065, kind: 'lost' },
    ]);
    assert.equal(s.lost_events, 16689746 + 41556131 + 16225065);
    // The kernel log line after the dump is counted, with the console's reason and the whole line.
    const log = unparsed.find((u) => u.line_no === 21);
    assert.deepEqual(log, { line_no: 21, reason: 'console: not a trace line', text: '[10616.834128] Boost inversion persisted: No QS from CPU 0' });
    assert.deepEqual(s.notes, ['no header: cpus, buffer sizes and loss counts unknown']);
  });

  it('`dmesg -r` (this machine, 6.18): the `<N>` log level before the printk time is removed as well', async () => {
    // Dump-format lines of a kmem trace of this machine, passed through printk by /dev/kmsg (no sysrq here to run
    // ftrace_dump()), read back with dmesg -r after five of the kernel's own log lines.
    const text = fixture('console-dmesg-r.txt');
    assert.ok(text.split('\n').filter((l) => l).every((l) => /^<\d>\[/.test(l)));
    assert.equal(detectFormat(Buffer.from(text)), 'console');
    const { s, events, unparsed } = await load(text);
    assert.deepEqual(
      events.map((e) => [e.comm, e.pid, e.cpu, e.event]),
      [...Array(15).fill(['dd', 23094, 1, 'mm_page_alloc']), ['dd', 23094, 1, 'mm_page_free']],
    );
    assert.equal(events[0].payload, 'page=00000000ea8df872 pfn=0x44ce72 order=0 migratetype=1 gfp_flags=GFP_HIGHUSER_MOVABLE|__GFP_COMP');
    // The kernel's own lines before the dump are counted, whole.
    assert.deepEqual(
      unparsed.map((u) => [u.line_no, u.reason]),
      [1, 2, 3, 4, 5].map((n) => [n, 'console: not a trace line']),
    );
    assert.equal(unparsed[4].text, '<6>[ 3227.254341] idle-reclaim (109): drop_caches: 1');
    assert.equal(s.unparsed_lines, 5);
  });

  it('function_graph dumped to the console: events inside /* */ under the printk prefix', async () => {
    const text = fixture('console-fgraph.txt');
    assert.equal(detectFormat(Buffer.from(text)), 'console');
    const { events: all, unparsed } = await load(text);
    assert.deepEqual(
      tracepoints(all).map((e) => [e.cpu, e.event]),
      [
        [4, 'sched_wakeup'],
        [4, 'sched_switch'],
        [0, 'sched_migrate_task'],
      ],
    );
    assert.deepEqual(unparsed, []);
    // No comm carries the printk timestamp.
    assert.ok(all.every((e) => !(e.comm ?? '').startsWith('[')));
  });
});

describe('--format forces a reader', () => {
  withDatabase();

  // Detection refuses this (no line is a trace record); forcing must not.
  const prose = 'Hi all,\n\nhere is what I see after the splat:\nnothing useful yet\n';

  it('every format is accepted when forced, even where detection refuses', () => {
    assert.ok(typeof detectFormat(Buffer.from(prose)) !== 'string');
    for (const f of FORMATS) assert.equal(chooseFormat(Buffer.from(prose), f), f, f);
  });

  it('empty and binary input are still refused for a text reader, with a reason', () => {
    for (const f of ['ftrace', 'trace-cmd', 'perf', 'console'] as Format[]) {
      assert.deepEqual(chooseFormat(Buffer.alloc(0), f), { refuse: 'empty input' });
      assert.deepEqual(chooseFormat(Buffer.from('ab\0cd'), f), { refuse: 'binary content, not trace text' });
    }
  });

  for (const f of ['ftrace', 'trace-cmd', 'perf', 'console'] as Format[])
    it(`--format ${f} ingests text detection refuses; its lines are counted unparsed`, async () => {
      const { s } = await load(prose, f);
      assert.equal(s.format, f);
      assert.equal(s.events, 0);
      assert.equal(s.unparsed_lines, 3);
    });

  it('a forced reader wins over the detected one: a console dump read as plain ftrace keeps the prefix in the comm', async () => {
    const { s, events } = await load(fixture('console-rcu-dump.txt'), 'ftrace');
    assert.equal(s.format, 'ftrace');
    assert.ok(events.some((e) => e.comm.startsWith('[10611.835048]')));
  });
});
