import type { Redis as RedisClient } from 'ioredis';
import type { EventWriter } from './store.js';

/**
 * What BullMQ's updateProgress-3.lua and QueueEventsProducer.publishEvent do, for a batch: every
 * progress write stores the job's progress and adds a `progress` entry; every custom event adds its
 * entry. One stream, one MAXLEN (the queue's `opts.maxLenEvents`, set to BullMQ's 10,000 when
 * missing), in the order given. Answers 0 per item, or -1 for progress of a job that is gone.
 *
 * ARGV[1] is the job key prefix; then per item either `p <job id> <json>` or `e <n> <n field pairs>`.
 */
const WRITE_EVENTS = `
local maxEvents = redis.call('HGET', KEYS[2], 'opts.maxLenEvents')
if not maxEvents then
  maxEvents = 10000
  redis.call('HSET', KEYS[2], 'opts.maxLenEvents', maxEvents)
end
local results = {}
local i = 2
while i <= #ARGV do
  if ARGV[i] == 'p' then
    local id, data = ARGV[i + 1], ARGV[i + 2]
    local key = ARGV[1] .. id
    if redis.call('EXISTS', key) == 1 then
      redis.call('HSET', key, 'progress', data)
      redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxEvents, '*', 'event', 'progress', 'jobId', id, 'data', data)
      results[#results + 1] = 0
    else
      results[#results + 1] = -1
    end
    i = i + 3
  else
    local pairs = tonumber(ARGV[i + 1])
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxEvents, '*', unpack(ARGV, i + 2, i + 1 + pairs * 2))
    results[#results + 1] = 0
    i = i + 2 + pairs * 2
  end
end
return results`;

/** Items per script call: a batch keeps Redis busy for well under a millisecond. */
const MAX_BATCH = 500;

interface Pending {
  args: Array<string | number>;
  jobId: string | undefined;
  resolve: () => void;
  reject: (error: Error) => void;
}

type WriteEventsCommand = (
  events: string,
  meta: string,
  ...args: Array<string | number>
) => Promise<number[]>;

/**
 * A queue's progress writes and custom events, gathered over one turn of the event loop and sent as
 * one script call. Many tasks report at once (every timer that fired in this turn); one call each
 * cost the worker a write and a reply apiece, and Redis a script run apiece. Calls go out on one
 * connection, which runs them in order, so nothing is reordered and nothing waits for the previous
 * batch to come back.
 */
export class RedisEventBatch implements EventWriter {
  private pending: Pending[] = [];
  private scheduled = false;
  private readonly run: WriteEventsCommand;

  constructor(
    client: RedisClient,
    private readonly keyPrefix: string,
  ) {
    // defineCommand is idempotent per name: EVALSHA after the first call.
    if (!(client as unknown as Record<string, unknown>).aiecsWriteEvents)
      client.defineCommand('aiecsWriteEvents', { numberOfKeys: 2, lua: WRITE_EVENTS });
    const command = (client as unknown as { aiecsWriteEvents: WriteEventsCommand }).aiecsWriteEvents;
    this.run = command.bind(client);
  }

  progress(jobId: string, data: object): Promise<void> {
    return this.add(['p', jobId, JSON.stringify(data)], jobId);
  }

  publish(fields: Record<string, string | number>): Promise<void> {
    const args: Array<string | number> = ['e', 0];
    for (const name in fields) args.push(name, fields[name]!);
    args[1] = (args.length - 2) / 2;
    return this.add(args, undefined);
  }

  private add(args: Array<string | number>, jobId: string | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ args, jobId, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // setImmediate, not a microtask: it runs after every timer of this turn has reported.
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.pending;
    this.pending = [];
    for (let start = 0; start < all.length; start += MAX_BATCH)
      this.send(all.slice(start, start + MAX_BATCH));
  }

  private send(batch: Pending[]): void {
    const args: Array<string | number> = [this.keyPrefix];
    for (const item of batch) for (const arg of item.args) args.push(arg);
    this.run(`${this.keyPrefix}events`, `${this.keyPrefix}meta`, ...args).then(
      (results) => {
        batch.forEach((item, i) => {
          if (results[i] === -1)
            item.reject(new Error(`Missing key for job ${item.jobId ?? ''}. updateProgress`));
          else item.resolve();
        });
      },
      (error: Error) => batch.forEach((item) => item.reject(error)),
    );
  }
}
