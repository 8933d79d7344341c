import { ValidationError } from '../core/errors.js';
import type { Store } from '../engine/store.js';
import type { LimitSpec, SharedLimits } from '../core/task-context.js';

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason as Error);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function checkSpec(spec: LimitSpec): void {
  const bad = (['concurrency', 'perMinute'] as const).filter(
    (k) => spec[k] !== undefined && !(Number.isInteger(spec[k]) && (spec[k] as number) >= 1),
  );
  if (bad.length)
    throw new ValidationError(
      bad.map((k) => ({ field: `limits.${k}`, message: 'must be a whole number >= 1' })),
    );
}

/**
 * Limits that hold across every worker on the store (concurrent requests and requests per minute
 * to one provider, say). A crashed holder's slot frees itself when its lease runs out.
 */
export class LimitGate {
  private seq = 0;

  constructor(
    private readonly store: Store,
    private readonly holderPrefix: string,
    private readonly leaseMs = 60_000,
  ) {}

  async acquire(key: string, spec: LimitSpec, signal: AbortSignal): Promise<() => void> {
    checkSpec(spec);
    const holder = `${this.holderPrefix}:${++this.seq}`;
    let backoff = 20;
    for (;;) {
      signal.throwIfAborted();
      let leased = false;
      if (spec.concurrency) {
        leased = await this.store.acquireLease(key, holder, spec.concurrency, this.leaseMs);
        if (!leased) {
          await pause(backoff + Math.random() * backoff, signal);
          backoff = Math.min(backoff * 1.5, 500);
          continue;
        }
      }
      if (spec.perMinute) {
        const hit = await this.store.tryHit(key, spec.perMinute, 60_000);
        if (!hit.ok) {
          // Do not sit on a concurrency slot while waiting for the next minute.
          if (leased) await this.store.releaseLease(key, holder);
          await pause(Math.min(hit.retryAfterMs, 5_000) + Math.random() * 50, signal);
          continue;
        }
      }
      break;
    }
    const renew = spec.concurrency
      ? setInterval(
          () =>
            void this.store.acquireLease(key, holder, spec.concurrency!, this.leaseMs).catch(() => undefined),
          this.leaseMs / 3,
        )
      : undefined;
    renew?.unref();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      clearInterval(renew);
      if (spec.concurrency) void this.store.releaseLease(key, holder).catch(() => undefined);
    };
  }

  /** The task-scoped face: waits end when the task stops, and every slot is freed at its end. */
  forTask(): TaskSlots {
    return new TaskSlots(this);
  }
}

/** One task's use of the gate. Nothing is allocated until the task asks for a slot: most never do. */
export class TaskSlots implements SharedLimits {
  private controller: AbortController | undefined;
  private stopped: Error | undefined;
  private held: Set<() => void> | undefined;

  constructor(private readonly gate: LimitGate) {}

  async acquire(key: string, spec: LimitSpec): Promise<() => void> {
    this.controller ??= new AbortController();
    if (this.stopped) this.controller.abort(this.stopped);
    const release = await this.gate.acquire(key, spec, this.controller.signal);
    const once = () => {
      this.held?.delete(once);
      release();
    };
    (this.held ??= new Set()).add(once);
    return once;
  }

  stop(reason: Error): void {
    this.stopped ??= reason;
    this.controller?.abort(reason);
  }

  releaseAll(): void {
    if (this.held) for (const release of [...this.held]) release();
  }
}
