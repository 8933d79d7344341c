import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { ProviderNotConfiguredError, resetProviders } from '../providers/index.js';
import type { ProviderSettings } from '../providers/types.js';
import type { FakeAiServer } from '../../test/fake-ai/server.js';
import { startFakeAi } from '../../test/fake-ai/server.js';
import { TextAnalyzer, parseLlmAnalysis } from './text-analyzer.js';
import { createTestTaskContext } from './test-task-context.js';

describe('parseLlmAnalysis', () => {
  it('reads the JSON asked for', () => {
    expect(
      parseLlmAnalysis(
        '{"summary": "S.", "sentiment": {"label": "Positive", "reasons": ["good", "great"]}}',
        'neutral',
      ),
    ).toEqual({ summary: 'S.', sentiment: { label: 'positive', reasons: ['good', 'great'] } });
  });

  it('copes with fences, prose and other field shapes', () => {
    expect(
      parseLlmAnalysis(
        'Result:\n```json\n{"summary": "S.", "sentiment": "mostly negative", "reason": "bad"}\n```',
        'neutral',
      ),
    ).toEqual({ summary: 'S.', sentiment: { label: 'negative', reasons: ['bad'] } });
    expect(parseLlmAnalysis('{"summary": "S.", "sentiment": {"label": "ecstatic"}}', 'positive')).toEqual({
      summary: 'S.',
      sentiment: { label: 'positive', reasons: [] },
    });
    expect(
      parseLlmAnalysis(
        'Summary: A short text.\nSentiment: mixed\nReasons:\n- likes the food\n- hates the wait',
        'neutral',
      ),
    ).toEqual({
      summary: 'A short text.',
      sentiment: { label: 'mixed', reasons: ['likes the food', 'hates the wait'] },
    });
  });
});

describe('chat/text_analyzer.analyze_text in LLM mode', () => {
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

  it('keeps the offline analysis and adds the model’s summary and sentiment', async () => {
    providers = loadConfig({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: fake.openaiBaseUrl }).providers;
    fake.script('gpt-3.5-turbo', {
      reply: '{"summary": "A happy review.", "sentiment": {"label": "positive", "reasons": ["\\"love\\""]}}',
    });
    const t = createTestTaskContext({ providers });
    const text = 'I love this product. It works great and the support team is wonderful.';
    const result = await new TextAnalyzer().analyze_text(
      { text },
      { language: 'en', model: 'gpt-3.5-turbo' },
      t.task,
    );
    expect(result.sentiment.label).toBe('positive');
    expect(result.language.code).toBe('en');
    expect(result.llm).toEqual({
      summary: 'A happy review.',
      sentiment: { label: 'positive', reasons: ['"love"'] },
      model: 'gpt-3.5-turbo',
      provider: 'openai',
    });
    const [request] = fake.requestsFor('gpt-3.5-turbo');
    expect(request!.body).toMatchObject({ response_format: { type: 'json_object' }, temperature: 0 });
    expect(request!.messages.at(-1)).toEqual({ role: 'user', content: text });
    expect(t.streamed).toEqual([]); // JSON is not for the user's stream
    expect(t.usages).toHaveLength(1);
    expect(t.progress.map((p) => p.percent)).toEqual([15, 30, 45, 60, 100]);
  });

  it('stays offline without a model, and fails at once for a provider without a key', async () => {
    providers = loadConfig({}).providers;
    const before = fake.requests.length;
    const offline = await new TextAnalyzer().analyze_text(
      { text: 'Fine words here.' },
      { language: 'en' },
      createTestTaskContext({ providers }).task,
    );
    expect(offline.llm).toBeUndefined();
    await expect(
      new TextAnalyzer().analyze_text(
        { text: 'Fine words here.' },
        { model: 'gemini-2.0-flash' },
        createTestTaskContext({ providers }).task,
      ),
    ).rejects.toBeInstanceOf(ProviderNotConfiguredError);
    expect(fake.requests.length).toBe(before);
  });
});
