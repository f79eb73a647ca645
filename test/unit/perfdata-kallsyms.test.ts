/**
 * perf.data kernel frames named from a kallsyms (ingest --kallsyms; ingest/readers/perfdata/symbols.ts): the -g
 * fixture with an excerpt of the recording machine's /proc/kallsyms (test/fixtures/perfdata/README.md) gives the
 * frames and call sites of `perf script --kallsyms` text of the same file; a copy from another boot (KASLR: every
 * address moved) is relocated by `_text`; the default takes the running kernel's table only when it recorded the
 * file (build id, else release), else keeps raw addresses with a note; an unusable --kallsyms file is refused.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Db } from '../../db/duckdb.js';
import { ingest } from '../../ingest/ingest.js';
import { readHeader } from '../../ingest/readers/perfdata/header.js';
import { chooseKallsyms, noteBuildId } from '../../ingest/readers/perfdata/symbols.js';
import { InputError } from '../../ingest/source.js';
import { countsByTrace } from '../lib/tables.js';

const FIX = fileURLToPath(new URL('../fixtures/perfdata/', import.meta.url));
const KALLSYMS = join(FIX, 'g.kallsyms');
const data = gunzipSync(readFileSync(join(FIX, 'g.data.gz')));

let dir: string;
let db: Db;

/** Per event: its kernel frames, kernel call site and user stack depth (perf names user frames from the dsos). */
async function stacks(id: number) {
  return db.all<{ seq: number; frames: string | null; callsite: string | null; udepth: number | null }>(
    `SELECT e.seq, k.frames, k.callsite, u.depth AS udepth FROM events e
       LEFT JOIN stacks k ON k.trace_id = e.trace_id AND k.stack_id = e.stack_id AND k.kind = 'kernel'
       LEFT JOIN stacks u ON u.trace_id = e.trace_id AND u.stack_id = e.user_stack_id AND u.kind = 'user'
     WHERE e.trace_id = $1 ORDER BY e.seq`,
    [id],
  );
}

/** `text` with every address moved by `by` (a kallsyms of the same kernel after a KASLR reboot). */
function shifted(text: string, by: bigint): string {
  return text.replace(/^[0-9a-f]{16}/gm, (a) => (BigInt('0x' + a) + by).toString(16).padStart(16, '0'));
}

describe('perf.data --kallsyms', () => {
  let text: Awaited<ReturnType<typeof stacks>>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'refscope-kallsyms-'));
    db = await Db.open(join(dir, 'db.duckdb'));
    const t = await ingest(db, join(FIX, 'g.kallsyms.script.txt.gz'));
    text = await stacks(t.trace_id);
  });
  after(async () => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names kernel frames as perf script --kallsyms does: same frames and call sites', async () => {
    const s = await ingest(db, join(FIX, 'g.data.gz'), { kallsyms: KALLSYMS });
    assert.deepEqual(s.notes, []);
    const bin = await stacks(s.trace_id);
    assert.ok(text.length > 300);
    assert.ok(text.every((r) => r.frames !== null && !/^0x|\n0x/.test(r.frames)), 'the text has every kernel frame named');
    assert.ok(new Set(text.map((r) => r.callsite)).size > 5);
    assert.deepEqual(bin, text);
  });

  it('relocates a kallsyms from another boot by _text (KASLR), as perf does', async () => {
    const moved = join(dir, 'moved.kallsyms');
    writeFileSync(moved, shifted(readFileSync(KALLSYMS, 'latin1'), 0x2a00000n));
    const s = await ingest(db, join(FIX, 'g.data.gz'), { kallsyms: moved, replace: true });
    assert.deepEqual(await stacks(s.trace_id), text);
  });

  it('default: the running kernel table only when it recorded the file; else raw addresses and a note', async () => {
    const h = readHeader(data);
    assert.equal(h.kernelBuildId, '32a7f3bacee6bf69da94f497a8a076483baea20e');
    const same = { release: 'other', buildId: h.kernelBuildId, kallsyms: KALLSYMS };
    assert.ok(chooseKallsyms(data, h, undefined, same).symbols);
    // No build id on one side: the release decides.
    assert.ok(chooseKallsyms(data, h, undefined, { ...same, buildId: null, release: h.osrelease! }).symbols);
    const other = chooseKallsyms(data, h, undefined, { ...same, buildId: 'ff'.repeat(20), release: h.osrelease! });
    assert.equal(other.symbols, null);
    assert.match(other.note!, /^kernel frames are raw addresses: recorded on 6\.18\.44-fc-v1272, this machine runs a different build of 6\.18\.44-fc-v1272; symbolise with --kallsyms FILE/);
    const zero = join(dir, 'zero.kallsyms');
    writeFileSync(zero, shifted(readFileSync(KALLSYMS, 'latin1'), 0n).replace(/^[0-9a-f]{16}/gm, '0'.repeat(16)));
    assert.match(chooseKallsyms(data, h, undefined, { ...same, kallsyms: zero }).note!, /zero\.kallsyms shows no addresses \(kptr_restrict/);
    assert.deepEqual(chooseKallsyms(data, h, false, same), { symbols: null, note: null });

    // Through ingest, on whatever machine runs the test: the file's kernel made one no machine runs.
    const foreign = Buffer.from(data);
    const at = foreign.indexOf(Buffer.from(h.kernelBuildId!, 'hex'));
    foreign.fill(0xee, at, at + 20);
    const rel = foreign.indexOf('6.18.44-fc-v1272');
    foreign.write('6.18.44-fc-v0000', rel, 'latin1');
    writeFileSync(join(dir, 'foreign.data'), foreign);
    const s = await ingest(db, join(dir, 'foreign.data'));
    assert.equal(s.notes.length, 1);
    assert.match(s.notes[0]!, /^kernel frames are raw addresses: recorded on 6\.18\.44-fc-v0000, this machine runs .+; symbolise with --kallsyms FILE \(\/proc\/kallsyms of the traced machine, or a saved copy\)$/);
    const raw = await stacks(s.trace_id);
    assert.equal(raw.length, text.length);
    assert.ok(raw.every((r) => r.frames !== null && r.frames.split('\n').every((f) => /^0xffffffff[0-9a-f]{8}$/.test(f))));
  });

  it('an unreadable or address-less --kallsyms file is refused naming it, database unchanged', async () => {
    const before = await countsByTrace(db);
    const zero = join(dir, 'restricted.kallsyms');
    writeFileSync(zero, readFileSync(KALLSYMS, 'latin1').replace(/^[0-9a-f]{16}/gm, '0'.repeat(16)));
    for (const [file, reason] of [
      [zero, /^\S+restricted\.kallsyms: no symbol addresses \(all zero or none: copy \/proc\/kallsyms as root/],
      [join(dir, 'missing'), /^\S+missing: cannot read: ENOENT$/],
    ] as const)
      await assert.rejects(ingest(db, join(FIX, 'g.data.gz'), { kallsyms: file }), (e: Error) => e instanceof InputError && reason.test(e.message));
    assert.deepEqual(await countsByTrace(db), before);
  });

  it('reads the GNU build id note of /sys/kernel/notes', () => {
    const id = Buffer.from('32a7f3bacee6bf69da94f497a8a076483baea20e', 'hex');
    const note = (type: number, name: string, desc: Buffer) => {
      const n = Buffer.alloc((name.length + 4) & ~3);
      n.write(name, 'latin1');
      const h = Buffer.alloc(12);
      h.writeUInt32LE(name.length + 1, 0), h.writeUInt32LE(desc.length, 4), h.writeUInt32LE(type, 8);
      return Buffer.concat([h, n, desc, Buffer.alloc((4 - (desc.length % 4)) % 4)]);
    };
    assert.equal(noteBuildId(Buffer.concat([note(6, 'Linux', Buffer.from('ab')), note(3, 'GNU', id)])), id.toString('hex'));
    assert.equal(noteBuildId(note(6, 'Linux', Buffer.from('abcd'))), null);
  });
});
