import { AiecsError, RetryableError } from '../core/errors.js';
import type { ProviderName } from './types.js';

/** What to set for each provider to be usable. */
export const PROVIDER_VARIABLES: Record<ProviderName, { variable: string; hint: string }> = {
  openai: {
    variable: 'OPENAI_API_KEY',
    hint: 'set OPENAI_API_KEY (for an OpenAI-compatible server such as vLLM or Ollama, any non-empty value together with OPENAI_BASE_URL)',
  },
  xai: { variable: 'XAI_API_KEY', hint: 'set XAI_API_KEY (or its alias GROK_API_KEY)' },
  vertex: {
    variable: 'VERTEX_PROJECT_ID',
    hint: 'set VERTEX_PROJECT_ID (and VERTEX_LOCATION; credentials come from GOOGLE_APPLICATION_CREDENTIALS or application-default credentials)',
  },
};

const REFUSED: Record<ProviderName, string> = {
  openai: 'the key in OPENAI_API_KEY was refused',
  xai: 'the key in XAI_API_KEY (or GROK_API_KEY) was refused',
  vertex: 'the Google credentials were refused (check GOOGLE_APPLICATION_CREDENTIALS and the project)',
};

/** A task needs a provider this process has no key (or project) for. Not retryable. */
export class ProviderNotConfiguredError extends AiecsError {
  override readonly code = 'PROVIDER_NOT_CONFIGURED';
  override readonly wireCode = 'E008';
  override readonly retryable = false;
  constructor(
    readonly provider: ProviderName,
    readonly variable: string = PROVIDER_VARIABLES[provider].variable,
  ) {
    super(`provider ${provider} is not configured: ${PROVIDER_VARIABLES[provider].hint}`, {
      provider,
      variable,
    });
  }
}

/** The provider refused the request (400, 401, 403, 404, …): trying again will not help. */
export class ProviderError extends AiecsError {
  override readonly code = 'PROVIDER_ERROR';
  override readonly wireCode = 'E003';
  override readonly retryable = false;
  constructor(
    readonly provider: ProviderName,
    readonly status: number | undefined,
    readonly providerMessage: string,
    options?: { cause?: unknown; model?: string },
  ) {
    const refused = status === 401 || status === 403 ? `${REFUSED[provider]}: ` : '';
    super(
      `${provider} request failed${status ? ` with HTTP ${status}` : ''}: ${refused}${providerMessage}`,
      {
        provider,
        ...(status !== undefined ? { status } : {}),
        ...(options?.model !== undefined ? { model: options.model } : {}),
        provider_message: providerMessage,
      },
      options?.cause !== undefined ? { cause: options.cause } : undefined,
    );
  }
}

/**
 * A failure worth another try (429, 5xx, network, request timeout). Thrown when the in-call
 * retries are used up, so the task-level retry takes over, honouring `retryAfterMs`.
 */
export class ProviderUnavailableError extends RetryableError {
  constructor(
    readonly provider: ProviderName,
    readonly status: number | undefined,
    message: string,
    retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, retryAfterMs, options);
    this.details.provider = provider;
    if (status !== undefined) this.details.status = status;
  }
}
