import type { FieldIssue } from '../core/errors.js';
import { ValidationError } from '../core/errors.js';
import { llm } from '../providers/client.js';
import type { ChatMessage, ChatRole, ProviderName } from '../providers/types.js';
import type { TaskContext } from '../core/task-context.js';

export interface ChatAnswer {
  text: string;
  model: string;
  provider: ProviderName;
  usage: { input_tokens: number; output_tokens: number; cost_usd: number };
  finish_reason: string;
}

const ROLES: readonly ChatRole[] = ['system', 'user', 'assistant'];

/** `{messages: [{role, content}]}` or `{prompt, system?}` → messages, with every bad field named. */
export function chatMessages(input: Record<string, unknown>): ChatMessage[] {
  const issues: FieldIssue[] = [];
  const messages: ChatMessage[] = [];
  if (input.system !== undefined && (typeof input.system !== 'string' || !input.system.trim()))
    issues.push({ field: 'input_data.system', message: 'must be a non-empty string' });
  else if (typeof input.system === 'string') messages.push({ role: 'system', content: input.system });

  if (input.messages !== undefined) {
    if (!Array.isArray(input.messages) || input.messages.length === 0) {
      issues.push({ field: 'input_data.messages', message: 'must be a non-empty array of {role, content}' });
    } else {
      input.messages.forEach((raw: unknown, i) => {
        const field = `input_data.messages[${i}]`;
        if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
          issues.push({ field, message: 'must be an object {role, content}' });
          return;
        }
        const { role, content } = raw as { role?: unknown; content?: unknown };
        const okRole = typeof role === 'string' && (ROLES as string[]).includes(role);
        if (!okRole)
          issues.push({
            field: `${field}.role`,
            message: `must be one of ${ROLES.join(', ')}${role === undefined ? '' : `; got ${JSON.stringify(role)}`}`,
          });
        if (typeof content !== 'string')
          issues.push({
            field: `${field}.content`,
            message: content === undefined ? 'is required' : 'must be a string',
          });
        if (okRole && typeof content === 'string') messages.push({ role: role as ChatRole, content });
      });
      if (!issues.length && !messages.some((m) => m.role === 'user'))
        issues.push({ field: 'input_data.messages', message: 'must hold at least one user message' });
    }
    if (input.prompt !== undefined)
      issues.push({ field: 'input_data.prompt', message: 'give either messages or prompt, not both' });
  } else if (input.prompt !== undefined) {
    if (typeof input.prompt !== 'string' || !input.prompt.trim())
      issues.push({ field: 'input_data.prompt', message: 'must be a non-empty string' });
    else messages.push({ role: 'user', content: input.prompt });
  } else {
    issues.push({ field: 'input_data.messages', message: 'is required (or input_data.prompt)' });
  }
  if (issues.length) throw new ValidationError(issues);
  return messages;
}

/** temperature (0–2) and max_tokens (≥ 1) from the input, else the context. */
export function samplingOptions(
  input: Record<string, unknown>,
  context: Record<string, unknown>,
): { temperature?: number; maxTokens?: number } {
  const issues: FieldIssue[] = [];
  const out: { temperature?: number; maxTokens?: number } = {};
  const pick = (key: string) =>
    input[key] !== undefined
      ? { value: input[key], field: `input_data.${key}` }
      : context[key] !== undefined
        ? { value: context[key], field: `context.${key}` }
        : undefined;
  const t = pick('temperature');
  if (t) {
    if (typeof t.value === 'number' && t.value >= 0 && t.value <= 2) out.temperature = t.value;
    else issues.push({ field: t.field, message: 'must be a number from 0 to 2' });
  }
  const m = pick('max_tokens');
  if (m) {
    if (typeof m.value === 'number' && Number.isInteger(m.value) && m.value >= 1) out.maxTokens = m.value;
    else issues.push({ field: m.field, message: 'must be a whole number >= 1' });
  }
  if (issues.length) throw new ValidationError(issues);
  return out;
}

/** Chat with a model: messages in, the answer out, its tokens streamed to the user as they come. */
export class LlmChat {
  async chat(
    input: Record<string, unknown>,
    context: Record<string, unknown>,
    task: TaskContext,
  ): Promise<ChatAnswer> {
    const messages = chatMessages(input);
    const sampling = samplingOptions(input, context);
    const model = llm(task, context);
    task.progress(5, `asking ${model.provider} ${model.model}`);
    const result = await model.chat(messages, sampling);
    task.progress(100, 'answered');
    return {
      text: result.text,
      model: result.model,
      provider: result.provider,
      usage: {
        input_tokens: result.usage.input_tokens,
        output_tokens: result.usage.output_tokens,
        cost_usd: result.cost_usd,
      },
      finish_reason: result.finish_reason,
    };
  }
}
