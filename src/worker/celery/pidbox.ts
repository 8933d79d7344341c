/**
 * Celery's broadcast control channel on Redis (`app.control.revoke`, `AsyncResult.revoke`):
 * the `celery.pidbox` fanout exchange, which kombu's Redis transport turns into a PUBLISH on the
 * channel `/{db}.celery.pidbox` (its keyprefix_fanout `/{db}.` with the broker's database number,
 * and `/routing_key` after it when there is one: fanout_patterns). The message is a kombu
 * envelope whose body (base64 JSON) is `{method, arguments, destination, pattern, matcher}`;
 * headers carry `expires` (epoch seconds, 0 for none) after which a worker ignores it.
 *
 * Only `revoke` is handled: `arguments.task_id` (one id or a list) and `terminate`. Every revoke
 * is acted on whatever its `destination` (a Celery id names one task wherever it runs), and no
 * reply is sent (Celery's revoke asks for none unless `reply=True`).
 */
import { Redis } from 'ioredis';
import type { Logger } from '../../core/logger.js';

export interface RevokeRequest {
  ids: string[];
  /** Celery's terminate: stop the task if it is running (without it, only a task not started yet is dropped). */
  terminate: boolean;
}

export interface PidboxOptions {
  url: string;
  logger: Logger;
  onRevoke(request: RevokeRequest): Promise<void>;
}

/** The database number of a redis:// URL (its path), as kombu's virtual host; 0 when none. */
export function redisDb(url: string): number {
  const path = new URL(url).pathname.replace(/^\//, '');
  const db = path === '' ? 0 : Number(path);
  return Number.isInteger(db) && db >= 0 ? db : 0;
}

/** The pattern of the pidbox channel of a broker URL, with or without a routing key. */
export function pidboxPattern(url: string): string {
  return `/${redisDb(url)}.celery.pidbox*`;
}

/** A revoke in a pidbox message (a published kombu envelope); undefined for anything else. */
export function parseRevoke(text: string, now = Date.now()): RevokeRequest | undefined {
  let env: { body?: unknown; headers?: { expires?: unknown }; properties?: { body_encoding?: unknown } };
  try {
    env = JSON.parse(text) as typeof env;
    if (typeof env.body !== 'string') return undefined;
    const expires = env.headers?.expires;
    // 0 (AsyncResult.revoke sends it) is no expiry, as kombu's Mailbox reads it.
    if (typeof expires === 'number' && expires > 0 && expires * 1000 < now) return undefined;
    const body =
      env.properties?.body_encoding === 'base64'
        ? Buffer.from(env.body, 'base64').toString('utf8')
        : env.body;
    const control = JSON.parse(body) as { method?: unknown; arguments?: Record<string, unknown> };
    if (control.method !== 'revoke' || typeof control.arguments !== 'object' || control.arguments === null)
      return undefined;
    const raw = control.arguments.task_id;
    const ids = (Array.isArray(raw) ? raw : [raw]).filter(
      (id): id is string => typeof id === 'string' && id !== '',
    );
    if (ids.length === 0) return undefined;
    return { ids, terminate: control.arguments.terminate === true };
  } catch {
    return undefined;
  }
}

export class CeleryPidbox {
  private readonly subscriber: Redis;

  constructor(private readonly options: PidboxOptions) {
    this.subscriber = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: null });
    this.subscriber.on('error', (error: Error) =>
      options.logger.debug({ err: error.message }, 'Celery pidbox connection'),
    );
    this.subscriber.on('pmessage', (_pattern: string, _channel: string, message: string) => {
      const revoke = parseRevoke(message);
      if (!revoke) return;
      options
        .onRevoke(revoke)
        .catch((error: unknown) =>
          options.logger.warn({ err: (error as Error).message, ids: revoke.ids }, 'Celery revoke failed'),
        );
    });
  }

  /** Subscribed when this resolves: a revoke published afterwards is heard. */
  async start(): Promise<void> {
    await this.subscriber.connect();
    // ioredis subscribes again by itself after a reconnect.
    await this.subscriber.psubscribe(pidboxPattern(this.options.url));
  }

  close(): void {
    this.subscriber.disconnect();
  }
}
