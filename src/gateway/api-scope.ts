/**
 * What every authenticated API scope of the gateway shares (`/api`, `/flower/api`): the caller's
 * principal set by the auth hook, the per-user rate limit, a 503's `retry-after`, and a record as
 * clients may see it.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TaskRecord } from '../core/task.js';
import { bearer, type Principal, type Verifier } from './auth.js';
import { registerUserRateLimit, type UserRateLimit } from './rate-limit.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** The caller, as the scope's auth hook verified them. */
export function principal(request: FastifyRequest): Principal {
  if (!request.principal) throw new Error('route is missing its auth hook');
  return request.principal;
}

/** A record as clients see it: never a stack trace (it shows the server's code and paths). */
export function publicRecord(record: TaskRecord): TaskRecord {
  if (!record.error?.stack) return record;
  const { stack: _stack, ...error } = record.error;
  return { ...record, error };
}

export interface ApiScopeOptions {
  verify: Verifier;
  rateLimit: UserRateLimit;
  /** Seconds a 503 for an unreachable store says to wait, when the error does not say. */
  retryAfterS: () => number;
}

/** Adds the hooks of an authenticated scope: retry-after on a 503, auth, then the user's rate limit. */
export async function secureApiScope(api: FastifyInstance, options: ApiScopeOptions): Promise<void> {
  // A 503 for an unreachable store says when to try again, as a 429 does.
  api.addHook('onError', async (_request, reply, error) => {
    const e = error as { code?: unknown; details?: { retry_after_s?: unknown } };
    if (e.code === 'STORE_UNAVAILABLE') {
      const after = e.details?.retry_after_s;
      void reply.header('retry-after', String(typeof after === 'number' ? after : options.retryAfterS()));
    }
  });
  api.addHook('onRequest', async (request) => {
    request.principal = await options.verify(bearer(request.headers.authorization));
  });
  // Its hook runs on each route after the one above: it counts the authenticated user.
  await registerUserRateLimit(api, options.rateLimit, (request) => principal(request).userId);
}
