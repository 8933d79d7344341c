/**
 * What the dashboard's feeds (task-watch.ts, stats-feed.ts) share: a `watch_<name>` /
 * `unwatch_<name>` pair of socket events with acks, and a timer (and whatever else costs, such as
 * a bridge listener) that runs only while someone watches.
 */
import type { Server, Socket } from 'socket.io';

type Ack = (reply: unknown) => void;

/**
 * Answers `watch_<name>` with what `watch` returns and `unwatch_<name>` with `{ ok: true }`, on
 * every socket; a socket that disconnects is unwatched.
 */
export function onWatchEvents(
  io: Server,
  name: string,
  watch: (socket: Socket) => unknown,
  unwatch: (socket: Socket) => void,
): void {
  io.on('connection', (socket) => {
    socket.on(`watch_${name}`, (_payload: unknown, ack?: Ack) => {
      const reply = watch(socket);
      if (typeof ack === 'function') ack(reply);
    });
    socket.on(`unwatch_${name}`, (_payload: unknown, ack?: Ack) => {
      unwatch(socket);
      if (typeof ack === 'function') ack({ ok: true });
    });
    socket.on('disconnect', () => unwatch(socket));
  });
}

/**
 * An interval that runs only while watched: `start` with each watcher (only the first starts it),
 * `stop` when the last has gone. `onStart` / `onStop` attach and detach what else is needed only then.
 */
export class WatchTimer {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly intervalMs: number,
    private readonly tick: () => void,
    private readonly onStart?: () => void,
    private readonly onStop?: () => void,
  ) {}

  get running(): boolean {
    return this.timer !== undefined;
  }

  start(): void {
    if (this.timer) return;
    this.onStart?.();
    this.timer = setInterval(this.tick, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.onStop?.();
  }
}
