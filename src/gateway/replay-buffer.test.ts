import { describe, expect, it } from 'vitest';
import { SEQ_PER_ATTEMPT } from '../core/task-events.js';
import { encodeEvent } from './packet.js';
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

  it('keeps packets without their ids and replays them byte for byte', () => {
    const taskId = '3f2b8c1e-9d4a-4e7b-8f00-1a2b3c4d5e6f';
    const rootId = 'a0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d';
    const user = { userId: 'user-"quoted"-\u00e9-name', createdAt: 1_000 };
    const packets = [
      encodeEvent('progress', {
        status: 'running',
        message: `step of ${taskId} for ${user.userId}, root ${rootId}`,
        task_id: taskId,
        user_id: user.userId,
        seq: 1,
        root_id: rootId,
      }),
      encodeEvent('stream', { task_id: taskId, seq: 2, delta: '\u0001 \u0002 raw control characters' }),
      encodeEvent('progress', { status: 'completed', task_id: taskId, user_id: user.userId, seq: 3 }),
    ];
    const buffer = new ReplayBuffer(bounds);
    packets.forEach((packet, i) => buffer.add(taskId, user, entry(i + 1, packet), rootId));
    expect(buffer.since(taskId, user, 0).events.map((e) => e.packet)).toEqual(packets);
    // Kept smaller than sent: each id once per task, not once per packet.
    const sent = packets.reduce((sum, p) => sum + p.length, 0);
    const alone = new ReplayBuffer(bounds);
    packets.forEach((packet, i) => alone.add(taskId, user, entry(i + 1, packet)));
    expect(buffer.bytes).toBeLessThan(alone.bytes);
    // At least the task id of each packet is gone.
    expect(alone.bytes - packets.length * 48).toBeLessThanOrEqual(
      sent - packets.length * (taskId.length - 1),
    );
  });
});
