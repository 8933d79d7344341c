import { StoreUnavailableError } from '../core/errors.js';
import type { Store } from './store.js';
import { isStoreConnectionError } from './store.js';

/** What a guarded call is told: whether it was given up (its caller has had its answer). */
export interface GuardedCall {
  readonly givenUp: boolean;
}

/**
 * Bounds the store calls made while a caller waits (an HTTP request, a CLI command, a library
 * call), so an outage is a prompt StoreUnavailableError (HTTP 503) instead of a hang:
 *
 * - a store known to be down (a Redis connection not ready) is refused before anything is sent;
 * - a call that takes longer than `timeoutMs` is given up, and told so (`givenUp`), so it sends
 *   nothing more;
 * - after such a timeout (a store that accepts connections but does not answer), one call at a
 *   time goes through to find out whether it is back; the others are refused at once, so calls
 *   do not pile up behind the silent store.
 */
export class StoreGuard {
  private suspect = false;
  private probing = false;

  constructor(
    readonly timeoutMs: number,
    /** The store once open (before that, nothing is known about it). */
    private readonly store: () => Store | undefined,
  ) {}

  /** What a 503 tells the caller to wait before trying again (the Retry-After header). */
  get retryAfterS(): number {
    return Math.max(1, Math.ceil(this.timeoutMs / 1000));
  }

  /**
   * `probe: false` for a call with a fallback of its own (the shared rate limit): after a timeout
   * it is refused at once rather than being the call that waits to find out.
   */
  async run<T>(
    what: string,
    call: (state: GuardedCall) => Promise<T>,
    options: { probe?: boolean } = {},
  ): Promise<T> {
    const store = this.store();
    if (store?.isUnreachable()) {
      throw this.unavailable(`cannot ${what}: the store ${store.displayUrl} is unreachable; try again later`);
    }
    let probe = false;
    if (this.suspect) {
      if (this.probing || options.probe === false) {
        throw this.unavailable(
          `cannot ${what}: the store did not answer within ${this.timeoutMs} ms; try again later`,
        );
      }
      this.probing = probe = true;
    }
    // A plain object, not an AbortSignal: making a signal costs more than the rest of a call here.
    const state = { givenUp: false };
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        state.givenUp = true;
        reject(this.unavailable(`cannot ${what}: the store did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    });
    try {
      const value = await Promise.race([call(state), timeout]);
      this.suspect = false;
      return value;
    } catch (error) {
      if (state.givenUp) {
        this.suspect = true;
        throw error;
      }
      if (error instanceof StoreUnavailableError) {
        // Opening the store failed, say: its message is the one to show, with when to retry.
        if (error.details.retry_after_s !== undefined) throw error;
        throw new StoreUnavailableError(
          error.message,
          { ...error.details, retry_after_s: this.retryAfterS },
          { cause: error },
        );
      }
      if (isStoreConnectionError(error)) {
        throw this.unavailable(
          `cannot ${what}: the store is unreachable (${(error as Error).message})`,
          error,
        );
      }
      // The store answered (with a conflict, a missing task, …): it is there.
      this.suspect = false;
      throw error;
    } finally {
      clearTimeout(timer);
      if (probe) this.probing = false;
    }
  }

  private unavailable(message: string, cause?: unknown): StoreUnavailableError {
    return new StoreUnavailableError(
      message,
      { retry_after_s: this.retryAfterS },
      cause === undefined ? undefined : { cause },
    );
  }
}
