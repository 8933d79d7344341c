// Sentiment (AFINN-165 via `sentiment`; English word list, so other languages mostly score 0).
import { round } from '../cooperative.js';
import { textModels } from './models.js';

export type SentimentLabel = 'positive' | 'negative' | 'neutral';

export interface SentimentResult {
  score: number;
  comparative: number;
  label: SentimentLabel;
  positive_words: string[];
  negative_words: string[];
}

/** Comparative (score per token) needed to call a text positive or negative. */
const SENTIMENT_THRESHOLD = 0.05;

export function analyzeSentiment(text: string): SentimentResult {
  const r = textModels().sentiment.analyze(text);
  const label: SentimentLabel =
    r.comparative >= SENTIMENT_THRESHOLD
      ? 'positive'
      : r.comparative <= -SENTIMENT_THRESHOLD
        ? 'negative'
        : 'neutral';
  return {
    score: r.score,
    comparative: round(r.comparative),
    label,
    positive_words: [...new Set(r.positive)],
    negative_words: [...new Set(r.negative)],
  };
}
