import { describe, expect, it } from 'vitest';
import { SEQ_PER_ATTEMPT } from '../core/task-events.js';
import { ReplayBuffer, type ReplayEntry } from './replay-buffer.js';

const alice = { userId: 'alice', createdAt: 1_000 };
const bob = { userId: 'bob', createdAt: 2_000 };
const entry = (seq: number, packet = `p${seq}`): ReplayEntry => ({ seq, packet });
const seqs = (entries: ReplayEntry[]) => entries.map((e) => e.seq);
const bounds = { perTask: 100, tasks: 100, bytes: 1_000_000 };

describe('ReplayBuffer', () => {
  it('replays what a client missed, from the task’s first event on', () => {
    const buffer = new ReplayBuffer(bounds);
    for (const seq of [0, SEQ_PER_ATTEMPT, SEQ_PER_ATTEMPT + 1, SEQ_PER_ATTEMPT + 2])
      buffer.add('X', alice, entry(seq));
    expect(buffer.since('X', alice, -1)).toEqual({
      covers: true,
      events: [entry(0), entry(SEQ_PER_ATTEMPT), entry(SEQ_PER_ATTEMPT + 1), entry(SEQ_PER_ATTEMPT + 2)],
    });
    const after = buffer.since('X', alice, SEQ_PER_ATTEMPT);
    expect(after.covers).toBe(true);
    expect(seqs(after.events)).toEqual([SEQ_PER_ATTEMPT + 1, SEQ_PER_ATTEMPT + 2]);
    // A client that saw everything gets nothing twice.
    expect(buffer.since('X', alice, SEQ_PER_ATTEMPT + 2)).toEqual({ covers: true, events: [] });
  });

  it('says when it no longer holds the start of what a client missed', () => {
    const buffer = new ReplayBuffer({ ...bounds, perTask: 2 });
    for (const seq of [0, 10, 11, 12]) buffer.add('X', alice, entry(seq));
    expect(seqs(buffer.since('X', alice, -1).events)).toEqual([11, 12]);
    expect(buffer.since('X', alice, -1).covers).toBe(false);
    expect(buffer.since('X', alice, 10).covers).toBe(true);
    expect(buffer.since('X', alice, 9).covers).toBe(false);
    expect(buffer.since('unknown', alice, -1)).toEqual({ covers: false, events: [] });
  });

  it('never replays an earlier task’s events under a reused id', () => {
    const buffer = new ReplayBuffer(bounds);
    buffer.add('X', alice, entry(0, 'alice'));
    expect(buffer.since('X', bob, -1)).toEqual({ covers: false, events: [] });
    buffer.add('X', bob, entry(0, 'bob'));
    expect(buffer.identity('X')).toMatchObject(bob);
    expect(buffer.since('X', alice, -1).events).toEqual([]);
    expect(buffer.since('X', bob, -1).events).toEqual([entry(0, 'bob')]);
    expect(buffer.size).toBe(1);
  });

  it('lets the oldest tasks go first when it holds too many, or too many bytes', () => {
    const byTasks = new ReplayBuffer({ ...bounds, tasks: 2 });
    for (const id of ['A', 'B', 'C']) byTasks.add(id, alice, entry(0));
    expect(byTasks.identity('A')).toBeUndefined();
    expect(byTasks.size).toBe(2);

    const big = 'x'.repeat(400);
    const byBytes = new ReplayBuffer({ ...bounds, bytes: 1_000 });
    byBytes.add('A', alice, entry(0, big));
    byBytes.add('B', alice, entry(0, big));
    expect(byBytes.size).toBe(2);
    byBytes.add('C', alice, entry(0, big));
    expect(byBytes.identity('A')).toBeUndefined();
    expect(byBytes.identity('B')).toMatchObject(alice);
    // The task just added to stays, even alone over the bound.
    byBytes.add('C', alice, entry(1, 'y'.repeat(2_000)));
    expect(byBytes.size).toBe(1);
    expect(seqs(byBytes.since('C', alice, -1).events)).toEqual([0, 1]);
  });

  it('counts its bytes back down as tasks and events go', () => {
    const buffer = new ReplayBuffer({ ...bounds, perTask: 1 });
    buffer.add('A', alice, entry(0, 'a'.repeat(100)));
    const one = buffer.bytes;
    expect(one).toBeGreaterThan(100);
    buffer.add('A', alice, entry(1, 'b'.repeat(100)));
    expect(buffer.bytes).toBe(one);
    buffer.add('B', bob, entry(0, 'c'.repeat(100)));
    buffer.drop('A');
    buffer.drop('B');
    buffer.drop('B');
    expect(buffer.bytes).toBe(0);
    expect(buffer.size).toBe(0);
  });
});
