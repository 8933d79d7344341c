import type { Server as HttpServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import type { Logger } from '../core/logger.js';
import { countSockets, enableMetrics, type Metrics } from '../core/metrics.js';
import { taskIdSchema } from '../core/submission.js';
import { isScheduledTaskId } from '../engine/schedules-fired.js';
import type { AiecsApp } from '../engine/app.js';
import type { Principal, Verifier } from './auth.js';
import { bearer } from './auth.js';
import type { BridgeEvent, EventBridge } from './event-bridge.js';
import { originAllowed } from './origin.js';
import { isStreamPacket, writePacket } from './packet.js';
import { backlogOf, dropBacklog } from '../shims/engineio-backlog.js';
import { TokenBucket } from './rate-limit.js';
import { boundedWsEngine, socketLimits } from './socket-limits.js';

export interface RealtimeOptions {
  corsOrigins: string[];
  /** Largest message a client may send (bytes); larger ones close its connection. */
  maxMessageBytes: number;
  /** Packets a slow client may have waiting before it is disconnected (it catches up by replay). */
  maxBufferedPackets: number;
  /** Bytes a slow client may have waiting in its socket before it is disconnected. */
  maxBufferedBytes: number;
  /** Client → server messages per second per socket (burst twice that). */
  messagesPerSecond: number;
}

interface SocketData {
  principal: Principal;
  bucket: TokenBucket;
  refused: number;
  /** Other users' tasks an admin follows: id → the task's creation (an id may be reused). */
  following?: Map<string, number>;
  /** Disconnects the socket when its token expires. */
  expiry?: NodeJS.Timeout;
}

/**
 * Namespace CONNECT packets one connection may send, joined or not. socket.io keeps a
 * connection whose token was refused open (its client may send a fresh token on it) until
 * `connectTimeout` (45 s), and each CONNECT costs a token check and a socket; without a bound one
 * connection could make the gateway check tokens as fast as it sends them. A browser sends one.
 */
export const MAX_CONNECT_ATTEMPTS = 5;

/** setTimeout's longest delay (a longer one fires at once); a later expiry is re-armed from there. */
const MAX_TIMER_MS = 2 ** 31 - 1;

type Ack = (reply: unknown) => void;

const userRoom = (userId: string) => `user:${userId}`;
const taskRoom = (taskId: string) => `task:${taskId}`;

/**
 * socket.io on the gateway's HTTP server. A socket joins its own user's room and nothing else; the
 * bridge's events go to the owner's room (and to the task's room, where an admin may listen).
 */
export class Realtime {
  readonly io: Server;
  /** Runs while sockets are connected: an idle gateway has no timer waking it (4 a second). */
  private sweep: NodeJS.Timeout | undefined;
  private readonly onEvent: (event: BridgeEvent) => void;
  private readonly metrics: Metrics = enableMetrics();
  private readonly uncountSockets = countSockets(() => this.connections);

  constructor(
    server: HttpServer,
    private readonly app: AiecsApp,
    private readonly bridge: EventBridge,
    verify: Verifier,
    private readonly options: RealtimeOptions,
    private readonly logger: Logger,
  ) {
    const limits = socketLimits(options.maxMessageBytes);
    this.io = new Server(server, {
      cors: { origin: options.corsOrigins, credentials: true },
      maxHttpBufferSize: options.maxMessageBytes,
      maxBufferedChunks: limits.maxBufferedChunks,
      wsEngine: boundedWsEngine(limits),
      // Browsers send Origin; a socket from a page on another origin is refused at the handshake.
      allowRequest: (req, callback) => {
        const origin = req.headers.origin;
        callback(null, origin === undefined || originAllowed(origin, options.corsOrigins, req));
      },
      serveClient: false,
    });
    const attempts = new WeakMap<object, number>();
    this.io.use((socket, next) => {
      const tries = (attempts.get(socket.conn) ?? 0) + 1;
      attempts.set(socket.conn, tries);
      if (tries > MAX_CONNECT_ATTEMPTS) {
        next(
          Object.assign(new Error('too many connect attempts on one connection'), {
            data: { code: 'RATE_LIMITED' },
          }),
        );
        // Right after the refusal, which socket.io writes on the next tick; any later try finds the
        // connection closing and is dropped unanswered.
        if (tries === MAX_CONNECT_ATTEMPTS + 1) process.nextTick(() => socket.conn.close());
        return;
      }
      const auth = socket.handshake.auth as { token?: unknown };
      const token =
        typeof auth?.token === 'string' ? auth.token : bearer(socket.handshake.headers.authorization);
      verify(token).then(
        (principal) => {
          const data = socket.data as SocketData;
          data.principal = principal;
          data.bucket = new TokenBucket(options.messagesPerSecond, options.messagesPerSecond * 2);
          data.refused = 0;
          next();
        },
        (error: Error) => next(Object.assign(new Error(error.message), { data: { code: 'UNAUTHORIZED' } })),
      );
    });
    this.io.on('connection', (socket) => this.onConnection(socket));
    const rooms = this.io.sockets.adapter.rooms;
    const sockets = this.io.sockets.sockets;
    this.onEvent = (event) => {
      const members = rooms.get(userRoom(event.userId));
      // A task room has members only when an admin follows someone else's task.
      const followers = rooms.get(taskRoom(event.taskId));
      if (!members && !followers) return;
      // The bridge encoded it once; each socket's engine.io connection gets it as it is. The
      // broadcast machinery (operator, flags, room union, binary scan) cost more than the write
      // itself at thousands of events a second, for rooms of one or two sockets.
      const { packet } = event;
      let sent = 0;
      if (members) for (const id of members) if (writePacket(sockets.get(id), packet)) sent++;
      if (followers)
        for (const id of followers) {
          if (members?.has(id)) continue;
          const socket = sockets.get(id);
          // The admin followed the task then under this id, not a later one reusing it.
          if (
            (socket?.data as SocketData | undefined)?.following?.get(event.taskId) === event.createdAt &&
            writePacket(socket, packet)
          )
            sent++;
        }
      if (sent > 0) this.metrics.eventsSent(event.kind, sent);
    };
    bridge.on('event', this.onEvent);
  }

  private onConnection(socket: Socket): void {
    if (!this.sweep) {
      this.sweep = setInterval(() => this.dropSlowClients(), 250);
      this.sweep.unref();
    }
    const data = socket.data as SocketData;
    void socket.join(userRoom(data.principal.userId));
    if (data.principal.expiresAt !== undefined) this.expireAt(socket, data.principal.expiresAt);
    socket.on('disconnect', () => clearTimeout(data.expiry));
    // Every client message spends a token; a client that keeps flooding is let go.
    socket.use((packet, next) => {
      if (data.bucket.take()) return next();
      data.refused += 1;
      const error = { code: 'RATE_LIMITED', message: 'too many messages; slow down' };
      // A refused request still gets its answer, or a client awaiting the ack would wait forever.
      const ack = packet[packet.length - 1] as unknown;
      if (typeof ack === 'function') (ack as Ack)({ ok: false, error });
      else socket.emit('error', error);
      if (data.refused > this.options.messagesPerSecond * 10) socket.disconnect(true);
    });
    socket.on('ping', (...args: unknown[]) => {
      const ack = args.find((a) => typeof a === 'function') as Ack | undefined;
      if (ack) ack('pong');
      else socket.emit('pong');
    });
    socket.on('register', (payload: unknown, ack?: Ack) => {
      const userId = (payload as { user_id?: unknown } | null)?.user_id;
      const ok = userId === data.principal.userId;
      const reply = ok
        ? { ok: true, user_id: userId }
        : { ok: false, error: { code: 'FORBIDDEN', message: 'register must name the user of the token' } };
      if (typeof ack === 'function') ack(reply);
      else if (!ok) socket.emit('error', reply.error);
    });
    socket.on('subscribe', (payload: unknown, ack?: Ack) => {
      void this.subscribe(socket, payload).then(
        (reply) => (typeof ack === 'function' ? ack(reply) : undefined),
        (error: Error) => {
          this.logger.warn({ err: error.message }, 'subscribe failed');
          if (typeof ack === 'function')
            ack({ ok: false, error: { code: 'INTERNAL', message: 'subscribe failed' } });
        },
      );
    });
  }

  /** Replays what the client missed of one of its tasks, then keeps it posted. */
  private async subscribe(socket: Socket, payload: unknown): Promise<unknown> {
    const data = socket.data as SocketData;
    const p = (payload ?? {}) as { task_id?: unknown; after_seq?: unknown };
    // A schedule's tasks have BullMQ's ids (repeat:beat:<name>:<ms>), which no submit may use.
    const id =
      typeof p.task_id === 'string' && isScheduledTaskId(p.task_id)
        ? { success: true as const, data: p.task_id }
        : taskIdSchema.safeParse(p.task_id);
    const afterSeq = p.after_seq === undefined ? -1 : Number(p.after_seq);
    if (!id.success || !Number.isFinite(afterSeq)) {
      return {
        ok: false,
        error: { code: 'VALIDATION_ERROR', message: 'subscribe needs { task_id, after_seq? (number) }' },
      };
    }
    const record = await this.app.getTask(id.data);
    // Another user's task answers exactly like a missing one.
    if (!record || (record.user_id !== data.principal.userId && !data.principal.admin)) {
      return { ok: false, error: { code: 'TASK_NOT_FOUND', message: `no task with id ${id.data}` } };
    }
    if (record.user_id !== data.principal.userId) {
      (data.following ??= new Map()).set(record.task_id, Date.parse(record.created_at));
      await socket.join(taskRoom(record.task_id));
    }
    const missed = await this.bridge.missed(record, afterSeq);
    for (const event of missed)
      if (writePacket(socket, event.packet))
        this.metrics.eventsSent(isStreamPacket(event.packet) ? 'stream' : 'progress', 1);
    return { ok: true, task_id: record.task_id, status: record.status, replayed: missed.length };
  }

  /**
   * A socket lives no longer than its token: at `exp` it is told why and disconnected, and its
   * client connects again with a fresh token (HTTP checks every request's token anyway).
   */
  private expireAt(socket: Socket, expiresAt: number): void {
    const data = socket.data as SocketData;
    const left = expiresAt - Date.now();
    if (left > 0) {
      data.expiry = setTimeout(() => this.expireAt(socket, expiresAt), Math.min(left, MAX_TIMER_MS));
      data.expiry.unref();
      return;
    }
    socket.emit('error', {
      code: 'TOKEN_EXPIRED',
      message: 'token expired; connect again with a fresh token',
    });
    socket.disconnect(true);
  }

  /** A client that stops reading must not grow our memory: past the cap it is let go. */
  private dropSlowClients(): void {
    if (this.io.sockets.sockets.size === 0) {
      clearInterval(this.sweep);
      this.sweep = undefined;
      return;
    }
    for (const socket of this.io.sockets.sockets.values()) {
      const { packets, bytes } = backlogOf(socket);
      if (packets > this.options.maxBufferedPackets || bytes > this.options.maxBufferedBytes) {
        this.logger.warn(
          { user_id: (socket.data as SocketData).principal.userId, packets, bytes },
          'disconnecting a client that stopped reading',
        );
        dropBacklog(socket);
        socket.disconnect(true);
      }
    }
  }

  get connections(): number {
    return this.io.sockets.sockets.size;
  }

  async close(): Promise<void> {
    clearInterval(this.sweep);
    this.sweep = undefined;
    this.uncountSockets();
    this.bridge.off('event', this.onEvent);
    this.io.disconnectSockets(true);
    await new Promise<void>((resolve) => {
      this.io.close(() => resolve());
      setTimeout(resolve, 1_000).unref();
    });
  }
}
