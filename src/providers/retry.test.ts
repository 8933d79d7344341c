import { describe, expect, it } from 'vitest';
import { RetryableError } from '../core/errors.js';
import { ProviderError } from './errors.js';
import { backoffMs, parseRetryAfter, withRetries } from './retry.js';

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');

  it('reads seconds', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after': '2' }), now)).toBe(2000);
    expect(parseRetryAfter(new Headers({ 'retry-after': '0' }), now)).toBe(0);
    expect(parseRetryAfter(new Headers({ 'retry-after': '1.5' }), now)).toBe(1500);
    expect(parseRetryAfter({ 'Retry-After': ' 3 ' }, now)).toBe(3000);
  });

  it('reads an HTTP-date, never negative', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:05 GMT' }), now)).toBe(5000);
    expect(parseRetryAfter({ 'retry-after': 'Tue, 31 Dec 2024 23:59:00 GMT' }, now)).toBe(0);
  });

  it('prefers retry-after-ms', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now)).toBe(250);
    expect(parseRetryAfter({ 'retry-after-ms': '12.2' }, now)).toBe(13);
    expect(parseRetryAfter({ 'retry-after-ms': 'soon', 'retry-after': '1' }, now)).toBe(1000);
  });

  it('gives undefined for nothing or nonsense', () => {
    expect(parseRetryAfter(undefined)).toBeUndefined();
    expect(parseRetryAfter(new Headers())).toBeUndefined();
    expect(parseRetryAfter({ 'retry-after': 'later' })).toBeUndefined();
    expect(parseRetryAfter({ 'retry-after': '-1' })).toBeUndefined();
    expect(parseRetryAfter({ 'retry-after': ['2', '3'] }, now)).toBe(2000);
  });
});

describe('backoffMs', () => {
  it('doubles from the base with jitter between half and all, capped', () => {
    expect(backoffMs(0, 500, 30_000, () => 0)).toBe(250);
    expect(backoffMs(0, 500, 30_000, () => 1)).toBe(500);
    expect(backoffMs(2, 500, 30_000, () => 1)).toBe(2000);
    expect(backoffMs(10, 500, 30_000, () => 1)).toBe(30_000);
  });
});

describe('withRetries', () => {
  const policy = { maxRetries: 2, baseMs: 1, maxWaitMs: 1000 };
  const signal = new AbortController().signal;

  it('retries retryable errors and returns the first success', async () => {
    const waits: number[] = [];
    let calls = 0;
    const result = await withRetries(
      async (attempt) => {
        calls++;
        if (attempt < 3) throw new RetryableError('busy', attempt === 1 ? 5 : undefined);
        return 'ok';
      },
      policy,
      signal,
      { onRetry: (n) => waits.push(n.waitMs) },
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    expect(waits[0]).toBe(5); // what the server asked
  });

  it('throws the last error once retries are used up', async () => {
    let calls = 0;
    const error = await withRetries(
      async () => {
        calls++;
        throw new RetryableError(`busy ${calls}`, 1);
      },
      policy,
      signal,
    ).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as Error).message).toBe('busy 3');
  });

  it('does not retry errors that are not retryable, or when vetoed', async () => {
    let calls = 0;
    const refused = new ProviderError('openai', 401, 'bad key');
    await expect(
      withRetries(
        async () => {
          calls++;
          throw refused;
        },
        policy,
        signal,
      ),
    ).rejects.toBe(refused);
    expect(calls).toBe(1);
    calls = 0;
    await expect(
      withRetries(
        async () => {
          calls++;
          throw new RetryableError('x', 1);
        },
        policy,
        signal,
        { canRetry: () => false },
      ),
    ).rejects.toBeInstanceOf(RetryableError);
    expect(calls).toBe(1);
  });

  it('hands a wait longer than the cap to the caller at once', async () => {
    let calls = 0;
    const error = await withRetries(
      async () => {
        calls++;
        throw new RetryableError('slow down', 60_000);
      },
      policy,
      signal,
    ).catch((e: unknown) => e);
    expect(calls).toBe(1);
    expect((error as RetryableError).retryAfterMs).toBe(60_000);
  });

  it('stops waiting when the signal aborts, with its reason', async () => {
    const controller = new AbortController();
    const reason = new Error('cancelled');
    const running = withRetries(
      async () => {
        setTimeout(() => controller.abort(reason), 5);
        throw new RetryableError('busy', 900);
      },
      policy,
      controller.signal,
    );
    await expect(running).rejects.toBe(reason);
  });
});
