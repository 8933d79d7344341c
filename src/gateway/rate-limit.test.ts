// The per-user limit of /api on @fastify/rate-limit: the 429 the gateway has always given, and
// the store that counts across gateways. The gateway suites check it end to end (gateway-http:
// one gateway; gateway-cluster: two on Redis).
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { errorReplyOptions, installErrorReplies } from './error-replies.js';
import {
  registerUserRateLimit,
  sharedWindowStore,
  type SharedCounter,
  type UserRateLimit,
} from './rate-limit.js';

/** A server like the gateway's: the user from a header (as the auth hook sets it), the limit on /api. */
async function server(limit: UserRateLimit): Promise<FastifyInstance> {
  const app = Fastify(errorReplyOptions(silentLogger));
  installErrorReplies(app);
  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.register(
    async (api) => {
      api.addHook('onRequest', async (request) => {
        (request as { user?: string }).user = String(request.headers['x-user']);
      });
      await registerUserRateLimit(api, limit, (request) => (request as { user?: string }).user!);
      api.get('/tasks', async () => ({ tasks: [] }));
    },
    { prefix: '/api' },
  );
  await app.ready();
  return app;
}

/** A shared counter that records its calls and answers as told. */
function counter(answer: () => Promise<{ ok: boolean; retryAfterMs: number }>) {
  const calls: string[] = [];
  const shared: SharedCounter = {
    tryHit: (key) => {
      calls.push(key);
      return answer();
    },
  };
  return { shared, calls };
}

/** One `incr` of a store made by sharedWindowStore, as the plugin calls it. */
function incr(store: ReturnType<typeof make>, key: string, windowMs: number, max: number) {
  return new Promise<{ current: number; ttl: number }>((resolve, reject) =>
    store.incr(key, (error, result) => (error ? reject(error) : resolve(result!)), windowMs, max),
  );
}
const make = (shared: SharedCounter, onError?: (error: Error) => void) =>
  new (sharedWindowStore(shared, onError))({});

describe('the per-user rate limit', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it('answers 429 RATE_LIMITED with Retry-After past the burst, per user, and leaves /healthz alone', async () => {
    // 3 per 30 s: nothing refills while the test runs.
    app = await server({ perSecond: 0.1, burst: 3 });
    const get = (user: string, url = '/api/tasks') =>
      app!.inject({ method: 'GET', url, headers: { 'x-user': user } });
    for (let i = 0; i < 3; i++) expect((await get('alice')).statusCode).toBe(200);
    const refused = await get('alice');
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({
      error: { code: 'RATE_LIMITED', details: { retry_after_s: expect.any(Number) } },
    });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(30);
    // As before: Retry-After only, no X-RateLimit-* headers, on refused and allowed requests.
    expect(Object.keys(refused.headers).filter((h) => h.startsWith('x-ratelimit'))).toEqual([]);
    const bob = await get('bob');
    expect(bob.statusCode).toBe(200);
    expect(Object.keys(bob.headers).filter((h) => h.startsWith('x-ratelimit'))).toEqual([]);
    for (let i = 0; i < 5; i++) expect((await get('alice', '/healthz')).statusCode).toBe(200);
  });

  it('is off with AIECS_RATE_LIMIT_PER_S=0', async () => {
    app = await server({ perSecond: 0, burst: 1 });
    for (let i = 0; i < 5; i++)
      expect(
        (await app.inject({ method: 'GET', url: '/api/tasks', headers: { 'x-user': 'u' } })).statusCode,
      ).toBe(200);
  });

  it('counts in the shared store on a shared store, refusing what it refuses, with its wait', async () => {
    let ok = true;
    const { shared, calls } = counter(async () =>
      ok ? { ok: true, retryAfterMs: 0 } : { ok: false, retryAfterMs: 4_200 },
    );
    app = await server({ perSecond: 0.1, burst: 5, shared });
    const get = () => app!.inject({ method: 'GET', url: '/api/tasks', headers: { 'x-user': 'carol' } });
    expect((await get()).statusCode).toBe(200);
    ok = false; // another gateway used up carol's window
    const refused = await get();
    expect(refused.statusCode).toBe(429);
    expect(refused.headers['retry-after']).toBe('5');
    expect(calls).toEqual(['http:carol', 'http:carol']);
  });

  it("refuses on this gateway's own window without asking the store, and falls back to it when the store fails", async () => {
    const up = counter(async () => ({ ok: true, retryAfterMs: 0 }));
    const store = make(up.shared);
    for (let i = 1; i <= 2; i++) expect((await incr(store, 'u', 60_000, 2)).current).toBe(i);
    const third = await incr(store, 'u', 60_000, 2);
    expect(third.current).toBeGreaterThan(2);
    expect(third.ttl).toBeGreaterThan(0);
    expect(up.calls).toHaveLength(2);

    const errors: Error[] = [];
    const down = counter(() => Promise.reject(new Error('store unavailable')));
    const alone = make(down.shared, (error) => errors.push(error));
    expect((await incr(alone, 'u', 60_000, 2)).current).toBe(1);
    expect((await incr(alone, 'u', 60_000, 2)).current).toBe(2);
    expect((await incr(alone, 'u', 60_000, 2)).current).toBe(3);
    expect(errors.map((e) => e.message)).toEqual(['store unavailable', 'store unavailable']);
  });
});
