/**
 * A Celery task message as kombu's Redis transport stores it: a JSON envelope (`body`,
 * `content-type`, `headers`, `properties` with `delivery_tag`, `priority`, `delivery_info`)
 * whose body, base64 when `properties.body_encoding` says so, is Celery's message. Protocol 2
 * (Celery 4+; the default) keeps the task's meta in the headers (`id`, `task`, `eta`, `expires`,
 * `retries`, `timelimit: [hard, soft]`, `root_id`, `parent_id`) and `[args, kwargs, embed]` in
 * the body; protocol 1 has one body dict with `id`, `task`, `args`, `kwargs`, `eta`, `expires`,
 * `retries`, `timelimit`. Pure: parsing never throws anything but CeleryMessageError.
 */
import { AiecsError } from '../../core/errors.js';

/** A Celery message refused by the bridge: acked, dead-lettered, and (with an id) a FAILURE result. */
export class CeleryMessageError extends AiecsError {
  override readonly code = 'CELERY_MESSAGE_INVALID';
  override readonly wireCode = 'E001';
  constructor(
    message: string,
    /** The Celery id, when the message had a readable one (its FAILURE result goes there). */
    readonly celeryId?: string,
  ) {
    super(message, celeryId === undefined ? {} : { celery_id: celeryId });
  }
}

/** What the bridge reads of one Celery message. */
export interface CeleryMessage {
  id: string;
  task: string;
  args: unknown;
  kwargs: unknown;
  /** ISO 8601 (`countdown` is sent as an eta by the client), or absent. */
  eta?: string;
  expires?: string;
  /** Retries already made (Celery's `request.retries`). */
  retries: number;
  /** Seconds; absent when unset (Celery's `None`). */
  timeLimit?: number;
  softTimeLimit?: number;
  /** `properties.priority` as sent (kombu's lists clamp it to 0–9; the value here is the producer's). */
  priority?: number;
  rootId?: string;
  parentId?: string;
  /** 1 or 2. */
  protocol: 1 | 2;
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The id in a raw envelope's headers, if it has one: what a refused message's result is keyed by. */
export function envelopeId(raw: string): string | undefined {
  try {
    const env: unknown = JSON.parse(raw);
    if (!isObject(env)) return undefined;
    return text(isObject(env.headers) ? env.headers.id : undefined);
  } catch {
    return undefined;
  }
}

/** Parses a kombu envelope (the list item's text) into a Celery message. */
export function parseCeleryMessage(raw: string): CeleryMessage {
  let env: unknown;
  try {
    env = JSON.parse(raw);
  } catch {
    throw new CeleryMessageError('message is not JSON (not a kombu envelope)');
  }
  if (!isObject(env)) throw new CeleryMessageError('message is not a kombu envelope (a JSON object)');
  const headers = isObject(env.headers) ? env.headers : {};
  const properties = isObject(env.properties) ? env.properties : {};
  const headerId = text(headers.id);
  const fail = (message: string, id = headerId): never => {
    throw new CeleryMessageError(message, id);
  };

  const contentType = env['content-type'];
  if (contentType !== undefined && contentType !== 'application/json')
    fail(
      `content-type ${JSON.stringify(contentType)} is not supported: use Celery's json serializer (task_serializer="json", the default)`,
    );
  if (typeof env.body !== 'string') fail('message body is missing');
  let bodyText = env.body as string;
  const encoding = properties.body_encoding;
  if (encoding === 'base64') bodyText = Buffer.from(bodyText, 'base64').toString('utf8');
  else if (encoding !== undefined && encoding !== null && encoding !== 'utf-8')
    fail(`body_encoding ${JSON.stringify(encoding)} is not supported`);
  let body: unknown;
  try {
    body = JSON.parse(bodyText);
  } catch {
    return fail('message body is not JSON');
  }

  const priority = typeof properties.priority === 'number' ? properties.priority : undefined;
  // Protocol 2 names the task in the headers; protocol 1 in the body.
  if (text(headers.task) !== undefined) return protocol2(headers, body, priority, fail);
  if (isObject(body) && text(body.task) !== undefined) return protocol1(body, priority, fail);
  return fail('message names no task (neither protocol 2 headers nor a protocol 1 body)');
}

type Fail = (message: string, id?: string) => never;

function protocol2(headers: Json, body: unknown, priority: number | undefined, fail: Fail): CeleryMessage {
  const id = text(headers.id) ?? fail('headers.id is missing');
  if (!Array.isArray(body) || body.length < 2) fail('protocol 2 body must be [args, kwargs, embed]', id);
  const [args, kwargs] = body as unknown[];
  return withMeta({ id, task: headers.task as string, args, kwargs, protocol: 2 }, headers, priority, fail);
}

function protocol1(body: Json, priority: number | undefined, fail: Fail): CeleryMessage {
  const id = text(body.id) ?? fail('body.id is missing (protocol 1)');
  return withMeta(
    { id, task: body.task as string, args: body.args, kwargs: body.kwargs, protocol: 1 },
    body,
    priority,
    fail,
  );
}

/** The meta fields, from protocol 2's headers or protocol 1's body (the same names). */
function withMeta(
  base: Pick<CeleryMessage, 'id' | 'task' | 'args' | 'kwargs' | 'protocol'>,
  meta: Json,
  priority: number | undefined,
  fail: Fail,
): CeleryMessage {
  const message: CeleryMessage = { ...base, retries: 0 };
  const date = (name: 'eta' | 'expires') => {
    const value = meta[name];
    if (value === undefined || value === null) return;
    if (typeof value !== 'string') fail(`${name} must be an ISO 8601 date-time`, base.id);
    message[name] = withOffset(value as string);
  };
  date('eta');
  date('expires');
  if (typeof meta.retries === 'number' && Number.isInteger(meta.retries) && meta.retries > 0)
    message.retries = meta.retries;
  const limits = meta.timelimit;
  if (limits !== undefined && limits !== null) {
    if (!Array.isArray(limits)) fail('timelimit must be [hard, soft]', base.id);
    const [hard, soft] = limits as unknown[];
    // Celery's None (or 0) is no limit of its own: the worker's default applies.
    if (typeof hard === 'number' && hard > 0) message.timeLimit = hard;
    if (typeof soft === 'number' && soft > 0) message.softTimeLimit = soft;
  }
  if (priority !== undefined) message.priority = priority;
  const rootId = text(meta.root_id);
  const parentId = text(meta.parent_id);
  if (rootId !== undefined) message.rootId = rootId;
  if (parentId !== undefined) message.parentId = parentId;
  return message;
}

/**
 * Celery writes dates with Python's isoformat(): with an offset when timezone-aware (the default,
 * enable_utc), without one when naive, which Celery means as UTC. aiecs wants an offset.
 */
export function withOffset(iso: string): string {
  return /(Z|[+-]\d{2}:?\d{2})$/i.test(iso) ? iso : `${iso}Z`;
}
