import type { Server, Socket } from 'socket.io';
import type { Logger } from '../core/logger.js';
import { ObservedTasks } from '../core/metrics.js';
import { QUEUE_KINDS, isTerminal } from '../core/task.js';
import type { StatsFrame, StatsPoint, WorkerInfo } from '../core/wire-types.js';
import type { AiecsApp } from '../engine/app.js';
import { queueCounts } from '../engine/queue-admin.js';
import type { Principal } from './auth.js';
import type { BridgeEvent, EventBridge } from './event-bridge.js';
import { encodeEvent, writePacket } from './packet.js';
import { WatchTimer, onWatchEvents } from './watch-channel.js';

export type { StatsPoint };

export const STATS_INTERVAL_MS = 2_000;
const HISTORY_MS = 60 * 60_000;
/** A worker not seen for this many heartbeats is shown gone, then dropped a minute later. */
const MISSED_BEATS = 3;
const GONE_SHOWN_MS = 60_000;
/** Running tasks whose start is remembered for their duration; past it the oldest are dropped. */
const MAX_STARTS = 100_000;

function p95(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)]!;
}

/**
 * `watch_stats` (admins): a `stats` frame every interval with the workers (from their
 * heartbeats), the queues (queueCounts, paused included), totals, tokens and cost (what this
 * gateway saw end since it started, kept in the metrics module) and a point of the last
 * interval's throughput and p95 duration; the ack carries the last hour's points. The frame is
 * computed on one shared timer, and only while someone watches.
 */
export class StatsFeed {
  private readonly watchers = new Set<Socket>();
  private readonly observed = new ObservedTasks();
  private readonly history: StatsPoint[] = [];
  private readonly starts = new Map<string, number>();
  private interval = new Map<string, { completed: number; failed: number; durations: number[] }>();
  /** Workers seen, by id: when last seen, for greying out the gone ones. */
  private readonly seen = new Map<string, Record<string, unknown> & { last_seen: number }>();
  /** The frames' timer, running only while someone watches. */
  private readonly timer: WatchTimer;
  private ticking = false;
  readonly since = Date.now();
  private readonly listener = (event: BridgeEvent) => this.onEvent(event);

  constructor(
    io: Server,
    private readonly bridge: EventBridge,
    private readonly app: AiecsApp,
    private readonly logger: Logger,
    private readonly heartbeatMs: number,
    readonly intervalMs = STATS_INTERVAL_MS,
  ) {
    // Counting what ends costs a comparison per event; the frames cost only while watched.
    bridge.on('event', this.listener);
    this.timer = new WatchTimer(intervalMs, () => void this.tick());
    onWatchEvents(
      io,
      'stats',
      (socket) => this.watch(socket),
      (socket) => this.unwatch(socket),
    );
  }

  private watch(socket: Socket): unknown {
    const who = (socket.data as { principal: Principal }).principal;
    if (!who.admin)
      return { ok: false, error: { code: 'FORBIDDEN', message: 'only admins may watch the stats' } };
    this.watchers.add(socket);
    this.timer.start();
    return { ok: true, interval_ms: this.intervalMs, since: this.since, history: this.history };
  }

  private unwatch(socket: Socket): void {
    this.watchers.delete(socket);
    if (this.watchers.size === 0) this.timer.stop();
  }

  private onEvent(event: BridgeEvent): void {
    if (event.kind !== 'progress') return;
    const p = event.payload;
    if (p.status === 'running') {
      this.starts.set(p.task_id, p.timestamp);
      if (this.starts.size > MAX_STARTS) this.starts.delete(this.starts.keys().next().value!);
      return;
    }
    if (!isTerminal(p.status)) return;
    const { queue, usage } = event.labels;
    this.observed.taskEnded(queue, p.status, p.status === 'completed' ? usage : undefined);
    let figures = this.interval.get(queue);
    if (!figures) this.interval.set(queue, (figures = { completed: 0, failed: 0, durations: [] }));
    if (p.status === 'completed') figures.completed += 1;
    else figures.failed += 1;
    const started = this.starts.get(p.task_id);
    if (started !== undefined) {
      this.starts.delete(p.task_id);
      figures.durations.push(Math.max(0, p.timestamp - started));
    }
  }

  /** The point of the interval just ended; starts the next. */
  private takePoint(at: number): StatsPoint {
    const queues: StatsPoint['queues'] = {};
    for (const name of QUEUE_KINDS) {
      const f = this.interval.get(name);
      queues[name] = {
        completed: f?.completed ?? 0,
        failed: f?.failed ?? 0,
        p95_ms: p95(f?.durations ?? []),
      };
    }
    this.interval = new Map();
    const point = { at, queues };
    this.history.push(point);
    while (this.history.length > 0 && this.history[0]!.at < at - HISTORY_MS) this.history.shift();
    return point;
  }

  private workers(beats: Awaited<ReturnType<AiecsApp['listWorkers']>>, now: number): WorkerInfo[] {
    for (const beat of beats) this.seen.set(beat.id, { ...beat, last_seen: beat.last_seen });
    const out: WorkerInfo[] = [];
    for (const [id, beat] of this.seen) {
      const age = now - beat.last_seen;
      const alive = age <= this.heartbeatMs * MISSED_BEATS;
      if (!alive && age > this.heartbeatMs * MISSED_BEATS + GONE_SHOWN_MS) {
        this.seen.delete(id);
        continue;
      }
      const b = beat as unknown as {
        hostname: string;
        pid: number;
        queues: string[];
        concurrency: Record<string, number>;
        active: number;
        processed: number;
        failed: number;
        rss_bytes?: number;
      };
      out.push({
        name: id,
        hostname: b.hostname,
        pid: b.pid,
        queues: b.queues,
        concurrency: b.concurrency,
        active: b.active,
        processed: b.processed,
        failed: b.failed,
        rss_bytes: b.rss_bytes ?? null,
        last_seen: beat.last_seen,
        alive,
      });
    }
    return out;
  }

  private async tick(): Promise<void> {
    // A slow store must not pile frames up: one at a time.
    if (this.ticking) return;
    this.ticking = true;
    try {
      const at = Date.now();
      const point = this.takePoint(at);
      const [beats, queues, observed] = await Promise.all([
        this.app.listWorkers(),
        this.app.bounded('count the queues', () =>
          Promise.all(QUEUE_KINDS.map((q) => queueCounts(this.app, q))),
        ),
        this.observed.totals(),
      ]);
      const n = (status: string) => observed.ended[status] ?? 0;
      const frame: StatsFrame = {
        at,
        since: this.since,
        workers: this.workers(beats, at),
        queues: queues.map(({ queue, waiting, delayed, active, failed, completed, paused }) => ({
          name: queue,
          waiting,
          delayed,
          active,
          failed,
          completed,
          paused,
        })),
        totals: {
          pending: queues.reduce((s, q) => s + q.waiting + q.delayed, 0),
          running: queues.reduce((s, q) => s + q.active, 0),
          completed: n('completed'),
          failed: n('failed'),
          timed_out: n('timed_out'),
          cancelled: n('cancelled'),
        },
        tokens: observed.tokens,
        cost_usd: observed.cost_usd,
        point,
      };
      const packet = encodeEvent('stats', frame);
      for (const socket of this.watchers) writePacket(socket, packet);
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'stats frame failed');
    } finally {
      this.ticking = false;
    }
  }

  close(): void {
    this.timer.stop();
    this.watchers.clear();
    this.bridge.off('event', this.listener);
  }
}
