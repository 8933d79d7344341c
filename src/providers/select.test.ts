import { describe, expect, it } from 'vitest';
import { ValidationError } from '../core/errors.js';
import { loadConfig } from '../core/config.js';
import { namesModel, normalizeProviderName, providerForModel, selectModel } from './select.js';

const settings = loadConfig({}).providers;

describe('providerForModel', () => {
  it.each([
    ['gpt-4o-mini', 'openai'],
    ['gpt-3.5-turbo', 'openai'],
    ['chatgpt-4o-latest', 'openai'],
    ['o1', 'openai'],
    ['o1-mini', 'openai'],
    ['o3-mini', 'openai'],
    ['o4-mini', 'openai'],
    ['GPT-4o', 'openai'],
    ['grok-3-mini', 'xai'],
    ['grok-4', 'xai'],
    ['gemini-2.0-flash', 'vertex'],
    ['gemini-2.5-pro', 'vertex'],
  ])('%s → %s', (model, provider) => {
    expect(providerForModel(model)).toBe(provider);
  });

  it.each(['llama3', 'mistral-7b', 'o10', 'omni', 'claude-3'])('%s → unknown', (model) => {
    expect(providerForModel(model)).toBeUndefined();
  });
});

describe('normalizeProviderName', () => {
  it.each([
    ['OpenAI', 'openai'],
    ['xAI', 'xai'],
    ['Grok', 'xai'],
    ['Vertex AI', 'vertex'],
    ['vertex_ai', 'vertex'],
    ['google', 'vertex'],
    ['Gemini', 'vertex'],
  ])('%s → %s', (raw, name) => {
    expect(normalizeProviderName(raw)).toBe(name);
  });

  it('knows no others', () => {
    expect(normalizeProviderName('anthropic')).toBeUndefined();
  });
});

describe('selectModel', () => {
  it('takes the provider the context names, with its default model', () => {
    expect(selectModel({ provider: 'xai' }, settings)).toEqual({
      provider: 'xai',
      model: 'grok-3-mini',
      reason: 'provider',
    });
    expect(selectModel({ provider: 'vertex', model: 'gemini-1.5-pro' }, settings)).toMatchObject({
      provider: 'vertex',
      model: 'gemini-1.5-pro',
    });
  });

  it("reads the original package's metadata.aiPreference", () => {
    expect(
      selectModel(
        { metadata: { aiPreference: { provider: 'Vertex', model: 'gemini-2.5-flash' } } },
        settings,
      ),
    ).toEqual({ provider: 'vertex', model: 'gemini-2.5-flash', reason: 'provider' });
    expect(selectModel({ metadata: { aiPreference: { model: 'grok-4' } } }, settings)).toEqual({
      provider: 'xai',
      model: 'grok-4',
      reason: 'model',
    });
    // context.provider wins over aiPreference.
    expect(
      selectModel({ provider: 'openai', metadata: { aiPreference: { provider: 'xai' } } }, settings).provider,
    ).toBe('openai');
  });

  it('tells the provider from the model', () => {
    expect(selectModel({ model: 'gpt-3.5-turbo' }, settings)).toEqual({
      provider: 'openai',
      model: 'gpt-3.5-turbo',
      reason: 'model',
    });
    expect(selectModel({ model: 'gemini-2.0-flash' }, settings).provider).toBe('vertex');
  });

  it('sends a model no rule knows to the default provider (an OpenAI-compatible server, say)', () => {
    expect(selectModel({ model: 'llama3.1:8b' }, settings)).toEqual({
      provider: 'openai',
      model: 'llama3.1:8b',
      reason: 'default',
    });
  });

  it('falls back to the configured default provider and model', () => {
    expect(selectModel({}, settings)).toEqual({
      provider: 'openai',
      model: 'gpt-4o-mini',
      reason: 'default',
    });
    const vertex = loadConfig({
      AIECS_DEFAULT_PROVIDER: 'vertex',
      AIECS_DEFAULT_MODEL: 'gemini-2.5-pro',
    }).providers;
    expect(selectModel({}, vertex)).toEqual({
      provider: 'vertex',
      model: 'gemini-2.5-pro',
      reason: 'default',
    });
    expect(selectModel({ provider: 'openai' }, vertex).model).toBe('gpt-4o-mini');
    const models = loadConfig({ AIECS_XAI_MODEL: 'grok-4' }).providers;
    expect(selectModel({ provider: 'grok' }, models).model).toBe('grok-4');
  });

  it('names every bad field', () => {
    let error: unknown;
    try {
      selectModel({ provider: 'anthropic', model: 42 }, settings);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.field)).toEqual([
      'context.provider',
      'context.model',
    ]);
    expect(() => selectModel({ metadata: { aiPreference: { provider: 7 } } }, settings)).toThrow(
      /context\.metadata\.aiPreference\.provider/,
    );
  });

  it('tells whether a context names a model at all', () => {
    expect(namesModel({})).toBe(false);
    expect(namesModel({ language: 'en' })).toBe(false);
    expect(namesModel({ model: 'gpt-4o' })).toBe(true);
    expect(namesModel({ provider: 'xai' })).toBe(true);
    expect(namesModel({ metadata: { aiPreference: { model: 'x' } } })).toBe(true);
  });
});
