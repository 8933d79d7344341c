import type { AiecsConfig } from '../core/config.js';

/** The providers aiecs can call. */
export type ProviderName = AiecsConfig['providers']['defaultProvider'];
export const PROVIDER_NAMES: readonly ProviderName[] = ['openai', 'xai', 'vertex'];

/** Everything the provider layer reads from the configuration. */
export type ProviderSettings = AiecsConfig['providers'];

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  /** Ask the model for one JSON object (OpenAI `json_object`, Vertex `application/json`). */
  responseFormat?: 'json';
}

export interface TokenUsage {
  input_tokens: number;
  output_tokens: number;
  /** True when the server reported no usage and the counts are estimates (about 4 characters a token). */
  estimated?: boolean;
}

export interface ChatResult {
  text: string;
  /** The model that answered, as the server names it. */
  model: string;
  provider: ProviderName;
  usage: TokenUsage;
  latency_ms: number;
  /** `stop`, `length`, `content_filter`, … as the provider reports it; `unknown` when it does not. */
  finish_reason: string;
}

export interface ChatOptions {
  /** Aborts the HTTP request itself (cancel, time limits, request timeout). */
  signal: AbortSignal;
  /** Called with each piece of text as it arrives. */
  onDelta?(delta: string): void;
}

/** One provider's HTTP API behind one call shape. */
/** OpenAI's own API; OPENAI_BASE_URL points the same client elsewhere. */
export const OPENAI_BASE_URL = 'https://api.openai.com/v1';

export interface LlmProvider {
  readonly name: ProviderName;
  chat(request: ChatRequest, options: ChatOptions): Promise<ChatResult>;
}
