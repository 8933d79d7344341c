// LLM mode: one call asking for JSON, parsed robustly.
import type { Llm } from '../../providers/client.js';
import { parseJsonLoose } from '../../providers/json.js';
import type { ProviderName } from '../../providers/types.js';
import type { SentimentLabel } from './sentiment.js';

export type LlmSentimentLabel = SentimentLabel | 'mixed';

/** What a model said about the text (LLM mode: the context names a model or provider). */
export interface LlmAnalysis {
  summary: string;
  sentiment: { label: LlmSentimentLabel; reasons: string[] };
  model: string;
  provider: ProviderName;
}

const LLM_INSTRUCTIONS =
  'You analyse texts. Answer with one JSON object and nothing else: ' +
  '{"summary": "<one to three sentences>", "sentiment": {"label": "positive" | "negative" | "neutral" | "mixed", ' +
  '"reasons": ["<short reason quoting or pointing at the text>", ...]}}. ' +
  'Write the summary in the language of the text.';

function llmLabel(raw: unknown): LlmSentimentLabel | undefined {
  if (typeof raw !== 'string') return undefined;
  const m = /\b(positive|negative|neutral|mixed)\b/i.exec(raw);
  return m ? (m[1]!.toLowerCase() as LlmSentimentLabel) : undefined;
}

function stringList(raw: unknown): string[] {
  if (typeof raw === 'string') return raw.trim() ? [raw.trim()] : [];
  if (!Array.isArray(raw)) return [];
  return raw
    .map((r) =>
      typeof r === 'string'
        ? r
        : typeof r === 'object' && r !== null
          ? Object.values(r).find((v) => typeof v === 'string')
          : undefined,
    )
    .filter((r): r is string => typeof r === 'string' && r.trim().length > 0)
    .map((r) => r.trim());
}

/**
 * `{summary, sentiment: {label, reasons}}` from a model's answer: JSON (bare, fenced or inside
 * prose, with the usual variations of field names), else read from plain text. The offline label
 * stands in when the model gives none.
 */
export function parseLlmAnalysis(
  text: string,
  fallbackLabel: SentimentLabel,
): Pick<LlmAnalysis, 'summary' | 'sentiment'> {
  const json = parseJsonLoose(text);
  if (json && typeof json === 'object' && !Array.isArray(json)) {
    const o = json as Record<string, unknown>;
    const s = o.sentiment;
    const so = typeof s === 'object' && s !== null && !Array.isArray(s) ? (s as Record<string, unknown>) : {};
    const summary = [o.summary, o.tldr, o.abstract].find((v): v is string => typeof v === 'string') ?? '';
    const label =
      llmLabel(typeof s === 'string' ? s : (so.label ?? so.sentiment ?? so.value ?? so.polarity)) ??
      llmLabel(o.label) ??
      fallbackLabel;
    const reasons = stringList(so.reasons ?? so.reason ?? so.explanation ?? o.reasons ?? o.reason);
    return { summary: summary.trim(), sentiment: { label, reasons } };
  }
  const summary = /summary\s*[:=-]\s*(.+)/i.exec(text)?.[1]?.trim() ?? text.trim().slice(0, 2000);
  const label = llmLabel(/sentiment\s*[:=-]\s*(\w+)/i.exec(text)?.[1]) ?? llmLabel(text) ?? fallbackLabel;
  const reasons = text
    .split(/\r?\n/)
    .filter((l) => /^\s*(?:[-*•]|\d+[.)])\s+/.test(l))
    .map((l) => l.replace(/^\s*(?:[-*•]|\d+[.)])\s+/, '').trim())
    .filter(Boolean);
  return { summary, sentiment: { label, reasons } };
}

/** Asks `model` for a summary and a sentiment with reasons; `fallbackLabel` when it gives none. */
export async function askLlm(model: Llm, text: string, fallbackLabel: SentimentLabel): Promise<LlmAnalysis> {
  const answer = await model.chat(
    [
      { role: 'system', content: LLM_INSTRUCTIONS },
      { role: 'user', content: text },
    ],
    { responseFormat: 'json', stream: false, temperature: 0 },
  );
  return { ...parseLlmAnalysis(answer.text, fallbackLabel), model: answer.model, provider: answer.provider };
}
