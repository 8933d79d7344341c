/**
 * The recent events of each task, kept for `subscribe { after_seq }`: a socket that subscribes
 * late or reconnects replays from here what it missed. Bounded per task, by tasks and by bytes;
 * the oldest tasks' histories go first (a client that needs them gets the record's snapshot
 * instead, see EventBridge.missed).
 */
import { QUEUED_SEQ, shouldDeliver } from '../core/task-events.js';

/**
 * Which task an event is of. An id names one task at a time, but retention (or a removal) frees
 * it for another user's task: a task is its id, its owner and its creation (the job's timestamp).
 */
export interface TaskIdentity {
  userId: string;
  /** The job's timestamp; UNKNOWN_CREATION when only a stream event has been seen. */
  createdAt: number;
}

/** The creation of a task known only from its stream events: it matches no record. */
export const UNKNOWN_CREATION = 0;

/** What replay keeps of an event: its order and its packet, one string, not an object tree. */
export interface ReplayEntry {
  seq: number;
  packet: string;
}

export interface ReplayBounds {
  /** Events kept per task. */
  perTask: number;
  /** Tasks whose events are kept. */
  tasks: number;
  /** Bytes kept over all tasks. */
  bytes: number;
}

export const DEFAULT_REPLAY_BOUNDS: ReplayBounds = {
  perTask: 2_000,
  tasks: 20_000,
  bytes: 64 * 1024 * 1024,
};

interface Replay extends TaskIdentity {
  events: ReplayEntry[];
  /** Rough size of the events kept: results and deltas are what weigh. */
  bytes: number;
}

/** Bytes an entry holds, roughly: the packet and the entry around it. */
const weight = (entry: ReplayEntry) => 48 + entry.packet.length;

/** What a client that last saw a seq missed, as far as the buffer knows. */
export interface Missed {
  /** Whether the buffer holds everything after that seq; if not, `events` is only the tail. */
  covers: boolean;
  events: ReplayEntry[];
}

export class ReplayBuffer {
  private readonly tasks = new Map<string, Replay>();
  private total = 0;

  constructor(private readonly bounds: ReplayBounds = DEFAULT_REPLAY_BOUNDS) {}

  /** Tasks held. */
  get size(): number {
    return this.tasks.size;
  }

  /** Rough bytes held over all tasks. */
  get bytes(): number {
    return this.total;
  }

  /** Whose events the buffer holds under the id. */
  identity(taskId: string): TaskIdentity | undefined {
    return this.tasks.get(taskId);
  }

  /** Keeps an event of the task; an earlier task's events under the same id are dropped first. */
  add(taskId: string, task: TaskIdentity, entry: ReplayEntry): void {
    let replay = this.tasks.get(taskId);
    // An earlier task's events under the same id are never replayed as this one's.
    if (replay && !sameIdentity(replay, task)) {
      this.drop(taskId);
      replay = undefined;
    }
    if (!replay) {
      replay = { userId: task.userId, createdAt: task.createdAt, events: [], bytes: 0 };
      this.tasks.set(taskId, replay);
    }
    const size = weight(entry);
    replay.events.push(entry);
    replay.bytes += size;
    this.total += size;
    const { perTask, tasks, bytes } = this.bounds;
    if (replay.events.length > perTask) {
      for (const dropped of replay.events.splice(0, replay.events.length - perTask)) {
        const w = weight(dropped);
        replay.bytes -= w;
        this.total -= w;
      }
    }
    // The oldest tasks go first, never the one just added to.
    while (this.tasks.size > tasks || (this.total > bytes && this.tasks.size > 1)) {
      const oldest = this.tasks.keys().next().value;
      if (oldest === undefined || oldest === taskId) break;
      this.drop(oldest);
    }
  }

  drop(taskId: string): void {
    const replay = this.tasks.get(taskId);
    if (!replay) return;
    this.total -= replay.bytes;
    this.tasks.delete(taskId);
  }

  /**
   * The task's kept events after `afterSeq`. Only the named task's: an earlier task under the id
   * kept its own. The buffer covers the gap when its first event is the task's first (queued) or
   * follows the client's last at most one seq on.
   */
  since(taskId: string, task: TaskIdentity, afterSeq: number): Missed {
    const replay = this.tasks.get(taskId);
    const kept = replay && sameIdentity(replay, task) ? replay.events : [];
    const first = kept[0];
    const covers = first !== undefined && (first.seq <= afterSeq + 1 || first.seq === QUEUED_SEQ);
    return { covers, events: kept.filter((e) => shouldDeliver(afterSeq, e)) };
  }
}

export function sameIdentity(a: TaskIdentity, b: TaskIdentity): boolean {
  return a.userId === b.userId && a.createdAt === b.createdAt;
}
