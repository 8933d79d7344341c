/**
 * In-order, lossless event reading for BullMQ's PostgreSQL backend.
 *
 * Written against bullmq 6.7.0, its pins unchanged in 6.7.6 (postgres/postgres-queue-backend.js:
 * readEvents, fetchEvents,
 * waitUntilReady, query, ensureListeningEvents, ensureListening, cancelEventWait as disconnect,
 * close and a rebuilt LISTEN client call it; the `event` table and publish_event of its migrations
 * 0001/0002). It replaces the backend's `readEvents`, which loses events: docs/upstream.md, "QueueEvents
 * never delivers an event committed after a later one". A correctness fix, kept whatever it
 * costs; src/shims/bullmq-pg-event-reader.test.ts pins the backend code and SQL it replaces.
 * Measured (npm run bench --only embedded, 3,000 no-op tasks, 3 alternating runs with BullMQ's own
 * readEvents and with this one, in one session): paired aiecs/BullMQ median 0.93 (0.92-0.93) with
 * it, 0.96 (0.92-0.96) without: within the noise of a shared machine.
 *
 * BullMQ reads a queue's events with a cursor on `event.id`, a sequence. Ids are taken at insert
 * but become visible at commit, and two transactions commit in either order: a reader that has
 * seen id N+1 has moved its cursor past N, so N, committed a moment later, is never read. The
 * backend also lets only one of several concurrent publishers send the wake-up NOTIFY, so a late
 * commit may wake nobody until the reader's next timeout (10 s by default).
 *
 * This reader keeps the ids it has not seen below its cursor and asks for them again: events
 * after a fresh gap are held back (for `holdMs`) so that they still come out in id order, and a
 * gap is looked for (for `recoverMs`) even after the hold ends, so a late event comes late rather
 * than never. It polls briefly while gaps are open or events have just arrived, and at least every
 * `idlePollMs` otherwise, so a skipped NOTIFY costs milliseconds, not the blocking timeout.
 *
 * It waits on its own listener, attached once, rather than BullMQ's waitForEvent, which listens
 * only while it waits: a NOTIFY that arrives while the reader reads is counted and ends the next
 * wait at once, so none is missed between two reads. Where no NOTIFY is ever skipped (the embedded
 * store: one session, so the backend's try-lock is always free) the idle poll can then be long:
 * docs/design.md, "Embedded weight".
 */

import { readQueries } from '../core/script-files.js';

const SQL = readQueries('./bullmq-pg-event-reader.sql', import.meta.url, [
  'last_event_id',
  'events_by_id',
  'events_after',
]);

/** BullMQ's channels (PostgresQueueBackend.EVENTS_CHANNEL, NOTIFY_CHANNEL); the payload is the queue. */
const EVENTS_CHANNEL = 'bullmq_events';
const JOBS_CHANNEL = 'bullmq_jobs';

interface Notification {
  channel: string;
  payload?: string;
}

/** The backend's LISTEN client: pg's Client, or the embedded store's pool client. */
interface ListenClient {
  on(event: 'notification', listener: (message: Notification) => void): unknown;
  removeListener(event: 'notification', listener: (message: Notification) => void): unknown;
}

interface EventRow {
  id: string | number;
  queue: string;
  event: string;
  data: Record<string, unknown> | null;
  created_at_ms?: string | number | null;
}

/** The part of BullMQ's PostgresQueueBackend this reader uses (typed structurally: it is not exported). */
export interface PgEventBackend {
  readonly queueName: string;
  readonly closing?: boolean;
  readonly connection: { readonly isClosing: boolean };
  query(text: string, params: unknown[]): Promise<{ rows: EventRow[] }>;
  readEvents(id: string, blockTimeout?: number): Promise<unknown>;
  waitUntilReady(): Promise<unknown>;
  /** LISTENs on the events channel (once per client); the LISTEN client. */
  ensureListeningEvents(): Promise<ListenClient>;
  /** The same for the jobs channel. */
  ensureListening(): Promise<ListenClient>;
  /** What close(), disconnect() and a rebuilt LISTEN client call to end the current wait. */
  cancelEventWait?: (() => void) | undefined;
}

export interface EventReaderOptions {
  /** Every queue whose events share the schema's sequence; ids of other queues count as gaps. */
  queues: readonly string[];
  /** How long events after a fresh gap wait for it to fill, to keep id order. Default 250 ms. */
  holdMs?: number;
  /** How long a gap is looked for before it counts as a rolled-back id. Default 10 s. */
  recoverMs?: number;
  /**
   * Longest wait between reads when nothing is pending. Default 250 ms: on PostgreSQL the backend's
   * try-lock lets only one of several concurrent publishers NOTIFY, so this bounds the delay of an
   * event whose commit was not announced.
   */
  idlePollMs?: number;
  /**
   * Also wake on the jobs channel: BullMQ's add_jobs_bulk writes its `added` and `waiting` events
   * but announces them there only. Needed where `idlePollMs` is long.
   */
  wakeOnJobs?: boolean;
  /** An event id handed out before: read the events after it instead of from now on. */
  from?: number;
}

const BATCH = 1_000;
/** A jump this large is not concurrent publishers (trimmed history, a reset sequence): skip it. */
const MAX_TRACKED_GAP = 10_000;
const GAP_POLL_MS = 20;
const SETTLE_POLL_MS = 200;

type XReadReply = [[string, Array<[string, string[]]>]];

/** Makes `backend.readEvents` (which QueueEvents calls in its loop) gap-aware; returns the backend. */
export function readEventsInOrder<B extends PgEventBackend>(backend: B, options: EventReaderOptions): B {
  const reader = new GapAwareReader(backend, options);
  backend.readEvents = (_id, blockTimeout) => reader.read(blockTimeout ?? 10_000);
  // Ready once the starting point is fixed: an event published after that is read, never skipped.
  const ready = backend.waitUntilReady.bind(backend);
  backend.waitUntilReady = async () => {
    const connection = await ready();
    await reader.start();
    return connection;
  };
  return backend;
}

export class GapAwareReader {
  private cursor: number | undefined;
  /** Ids below the cursor not seen yet, with when they were first missed. */
  private readonly missing = new Map<number, number>();
  /** This queue's rows read but not handed out yet, in id order. */
  private held: Array<{ id: number; row: EventRow }> = [];
  private lastReadAt = 0;
  private readonly holdMs: number;
  private readonly recoverMs: number;
  private readonly idlePollMs: number;
  private readonly wakeOnJobs: boolean;
  private readonly queues: string[];
  /** Notifications for this queue so far: one that came during a read ends the next wait. */
  private notified = 0;
  private listenClient: ListenClient | undefined;
  private waiting: (() => void) | undefined;
  private readonly onNotification = (message: Notification): void => {
    if (message.payload !== this.backend.queueName) return;
    if (message.channel !== EVENTS_CHANNEL && !(this.wakeOnJobs && message.channel === JOBS_CHANNEL)) return;
    this.notified += 1;
    this.waiting?.();
  };

  constructor(
    private readonly backend: PgEventBackend,
    options: EventReaderOptions,
  ) {
    this.holdMs = options.holdMs ?? 250;
    this.recoverMs = options.recoverMs ?? 10_000;
    this.idlePollMs = options.idlePollMs ?? 250;
    this.wakeOnJobs = options.wakeOnJobs ?? false;
    this.queues = [...new Set([...options.queues, backend.queueName])];
    if (options.from !== undefined) this.cursor = options.from;
  }

  private get closing(): boolean {
    return Boolean(this.backend.closing) || this.backend.connection.isClosing;
  }

  private starting: Promise<void> | undefined;

  /** Fixes the starting point ('$': events from now on, unless `from` fixed it), once. */
  start(): Promise<void> {
    this.starting ??= (async () => {
      const { rows } = await this.backend.query(SQL.last_event_id, [this.queues]);
      this.cursor ??= Number(rows[0]?.id ?? 0);
    })().catch((error: unknown) => {
      this.starting = undefined; // the next read tries again
      throw error;
    });
    return this.starting;
  }

  async read(blockTimeout: number): Promise<XReadReply | null> {
    if (this.closing) return this.stopListening();
    if (this.cursor === undefined) await this.start();
    await this.listen();
    const seen = this.notified;
    let ready = await this.fetch();
    if (ready.length === 0) {
      await this.wait(this.nextWaitMs(blockTimeout), seen);
      if (this.closing) return this.stopListening();
      ready = await this.fetch();
    }
    if (ready.length === 0) return null;
    return [['events', ready.map(({ id, row }) => [String(id), fieldsOf(row)])]];
  }

  /**
   * LISTENs through the backend (which does it once per client) and keeps one listener on its
   * client. A new client (the backend rebuilt a dropped one) may have missed a NOTIFY: the next
   * wait is skipped.
   */
  private async listen(): Promise<void> {
    const client = await this.backend.ensureListeningEvents();
    if (this.wakeOnJobs) await this.backend.ensureListening();
    if (client === this.listenClient) return;
    this.listenClient?.removeListener('notification', this.onNotification);
    client.on('notification', this.onNotification);
    this.listenClient = client;
    this.notified += 1;
  }

  private stopListening(): null {
    this.listenClient?.removeListener('notification', this.onNotification);
    this.listenClient = undefined;
    return null;
  }

  /** Until a NOTIFY for this queue (at once if one came since `seen`), `ms`, or the backend's cancel. */
  private wait(ms: number, seen: number): Promise<void> {
    if (this.notified !== seen) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting = undefined;
        if (this.backend.cancelEventWait === done) this.backend.cancelEventWait = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiting = done;
      this.backend.cancelEventWait = done;
    });
  }

  private nextWaitMs(blockTimeout: number): number {
    if (this.held.length > 0) return GAP_POLL_MS;
    if (this.missing.size > 0 || Date.now() - this.lastReadAt < SETTLE_POLL_MS) return SETTLE_POLL_MS;
    return Math.max(1, Math.min(blockTimeout, this.idlePollMs));
  }

  /** Reads new rows and filled gaps; returns this queue's rows that may go out now, in id order. */
  private async fetch(): Promise<Array<{ id: number; row: EventRow }>> {
    const now = Date.now();
    for (const [id, since] of this.missing) if (now - since > this.recoverMs) this.missing.delete(id);

    if (this.missing.size > 0) {
      const { rows } = await this.backend.query(SQL.events_by_id, [this.queues, [...this.missing.keys()]]);
      for (const row of rows) {
        const id = Number(row.id);
        if (!this.missing.delete(id)) continue;
        if (row.queue === this.backend.queueName) this.hold(id, row);
      }
    }

    const { rows } = await this.backend.query(SQL.events_after, [this.queues, this.cursor, BATCH]);
    if (rows.length > 0) this.lastReadAt = now;
    for (const row of rows) {
      const id = Number(row.id);
      const cursor = this.cursor ?? 0;
      if (id <= cursor) continue;
      if (id - cursor - 1 <= MAX_TRACKED_GAP)
        for (let gap = cursor + 1; gap < id; gap++) this.missing.set(gap, now);
      this.cursor = id;
      if (row.queue === this.backend.queueName) this.hold(id, row);
    }
    // Oldest first: under a flood of open transactions the ones missed longest go first.
    for (const id of this.missing.keys()) {
      if (this.missing.size <= MAX_TRACKED_GAP) break;
      this.missing.delete(id);
    }
    return this.release(now);
  }

  private hold(id: number, row: EventRow): void {
    const last = this.held[this.held.length - 1];
    if (!last || last.id < id) {
      this.held.push({ id, row });
      return;
    }
    const at = this.held.findIndex((h) => h.id > id);
    this.held.splice(at, 0, { id, row });
  }

  /** Everything held below the oldest gap that may still fill in time keeps its place. */
  private release(now: number): Array<{ id: number; row: EventRow }> {
    let barrier = Infinity;
    for (const [id, since] of this.missing) if (now - since <= this.holdMs && id < barrier) barrier = id;
    const cut = this.held.findIndex((h) => h.id > barrier);
    if (cut === -1) {
      const all = this.held;
      this.held = [];
      return all;
    }
    const out = this.held.slice(0, cut);
    this.held = this.held.slice(cut);
    return out;
  }
}

/**
 * The field list BullMQ's reader builds from a row (Redis stream entry shape), plus `at_ms`, when
 * the event was published: a Redis stream id says it, a PostgreSQL event id does not (the task
 * history records it).
 */
function fieldsOf(row: EventRow): string[] {
  const fields = ['event', row.event];
  for (const [key, value] of Object.entries(row.data ?? {})) {
    fields.push(key, typeof value === 'string' ? value : String(value));
  }
  if (row.created_at_ms != null) fields.push(EVENT_TIME_FIELD, String(row.created_at_ms));
  return fields;
}

/** The field of a PostgreSQL event that holds its publish time (epoch ms, as text). */
export const EVENT_TIME_FIELD = 'at_ms';
