/**
 * print fmt's flag and symbol tables (ingest/readers/event-format.ts): the constant expressions of their entries as
 * libtraceevent's arg_num_eval evaluates them, and fields rendered as its print_str_arg renders them. The real
 * kmem:mm_page_alloc format is the one embedded in test/fixtures/perfdata/a.data.gz (Linux 6.18); mm_migrate_pages'
 * print fmt is quoted from samples/real/binary/trace-cmd-v6.dat.xz. The readers against perf script / trace-cmd
 * report text, gfp column included: perfdata.test.ts, tracedat.test.ts.
 */
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { evalConstant, parseFormat, renderPayload, symbolicFields, symbolize, type EventFormat } from '../../ingest/readers/event-format.js';

/** One event's format text, cut out of the HEADER_TRACING_DATA of a perf.data fixture. */
function embedded(fixture: string, event: string): EventFormat {
  const data = gunzipSync(readFileSync(new URL(`../fixtures/perfdata/${fixture}`, import.meta.url))).toString('latin1');
  const at = data.indexOf(`name: ${event}\n`);
  assert.ok(at >= 0, `${event} in ${fixture}`);
  const fmt = parseFormat('kmem', data.slice(at, data.indexOf('\n', data.indexOf('print fmt:', at)) + 1));
  assert.ok(fmt);
  return symbolize(fmt);
}

/** A record of `fmt` with the given fields set (little-endian), the rest zero. */
function record(fmt: EventFormat, values: Record<string, bigint>): Buffer {
  const b = Buffer.alloc(Math.max(...fmt.fields.map((f) => f.offset + f.size)));
  for (const [name, v] of Object.entries(values)) {
    const f = fmt.fields.find((x) => x.name === name)!;
    if (f.size === 8) b.writeBigUInt64LE(v, f.offset);
    else b.writeUIntLE(Number(v), f.offset, f.size);
  }
  return b;
}

const flags = (args: string) => symbolicFields(args).get('f');

describe('print fmt flag and symbol tables', () => {
  it('evaluates table constants as arg_num_eval: casts, shifts, ~, octal, signed 64-bit; refuses what it cannot', () => {
    // GFP_NOFS in 6.18's mm_page_alloc format.
    assert.equal(evalConstant('( unsigned long)((( gfp_t)(((((1UL))) << (10))|((((1UL))) << (11)))) | (( gfp_t)((((1UL))) << (6))))'), 0xc40n);
    assert.equal(evalConstant('~(( gfp_t)0x10) & 0xff'), 0xefn);
    assert.equal(evalConstant('(u8)0x1ff | (unsigned short)0x12345'), 0x2345n | 0xffn);
    assert.equal(evalConstant('010 | 0x10u'), 0x18n);
    assert.equal(evalConstant('1UL << 63'), -(2n ** 63n));
    assert.equal(evalConstant('-1'), -1n);
    assert.equal(evalConstant('(1 < 2) + (3 != 3)'), 1n);
    assert.equal(evalConstant('FOO | 1'), undefined); // an enum name left in the format
    assert.equal(evalConstant('2 * 3'), undefined); // arg_num_eval has no *
    assert.equal(evalConstant('1 << 64'), undefined);
    assert.equal(evalConstant('(1'), undefined);
  });

  it("renders mm_page_alloc's gfp_flags from its real print fmt as perf script and trace-cmd report print it", () => {
    const fmt = embedded('a.data.gz', 'mm_page_alloc');
    const gfp = fmt.fields.find((f) => f.name === 'gfp_flags')!;
    assert.ok(gfp.symbolic);
    assert.deepEqual(
      fmt.fields.filter((f) => f.symbolic).map((f) => f.name),
      ['gfp_flags'],
    );
    const render = gfp.symbolic;
    assert.equal(render(0xcc0n), 'GFP_KERNEL');
    assert.equal(render(0x2800n), 'GFP_NOWAIT');
    // The table's first match wins and its bits leave the value: GFP_HIGHUSER_MOVABLE before __GFP_* singles.
    assert.equal(render(0x140dcan), 'GFP_HIGHUSER_MOVABLE|__GFP_ZERO|__GFP_COMP');
    assert.equal(render(0x440dc0n), 'GFP_KERNEL_ACCOUNT|__GFP_ZERO|__GFP_COMP');
    // Bits no entry names: the remainder in hex, after the names, or alone.
    assert.equal(render(0xcc0n | (1n << 40n)), 'GFP_KERNEL|0x10000000000');
    assert.equal(render(1n << 30n), '0x40000000');
    // Zero: the ternary's "none" (the table's { 0, NULL } end is never printed).
    assert.equal(render(0n), 'none');
    const raw = record(fmt, { pfn: 0x1234n, order: 2n, gfp_flags: 0x140dcan });
    assert.match(renderPayload(fmt, raw, true), / order=2 .*gfp_flags=GFP_HIGHUSER_MOVABLE\|__GFP_ZERO\|__GFP_COMP(?: |$)/);
    assert.match(renderPayload(fmt, record(fmt, { gfp_flags: 0n }), true), /gfp_flags=none(?: |$)/);
  });

  it("renders mm_migrate_pages' mode and reason by __print_symbolic; an unknown value (a 4-byte -1) in hex", () => {
    const fmt = parseFormat(
      'migrate',
      [
        'name: mm_migrate_pages',
        'ID: 713',
        'format:',
        '\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;',
        '\tfield:unsigned long succeeded;\toffset:8;\tsize:8;\tsigned:0;',
        '\tfield:unsigned long failed;\toffset:16;\tsize:8;\tsigned:0;',
        '\tfield:unsigned long thp_succeeded;\toffset:24;\tsize:8;\tsigned:0;',
        '\tfield:unsigned long thp_failed;\toffset:32;\tsize:8;\tsigned:0;',
        '\tfield:unsigned long thp_split;\toffset:40;\tsize:8;\tsigned:0;',
        '\tfield:unsigned long large_folio_split;\toffset:48;\tsize:8;\tsigned:0;',
        '\tfield:enum migrate_mode mode;\toffset:56;\tsize:4;\tsigned:0;',
        '\tfield:int reason;\toffset:60;\tsize:4;\tsigned:1;',
        'print fmt: "nr_succeeded=%lu nr_failed=%lu nr_thp_succeeded=%lu nr_thp_failed=%lu nr_thp_split=%lu nr_split=%lu mode=%s reason=%s", REC->succeeded, REC->failed, REC->thp_succeeded, REC->thp_failed, REC->thp_split, REC->large_folio_split, __print_symbolic(REC->mode, {0, "MIGRATE_ASYNC"}, {1, "MIGRATE_SYNC_LIGHT"}, {2, "MIGRATE_SYNC"}), __print_symbolic(REC->reason, {0, "compaction"}, {1, "memory_failure"}, {2, "memory_hotplug"}, {3, "syscall_or_cpuset"}, {4, "mempolicy_mbind"}, {5, "numa_misplaced"}, {6, "contig_range"}, {7, "longterm_pin"}, {8, "demotion"}, {9, "damon"})',
      ].join('\n'),
    )!;
    const p = renderPayload(fmt, record(fmt, { succeeded: 3n, mode: 2n, reason: 9n }), true);
    assert.equal(p, 'succeeded=3 failed=0 thp_succeeded=0 thp_failed=0 thp_split=0 large_folio_split=0 mode=MIGRATE_SYNC reason=damon');
    // tep_read_number reads the int unsigned: -1 is 0xffffffff, matching no entry.
    assert.match(renderPayload(fmt, record(fmt, { mode: 7n, reason: 0xffffffffn }), true), / mode=0x7 reason=0xffffffff$/);
  });

  it('edge cases: no ternary, unknown bits, high-bit entries, casts and ops on the field, what stays numeric', () => {
    const f = flags(', __print_flags(REC->f, "|", {1, "A"}, {2, "B"}, {0x3, "AB"})')!;
    assert.equal(f(0n), ''); // zero without a ternary prints nothing (libtraceevent and the kernel alike)
    assert.equal(f(3n), 'A|B'); // table order, not the best match
    assert.equal(f(0x13n), 'A|B|0x10');
    // An entry with bit 63 set reads as -1 (eval_flag of "%lld"): it names zero and never matches a bit.
    const top = flags(', __print_flags(REC->f, "|", {1UL << 63, "TOP"}, {1, "A"})')!;
    assert.equal(top(0n), 'TOP');
    assert.equal(top(1n << 63n), '0x8000000000000000');
    assert.equal(top(1n), 'A');
    // In a symbol table that -1 is compared as an unsigned long long: all ones, not bit 63.
    const topSym = flags(', __print_symbolic(REC->f, {1UL << 63, "TOP"})')!;
    assert.deepEqual([topSym(2n ** 64n - 1n), topSym(1n << 63n)], ['TOP', '0x8000000000000000']);
    // The field through an operation and a cast, as page_ref masks the page flags.
    const masked = flags(', __print_flags((unsigned long)(REC->f & ((1UL << 4) - 1)), "|", {1UL << 0, "locked"}, {1UL << 3, "uptodate"})')!;
    assert.equal(masked(0xf9n), 'locked|uptodate');
    const sym = flags(', (REC->f != 0) ? __print_symbolic(REC->f, {1, "one"}, {0x10, "sixteen"}) : "zero"')!;
    assert.deepEqual([sym(0n), sym(1n), sym(16n), sym(2n)], ['zero', 'one', 'sixteen', '0x2']);
    // Adjacent strings join (kvm's "KVM_EXIT_" "IO"); escapes stay as written, as libtraceevent's tokenizer keeps them.
    const joined = flags(', __print_symbolic(REC->f, {1, "KVM_EXIT_" "IO"}, {2, "a\\"b"})')!;
    assert.deepEqual([joined(1n), joined(2n)], ['KVM_EXIT_IO', 'a\\"b']);
    // Left numeric, never guessed: an entry that is no constant, another field in the expression, a field printed
    // by two tables, a function libtraceevent does not know.
    assert.equal(flags(', __print_flags(REC->f, "|", {FOO_BIT, "FOO"}, {1, "A"})'), undefined);
    assert.equal(flags(', __print_symbolic(REC->f + REC->g, {1, "one"})'), undefined);
    assert.equal(flags(', __print_symbolic(REC->f, {1, "one"}), __print_flags(REC->f, "|", {1, "A"})'), undefined);
    assert.equal(flags(', __print_symbolic(REC->f, {1, "one"}), __print_symbolic(REC->f, {1, "one"})')!(1n), 'one');
    assert.equal(flags(', __print_flags_u64(REC->f, "|", {1, "A"})'), undefined);
    // One argument that does not parse leaves the others rendered.
    const two = symbolicFields(', REC->a[0].x, __print_symbolic(REC->f, {1, "one"})');
    assert.deepEqual([...two.keys()], ['f']);
  });
});
