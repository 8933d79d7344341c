import fastifyRateLimit, {
  type FastifyRateLimitStore,
  type FastifyRateLimitStoreCtor,
} from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RateLimitedError } from '../core/errors.js';

/** A token bucket: `rate` tokens a second, holding at most `burst` (socket.io messages, realtime.ts). */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Seconds until one token is back. */
  waitS(): number {
    return Math.max(1, Math.ceil((1 - this.tokens) / this.rate));
  }
}

/** A counter every gateway on the store shares (Store.tryHit). */
export interface SharedCounter {
  tryHit(key: string, limit: number, windowMs: number): Promise<{ ok: boolean; retryAfterMs: number }>;
}

export interface UserRateLimit {
  /** Requests a second over time (AIECS_RATE_LIMIT_PER_S); 0 turns the limit off. */
  perSecond: number;
  /** Requests at once (AIECS_RATE_LIMIT_BURST). */
  burst: number;
  /** The store's counter, on a store several gateways share; none on the embedded store. */
  shared?: SharedCounter;
  /** The shared counter failed: the request went on under this gateway's own count. */
  onSharedError?: (error: Error) => void;
}

/** `burst` requests per `burst / perSecond` seconds (1 s at least): `perSecond` over time. */
export function limitWindowMs(perSecond: number, burst: number): number {
  return Math.max(1_000, Math.ceil((burst / perSecond) * 1000));
}

/**
 * Requests per user on every route of `api` (registered there, so /healthz, /metrics, the
 * OpenAPI document and the dashboard's files are not counted), through @fastify/rate-limit:
 * `burst` requests per window (limitWindowMs), keyed by the authenticated user, so call it on a
 * scope whose onRequest hook has set `request.principal` (route hooks run after the scope's). A
 * refused request is a RateLimitedError (429 RATE_LIMITED in the error table) with Retry-After.
 * On the embedded store the plugin's own in-memory count is the whole truth (one gateway); on a
 * shared store the count is the store's, across gateways (sharedWindowStore).
 */
export async function registerUserRateLimit(
  api: FastifyInstance,
  limit: UserRateLimit,
  userOf: (request: FastifyRequest) => string,
): Promise<void> {
  if (limit.perSecond <= 0) return;
  await api.register(fastifyRateLimit, {
    max: limit.burst,
    timeWindow: limitWindowMs(limit.perSecond, limit.burst),
    hook: 'onRequest',
    keyGenerator: userOf,
    ...(limit.shared ? { store: sharedWindowStore(limit.shared, limit.onSharedError) } : {}),
    // Retry-After only, as the gateway has always answered: no X-RateLimit-* headers.
    addHeaders: {
      'x-ratelimit-limit': false,
      'x-ratelimit-remaining': false,
      'x-ratelimit-reset': false,
      'retry-after': true,
    },
    addHeadersOnExceeding: {
      'x-ratelimit-limit': false,
      'x-ratelimit-remaining': false,
      'x-ratelimit-reset': false,
    },
    errorResponseBuilder: (_request, context) =>
      new RateLimitedError('too many requests; slow down', Math.max(1, Math.ceil(context.ttl / 1000))),
  });
}

/** Local windows kept before the expired ones are dropped (one per active user). */
const LOCAL_KEYS = 10_000;

/**
 * A @fastify/rate-limit store (its documented custom-store interface) over the store's shared
 * counter: this gateway's own window first, so a flood is refused without a round trip, then the
 * store's (`http:<user>` in Store.tryHit), which holds the user to the limit across every
 * gateway. With the store down the request is let through on this gateway's window alone: an
 * outage must not lock every user out.
 */
export function sharedWindowStore(
  counter: SharedCounter,
  onError?: (error: Error) => void,
): FastifyRateLimitStoreCtor {
  return class SharedWindowStore implements FastifyRateLimitStore {
    private readonly local = new Map<string, { count: number; start: number }>();

    incr(
      key: string,
      callback: (error: Error | null, result?: { current: number; ttl: number }) => void,
      timeWindow: number,
      max: number,
    ): void {
      const now = Date.now();
      if (this.local.size >= LOCAL_KEYS)
        for (const [k, w] of this.local) if (now - w.start >= timeWindow) this.local.delete(k);
      let window = this.local.get(key);
      if (!window || now - window.start >= timeWindow)
        this.local.set(key, (window = { count: 0, start: now }));
      const own = { current: ++window.count, ttl: window.start + timeWindow - now };
      if (own.current > max) return callback(null, own);
      counter.tryHit(`http:${key}`, max, timeWindow).then(
        (hit) => callback(null, hit.ok ? own : { current: max + 1, ttl: hit.retryAfterMs }),
        (error: unknown) => {
          onError?.(error as Error);
          callback(null, own);
        },
      );
    }

    /** One count per user over every route (no route sets its own limit). */
    child(): FastifyRateLimitStore {
      return this;
    }
  };
}
