import { describe, expect, it } from 'vitest';
import { CancelRegistry, type Cancellable } from './cancel-registry.js';

class FakeTask implements Cancellable {
  readonly stops: string[] = [];
  constructor(readonly taskId: string) {}
  stopFor(reason: 'cancel' | 'shutdown'): void {
    this.stops.push(reason);
  }
}

describe('CancelRegistry', () => {
  it('stops the running task a cancel names, and only that one', () => {
    const registry = new CancelRegistry();
    const [a, b] = [new FakeTask('a'), new FakeTask('b')];
    registry.register(a);
    registry.register(b);
    expect(registry.cancel('a')).toBe(true);
    expect(a.stops).toEqual(['cancel']);
    expect(b.stops).toEqual([]);
    expect(registry.cancel('elsewhere')).toBe(false);
  });

  it('stops every attempt of the id running here, and forgets a task once it ends', () => {
    const registry = new CancelRegistry();
    const [old, retry] = [new FakeTask('t'), new FakeTask('t')];
    registry.register(old);
    registry.register(retry);
    expect(registry.size).toBe(2);
    expect(registry.runningIds()).toEqual(['t']);
    registry.unregister(old);
    expect(registry.size).toBe(1);
    expect(registry.cancel('t')).toBe(true);
    expect(old.stops).toEqual([]);
    expect(retry.stops).toEqual(['cancel']);
    registry.unregister(retry);
    expect(registry.size).toBe(0);
    expect(registry.runningIds()).toEqual([]);
  });

  it('remembers a cancelled id for a while, for a task that reaches this worker after the request', () => {
    const registry = new CancelRegistry(60_000, 2);
    registry.cancel('late');
    expect(registry.wasCancelled('late')).toBe(true);
    expect(registry.wasCancelled('never')).toBe(false);
    // Past its bound the oldest id is forgotten first.
    registry.cancel('second');
    registry.cancel('third');
    expect(registry.wasCancelled('late')).toBe(false);
    expect(registry.wasCancelled('third')).toBe(true);
  });

  it('tells every running task to stop when the worker leaves', () => {
    const registry = new CancelRegistry();
    const tasks = [new FakeTask('x'), new FakeTask('y')];
    for (const t of tasks) registry.register(t);
    expect(registry.shutdownAll()).toBe(2);
    expect(tasks.map((t) => t.stops)).toEqual([['shutdown'], ['shutdown']]);
  });
});
