import type { Server, Socket } from 'socket.io';
import type { QueueKind, TaskStatus } from '../core/task.js';
import type { Principal } from './auth.js';
import type { BridgeEvent, EventBridge } from './event-bridge.js';
import { encodeEvent, writePacket } from './packet.js';

/** One task's latest state in a `task_changes` frame (docs/dashboard.md). */
export interface TaskChange {
  task_id: string;
  user_id: string;
  task_name: string;
  queue: QueueKind;
  mode?: string;
  service?: string;
  status: TaskStatus;
  progress: number;
  message: string;
  attempt: number;
  error_code?: string;
  timestamp: number;
  /** When the task was submitted (epoch ms): a table places a task first seen already ended. */
  created_at?: number;
}

/** A frame at most this often per socket: a table repainted 4 times a second stays readable and cheap. */
export const TASK_CHANGES_INTERVAL_MS = 250;

type Ack = (reply: unknown) => void;

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
  private timer: NodeJS.Timeout | undefined;
  private readonly listener = (event: BridgeEvent) => this.onEvent(event);

  constructor(
    io: Server,
    private readonly bridge: EventBridge,
    private readonly intervalMs = TASK_CHANGES_INTERVAL_MS,
  ) {
    io.on('connection', (socket) => {
      socket.on('watch_tasks', (_payload: unknown, ack?: Ack) => {
        this.watch(socket);
        if (typeof ack === 'function') ack({ ok: true });
      });
      socket.on('unwatch_tasks', (_payload: unknown, ack?: Ack) => {
        this.unwatch(socket);
        if (typeof ack === 'function') ack({ ok: true });
      });
      socket.on('disconnect', () => this.unwatch(socket));
    });
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
    if (this.timer) return;
    this.bridge.on('event', this.listener);
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
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
    if (this.admins.size === 0 && this.users.size === 0) this.stop();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.bridge.off('event', this.listener);
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
    this.stop();
    this.admins.clear();
    this.users.clear();
    this.adminPending.clear();
    this.userPending.clear();
  }
}
