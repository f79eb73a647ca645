/**
 * trace.dat stacks reach the builder whole (EventBuilder.stackFrames): one frames array per distinct stack, by its
 * address bytes, known to the stack table by the array. What the builder makes of them is what it makes of the
 * same stacks handed frame by frame (stackStart + frame): stacks rows, events' stack ids, stacks applied late.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { unxzSync } from 'node-liblzma';
import { EventBuilder } from '../../ingest/builder.js';
import { readTraceDat } from '../../ingest/readers/tracedat.js';
import type { LineContext, StackKind } from '../../ingest/readers/sink.js';
import { BATCH_ROWS, isValid, type ColumnarBatch } from '../../db/batch.js';

/** A builder whose flushed batches' stack columns are kept; `whole`: false hides stackFrames (frame by frame). */
function builder(whole: boolean): { b: EventBuilder; ids: (number | null)[][]; arrays: Set<readonly string[]>; out: () => unknown } {
  const ids: (number | null)[][] = [];
  const col = (batch: ColumnarBatch, name: string) => {
    const c = batch.col(name);
    return Array.from({ length: batch.rows }, (_, r) => (isValid(c, r) ? c.i32![r] : null));
  };
  const b = new EventBuilder(1, (batch) => void ids.push(col(batch, 'stack_id'), col(batch, 'user_stack_id')));
  const arrays = new Set<readonly string[]>();
  if (whole) {
    const own = b.stackFrames.bind(b);
    b.stackFrames = (kind, cpu, frames, lineNo) => (arrays.add(frames), own(kind, cpu, frames, lineNo));
  } else (b as { stackFrames?: unknown }).stackFrames = undefined;
  const out = () => {
    b.finish();
    const f = b.facts(0);
    return { stacks: f.stacks, late: f.lateStacks, unparsed: f.unparsedRows, ids };
  };
  return { b, ids, arrays, out };
}

describe('trace.dat stacks handed whole', () => {
  it('the stacktrace capture: one array per distinct stack, the same tables as frame by frame', () => {
    const buf = unxzSync(readFileSync(new URL('../../samples/real/binary/trace-cmd-v7-zstd-stacktrace.dat.xz', import.meta.url)));
    const whole = builder(true);
    const byFrame = builder(false);
    readTraceDat(buf, whole.b);
    readTraceDat(buf, byFrame.b);
    const a = whole.out() as { stacks: { uses: number }[] };
    assert.deepEqual(a, byFrame.out());
    assert.ok(a.stacks.length >= 10, `${a.stacks.length} stacks`);
    // The kernel_stack records went through stackFrames, an array per distinct run of addresses (not per record;
    // addresses in one function print the same frame, so a few more arrays than stacks).
    const uses = a.stacks.reduce((n, s) => n + s.uses, 0);
    assert.ok(whole.arrays.size >= a.stacks.length && whole.arrays.size <= 2 * a.stacks.length, `${whole.arrays.size} arrays`);
    assert.ok(uses > 100 * whole.arrays.size, `${uses} uses`);
    assert.equal(byFrame.arrays.size, 0);
  });

  it('stacks with no event, applied late, or deeper than the limit: as frame by frame', () => {
    const ctx: LineContext = { tsSec: 1, tsNs: 0, cpu: 0, pid: 1, tgid: -1, comm: 'a', irq: null };
    const deep = Array.from({ length: 4100 }, (_, i) => `f${i}+0x1/0x10`);
    const a = ['page_ref_inc+0x1/0x10', 'gup_fast+0x2/0x20', 'io_pin_pages+0x3/0x30'];
    const u = ['0x00007f0000001000', '0x00007f0000002000'];
    const run = (whole: boolean) => {
      const t = builder(whole);
      const stack = (kind: StackKind, cpu: number, frames: readonly string[]) => {
        if (whole) return t.b.stackFrames(kind, cpu, frames, 7);
        t.b.stackStart(kind, cpu);
        for (const f of frames) t.b.frame(f, 7);
      };
      stack('kernel', 0, a); // before any event: kept, attached to nothing
      t.b.event(1, { ...ctx, cpu: 0 }, null, 'mm_page_alloc', 'page=0x1 pfn=0x1 order=0 migratetype=0 gfp_flags=GFP_KERNEL');
      t.b.event(2, { ...ctx, cpu: 1 }, null, 'mm_page_free', 'page=0x2 pfn=0x2 order=0');
      stack('kernel', 0, a); // cpu 0's event, past cpu 1's
      stack('user', 0, u);
      for (let i = 0; i < BATCH_ROWS + 5; i++) t.b.event(3 + i, { ...ctx, cpu: 1 }, null, 'mm_page_free', 'page=0x2 pfn=0x2 order=0');
      stack('kernel', 0, [...a].reverse()); // cpu 0's event's batch went already: applied late
      stack('kernel', 1, deep); // the frames past the limit counted unparsed
      t.b.unparsed(9999, 'junk', 'test');
      stack('kernel', 1, ['put_page+0x1/0x10']); // after a line that did not parse: that line's, not an event's
      stack('kernel', 1, []);
      return t.out() as { stacks: { uses: number }[]; late: unknown[]; unparsed: unknown[] };
    };
    const got = run(true);
    assert.deepEqual(got, run(false));
    assert.equal(got.late.length, 1);
    assert.equal(got.unparsed.length, 5);
    assert.deepEqual(
      got.stacks.map((s) => s.uses),
      [1, 1, 1, 1, 0],
    );
  });
});
