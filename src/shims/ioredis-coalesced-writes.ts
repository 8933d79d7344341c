/**
 * ioredis writes every command to its socket the moment it is issued: a worker finishing a
 * hundred tasks in one turn of the event loop makes a hundred `write` system calls, each of
 * which also wakes the Redis server. Corking the socket at the first write of a turn and
 * uncorking it once the turn's synchronous code and promise reactions have run (the pattern
 * Node's stream documentation gives for `cork`) hands the kernel the same bytes, in the same
 * order, as one `writev`.
 *
 * Measured on the no-op throughput workload (10,000 tasks, 2 cores): about 8x fewer write system
 * calls and 10–12 µs less worker-process CPU per task (~15%); throughput itself moves little
 * there, where Redis's own work per task is the other half of the time.
 */

/** The part of a socket this needs: `net.Socket` and `tls.TLSSocket` both qualify. */
export interface CorkableStream {
  write(...args: never[]): boolean;
  cork(): void;
  uncork(): void;
}

const coalesced = new WeakSet<CorkableStream>();

/**
 * Makes `stream` batch the writes of each event-loop turn. Idempotent per stream; a reconnect
 * brings a new stream, which needs its own call.
 */
export function coalesceWrites(stream: CorkableStream): void {
  if (coalesced.has(stream)) return;
  coalesced.add(stream);
  const write = stream.write;
  let corked = false;
  const flush = () => {
    corked = false;
    stream.uncork();
  };
  stream.write = function (this: CorkableStream, ...args: never[]): boolean {
    if (!corked) {
      corked = true;
      stream.cork();
      // After the current turn's promise reactions too: process.nextTick callbacks queued while
      // they run are taken only once the microtask queue is empty.
      process.nextTick(flush);
    }
    return write.apply(this, args);
  };
}
