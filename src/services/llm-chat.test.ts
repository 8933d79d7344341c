import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { ValidationError } from '../core/errors.js';
import { ProviderNotConfiguredError, resetProviders } from '../providers/index.js';
import type { ProviderSettings } from '../providers/types.js';
import type { FakeAiServer } from '../../test/fake-ai/server.js';
import { startFakeAi } from '../../test/fake-ai/server.js';
import { LlmChat, chatMessages, samplingOptions } from './llm-chat.js';
import { createTestTaskContext } from './test-task-context.js';

function issues(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ValidationError) return error.issues.map((i) => `${i.field}: ${i.message}`);
    throw error;
  }
  return [];
}

describe('chat input', () => {
  it('takes messages or a prompt (with an optional system message)', () => {
    expect(chatMessages({ prompt: 'hi' })).toEqual([{ role: 'user', content: 'hi' }]);
    expect(chatMessages({ prompt: 'hi', system: 'be brief' })).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hi' },
    ]);
    const messages = [
      { role: 'system', content: 's' },
      { role: 'user', content: 'u' },
      { role: 'assistant', content: 'a' },
      { role: 'user', content: 'u2' },
    ];
    expect(chatMessages({ messages })).toEqual(messages);
  });

  it('names every bad field', () => {
    expect(issues(() => chatMessages({}))).toEqual([
      'input_data.messages: is required (or input_data.prompt)',
    ]);
    expect(issues(() => chatMessages({ prompt: '  ' }))).toEqual([
      'input_data.prompt: must be a non-empty string',
    ]);
    expect(issues(() => chatMessages({ messages: [] }))).toEqual([
      'input_data.messages: must be a non-empty array of {role, content}',
    ]);
    expect(
      issues(() => chatMessages({ messages: [{ role: 'bot', content: 'x' }, { role: 'user' }, 'hello'] })),
    ).toEqual([
      'input_data.messages[0].role: must be one of system, user, assistant; got "bot"',
      'input_data.messages[1].content: is required',
      'input_data.messages[2]: must be an object {role, content}',
    ]);
    expect(issues(() => chatMessages({ messages: [{ role: 'system', content: 'x' }] }))).toEqual([
      'input_data.messages: must hold at least one user message',
    ]);
    expect(issues(() => chatMessages({ messages: [{ role: 'user', content: 'x' }], prompt: 'y' }))).toEqual([
      'input_data.prompt: give either messages or prompt, not both',
    ]);
  });

  it('reads temperature and max_tokens from the input, else the context', () => {
    expect(samplingOptions({ temperature: 0.2 }, { temperature: 1, max_tokens: 99 })).toEqual({
      temperature: 0.2,
      maxTokens: 99,
    });
    expect(issues(() => samplingOptions({ temperature: 3 }, { max_tokens: 1.5 }))).toEqual([
      'input_data.temperature: must be a number from 0 to 2',
      'context.max_tokens: must be a whole number >= 1',
    ]);
  });
});

describe('chat/llm_chat.chat', () => {
  let fake: FakeAiServer;
  beforeAll(async () => {
    fake = await startFakeAi();
  });
  afterAll(async () => fake.stop());
  // The settings a worker would pass each task; set per test.
  let providers: ProviderSettings | undefined;
  afterEach(() => {
    providers = undefined;
    resetProviders();
  });

  it('answers, streaming the tokens, and reports usage', async () => {
    providers = loadConfig({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: fake.openaiBaseUrl }).providers;
    fake.script('gpt-4o-mini', { reply: 'Hello there, friend.', usage: { input: 12, output: 4 } });
    const t = createTestTaskContext({ providers });
    const answer = await new LlmChat().chat(
      { messages: [{ role: 'user', content: 'Say hello' }], temperature: 0.5 },
      { model: 'gpt-4o-mini' },
      t.task,
    );
    expect(answer).toEqual({
      text: 'Hello there, friend.',
      model: 'gpt-4o-mini',
      provider: 'openai',
      usage: { input_tokens: 12, output_tokens: 4, cost_usd: (12 * 0.15 + 4 * 0.6) / 1e6 },
      finish_reason: 'stop',
    });
    expect(t.streamed.join('')).toBe(answer.text);
    expect(t.progress.at(-1)).toEqual({ percent: 100, message: 'answered' });
    expect(fake.requestsFor('gpt-4o-mini')[0]!.body).toMatchObject({ temperature: 0.5 });
  });

  it('fails before any request when the provider has no key', async () => {
    providers = loadConfig({}).providers;
    const before = fake.requests.length;
    await expect(
      new LlmChat().chat({ prompt: 'hi' }, { provider: 'vertex' }, createTestTaskContext({ providers }).task),
    ).rejects.toBeInstanceOf(ProviderNotConfiguredError);
    expect(fake.requests.length).toBe(before);
  });

  it('validates the input before choosing a provider', async () => {
    providers = loadConfig({}).providers;
    await expect(
      new LlmChat().chat({}, {}, createTestTaskContext({ providers }).task),
    ).rejects.toBeInstanceOf(ValidationError);
  });
});
