import { AiecsError } from '../core/errors.js';

/** The one table that maps error codes to HTTP status. */
export const HTTP_STATUS: Readonly<Record<string, number>> = {
  VALIDATION_ERROR: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  TASK_NOT_FOUND: 404,
  NOT_FOUND: 404,
  TASK_CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  SERVICE_NOT_FOUND: 422,
  RATE_LIMITED: 429,
  STORE_UNAVAILABLE: 503,
  STORAGE_ERROR: 503,
  STORE_LOCKED: 503,
};

export interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
}

/** Fastify's own errors (body parsing, limits) in our shape. */
const FASTIFY_CODES: Readonly<Record<string, string>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'BAD_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'BAD_REQUEST',
};

/** Turns anything thrown in a handler into a status and the one error shape; never a stack trace. */
export function toHttpError(error: unknown): { status: number; body: ErrorBody; internal: boolean } {
  if (error instanceof AiecsError) {
    const details = { ...error.details };
    if ('issues' in error) details.issues = (error as { issues: unknown }).issues;
    return {
      status: HTTP_STATUS[error.code] ?? 500,
      body: { error: { code: error.code, message: error.message, details } },
      internal: false,
    };
  }
  const e = error as { code?: unknown; statusCode?: unknown; message?: unknown } | null;
  const fastifyCode = typeof e?.code === 'string' ? FASTIFY_CODES[e.code] : undefined;
  if (fastifyCode) {
    return {
      status: HTTP_STATUS[fastifyCode]!,
      body: { error: { code: fastifyCode, message: String(e?.message ?? fastifyCode), details: {} } },
      internal: false,
    };
  }
  if (e instanceof SyntaxError || (typeof e?.statusCode === 'number' && e.statusCode === 400)) {
    return {
      status: 400,
      body: {
        error: { code: 'BAD_REQUEST', message: `malformed request: ${String(e?.message)}`, details: {} },
      },
      internal: false,
    };
  }
  return {
    status: 500,
    body: { error: { code: 'INTERNAL', message: 'internal error', details: {} } },
    internal: true,
  };
}
