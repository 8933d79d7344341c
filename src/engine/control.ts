/**
 * Messages on the store's pub/sub channels. Every worker on every host listens on the control
 * channel: cancels, and requests (Celery's inspect and control verbs) addressed to all workers or
 * to some. Workers answer on the reply channel, each reply keyed by its request's id, so only
 * requesters (CLI, gateways) read replies and workers never see each other's.
 */
import type { QueueKind } from '../core/task.js';
import { QUEUE_KINDS } from '../core/task.js';

/** `aiecs inspect` verbs: the workers answer four; `scheduled` and `reserved` are read from the queues. */
export const INSPECT_VERBS = ['active', 'scheduled', 'reserved', 'stats', 'ping', 'registered'] as const;
export type InspectVerb = (typeof INSPECT_VERBS)[number];

/** Verbs a worker answers with what it knows (Celery's `inspect`). */
export const INSPECT_COMMANDS = ['ping', 'active', 'stats', 'registered'] as const;
/** Verbs that change a worker (Celery's `control`). */
export const CONTROL_COMMANDS = ['shutdown', 'pool-resize', 'cancel-consumer', 'add-consumer'] as const;
export type InspectCommand = (typeof INSPECT_COMMANDS)[number];
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];
export type WorkerCommand = InspectCommand | ControlCommand;
const WORKER_COMMANDS: readonly string[] = [...INSPECT_COMMANDS, ...CONTROL_COMMANDS];

export interface ControlArgs {
  /** pool-resize: one size for every queue the worker consumes, or sizes per queue. */
  concurrency?: number | Partial<Record<QueueKind, number>>;
  /** cancel-consumer, add-consumer. */
  queue?: QueueKind;
}

export interface ControlRequest {
  type: 'request';
  /** Replies carry it back; random, so requesters on many hosts never mix theirs up. */
  id: string;
  command: WorkerCommand;
  args: ControlArgs;
  /** Worker ids that should answer; absent: every worker. */
  destination?: string[];
}

export type ControlMessage = { type: 'cancel'; task_id: string } | ControlRequest;

/** A worker's answer: what it was asked for, or why it could not do it. */
export type WorkerReply = { ok: true; data: unknown } | { ok: false; error: string };

/**
 * One part of a reply. PostgreSQL's NOTIFY takes at most 8000 bytes, and an `active` list of a
 * busy worker is more: the reply's JSON is cut into parts that the requester joins again.
 */
export interface ReplyPart {
  type: 'reply';
  id: string;
  worker: string;
  part: number;
  parts: number;
  body: string;
}

/** Bytes per message: under NOTIFY's 8000 on PostgreSQL; on Redis, well under its pub/sub buffer limit. */
export function maxMessageBytes(kind: 'embedded' | 'postgres' | 'redis'): number {
  return kind === 'redis' ? 1024 * 1024 : 7_900;
}

export function encodeControl(message: ControlMessage): string {
  return JSON.stringify(message);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;

function decodeArgs(raw: unknown): ControlArgs | undefined {
  if (raw === undefined) return {};
  if (!isRecord(raw)) return undefined;
  const args: ControlArgs = {};
  const { concurrency, queue } = raw;
  if (typeof concurrency === 'number') args.concurrency = concurrency;
  else if (isRecord(concurrency)) {
    const sizes: Partial<Record<QueueKind, number>> = {};
    for (const q of QUEUE_KINDS) if (typeof concurrency[q] === 'number') sizes[q] = concurrency[q];
    args.concurrency = sizes;
  }
  if (typeof queue === 'string') {
    const known = QUEUE_KINDS.find((q) => q === queue);
    if (!known) return undefined;
    args.queue = known;
  }
  return args;
}

/** Returns undefined for anything that is not a control message we know (never throws). */
export function decodeControl(raw: string): ControlMessage | undefined {
  try {
    const m = JSON.parse(raw) as unknown;
    if (!isRecord(m)) return undefined;
    if (m.type === 'cancel' && typeof m.task_id === 'string') return { type: 'cancel', task_id: m.task_id };
    if (m.type !== 'request' || typeof m.id !== 'string' || typeof m.command !== 'string') return undefined;
    if (!WORKER_COMMANDS.includes(m.command)) return undefined;
    const args = decodeArgs(m.args);
    if (!args) return undefined;
    const request: ControlRequest = { type: 'request', id: m.id, command: m.command as WorkerCommand, args };
    if (Array.isArray(m.destination))
      request.destination = m.destination.filter((d): d is string => typeof d === 'string');
    return request;
  } catch {
    return undefined;
  }
}

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;

/** The messages that carry `reply`, each at most `maxBytes` long in UTF-8. */
export function encodeReply(id: string, worker: string, reply: WorkerReply, maxBytes: number): string[] {
  const text = JSON.stringify(reply);
  const message = (body: string, part: number, parts: number) =>
    JSON.stringify({ type: 'reply', id, worker, part, parts, body } satisfies ReplyPart);
  const whole = message(text, 0, 1);
  if (Buffer.byteLength(whole) <= maxBytes) return [whole];
  // Cut by characters, then shrink a piece until its message fits (escapes and UTF-8 make a
  // character 1 to 6 bytes); a piece never ends between the halves of a surrogate pair.
  const overhead = Buffer.byteLength(message('', 999_999, 999_999));
  const budget = maxBytes - overhead;
  if (budget < 64) throw new Error(`reply messages of ${maxBytes} bytes leave no room for a body`);
  const bodies: string[] = [];
  for (let at = 0; at < text.length;) {
    let size = Math.min(text.length - at, budget);
    for (;;) {
      if (at + size < text.length && isHighSurrogate(text.charCodeAt(at + size - 1))) size -= 1;
      const bytes = Buffer.byteLength(JSON.stringify(text.slice(at, at + size)));
      if (bytes <= budget) break;
      size = Math.max(1, Math.floor((size * budget) / bytes) - 1);
    }
    bodies.push(text.slice(at, at + size));
    at += size;
  }
  return bodies.map((body, i) => message(body, i, bodies.length));
}

export function decodeReplyPart(raw: string): ReplyPart | undefined {
  try {
    const m = JSON.parse(raw) as unknown;
    if (!isRecord(m) || m.type !== 'reply') return undefined;
    const { id, worker, part, parts, body } = m;
    if (typeof id !== 'string' || typeof worker !== 'string' || typeof body !== 'string') return undefined;
    if (typeof part !== 'number' || typeof parts !== 'number' || part < 0 || part >= parts) return undefined;
    return { type: 'reply', id, worker, part, parts, body };
  } catch {
    return undefined;
  }
}

/** Joins the parts of each worker's reply to one request; parts may arrive in any order. */
export class ReplyAssembler {
  private readonly partial = new Map<string, Array<string | undefined>>();

  /** The whole reply once its last part is in, else undefined. */
  add(part: ReplyPart): WorkerReply | undefined {
    let parts = this.partial.get(part.worker);
    if (!parts || parts.length !== part.parts) {
      parts = new Array<string | undefined>(part.parts).fill(undefined);
      this.partial.set(part.worker, parts);
    }
    parts[part.part] = part.body;
    if (parts.some((p) => p === undefined)) return undefined;
    this.partial.delete(part.worker);
    try {
      const reply = JSON.parse(parts.join('')) as unknown;
      if (isRecord(reply) && reply.ok === true) return { ok: true, data: reply.data };
      if (isRecord(reply) && reply.ok === false) return { ok: false, error: String(reply.error) };
    } catch {
      // fall through: a reply we cannot read counts as an error of that worker
    }
    return { ok: false, error: 'unreadable reply' };
  }
}
