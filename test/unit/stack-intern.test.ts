/**
 * StackTable finds a stack it has seen through a trie over its frames instead of
 * building its key: the ids, rows and uses must be what interning by the key alone gives, including frames whose
 * newline makes two frame lists one key, preferred ids, stacks with no event, and both kinds.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { StackKind } from '../../ingest/readers/sink.js';
import { callsiteOf, StackTable, type StackRow } from '../../ingest/stack.js';

/** Interning by the key alone (the rule StackTable keeps). */
class KeyTable {
  readonly rows: StackRow[] = [];
  private readonly byKey = new Map<string, StackRow>();
  private readonly ids = new Set<number>();
  private nextId = 1;
  intern(kind: StackKind, frames: string[], preferId?: number, uses = 1): number {
    const key = kind + '\n' + frames.join('\n');
    let row = this.byKey.get(key);
    if (!row) {
      let id = preferId !== undefined && preferId > 0 && !this.ids.has(preferId) ? preferId : this.nextId;
      while (this.ids.has(id)) id++;
      if (id >= this.nextId) this.nextId = id + 1;
      row = { id, kind, frames, callsite: callsiteOf(frames), uses: 0 };
      this.ids.add(id);
      this.rows.push(row);
      this.byKey.set(key, row);
    }
    row.uses += uses;
    return row.id;
  }
}

describe('StackTable interning', () => {
  it('the same ids and rows as interning by the key, over 20,000 random stacks', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    const pool = ['a', 'b', 'a\nb', 'b\na', '', 'page_ref_inc+0x1/0x10', 'gup_fast+0x2/0x20', 'io_pin_pages+0x3/0x30', 'x\n'];
    // Arrays handed again unchanged (as trace.dat's reader hands a stack it saw), built from the pool.
    const shared: string[][] = Array.from({ length: 40 }, () => Array.from({ length: 1 + rand(4) }, () => pool[rand(pool.length)]!));
    const t = new StackTable();
    const ref = new KeyTable();
    for (let i = 0; i < 20_000; i++) {
      const kind: StackKind = rand(4) === 0 ? 'user' : 'kernel';
      const uses = rand(5) === 0 ? 0 : 1;
      if (rand(2) === 0) {
        const frames = shared[rand(shared.length)]!;
        assert.equal(t.intern(kind, frames, undefined, uses), ref.intern(kind, frames, undefined, uses), `step ${i}`);
      } else {
        const frames = Array.from({ length: 1 + rand(5) }, () => pool[rand(pool.length)]!);
        const prefer = rand(3) === 0 ? 1 + rand(300) : undefined;
        assert.equal(t.intern(kind, [...frames], prefer, uses), ref.intern(kind, [...frames], prefer, uses), `step ${i}`);
      }
    }
    assert.deepEqual(t.rows, ref.rows);
    // Frames with a newline make different lists one key, hence one stack: the trie must not tell them apart.
    assert.equal(t.intern('kernel', ['a', 'b', 'x\n']), t.intern('kernel', ['a\nb', 'x', '']));
    assert.notEqual(t.intern('kernel', ['a', 'b']), t.intern('user', ['a', 'b']));
  });

  it('past the trie\'s node limit, stacks are still found (by their key)', () => {
    const t = new StackTable();
    const ref = new KeyTable();
    const stack = (s: number) => Array.from({ length: 40 }, (_, i) => `f${s % 7}_${i < 20 ? 0 : s}_${i}+0x1/0x2`);
    for (let round = 0; round < 2; round++)
      for (let s = 0; s < 4000; s++) assert.equal(t.intern('kernel', stack(s)), ref.intern('kernel', stack(s)), `round ${round} stack ${s}`);
    assert.deepEqual(t.rows, ref.rows);
    assert.equal(t.rows.length, 4000);
    assert.equal((t as unknown as { nodes: number }).nodes, 1 << 16);
  });
});
