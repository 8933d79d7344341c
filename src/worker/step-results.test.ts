import { afterEach, describe, expect, it, vi } from 'vitest';
import { StepResults } from './step-results.js';

describe('step results handed on in-process', () => {
  afterEach(() => void vi.useRealTimers());

  it('hands on a copy of every input at once, or none', () => {
    const handed = new StepResults();
    const result = { text: 'a', list: [1, { deep: true }] };
    handed.remember('a', result);
    // One input missing: nothing is taken, the step reads the store.
    expect(handed.take(['a', 'b'])).toBeUndefined();
    expect(handed.size).toBe(1);
    handed.remember('b', undefined);
    const values = handed.take(['a', 'b'])!;
    expect(values.get('a')).toEqual(result);
    expect(values.get('a')).not.toBe(result);
    expect([...values.keys()]).toEqual(['a', 'b']);
    expect(values.get('b')).toBeUndefined();
    // Taken once: a second step waiting on the same task reads the store.
    expect(handed.take(['a'])).toBeUndefined();
    expect(handed.size).toBe(0);
  });

  it('gives what the store would: the stored JSON, which a step changing its input cannot change', () => {
    const handed = new StepResults();
    const returned = { when: new Date(0), gone: undefined, kept: 1 };
    handed.remember('a', returned);
    const got = handed.take(['a'])!.get('a') as Record<string, unknown>;
    expect(got).toEqual({ when: '1970-01-01T00:00:00.000Z', kept: 1 });
    expect('gone' in got).toBe(false);
    got.kept = 2;
    expect(returned.kept).toBe(1);
  });

  it('remembers only a workflow member with a parent, by its task id, and only its result', () => {
    const handed = new StepResults();
    const envelope = { result: { ok: true }, attempt: 1 };
    handed.completed({ id: 'lone', parentKey: undefined, data: { wf: { root: 'lone' } } as never }, envelope);
    handed.completed({ id: 'link', parentKey: 'q:p', data: { of: {} } as never }, envelope);
    expect(handed.size).toBe(0);
    handed.completed({ id: 'step', parentKey: 'q:p', data: { wf: { root: 'p' } } as never }, envelope);
    expect(handed.take(['step'])?.get('step')).toEqual({ ok: true });
  });

  it('keeps a bounded number of results for a bounded time', () => {
    let now = 1_000;
    const handed = new StepResults({ maxEntries: 3, maxAgeMs: 100, now: () => now });
    for (const id of ['a', 'b', 'c', 'd']) handed.remember(id, id);
    expect(handed.size).toBe(3);
    expect(handed.take(['a'])).toBeUndefined();
    expect(handed.take(['b'])?.get('b')).toBe('b');
    now += 101;
    // Too old to hand on (its step ran elsewhere): not taken, and dropped at the next remember.
    expect(handed.take(['c'])).toBeUndefined();
    handed.remember('e', 'e');
    expect(handed.size).toBe(1);
    expect(handed.take(['e'])?.get('e')).toBe('e');
  });

  it('lets go of results nobody takes once they are too old, though nothing else is remembered', () => {
    vi.useFakeTimers();
    const handed = new StepResults({ maxAgeMs: 100 });
    handed.remember('a', { big: 'x'.repeat(1_000) });
    vi.advanceTimersByTime(50);
    handed.remember('b', 'b');
    // Swept every maxAgeMs: a result goes within twice that.
    vi.advanceTimersByTime(150);
    expect(handed.size).toBe(0);
    handed.remember('c', 'c');
    handed.clear();
    expect(handed.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
