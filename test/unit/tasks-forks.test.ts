/**
 * sched_process_fork's child_pid= is read from the payload only after the stream and only when a release() will look
 * at a fork (replay/tasks.ts): needsChildren says when, childrenFrom fills the children (dropping a fork whose
 * payload has none), and release() then answers as if the children had been read with the events.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { Ev } from '../../replay/event.js';
import { childPid, Tasks } from '../../replay/tasks.js';

const ev = (seq: number, pid: number, tgid: number): Ev => Object.assign(new Ev(), { seq, ts: seq * 1000, pid, tgid });

describe('forks read after the stream', () => {
  it('needsChildren: only a holder that exited after the get, with a fork of its group between the two', () => {
    const t = new Tasks(1e9);
    t.fork(ev(10, 300, 300)); // before the get at 20
    t.exit(ev(50, 300, 300));
    t.exit(ev(60, 400, 400));
    assert.equal(t.needsChildren(300, 300, 20), false, 'the fork came before the get');
    assert.equal(t.needsChildren(500, 500, 20), false, 'no exit');
    t.fork(ev(30, 301, 300)); // a thread of 300 forks after the get
    assert.equal(t.needsChildren(300, 300, 20), true);
    assert.equal(t.needsChildren(400, 400, 20), false, 'exited, but never forked');
    assert.equal(t.needsChildren(300, 300, 55), false, 'no exit after this get');
  });

  it('childrenFrom: children from child_pid=, a fork without one dropped; release() sees them', () => {
    const t = new Tasks(1e9);
    t.fork(ev(30, 300, 300));
    t.fork(ev(31, 300, 300));
    t.exit(ev(50, 300, 300));
    t.childrenFrom(new Map([
      [30, 'comm=app pid=300 child_comm=app child_pid=700'],
      [31, 'comm=app pid=300 child_comm=app'],
    ]));
    assert.equal(t.needsChildren(300, 300, 20), false, 'nothing left to read');
    const r = t.release(300, 300, 20);
    assert.ok(r);
    assert.equal(r.alive, 700, 'the child forked after the get did not exit');
    t.exit(ev(80, 700, 700));
    assert.equal(t.release(300, 300, 20)?.alive, -1);
    assert.equal(t.release(300, 300, 20)?.last.seq, 80);
  });

  it('childPid: the first child_pid= field, not one inside another word', () => {
    assert.equal(childPid('comm=a pid=1 child_comm=b child_pid=42'), 42);
    assert.equal(childPid('comm=a pid=1 xchild_pid=5'), null);
    assert.equal(childPid(''), null);
  });
});
