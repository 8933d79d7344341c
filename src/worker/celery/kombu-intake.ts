/**
 * Celery's queues as kombu's Redis transport lays them out (kombu 5.2, kombu/transport/redis.py),
 * read so that nothing is lost whenever the reader dies:
 *
 * - A queue is a list per priority step: `queue` (priority 0) and `queue\x06\x163`, `\x06\x166`,
 *   `\x06\x169` (kombu's `sep` and PRIORITY_STEPS; a message's priority is clamped to 0–9 and
 *   goes to the list of the step at or below it). Producers LPUSH; consumers take from the right,
 *   priority step first, then queue (kombu's BRPOP key order), queues rotated for fairness.
 * - Taking moves a message into `unacked` (delivery_tag → `[message, exchange, routing_key]`) and
 *   `unacked_index` (delivery_tag → epoch seconds) in one Lua step (lua/kombu-take.lua), where
 *   kombu's BRPOP + QoS.append leaves a window; an ack removes it from both.
 * - What stays in `unacked` longer than the visibility timeout (kombu's default 3600 s) goes back
 *   to its queue, as kombu's restore_visible does: under `unacked_mutex` (a redis-py Lock:
 *   SET NX PX, released only by its holder), newest first, marked `redelivered`.
 *
 * Waiting on empty lists neither spins nor misses much: BLMOVE of a list onto itself blocks until
 * it holds a message and then leaves it where it was (a wait that consumes nothing). It watches
 * one list, the one a message last came from (where a producer's routed priority puts them),
 * bounded by `pollMs`, after which every list is looked at again.
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from '../../core/logger.js';
import { readScript } from '../../core/script-files.js';

const TAKE = readScript('./lua/kombu-take.lua', import.meta.url);
const ACK = readScript('./lua/kombu-ack.lua', import.meta.url);
const RESTORE = readScript('./lua/kombu-restore.lua', import.meta.url);
const UNLOCK = readScript('./lua/kombu-unlock.lua', import.meta.url);

/** kombu's Redis names (Channel attributes of the same names). */
export const KOMBU = {
  sep: '\x06\x16',
  prioritySteps: [0, 3, 6, 9] as const,
  unacked: 'unacked',
  unackedIndex: 'unacked_index',
  unackedMutex: 'unacked_mutex',
  unackedMutexExpireS: 300,
  bindingPrefix: '_kombu.binding.',
} as const;

/** The bridge's own keys beside Celery's (unprefixed, as Celery's are). */
export const BRIDGE_KEYS = {
  /** Revoked Celery ids, scored by when (a sorted set trimmed to REVOKED_TTL_S). */
  revoked: 'aiecs:celery:revoked',
  /** Messages refused by the bridge, newest first (a dead-letter list of at most DEAD_LETTER_MAX). */
  rejected: 'aiecs:celery:rejected',
  /** A Celery id's aiecs task id, when the seed's task_id argument chose another one. */
  taskOf: (celeryId: string) => `aiecs:celery:task:${celeryId}`,
} as const;

/** How long a revoke is remembered: Celery's own (REVOKE_EXPIRES, 10,800 s). */
export const REVOKED_TTL_S = 10_800;
/** How long a Celery id's task id is kept: a week, as long as anyone revokes by it. */
const TASK_OF_TTL_S = 7 * 86_400;
const DEAD_LETTER_MAX = 1_000;

/** The list key of a queue at a priority step (kombu's `_q_for_pri`). */
export function listKey(queue: string, step: number): string {
  return step === 0 ? queue : `${queue}${KOMBU.sep}${step}`;
}

/** The queue a list key belongs to. */
export function queueOfKey(key: string): string {
  const at = key.indexOf(KOMBU.sep);
  return at < 0 ? key : key.slice(0, at);
}

export interface TakenMessage {
  /** The list it came from. */
  key: string;
  queue: string;
  /** The envelope's text as the producer wrote it. */
  raw: string;
  /** Its delivery tag; '' when the envelope was unreadable (then it is dead-lettered already). */
  tag: string;
  /** Its Celery id was revoked before it was taken. */
  revoked: boolean;
}

export interface KombuIntakeOptions {
  url: string;
  queues: readonly string[];
  visibilityTimeoutS: number;
  logger: Logger;
  /** The longest wait before every list is looked at again (default 100 ms). */
  pollMs?: number;
}

type Scripts = {
  kombuTake(numKeys: number, ...args: Array<string | number>): Promise<string[]>;
  kombuAck(...args: Array<string | number>): Promise<number>;
  kombuRestore(numKeys: number, ...args: Array<string | number>): Promise<number>;
  kombuUnlock(key: string, token: string): Promise<number>;
};

export class KombuIntake {
  readonly client: Redis;
  /** Only for the blocking wait: a blocked connection answers nothing else. */
  private readonly waiter: Redis;
  private readonly scripts: Scripts;
  private turn = 0;
  private hot: string;
  private readonly pollS: number;

  constructor(private readonly options: KombuIntakeOptions) {
    this.client = new Redis(options.url, { maxRetriesPerRequest: 2, lazyConnect: true });
    this.waiter = new Redis(options.url, { maxRetriesPerRequest: 1, lazyConnect: true });
    for (const c of [this.client, this.waiter])
      c.on('error', (error: Error) =>
        options.logger.debug({ err: error.message }, 'Celery broker connection'),
      );
    this.client.defineCommand('kombuTake', { lua: TAKE });
    this.client.defineCommand('kombuAck', { numberOfKeys: 4, lua: ACK });
    this.client.defineCommand('kombuRestore', { lua: RESTORE });
    this.client.defineCommand('kombuUnlock', { numberOfKeys: 1, lua: UNLOCK });
    this.scripts = this.client as unknown as Scripts;
    this.hot = options.queues[0] ?? 'celery';
    this.pollS = (options.pollMs ?? 100) / 1000;
  }

  async connect(): Promise<void> {
    await Promise.all([this.client.connect(), this.waiter.connect()]);
  }

  /** Every list, priority step first, then queue, the queues rotated one place per call. */
  private keys(): string[] {
    const queues = this.options.queues;
    const start = this.turn++ % queues.length;
    const rotated = [...queues.slice(start), ...queues.slice(0, start)];
    return KOMBU.prioritySteps.flatMap((step) => rotated.map((q) => listKey(q, step)));
  }

  /** Takes up to `max` messages into unacked (see lua/kombu-take.lua). */
  async take(max: number): Promise<TakenMessage[]> {
    const keys = [
      ...this.keys(),
      KOMBU.unacked,
      KOMBU.unackedIndex,
      BRIDGE_KEYS.revoked,
      BRIDGE_KEYS.rejected,
    ];
    const flat = await this.scripts.kombuTake(
      keys.length,
      ...keys,
      max,
      Date.now() / 1000,
      KOMBU.sep,
      DEAD_LETTER_MAX,
    );
    const taken: TakenMessage[] = [];
    for (let i = 0; i + 3 < flat.length; i += 4) {
      const key = flat[i]!;
      taken.push({
        key,
        queue: queueOfKey(key),
        raw: flat[i + 1]!,
        tag: flat[i + 2]!,
        revoked: flat[i + 3] === '1',
      });
    }
    const last = taken[taken.length - 1];
    if (last) this.hot = last.key;
    return taken;
  }

  /**
   * Acks a message; maps its Celery id to the task id when they differ. Returns whether the id
   * was revoked meanwhile (see lua/kombu-ack.lua).
   */
  async ack(message: TakenMessage, celeryId: string, taskId: string): Promise<boolean> {
    const mapped = taskId === celeryId ? '' : taskId;
    const revoked = await this.scripts.kombuAck(
      KOMBU.unacked,
      KOMBU.unackedIndex,
      BRIDGE_KEYS.revoked,
      BRIDGE_KEYS.taskOf(celeryId),
      message.tag,
      celeryId,
      mapped,
      TASK_OF_TTL_S,
    );
    return revoked === 1;
  }

  /** Acks a message that will not become a task, keeping its text in the dead-letter list. */
  async reject(message: TakenMessage): Promise<void> {
    await this.client
      .multi()
      .lpush(BRIDGE_KEYS.rejected, message.raw)
      .ltrim(BRIDGE_KEYS.rejected, 0, DEAD_LETTER_MAX - 1)
      .hdel(KOMBU.unacked, message.tag)
      .zrem(KOMBU.unackedIndex, message.tag)
      .exec();
  }

  /** Puts a taken message back at the far end of its list (kombu's reject with requeue). */
  async requeue(message: TakenMessage): Promise<void> {
    await this.scripts.kombuRestore(
      3,
      KOMBU.unacked,
      KOMBU.unackedIndex,
      message.key,
      message.tag,
      '',
      message.raw,
      'left',
    );
  }

  /**
   * kombu's restore_visible: every message unacked for longer than the visibility timeout goes
   * back to its queue, unless another restorer holds the mutex. Returns how many were restored.
   */
  async restoreVisible(): Promise<number> {
    const token = randomBytes(16).toString('hex');
    const locked = await this.client.set(
      KOMBU.unackedMutex,
      token,
      'PX',
      KOMBU.unackedMutexExpireS * 1000,
      'NX',
    );
    if (locked !== 'OK') return 0;
    let restored = 0;
    try {
      const ceil = Date.now() / 1000 - this.options.visibilityTimeoutS;
      const tags = await this.client.zrevrangebyscore(KOMBU.unackedIndex, ceil, 0);
      for (let i = 0; i < tags.length; i += 100) {
        const chunk = tags.slice(i, i + 100);
        const entries = await this.client.hmget(KOMBU.unacked, ...chunk);
        for (const [j, tag] of chunk.entries()) restored += await this.restoreOne(tag, entries[j] ?? null);
      }
    } finally {
      await this.scripts.kombuUnlock(KOMBU.unackedMutex, token).catch(() => 0);
    }
    return restored;
  }

  private async restoreOne(tag: string, entry: string | null): Promise<number> {
    if (entry === null) {
      await this.client.zrem(KOMBU.unackedIndex, tag);
      return 0;
    }
    let payload: Record<string, unknown>;
    let exchange: unknown;
    let routingKey: unknown;
    try {
      [payload, exchange, routingKey] = JSON.parse(entry) as [Record<string, unknown>, unknown, unknown];
      markRedelivered(payload);
    } catch {
      // Not kombu's shape: leave it (kombu logs "Could not restore message" and drops the index entry).
      this.options.logger.warn({ tag }, 'Celery unacked entry unreadable: not restored');
      await this.client.zrem(KOMBU.unackedIndex, tag);
      return 0;
    }
    const queues = await this.lookup(String(exchange ?? ''), String(routingKey ?? ''));
    return this.scripts.kombuRestore(
      2 + queues.length,
      KOMBU.unacked,
      KOMBU.unackedIndex,
      ...queues,
      tag,
      entry,
      JSON.stringify(payload),
      'right',
    );
  }

  /** kombu's _lookup for direct exchanges: the anonymous exchange routes by the key itself. */
  private async lookup(exchange: string, routingKey: string): Promise<string[]> {
    if (!exchange) return [routingKey];
    const bindings = await this.client.smembers(`${KOMBU.bindingPrefix}${exchange}`);
    const queues = bindings
      .map((b) => b.split(KOMBU.sep))
      .filter(([key]) => key === routingKey)
      .map(([, , queue]) => queue)
      .filter((q): q is string => !!q);
    return queues.length > 0 ? queues : [routingKey];
  }

  /**
   * Waits until the list a message last came from holds one, or `pollMs` passed; consumes
   * nothing (BLMOVE onto itself). Rejects when the connection closes.
   */
  async waitForMessage(): Promise<void> {
    await this.waiter.blmove(this.hot, this.hot, 'RIGHT', 'RIGHT', this.pollS);
  }

  /** Remembers revoked Celery ids (for messages still in a list) and forgets old ones. */
  async revoke(ids: readonly string[]): Promise<void> {
    const now = Date.now() / 1000;
    const multi = this.client.multi();
    for (const id of ids) multi.zadd(BRIDGE_KEYS.revoked, now, id);
    multi.zremrangebyscore(BRIDGE_KEYS.revoked, '-inf', now - REVOKED_TTL_S);
    await multi.exec();
  }

  /** The aiecs task ids of Celery ids (the id itself unless the seed's task_id chose another). */
  async taskIds(celeryIds: readonly string[]): Promise<string[]> {
    if (celeryIds.length === 0) return [];
    const mapped = await this.client.mget(...celeryIds.map((id) => BRIDGE_KEYS.taskOf(id)));
    return celeryIds.map((id, i) => mapped[i] ?? id);
  }

  /** Ends a wait under way (and every later one): the first step of closing. */
  stopWaiting(): void {
    this.waiter.disconnect();
  }

  close(): void {
    this.waiter.disconnect();
    this.client.disconnect();
  }
}

/** kombu's _do_restore_message: the message says it was delivered before. */
function markRedelivered(payload: Record<string, unknown>): void {
  const headers = payload.headers;
  if (headers && typeof headers === 'object') (headers as Record<string, unknown>).redelivered = true;
  const properties = payload.properties as Record<string, unknown> | undefined;
  const info = properties?.delivery_info;
  if (info && typeof info === 'object') (info as Record<string, unknown>).redelivered = true;
}
