import { isRetryable } from '../core/errors.js';
import { ProviderError, ProviderUnavailableError } from './errors.js';
import type { HeaderSource } from './retry.js';
import { parseRetryAfter } from './retry.js';
import type { ProviderName } from './types.js';

/** 408, 409 (OpenAI: "try again"), 425, 429 and every 5xx are worth another try. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 425 || status === 429 || status >= 500;
}

/** The error for an HTTP failure: retryable (with the server's Retry-After) or not. */
export function httpError(
  provider: ProviderName,
  status: number,
  providerMessage: string,
  headers: HeaderSource,
  cause: unknown,
  model?: string,
): ProviderError | ProviderUnavailableError {
  if (isRetryableStatus(status)) {
    return new ProviderUnavailableError(
      provider,
      status,
      `${provider} answered HTTP ${status}: ${providerMessage}`,
      parseRetryAfter(headers),
      { cause },
    );
  }
  return new ProviderError(provider, status, providerMessage, {
    cause,
    ...(model !== undefined ? { model } : {}),
  });
}

const TRANSPORT = /fetch failed|terminated|socket|ECONNRESET|ECONNREFUSED|EPIPE|other side closed|network/i;

/** Failures below HTTP (refused connection, reset mid-stream) are retryable; anything else is not ours. */
export function transportError(provider: ProviderName, error: unknown): unknown {
  const e = error as { message?: unknown; cause?: unknown; name?: unknown };
  const message = typeof e?.message === 'string' ? e.message : String(error);
  const cause = e?.cause as { message?: unknown; code?: unknown } | undefined;
  const detail = typeof cause?.message === 'string' && cause.message !== message ? ` (${cause.message})` : '';
  if (
    isRetryable(error) ||
    (error instanceof TypeError && TRANSPORT.test(message + detail)) ||
    TRANSPORT.test(String(cause?.code ?? ''))
  ) {
    return new ProviderUnavailableError(
      provider,
      undefined,
      `${provider} connection failed: ${message}${detail}`,
      undefined,
      {
        cause: error,
      },
    );
  }
  return error;
}

/** The `message` of a JSON error body (`{error: {message}}`), else the text itself. */
export function bodyMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    if (typeof body.error === 'string') return body.error;
    if (typeof body.error?.message === 'string') return body.error.message;
    if (typeof body.message === 'string') return body.message;
  } catch {
    // not JSON: the text is the message
  }
  return text;
}
