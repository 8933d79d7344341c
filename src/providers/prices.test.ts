import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { loadConfig } from '../core/config.js';
import { BUILTIN_PRICES, costUsd, findPrice, priceTable } from './prices.js';

describe('prices', () => {
  const table = priceTable();

  it('has a price for every default model', () => {
    const { defaultModels } = loadConfig({}).providers;
    for (const model of Object.values(defaultModels)) expect(findPrice(model, table)).toBeDefined();
  });

  it('matches exact names case-insensitively, else the longest listed prefix', () => {
    expect(findPrice('GPT-4o-mini', table)?.model).toBe('gpt-4o-mini');
    expect(findPrice('gpt-4o-mini-2024-07-18', table)?.model).toBe('gpt-4o-mini');
    expect(findPrice('gpt-4o-2024-08-06', table)?.model).toBe('gpt-4o');
    expect(findPrice('gemini-2.0-flash-001', table)?.model).toBe('gemini-2.0-flash');
    expect(findPrice('publishers/google/models/gemini-2.5-pro', table)?.model).toBe('gemini-2.5-pro');
    // A prefix must end at a separator: gpt-4o is not a price for gpt-4ox.
    expect(findPrice('gpt-4ox', table)).toBeUndefined();
    expect(findPrice('llama3', table)).toBeUndefined();
  });

  it('computes USD from tokens and prices per 1M tokens', () => {
    // gpt-4o-mini: 0.15 in, 0.6 out.
    expect(costUsd(['gpt-4o-mini'], { input_tokens: 1_000_000, output_tokens: 0 }, table)).toBe(0.15);
    expect(costUsd(['gpt-4o-mini'], { input_tokens: 1000, output_tokens: 500 }, table)).toBeCloseTo(
      0.00045,
      12,
    );
    expect(costUsd(['nope', 'grok-3-mini'], { input_tokens: 10, output_tokens: 10 }, table)).toBeCloseTo(
      (10 * 0.3 + 10 * 0.5) / 1e6,
      15,
    );
    expect(costUsd(['llama3'], { input_tokens: 10, output_tokens: 10 }, table)).toBeUndefined();
  });

  it('merges AIECS_MODEL_PRICES over the built-in table', () => {
    const { modelPrices } = loadConfig({
      AIECS_MODEL_PRICES: JSON.stringify({
        'gpt-4o-mini': { input: 1, output: 2 },
        llama3: { input: 0, output: 0.1 },
      }),
    }).providers;
    const merged = priceTable(modelPrices);
    expect(findPrice('gpt-4o-mini', merged)?.price).toEqual({ input: 1, output: 2 });
    expect(findPrice('llama3', merged)?.price).toEqual({ input: 0, output: 0.1 });
    expect(findPrice('gpt-4o', merged)?.price).toEqual(BUILTIN_PRICES['gpt-4o']);
    // The built-in table itself is untouched.
    expect(findPrice('gpt-4o-mini', table)?.price).toEqual({ input: 0.15, output: 0.6 });
  });

  it('refuses a bad AIECS_MODEL_PRICES naming the variable', () => {
    expect(() => loadConfig({ AIECS_MODEL_PRICES: '{nope' })).toThrow(ConfigError);
    expect(() => loadConfig({ AIECS_MODEL_PRICES: '{nope' })).toThrow(/AIECS_MODEL_PRICES/);
    expect(() => loadConfig({ AIECS_MODEL_PRICES: '{"m": {"input": -1, "output": 1}}' })).toThrow(
      /AIECS_MODEL_PRICES/,
    );
    expect(() => loadConfig({ AIECS_MODEL_PRICES: '{"m": {"input": 1}}' })).toThrow(/AIECS_MODEL_PRICES/);
  });
});
