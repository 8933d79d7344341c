import { countProvider, type ProviderOutcome } from '../core/metrics.js';
import type { TaskContext } from '../core/task-context.js';
import type { RequestContext } from '../core/task.js';
import { ProviderUnavailableError } from './errors.js';
import { costUsd } from './prices.js';
import { withRetries } from './retry.js';
import type { ModelSelection } from './select.js';
import { selectModel } from './select.js';
import { getProvider, pricesFor, providerSettings } from './settings.js';
import { estimateTokens, tokensForChars } from './tokens.js';
import type {
  ChatMessage,
  ChatResult,
  LlmProvider,
  ProviderName,
  ProviderSettings,
  TokenUsage,
} from './types.js';

export interface LlmCallOptions {
  temperature?: number;
  maxTokens?: number;
  /** Ask for one JSON object. */
  responseFormat?: 'json';
  /** Send the text to the user through `task.stream` as it arrives (default true). */
  stream?: boolean;
  /** Also hand each piece of text to the caller. */
  onDelta?(delta: string): void;
}

export interface LlmResult extends ChatResult {
  /** What the call cost by the price table; 0 for a model it does not list. */
  cost_usd: number;
  /** HTTP attempts this call took (1 = no retry). */
  attempts: number;
}

/** A task's handle on its model: every service reaches providers through this one path. */
export interface Llm {
  readonly provider: ProviderName;
  readonly model: string;
  readonly reason: ModelSelection['reason'];
  chat(messages: ChatMessage[] | string, options?: LlmCallOptions): Promise<LlmResult>;
}

const warnedPrices = new Set<string>();

function limitSpec(settings: ProviderSettings, provider: ProviderName) {
  const { concurrency, perMinute } = settings.limits[provider];
  const spec: { concurrency?: number; perMinute?: number } = {};
  if (concurrency > 0) spec.concurrency = concurrency;
  if (perMinute > 0) spec.perMinute = perMinute;
  return spec.concurrency || spec.perMinute ? spec : undefined;
}

class TaskLlm implements Llm {
  readonly provider: ProviderName;
  readonly model: string;
  readonly reason: ModelSelection['reason'];
  private readonly impl: LlmProvider;

  constructor(
    private readonly task: TaskContext,
    selection: ModelSelection,
    private readonly settings: ProviderSettings,
  ) {
    this.provider = selection.provider;
    this.model = selection.model;
    this.reason = selection.reason;
    this.impl = getProvider(selection.provider, settings);
  }

  async chat(input: ChatMessage[] | string, options: LlmCallOptions = {}): Promise<LlmResult> {
    const { task, settings, provider } = this;
    const messages: ChatMessage[] = typeof input === 'string' ? [{ role: 'user', content: input }] : input;
    const request = {
      model: this.model,
      messages,
      ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
      ...(options.maxTokens !== undefined ? { maxTokens: options.maxTokens } : {}),
      ...(options.responseFormat ? { responseFormat: options.responseFormat } : {}),
    };
    const spec = limitSpec(settings, provider);
    const forward = options.stream ?? true;
    let emitted = false;
    let attempts = 0;
    /** Text of the current attempt: billed even when the attempt ends in an error or abort. */
    let attemptChars = 0;
    const onDelta = (delta: string) => {
      emitted = true;
      attemptChars += delta.length;
      if (forward) task.stream(delta);
      options.onDelta?.(delta);
    };

    /** Whether a request went out whose outcome is not counted yet (a wait for a slot sends none). */
    let uncounted = false;
    const counted = (request: ProviderOutcome) => {
      uncounted = false;
      countProvider({ provider, model: this.model, request });
    };
    const result = await withRetries(
      async (attempt) => {
        attempts = attempt;
        // A slot per HTTP request, shared by every worker on the store; never held while waiting to retry.
        const release = spec ? await task.limits.acquire(`provider:${provider}`, spec) : undefined;
        const started = performance.now();
        attemptChars = 0;
        const deadline = new RequestDeadline(task.signal, settings.timeoutMs);
        uncounted = true;
        try {
          return await this.impl.chat(request, { signal: deadline.signal, onDelta });
        } catch (error) {
          if (attemptChars > 0) this.recordCutShort(messages, attemptChars, performance.now() - started);
          if (task.signal.aborted) throw task.signal.reason;
          if (deadline.timedOut)
            throw new ProviderUnavailableError(
              provider,
              undefined,
              `${provider} request timed out after ${settings.timeoutMs} ms (AIECS_PROVIDER_TIMEOUT_MS)`,
              undefined,
              { cause: error },
            );
          throw error;
        } finally {
          deadline.dispose();
          release?.();
        }
      },
      { maxRetries: settings.maxRetries, baseMs: settings.retryBaseMs, maxWaitMs: settings.retryMaxWaitMs },
      task.signal,
      {
        // Text the user has seen cannot be taken back: after that, only the task-level retry may repeat it.
        canRetry: () => !emitted,
        onRetry: ({ retry, waitMs, error }) => {
          counted('retry');
          task.log.warn(
            { provider, model: this.model, retry, wait_ms: waitMs, err: (error as Error).message },
            'provider call failed; retrying',
          );
        },
      },
    ).catch((error: unknown) => {
      // The request that ended the call: refused, out of retries, timed out, or cut short.
      if (uncounted) counted('error');
      throw error;
    });

    const cost = this.record(result.usage, result.latency_ms, result.model, 'ok');
    return { ...result, cost_usd: cost, attempts };
  }

  /**
   * Records one call's usage on the task and in the metrics (with how its last request ended, if
   * it is known here); returns its cost (0 for a model without a price).
   */
  private record(
    usage: TokenUsage,
    latencyMs: number,
    answeredBy?: string,
    request?: ProviderOutcome,
  ): number {
    const { task, provider } = this;
    const models = answeredBy === undefined ? [this.model] : [this.model, answeredBy];
    const cost = costUsd(models, usage, pricesFor(this.settings));
    if (cost === undefined && !warnedPrices.has(this.model)) {
      warnedPrices.add(this.model);
      task.log.warn(
        { provider, model: this.model },
        `no price known for model ${this.model}: its cost is recorded as 0; add it to AIECS_MODEL_PRICES`,
      );
    }
    task.resources.modelUsage({
      provider,
      model: this.model,
      input_tokens: usage.input_tokens,
      output_tokens: usage.output_tokens,
      cost_usd: cost ?? 0,
      latency_ms: Math.round(latencyMs),
      ...(usage.estimated ? { estimated: true } : {}),
    });
    countProvider({
      provider,
      model: this.model,
      ...(request ? { request } : {}),
      inputTokens: usage.input_tokens,
      outputTokens: usage.output_tokens,
      costUsd: cost ?? 0,
    });
    return cost ?? 0;
  }

  /**
   * A request that streamed text and then failed or was aborted (cancel, time limit, timeout):
   * the provider billed those tokens but sent no usage, so record an estimate.
   */
  private recordCutShort(messages: ChatMessage[], chars: number, latencyMs: number): void {
    this.record(
      {
        input_tokens: estimateTokens(messages.map((m) => m.content).join('\n')),
        output_tokens: tokensForChars(chars),
        estimated: true,
      },
      latencyMs,
    );
  }
}

/**
 * The model for this task: the provider and model its context names (or the configured default),
 * with shared rate limits, a request timeout, retries that honour Retry-After, usage and cost
 * recorded on the task, and text streamed to the user. Throws ProviderNotConfiguredError at once
 * when the provider has no key, and ValidationError for a provider name it does not know.
 */
export function llm(task: TaskContext, context: RequestContext = {}): Llm {
  const settings = task.providers ?? providerSettings();
  return new TaskLlm(task, selectModel(context, settings), settings);
}

/**
 * One request's signal: it aborts with the task's signal or after `timeoutMs`, whichever comes
 * first. One controller and one timer, where AbortSignal.timeout plus AbortSignal.any made three
 * signals and weak references per request (~3% of a worker's CPU at 2,000 streaming requests).
 */
class RequestDeadline {
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;
  private readonly onTaskAbort = () => this.controller.abort(this.task.reason);
  timedOut = false;

  constructor(
    private readonly task: AbortSignal,
    timeoutMs: number,
  ) {
    if (task.aborted) this.controller.abort(task.reason);
    else task.addEventListener('abort', this.onTaskAbort, { once: true });
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError'));
    }, timeoutMs);
    // Like AbortSignal.timeout's: it does not keep the process alive by itself.
    this.timer.unref();
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.task.removeEventListener('abort', this.onTaskAbort);
  }
}
