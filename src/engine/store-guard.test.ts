import { describe, expect, it } from 'vitest';
import { StoreUnavailableError, TaskConflictError } from '../core/errors.js';
import type { Store } from './store.js';
import { StoreGuard } from './store-guard.js';

/** The part of a store the guard reads: whether it is known to be down, and its URL. */
function fakeStore(down: { value: boolean }): Store {
  return { displayUrl: 'redis://fake', isUnreachable: () => down.value } as unknown as Store;
}

const never = () => new Promise<never>(() => undefined);

describe('StoreGuard', () => {
  it('refuses a call without running it while the store is known to be down', async () => {
    const down = { value: true };
    const guard = new StoreGuard(60_000, () => fakeStore(down));
    let ran = false;
    const error = await guard
      .run('read the task', async () => {
        ran = true;
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreUnavailableError).message).toBe(
      'cannot read the task: the store redis://fake is unreachable; try again later',
    );
    expect((error as StoreUnavailableError).details).toEqual({ retry_after_s: 60 });
    expect(ran).toBe(false);
    down.value = false;
    await expect(guard.run('read the task', async () => 'ok')).resolves.toBe('ok');
  });

  it('gives up on a call the store does not answer, and tells the call', async () => {
    const guard = new StoreGuard(50, () => fakeStore({ value: false }));
    let state: { givenUp: boolean } | undefined;
    const error = await guard
      .run('submit', (s) => {
        state = s;
        return never();
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toBe('cannot submit: the store did not answer within 50 ms');
    expect(state?.givenUp).toBe(true);
  });

  it('after a timeout lets one call at a time find out whether the store is back', async () => {
    const guard = new StoreGuard(50, () => fakeStore({ value: false }));
    await expect(guard.run('read', never)).rejects.toThrow(StoreUnavailableError);

    let answer: (value: string) => void = () => undefined;
    const probe = guard.run('read', () => new Promise<string>((resolve) => (answer = resolve)));
    // While the probe waits, others are refused without being sent, and so are calls with a
    // fallback of their own even when no probe is under way.
    let sent = 0;
    const refused = await guard
      .run('read', async () => {
        sent += 1;
      })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StoreUnavailableError);
    expect(sent).toBe(0);
    answer('back');
    await expect(probe).resolves.toBe('back');

    await expect(guard.run('read', async () => 'again')).resolves.toBe('again');
    await expect(guard.run('count', async () => 'counted', { probe: false })).resolves.toBe('counted');
  });

  it('refuses calls with a fallback while the store is suspect', async () => {
    const guard = new StoreGuard(50, () => fakeStore({ value: false }));
    await expect(guard.run('read', never)).rejects.toThrow(StoreUnavailableError);
    let sent = 0;
    const counted = guard.run(
      'count',
      async () => {
        sent += 1;
      },
      { probe: false },
    );
    await expect(counted).rejects.toThrow(StoreUnavailableError);
    expect(sent).toBe(0);
  });

  it('turns a connection error into StoreUnavailableError and passes the store’s own answers on', async () => {
    const guard = new StoreGuard(60_000, () => fakeStore({ value: false }));
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const error = await guard.run('list tasks', () => Promise.reject(refused)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toBe(
      'cannot list tasks: the store is unreachable (connect ECONNREFUSED 127.0.0.1:1)',
    );
    expect((error as Error).cause).toBe(refused);
    const conflict = new TaskConflictError('t1');
    await expect(guard.run('submit', () => Promise.reject(conflict))).rejects.toBe(conflict);
  });
});
