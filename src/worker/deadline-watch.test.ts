import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineWatch, type Deadlined } from './deadline-watch.js';

/** A task with a soft and a hard limit, as TaskRun has them. */
class Limited implements Deadlined {
  readonly fired: string[] = [];
  deadline: number;
  watchSlot = -1;
  constructor(
    private readonly softAt: number,
    private readonly hardAt: number,
  ) {
    this.deadline = softAt;
  }
  onDeadline(): void {
    if (this.deadline === this.softAt && this.softAt < this.hardAt) {
      this.fired.push('soft');
      this.deadline = this.hardAt;
    } else {
      this.fired.push('hard');
      this.deadline = Infinity;
    }
  }
}

describe('DeadlineWatch', () => {
  beforeEach(() => vi.useFakeTimers({ now: 1_000_000 }));
  afterEach(() => vi.useRealTimers());

  it('tells each member at its own deadlines, earliest first, with one timer', () => {
    const watch = new DeadlineWatch();
    const now = Date.now();
    const late = new Limited(now + 300, now + 600);
    const early = new Limited(now + 100, now + 200);
    watch.add(late);
    watch.add(early);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(150);
    expect([early.fired, late.fired]).toEqual([['soft'], []]);
    vi.advanceTimersByTime(100);
    expect([early.fired, late.fired]).toEqual([['soft', 'hard'], []]);
    vi.advanceTimersByTime(400);
    expect([early.fired, late.fired]).toEqual([
      ['soft', 'hard'],
      ['soft', 'hard'],
    ]);
    expect(watch.size).toBe(0);
  });

  it('fires the hard limit at once when a late timer finds the soft one and the hard one both due', () => {
    const watch = new DeadlineWatch();
    const now = Date.now();
    const task = new Limited(now + 100, now + 110);
    watch.add(task);
    // The event loop was blocked past both deadlines: the one timer runs late, once.
    vi.setSystemTime(now + 500);
    vi.advanceTimersToNextTimer();
    expect(task.fired).toEqual(['soft', 'hard']);
  });

  it('never tells a member that left, and keeps watching the others', () => {
    const watch = new DeadlineWatch();
    const now = Date.now();
    const gone = new Limited(now + 100, now + 200);
    const stays = new Limited(now + 300, now + 400);
    watch.add(gone);
    watch.add(stays);
    watch.delete(gone);
    watch.delete(gone);
    vi.advanceTimersByTime(1_000);
    expect(gone.fired).toEqual([]);
    expect(stays.fired).toEqual(['soft', 'hard']);
  });

  it('moves its timer earlier for a member with a nearer deadline', () => {
    const watch = new DeadlineWatch();
    const now = Date.now();
    const far = new Limited(now + 10_000, now + 20_000);
    const near = new Limited(now + 50, now + 60);
    watch.add(far);
    watch.add(near);
    vi.advanceTimersByTime(100);
    expect(near.fired).toEqual(['soft', 'hard']);
    expect(far.fired).toEqual([]);
  });

  it('keeps every other member when one leaves from the middle, and takes a member back after it left', () => {
    const watch = new DeadlineWatch();
    const now = Date.now();
    const tasks = [100, 200, 300, 400].map((ms) => new Limited(now + ms, now + ms));
    for (const task of tasks) watch.add(task);
    watch.delete(tasks[1]!);
    watch.delete(tasks[0]!);
    expect(watch.size).toBe(2);
    watch.add(tasks[0]!);
    watch.add(tasks[0]!);
    expect(watch.size).toBe(3);
    vi.advanceTimersByTime(1_000);
    expect(tasks.map((t) => t.fired.length)).toEqual([1, 0, 1, 1]);
    expect(watch.size).toBe(0);
  });
});
