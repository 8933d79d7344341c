// The HTTP side of the origin policy on @fastify/cors (socket.io's side: gateway-security and
// gateway-isolation, which also run these cases against a whole gateway).
import fastifyCors from '@fastify/cors';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../core/logger.js';
import { errorReplyOptions, installErrorReplies } from './error-replies.js';
import { corsOptions } from './origin.js';

const LISTED = 'https://app.example.com';

describe('CORS on HTTP', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = Fastify(errorReplyOptions(silentLogger));
    installErrorReplies(app);
    await app.register(fastifyCors, corsOptions([LISTED]));
    app.get('/api/tasks', async () => ({ tasks: [] }));
    await app.ready();
  });
  afterAll(async () => app.close());

  const get = (headers: Record<string, string>, method: 'GET' | 'OPTIONS' = 'GET') =>
    app.inject({ method, url: '/api/tasks', headers: { host: 'gw.internal:8000', ...headers } });

  it('echoes a listed origin and the gateway’s own, with credentials, never `*`', async () => {
    for (const origin of [LISTED, 'http://gw.internal:8000']) {
      const ok = await get({ origin });
      expect(ok.statusCode, origin).toBe(200);
      expect(ok.headers['access-control-allow-origin']).toBe(origin);
      expect(ok.headers['access-control-allow-credentials']).toBe('true');
      expect(ok.headers.vary).toMatch(/origin/i);
    }
    const plain = await get({});
    expect(plain.statusCode).toBe(200);
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('refuses any other origin with 403 FORBIDDEN in the error shape, preflight included', async () => {
    for (const method of ['GET', 'OPTIONS'] as const)
      for (const origin of ['https://evil.example', 'https://gw.internal:8000', 'null']) {
        const refused = await get({ origin, 'access-control-request-method': 'POST' }, method);
        expect(refused.statusCode, `${method} ${origin}`).toBe(403);
        expect(refused.headers['access-control-allow-origin']).toBeUndefined();
        expect(refused.json()).toEqual({
          error: { code: 'FORBIDDEN', message: `origin ${origin} is not allowed`, details: {} },
        });
      }
  });

  it('answers a preflight 204 with the methods, headers and max-age, even without its request headers', async () => {
    for (const extra of [{ 'access-control-request-method': 'POST' }, {}] as Array<Record<string, string>>) {
      const preflight = await get({ origin: LISTED, ...extra }, 'OPTIONS');
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers).toMatchObject({
        'access-control-allow-origin': LISTED,
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': 'authorization, content-type',
        'access-control-max-age': '600',
      });
    }
    // Without Origin it is no preflight: the route table's 405.
    expect((await get({}, 'OPTIONS')).statusCode).toBe(405);
  });
});
