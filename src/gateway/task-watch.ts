import type { Server, Socket } from 'socket.io';
import type { TaskChange } from '../core/wire-types.js';
import type { Principal } from './auth.js';
import type { BridgeEvent, EventBridge } from './event-bridge.js';
import { encodeEvent, writePacket } from './packet.js';
import { WatchTimer, onWatchEvents } from './watch-channel.js';

export type { TaskChange };

/** A frame at most this often per socket: a table repainted 4 times a second stays readable and cheap. */
export const TASK_CHANGES_INTERVAL_MS = 250;

function toChange(event: BridgeEvent & { kind: 'progress' }): TaskChange {
  const p = event.payload;
  const change: TaskChange = {
    task_id: p.task_id,
    user_id: p.user_id,
    task_name: p.task,
    queue: event.labels.queue,
    mode: event.labels.mode,
    service: event.labels.service,
    status: p.status,
    progress: p.progress,
    message: p.message,
    attempt: p.attempt,
    timestamp: p.timestamp,
  };
  if (p.error_code !== undefined) change.error_code = p.error_code;
  if (event.createdAt > 0) change.created_at = event.createdAt;
  return change;
}

/**
 * `watch_tasks`: every task change a socket may see (an admin's: all; a user's: their own), the
 * latest state per task, batched into one `task_changes` frame per interval. Changes are gathered
 * once per group (all admins; each user) and each frame is encoded once per group, so the cost
 * per event does not grow with the dashboards open. Nothing listens to the bridge while no one
 * watches.
 */
export class TaskWatch {
  private readonly admins = new Set<Socket>();
  private readonly users = new Map<string, Set<Socket>>();
  private adminPending = new Map<string, TaskChange>();
  private readonly userPending = new Map<string, Map<string, TaskChange>>();
  private readonly listener = (event: BridgeEvent) => this.onEvent(event);
  /** Flushes, and listens to the bridge, only while someone watches. */
  private readonly timer: WatchTimer;

  constructor(io: Server, bridge: EventBridge, intervalMs = TASK_CHANGES_INTERVAL_MS) {
    this.timer = new WatchTimer(
      intervalMs,
      () => this.flush(),
      () => bridge.on('event', this.listener),
      () => bridge.off('event', this.listener),
    );
    onWatchEvents(
      io,
      'tasks',
      (socket) => {
        this.watch(socket);
        return { ok: true };
      },
      (socket) => this.unwatch(socket),
    );
  }

  get watchers(): number {
    let n = this.admins.size;
    for (const sockets of this.users.values()) n += sockets.size;
    return n;
  }

  private watch(socket: Socket): void {
    const who = (socket.data as { principal: Principal }).principal;
    if (who.admin) this.admins.add(socket);
    else {
      let sockets = this.users.get(who.userId);
      if (!sockets) this.users.set(who.userId, (sockets = new Set()));
      sockets.add(socket);
    }
    this.timer.start();
  }

  private unwatch(socket: Socket): void {
    const who = (socket.data as { principal?: Principal }).principal;
    if (!who) return;
    this.admins.delete(socket);
    const sockets = this.users.get(who.userId);
    if (sockets?.delete(socket) && sockets.size === 0) {
      this.users.delete(who.userId);
      this.userPending.delete(who.userId);
    }
    if (this.admins.size === 0) this.adminPending.clear();
    if (this.admins.size === 0 && this.users.size === 0) this.timer.stop();
  }

  private onEvent(event: BridgeEvent): void {
    if (event.kind !== 'progress') return;
    const forUser = this.users.has(event.userId);
    if (this.admins.size === 0 && !forUser) return;
    const change = toChange(event);
    if (this.admins.size > 0) this.adminPending.set(change.task_id, change);
    if (forUser) {
      let pending = this.userPending.get(event.userId);
      if (!pending) this.userPending.set(event.userId, (pending = new Map()));
      pending.set(change.task_id, change);
    }
  }

  private flush(): void {
    if (this.adminPending.size > 0) {
      const packet = encodeEvent('task_changes', { changes: [...this.adminPending.values()] });
      this.adminPending = new Map();
      for (const socket of this.admins) writePacket(socket, packet);
    }
    for (const [userId, pending] of this.userPending) {
      this.userPending.delete(userId);
      const packet = encodeEvent('task_changes', { changes: [...pending.values()] });
      for (const socket of this.users.get(userId) ?? []) writePacket(socket, packet);
    }
  }

  close(): void {
    this.timer.stop();
    this.admins.clear();
    this.users.clear();
    this.adminPending.clear();
    this.userPending.clear();
  }
}
