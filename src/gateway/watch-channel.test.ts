import { EventEmitter } from 'node:events';
import type { Server } from 'socket.io';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WatchTimer, onWatchEvents } from './watch-channel.js';

describe('WatchTimer', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('runs only between the first start and the stop, attaching and detaching once', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const calls: string[] = [];
    const timer = new WatchTimer(
      100,
      () => calls.push('tick'),
      () => calls.push('start'),
      () => calls.push('stop'),
    );
    timer.stop();
    vi.advanceTimersByTime(300);
    expect(calls).toEqual([]);
    timer.start();
    timer.start();
    expect(timer.running).toBe(true);
    vi.advanceTimersByTime(250);
    timer.stop();
    timer.stop();
    vi.advanceTimersByTime(300);
    expect(calls).toEqual(['start', 'tick', 'tick', 'stop']);
    expect(timer.running).toBe(false);
  });
});

describe('onWatchEvents', () => {
  it('acks a watch with what the feed says, an unwatch with ok, and unwatches on disconnect', () => {
    const io = new EventEmitter();
    const socket = new EventEmitter();
    const seen: string[] = [];
    onWatchEvents(
      io as unknown as Server,
      'things',
      () => {
        seen.push('watch');
        return { ok: false, reason: 'r' };
      },
      () => seen.push('unwatch'),
    );
    io.emit('connection', socket);
    const acks: unknown[] = [];
    socket.emit('watch_things', {}, (reply: unknown) => acks.push(reply));
    socket.emit('unwatch_things', {}, (reply: unknown) => acks.push(reply));
    socket.emit('watch_things', {});
    socket.emit('disconnect');
    expect(seen).toEqual(['watch', 'unwatch', 'watch', 'unwatch']);
    expect(acks).toEqual([{ ok: false, reason: 'r' }, { ok: true }]);
  });
});
