import { AiecsError } from '../core/errors.js';

/** The one table that maps error codes to HTTP status (docs/errors.md lists each with its meaning). */
export const HTTP_STATUS: Readonly<Record<string, number>> = {
  VALIDATION_ERROR: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  TASK_NOT_FOUND: 404,
  WORKER_NOT_FOUND: 404,
  QUEUE_NOT_FOUND: 404,
  SCHEDULE_NOT_FOUND: 404,
  TEMPLATE_NOT_FOUND: 404,
  CELERY_TASK_NOT_FOUND: 404,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  TASK_CONFLICT: 409,
  TASK_NOT_RETRYABLE: 409,
  CONTROL_REFUSED: 409,
  PAYLOAD_TOO_LARGE: 413,
  WORKFLOW_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  UNSUPPORTED_MEDIA_TYPE: 415,
  SERVICE_NOT_FOUND: 422,
  WORKFLOW_INVALID: 422,
  SCHEDULE_INVALID: 422,
  TEMPLATE_INVALID: 422,
  RATE_LIMITED: 429,
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
  HISTORY_DISABLED: 501,
  STORE_UNAVAILABLE: 503,
  STORAGE_ERROR: 503,
  STORE_LOCKED: 503,
  SHUTTING_DOWN: 503,
  WORKER_NO_REPLY: 504,
};

export interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

export function errorBody(code: string, message: string, details: Record<string, unknown> = {}): ErrorBody {
  return { error: { code, message, details } };
}

/** Fastify's own errors (routing, body parsing, limits): our code and a message that says what to fix. */
const FASTIFY_ERRORS: Readonly<Record<string, { code: string; message?: (e: FastifyLike) => string }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: {
    code: 'PAYLOAD_TOO_LARGE',
    message: (e) => `request body is over the limit${e.bodyLimit ? ` of ${e.bodyLimit} bytes` : ''}`,
  },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: {
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: (e) =>
      `unsupported content-type${e.contentType ? ` ${e.contentType}` : ''}; send application/json`,
  },
  FST_ERR_CTP_EMPTY_JSON_BODY: {
    code: 'BAD_REQUEST',
    message: () => 'malformed request: the body is empty but content-type is application/json',
  },
  FST_ERR_CTP_INVALID_JSON_BODY: {
    code: 'BAD_REQUEST',
    message: () => 'malformed request: invalid JSON body',
  },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: {
    code: 'BAD_REQUEST',
    message: () => 'malformed request: the body does not match its content-length',
  },
  FST_ERR_BAD_URL: { code: 'BAD_REQUEST', message: () => 'malformed URL: invalid percent-encoding' },
  FST_ERR_INVALID_URL: { code: 'BAD_REQUEST', message: () => 'malformed URL' },
  FST_ERR_MAX_PARAM_LENGTH: {
    code: 'URI_TOO_LONG',
    message: (e) =>
      `a URL parameter is over ${e.maxParamLength ?? 'the limit of'} characters (no task id is longer)`,
  },
};

/** What the gateway knows about a request when it turns a Fastify error into a reply. */
export interface FastifyLike {
  bodyLimit?: number;
  maxParamLength?: number;
  contentType?: string;
}

/** Turns anything thrown in a handler into a status and the one error shape; never a stack trace. */
export function toHttpError(
  error: unknown,
  context: FastifyLike = {},
): { status: number; body: ErrorBody; internal: boolean } {
  if (error instanceof AiecsError) {
    const details = { ...error.details };
    if ('issues' in error) details.issues = (error as { issues: unknown }).issues;
    return {
      status: HTTP_STATUS[error.code] ?? 500,
      body: errorBody(error.code, error.message, details),
      internal: false,
    };
  }
  const e = error as { code?: unknown; statusCode?: unknown; message?: unknown } | null;
  const known = typeof e?.code === 'string' ? FASTIFY_ERRORS[e.code] : undefined;
  if (known) {
    return {
      status: HTTP_STATUS[known.code]!,
      body: errorBody(known.code, known.message?.(context) ?? String(e?.message ?? known.code)),
      internal: false,
    };
  }
  if (e instanceof SyntaxError || (typeof e?.statusCode === 'number' && e.statusCode === 400)) {
    return {
      status: 400,
      body: errorBody('BAD_REQUEST', `malformed request: ${String(e?.message)}`),
      internal: false,
    };
  }
  return { status: 500, body: errorBody('INTERNAL', 'internal error'), internal: true };
}
