/** USD per 1M tokens. */
export interface ModelPrice {
  input: number;
  output: number;
}

/**
 * List prices in USD per 1M tokens (standard tier, text). Prices change: override or add models
 * with AIECS_MODEL_PRICES='{"model": {"input": 1.5, "output": 6}}'. A dated or suffixed model
 * name (`gpt-4o-mini-2024-07-18`, `gemini-2.0-flash-001`) takes the price of its longest listed prefix.
 */
export const BUILTIN_PRICES: Readonly<Record<string, ModelPrice>> = {
  // OpenAI
  'gpt-5': { input: 1.25, output: 10 },
  'gpt-5-mini': { input: 0.25, output: 2 },
  'gpt-5-nano': { input: 0.05, output: 0.4 },
  'gpt-4.1': { input: 2, output: 8 },
  'gpt-4.1-mini': { input: 0.4, output: 1.6 },
  'gpt-4.1-nano': { input: 0.1, output: 0.4 },
  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4-turbo': { input: 10, output: 30 },
  'gpt-4': { input: 30, output: 60 },
  'gpt-3.5-turbo': { input: 0.5, output: 1.5 },
  o1: { input: 15, output: 60 },
  'o1-mini': { input: 1.1, output: 4.4 },
  o3: { input: 2, output: 8 },
  'o3-mini': { input: 1.1, output: 4.4 },
  'o4-mini': { input: 1.1, output: 4.4 },
  // xAI
  'grok-4': { input: 3, output: 15 },
  'grok-3': { input: 3, output: 15 },
  'grok-3-mini': { input: 0.3, output: 0.5 },
  'grok-2': { input: 2, output: 10 },
  // Vertex AI (Gemini)
  'gemini-2.5-pro': { input: 1.25, output: 10 },
  'gemini-2.5-flash': { input: 0.3, output: 2.5 },
  'gemini-2.5-flash-lite': { input: 0.1, output: 0.4 },
  'gemini-2.0-flash': { input: 0.15, output: 0.6 },
  'gemini-2.0-flash-lite': { input: 0.075, output: 0.3 },
  'gemini-1.5-pro': { input: 1.25, output: 5 },
  'gemini-1.5-flash': { input: 0.075, output: 0.3 },
};

/** The built-in table with the configured prices merged over it; names are matched case-insensitively. */
export function priceTable(overrides: Record<string, ModelPrice> = {}): Map<string, ModelPrice> {
  const table = new Map<string, ModelPrice>();
  for (const [model, price] of Object.entries(BUILTIN_PRICES)) table.set(model.toLowerCase(), price);
  for (const [model, price] of Object.entries(overrides)) table.set(model.toLowerCase(), price);
  return table;
}

/** The price of `model`: an exact entry, else the longest entry it starts with at a `-`, `@` or `:`. */
export function findPrice(
  model: string,
  table: Map<string, ModelPrice>,
): { model: string; price: ModelPrice } | undefined {
  // Vertex resource names: publishers/google/models/gemini-2.0-flash.
  const name = (model.split('/').pop() ?? model).trim().toLowerCase();
  const exact = table.get(name);
  if (exact) return { model: name, price: exact };
  let best: string | undefined;
  for (const key of table.keys()) {
    if (name.length > key.length && name.startsWith(key) && /[-@:]/.test(name[key.length]!)) {
      if (!best || key.length > best.length) best = key;
    }
  }
  return best ? { model: best, price: table.get(best)! } : undefined;
}

/** Cost in USD of one call; undefined when no price is known for any of `models`. */
export function costUsd(
  models: string[],
  usage: { input_tokens: number; output_tokens: number },
  table: Map<string, ModelPrice>,
): number | undefined {
  for (const model of models) {
    const found = findPrice(model, table);
    if (!found) continue;
    const usd = (usage.input_tokens * found.price.input + usage.output_tokens * found.price.output) / 1e6;
    return Math.round(usd * 1e10) / 1e10;
  }
  return undefined;
}
