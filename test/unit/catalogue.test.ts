/**
 * The event catalogue (ingest/decode/catalogue.ts) is the one list of events: decoding, replay dispatch,
 * `refscope probes`, pgmap inference and check-traces derive from its rows.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ColumnarBatch, getInt, isValid } from '../../db/batch.js';
import { SQL_DIR, sqlFile } from '../../db/sql.js';
import { EVENTS } from '../../db/tables/ingest.js';
import * as codes from '../../ingest/decode/codes.js';
import {
  CATALOGUE, decode, fillsOf, inEra, isKnownEvent, KPROBE_SYSTEMS, MM_SYSTEMS, replayCode, systemOf, type Version,
} from '../../ingest/decode/catalogue.js';
import { kprobeLine, kprobesFor, probesScript } from '../../ingest/probes.js';
import { listQueries } from '../../queries/runner.js';
import { Driver, type Trackers } from '../../replay/driver.js';
import { Ev } from '../../replay/event.js';

const script = (v: Version): string => probesScript({ kernel: `${v[0]}.${v[1]}.0`, tracefs: '/sys/kernel/tracing' });

/** Kernels from 4.0 to 7.0, every minor release. */
const KERNELS: Version[] = [];
for (let major = 4; major <= 7; major++) for (let minor = 0; minor <= 20; minor++) KERNELS.push([major, minor]);

describe('event catalogue', () => {
  it('lists every event once, with a system and a decoder; every replay code has rows', () => {
    const names = CATALOGUE.map((e) => e.name);
    assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), []);
    for (const e of CATALOGUE) {
      assert.match(e.system, /^[a-z_]+$/, e.name);
      assert.equal(typeof e.decode, 'function', e.name);
    }
    const used = new Set(CATALOGUE.map((e) => e.code));
    for (const [name, code] of Object.entries(codes)) if (typeof code === 'number') assert.ok(used.has(code), `${name} has no row`);
  });

  it('ingest decodes by the rows: each row gives its system and fills its columns', () => {
    const batch = new ColumnarBatch(EVENTS, ['payload', 'args']);
    const c = Object.fromEntries(batch.columns.map((col) => [col.name, col]));
    const facts = { pagePointer() {}, probeVmemmapBase() {} };
    for (const e of CATALOGUE) {
      assert.ok(isKnownEvent(e.name), e.name);
      assert.equal(systemOf(e.name), e.system);
      assert.equal(decode(e.name, 'pfn=4660 nr_pages=2', 0, c, facts), e.system, e.name);
    }
    const columns = new Set(EVENTS.columns.map((col) => col.name));
    for (const e of CATALOGUE) for (const col of e.fills ?? []) assert.ok(columns.has(col), `${e.name}: ${col}`);
    assert.equal(decode('page_ref_mod', 'pfn=4660 flags=lru count=2 mapcount=0 mapping=0 mt=1 val=1', 1, c, facts), 'page_ref');
    for (const col of fillsOf('page_ref_mod')) assert.ok(isValid(c[col], 1), `page_ref_mod fills ${col}`);
    assert.equal(getInt(c.count, 1), 2);
    assert.equal(decode('no_such_event', 'pfn=1', 2, c, facts), null);
    assert.equal(isKnownEvent('no_such_event'), false);
    assert.equal(systemOf('no_such_event'), null);
  });

  it('replay reads the rows\' codes and dispatches every one of them', () => {
    const calls = new Set<string>();
    // A tracker stand-in: any property is another stand-in, calling one records `tracker.method`.
    const stub = (path: string): unknown =>
      new Proxy(() => {}, {
        get: (_t, k) => (k === Symbol.toPrimitive ? () => 0 : typeof k === 'symbol' || k === 'then' ? undefined : stub(`${path}.${k}`)),
        apply: () => (calls.add(path), stub(`${path}()`)),
        set: () => true,
      });
    const names = ['ctx', 'lost', 'pages', 'refcheck', 'gup', 'pins', 'holds', 'cma', 'pgmaps', 'rawmaps', 'tasks', 'anomalies', 'baseline'];
    const trackers = Object.fromEntries(names.map((n) => [n, stub(n)])) as unknown as Trackers;
    const stream = { ev: new Ev(), events: 0, lastTs: 0 } as unknown as ConstructorParameters<typeof Driver>[0];
    const out = { backlog: 0 } as unknown as ConstructorParameters<typeof Driver>[1];
    const driver = new Driver(stream, out, trackers);
    const dispatched = (code: number): boolean => {
      calls.clear();
      const ev = new Ev();
      ev.code = code;
      ev.pfn = 1;
      driver.event(ev);
      return calls.size > 0;
    };
    assert.equal(dispatched(99), false, 'a code the driver does not know reaches no tracker');
    for (const e of CATALOGUE) {
      assert.equal(replayCode(e.name), e.code ?? -1, e.name);
      // get_dev_pagemap is streamed (counted) but the model reads its result, get_dev_pagemap_ret.
      if (e.code !== undefined && e.code !== codes.PGM_GET) assert.ok(dispatched(e.code), `${e.name} (code ${e.code}) is dispatched`);
    }
    assert.equal(replayCode('constructor'), -1);
  });

  it('refscope probes defines every probe row and enables every tracepoint row, for the kernels it applies to', () => {
    for (const e of CATALOGUE) {
      for (const d of e.probes ?? []) {
        const v = KERNELS.find((k) => inEra(d, k));
        assert.ok(v, `${e.name}: ${d.func} applies to some kernel`);
        const s = script(v);
        const line = kprobeLine({ group: e.system, event: e.name, kretprobe: d.kretprobe === true, func: d.func, args: d.args, stack: false });
        assert.ok(s.includes(`probe '${line}'`), `${v.join('.')}: ${line}`);
        assert.ok(s.split('\n').includes(`on ${e.system}/${e.name}`), `${v.join('.')}: on ${e.system}/${e.name}`);
        if (e.stack) assert.ok(s.includes(`echo stacktrace > events/${e.system}/${e.name}/trigger`), `${e.name} stack trigger`);
      }
      if (e.enable) {
        const loop = script([6, 1]).split('\n').find((l) => new RegExp(`^(# )?for e in .*\\b${e.name}\\b.*; do on ${e.system}/\\$e; done`).test(l));
        assert.ok(loop, `${e.name} enabled`);
        assert.equal(loop.startsWith('# '), e.enable.optional === true, `${e.name} optional`);
        if (e.stack) assert.ok(script([6, 1]).includes(`echo stacktrace > events/${e.system}/${e.name}/trigger`), `${e.name} stack trigger`);
      }
    }
  });

  it('at most one definition of an event applies to a kernel, and every kprobe line parses', () => {
    const arg = /^[a-z_]+=(%[a-z0-9]+|\$retval|\$stack\d+|@[a-z_]+|[+-]\d+\(%[a-z0-9]+\)):(x|s|u)(8|16|32|64)$/;
    for (const v of KERNELS) {
      const defs = kprobesFor(v);
      const events = defs.map((k) => k.event);
      assert.deepEqual(events.filter((n, i) => events.indexOf(n) !== i), [], `${v.join('.')}: one definition per event`);
      for (const k of defs) {
        const m = /^([pr]):(\w+)\/(\w+) (\w+)((?: \S+)*)$/.exec(kprobeLine(k));
        assert.ok(m, kprobeLine(k));
        assert.equal(m[3], k.event);
        for (const a of m[5].trim().split(' ').filter(Boolean)) assert.match(a, arg, `${k.event}: ${a}`);
        if (m[1] === 'r') assert.ok(!/%|\$stack/.test(m[5]), `${k.event}: a kretprobe fetches only $retval and memory`);
      }
    }
  });

  it('the systems check-traces counts are those refscope probes captures', () => {
    for (const e of CATALOGUE) if (e.enable || e.probes) assert.ok(MM_SYSTEMS.has(e.system), e.system);
    assert.ok(MM_SYSTEMS.has('fs_dax'));
    assert.ok(!MM_SYSTEMS.has('syscalls') && !MM_SYSTEMS.has('ftrace'));
    assert.deepEqual([...KPROBE_SYSTEMS].sort(), ['cmak', 'gup', 'pgmap']);
  });
});

describe('pgmap inference SQL (queries/replay/)', () => {
  const files = readdirSync(new URL('replay/', SQL_DIR)).filter((f) => f.startsWith('pgmaps-infer-'));

  it('binds every value as a declared parameter; no interpolation', () => {
    assert.ok(files.length >= 6, files.join());
    for (const f of files) {
      const text = sqlFile(`replay/${f}`);
      assert.match(text, /^-- \S/, `${f}: a header says what it computes`);
      const declared = [...text.matchAll(/^-- @param (\w+) /gm)].map((m) => m[1]).sort();
      const body = text.split('\n').filter((l) => !l.startsWith('--')).join('\n');
      const used = [...new Set([...body.matchAll(/\$(\w+)/g)].map((m) => m[1]))].sort();
      assert.deepEqual(used, declared, f);
      assert.ok(!body.includes('${'), `${f}: nothing interpolated`);
      assert.ok(!/'(mm_page_free|page_ref%|folio_ref%)/.test(body), `${f}: event lists come from the catalogue`);
    }
  });

  it('is not a user query (refscope query --list)', () => {
    const listed = listQueries().map((q) => q.name);
    assert.ok(listed.length > 0);
    assert.deepEqual(listed.filter((n) => n.includes('pgmaps-infer')), []);
    assert.ok(readFileSync(new URL('replay/pgmaps-infer-sections.sql', SQL_DIR), 'utf8').includes('list_contains($kmem_frees'));
  });
});
