import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import { ProviderUnavailableError } from './errors.js';
import { bodyMessage, httpError, transportError } from './http-errors.js';
import { readChatCompletionStream } from '../shims/openai-sse-reader.js';
import { estimateTokens } from './tokens.js';
import type { ChatOptions, ChatRequest, ChatResult, LlmProvider, ProviderName } from './types.js';

import { OPENAI_BASE_URL } from './types.js';
export const XAI_BASE_URL = 'https://api.x.ai/v1';

export interface OpenAiProviderOptions {
  /** `openai`, or `xai` for xAI's OpenAI-compatible API. */
  name: Extract<ProviderName, 'openai' | 'xai'>;
  apiKey: string;
  baseURL: string;
  /** The SDK's own limit per request; the caller's signal carries the real one. */
  timeoutMs: number;
}

/** Reasoning models (o1, o3, o4-mini, …) take no temperature. */
const REASONING = /^o\d/;

/**
 * OpenAI's chat completions API through the official SDK, also for xAI and OpenAI-compatible
 * servers (vLLM, Ollama) behind another base URL. Always streams, with usage in the last chunk.
 * The SDK's own retries are off: retries happen one level up, the same for every provider.
 */
export class OpenAiProvider implements LlmProvider {
  readonly name: Extract<ProviderName, 'openai' | 'xai'>;
  private readonly client: OpenAI;
  /** OpenAI itself wants max_completion_tokens; xAI and compatible servers know max_tokens. */
  private readonly completionTokensParam: boolean;

  constructor(options: OpenAiProviderOptions) {
    this.name = options.name;
    this.client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseURL,
      maxRetries: 0,
      timeout: options.timeoutMs,
      // OPENAI_ORG_ID / OPENAI_PROJECT_ID from the environment are OpenAI's, not xAI's.
      ...(options.name === 'xai' ? { organization: null, project: null } : {}),
    });
    this.completionTokensParam =
      options.name === 'openai' && options.baseURL.replace(/\/+$/, '') === OPENAI_BASE_URL;
  }

  async chat(request: ChatRequest, options: ChatOptions): Promise<ChatResult> {
    const started = performance.now();
    const body: ChatCompletionCreateParamsStreaming = {
      model: request.model,
      messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
      stream: true,
      stream_options: { include_usage: true },
    };
    if (request.temperature !== undefined && !REASONING.test(request.model))
      body.temperature = request.temperature;
    if (request.maxTokens !== undefined) {
      if (this.completionTokensParam) body.max_completion_tokens = request.maxTokens;
      else body.max_tokens = request.maxTokens;
    }
    if (request.responseFormat === 'json') body.response_format = { type: 'json_object' };

    let text = '';
    let model = request.model;
    let finish = 'unknown';
    let usage: { prompt_tokens?: number; completion_tokens?: number } | undefined;
    try {
      // The SDK makes the request; the shim reads the events for less CPU than the SDK's Stream
      // (figures in its header).
      const response = await this.client.chat.completions
        .create(body, { signal: options.signal })
        .asResponse();
      await readChatCompletionStream(response, (chunk) => {
        if (chunk.model) model = chunk.model;
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices?.[0];
        const delta = choice?.delta?.content;
        if (delta) {
          text += delta;
          options.onDelta?.(delta);
        }
        if (choice?.finish_reason) finish = choice.finish_reason;
      });
    } catch (error) {
      throw this.mapError(error, options.signal, request.model);
    }
    options.signal.throwIfAborted();
    const estimated = !usage;
    return {
      text,
      model,
      provider: this.name,
      usage: {
        input_tokens:
          usage?.prompt_tokens ?? estimateTokens(request.messages.map((m) => m.content).join('\n')),
        output_tokens: usage?.completion_tokens ?? estimateTokens(text),
        ...(estimated ? { estimated: true } : {}),
      },
      latency_ms: Math.round(performance.now() - started),
      finish_reason: finish,
    };
  }

  private mapError(error: unknown, signal: AbortSignal, model: string): unknown {
    // Aborts are the caller's to explain (cancel, time limit, request timeout).
    if (signal.aborted || error instanceof APIUserAbortError) return error;
    if (error instanceof APIConnectionTimeoutError)
      return new ProviderUnavailableError(this.name, undefined, `${this.name} request timed out`, undefined, {
        cause: error,
      });
    if (error instanceof APIConnectionError) return transportError(this.name, error.cause ?? error);
    if (error instanceof APIError) {
      const providerMessage =
        typeof (error.error as { message?: unknown } | undefined)?.message === 'string'
          ? (error.error as { message: string }).message
          : bodyMessage(error.message);
      // An error event inside a stream carries no status: the server gave up mid-answer.
      if (error.status === undefined)
        return new ProviderUnavailableError(
          this.name,
          undefined,
          `${this.name} stream failed: ${providerMessage}`,
          undefined,
          {
            cause: error,
          },
        );
      return httpError(this.name, error.status, providerMessage, error.headers, error, model);
    }
    return transportError(this.name, error);
  }
}
