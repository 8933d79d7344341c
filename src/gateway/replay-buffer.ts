/**
 * The recent events of each task, kept for `subscribe { after_seq }`: a socket that subscribes
 * late or reconnects replays from here what it missed. Bounded per task, by tasks and by bytes;
 * the oldest tasks' histories go first (a client that needs them gets the record's snapshot
 * instead, see EventBridge.missed).
 *
 * Every packet of a task repeats its ids (task_id, user_id, root_id: about 110 of a progress
 * packet's 300 bytes), and the buffer is most of what a busy gateway holds: 128,000 kept packets
 * were 45 of its 119 MB of live heap in the fan-out bench. So a packet is kept with each of those
 * ids replaced by one control character, which JSON text never holds raw (JSON.stringify escapes
 * them), and put back when replayed: the same bytes, about 40 % fewer kept.
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
  /** What this task's packets are kept without: the ids, each stood for by MARKS[i]. */
  elided: string[];
  events: ReplayEntry[];
  /** Rough size of the events kept: results and deltas are what weigh. */
  bytes: number;
}

/** Stand-ins for a task's ids in its kept packets: control characters, never raw in JSON text. */
const MARKS = ['\u0001', '\u0002', '\u0003'] as const;
/** Shorter ids are not worth a replace per event. */
const MIN_ELIDED = 8;

/** The ids a task's packets are kept without, as they appear in its packets' JSON. */
function elidedIds(taskId: string, userId: string, rootId: string | undefined): string[] {
  const ids = [taskId, JSON.stringify(userId).slice(1, -1)];
  if (rootId !== undefined && rootId !== taskId) ids.push(rootId);
  return ids.filter((id, i) => id.length >= MIN_ELIDED && ids.indexOf(id) === i).slice(0, MARKS.length);
}

/**
 * Each id replaced in turn and put back in the reverse order: exact for any text, since no id
 * holds a mark (the text around a mark is JSON), so no later id can match across one.
 */
function elide(packet: string, ids: readonly string[]): string {
  // split/join, not replaceAll: V8 builds replaceAll's result from slices of the packet (cons and
  // sliced strings), which keep the whole packet alive; join copies into one flat string.
  for (let i = 0; i < ids.length; i++) packet = packet.split(ids[i]!).join(MARKS[i]!);
  return packet;
}

function restore(kept: string, ids: readonly string[]): string {
  for (let i = ids.length - 1; i >= 0; i--) kept = kept.replaceAll(MARKS[i]!, ids[i]!);
  return kept;
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

  /**
   * Keeps an event of the task; an earlier task's events under the same id are dropped first.
   * `rootId`, a workflow member's root, is kept once rather than in each packet.
   */
  add(taskId: string, task: TaskIdentity, entry: ReplayEntry, rootId?: string): void {
    let replay = this.tasks.get(taskId);
    // An earlier task's events under the same id are never replayed as this one's.
    if (replay && !sameIdentity(replay, task)) {
      this.drop(taskId);
      replay = undefined;
    }
    if (!replay) {
      const elided = elidedIds(taskId, task.userId, rootId);
      replay = { userId: task.userId, createdAt: task.createdAt, elided, events: [], bytes: 0 };
      this.tasks.set(taskId, replay);
    }
    entry = { seq: entry.seq, packet: elide(entry.packet, replay.elided) };
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
    if (!replay || !sameIdentity(replay, task)) return { covers: false, events: [] };
    const kept = replay.events;
    const first = kept[0];
    const covers = first !== undefined && (first.seq <= afterSeq + 1 || first.seq === QUEUED_SEQ);
    const events: ReplayEntry[] = [];
    for (const e of kept)
      if (shouldDeliver(afterSeq, e)) events.push({ seq: e.seq, packet: restore(e.packet, replay.elided) });
    return { covers, events };
  }
}

export function sameIdentity(a: TaskIdentity, b: TaskIdentity): boolean {
  return a.userId === b.userId && a.createdAt === b.createdAt;
}
