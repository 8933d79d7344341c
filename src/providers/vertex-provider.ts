import { ApiError, GoogleGenAI } from '@google/genai';
import type { Content, GenerateContentConfig } from '@google/genai';
import { ProviderError } from './errors.js';
import { bodyMessage, httpError, transportError } from './http-errors.js';
import { estimateTokens } from './tokens.js';
import type { ChatOptions, ChatRequest, ChatResult, LlmProvider } from './types.js';

export interface VertexProviderOptions {
  project: string;
  location: string;
  /** Endpoint override (private endpoints, tests); the SDK's regional endpoint otherwise. */
  baseUrl?: string;
  /** A credentials file (GOOGLE_APPLICATION_CREDENTIALS); application-default credentials otherwise. */
  credentialsFile?: string;
}

/** The part of a failed response the SDK's ApiError leaves out. */
interface Captured {
  status?: number;
  headers?: Headers;
}

/**
 * Gemini on Vertex AI through @google/genai in Vertex mode, with application-default credentials
 * (google-auth-library). Streams with `streamGenerateContent?alt=sse`; usage comes in
 * `usageMetadata`. The SDK's retries are off (one attempt), as for every provider.
 */
export class VertexProvider implements LlmProvider {
  readonly name = 'vertex' as const;
  private readonly ai: GoogleGenAI;

  constructor(options: VertexProviderOptions) {
    this.ai = new GoogleGenAI({
      vertexai: true,
      project: options.project,
      location: options.location,
      httpOptions: {
        ...(options.baseUrl ? { baseUrl: options.baseUrl } : {}),
        retryOptions: { attempts: 1 },
      },
      googleAuthOptions: {
        // A project id given up front spares google-auth-library its project lookups (gcloud, metadata server).
        projectId: options.project,
        ...(options.credentialsFile ? { keyFilename: options.credentialsFile } : {}),
      },
    });
  }

  async chat(request: ChatRequest, options: ChatOptions): Promise<ChatResult> {
    const started = performance.now();
    const system = request.messages.filter((m) => m.role === 'system').map((m) => m.content);
    const contents: Content[] = [];
    for (const m of request.messages) {
      if (m.role === 'system') continue;
      const role = m.role === 'assistant' ? 'model' : 'user';
      const last = contents[contents.length - 1];
      // Gemini wants turns to alternate: fold consecutive messages of one side into one turn.
      if (last?.role === role) last.parts!.push({ text: m.content });
      else contents.push({ role, parts: [{ text: m.content }] });
    }
    const captured: Captured = {};
    const config: GenerateContentConfig = {
      abortSignal: options.signal,
      // One request per call: continuation would issue more behind our back.
      automaticContinuation: false,
      httpOptions: {
        // ApiError keeps no headers: note them here so Retry-After is honoured on Vertex too.
        fetch: async (input, init) => {
          const response = await fetch(input, init);
          if (!response.ok) {
            captured.status = response.status;
            captured.headers = response.headers;
          }
          return response;
        },
      },
    };
    if (system.length) config.systemInstruction = system.join('\n\n');
    if (request.temperature !== undefined) config.temperature = request.temperature;
    if (request.maxTokens !== undefined) config.maxOutputTokens = request.maxTokens;
    if (request.responseFormat === 'json') config.responseMimeType = 'application/json';

    let text = '';
    let model = request.model;
    let finish = 'unknown';
    let usage: { prompt?: number; output?: number } | undefined;
    try {
      const stream = await this.ai.models.generateContentStream({ model: request.model, contents, config });
      for await (const chunk of stream) {
        if (chunk.modelVersion) model = chunk.modelVersion;
        const candidate = chunk.candidates?.[0];
        const delta = (candidate?.content?.parts ?? [])
          .filter((p) => typeof p.text === 'string' && !p.thought)
          .map((p) => p.text)
          .join('');
        if (delta) {
          text += delta;
          options.onDelta?.(delta);
        }
        if (candidate?.finishReason) finish = String(candidate.finishReason).toLowerCase();
        const u = chunk.usageMetadata;
        if (u) {
          usage = {
            prompt: u.promptTokenCount ?? 0,
            output: (u.candidatesTokenCount ?? 0) + (u.thoughtsTokenCount ?? 0),
          };
        }
      }
    } catch (error) {
      throw this.mapError(error, options.signal, captured, request.model);
    }
    options.signal.throwIfAborted();
    return {
      text,
      model,
      provider: this.name,
      usage: {
        input_tokens: usage?.prompt ?? estimateTokens(request.messages.map((m) => m.content).join('\n')),
        output_tokens: usage?.output ?? estimateTokens(text),
        ...(usage ? {} : { estimated: true }),
      },
      latency_ms: Math.round(performance.now() - started),
      finish_reason: finish,
    };
  }

  private mapError(error: unknown, signal: AbortSignal, captured: Captured, model: string): unknown {
    if (signal.aborted) return error;
    if (error instanceof ApiError) {
      const headers = captured.status === error.status ? captured.headers : undefined;
      return httpError(this.name, error.status, bodyMessage(error.message), headers, error, model);
    }
    // google-auth-library: a token endpoint that answered, or no credentials at all.
    const status = (error as { status?: unknown; response?: { status?: unknown } }).response?.status;
    const message = error instanceof Error ? error.message : String(error);
    if (typeof status === 'number')
      return httpError(this.name, status, `credentials: ${message}`, undefined, error, model);
    if (/default credentials|could not load|credential/i.test(message))
      return new ProviderError(this.name, undefined, `credentials: ${message}`, { cause: error, model });
    return transportError(this.name, error);
  }
}
