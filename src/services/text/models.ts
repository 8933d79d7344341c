import type Sentiment from 'sentiment';
import type { francAll as FrancAll } from 'franc-min';

export interface TextModels {
  francAll: typeof FrancAll;
  sentiment: Sentiment;
}

let loaded: TextModels | undefined;

/**
 * Loads franc's trigram data and the AFINN word list (tens of MB together) on first use rather
 * than when a worker starts. Every method awaits it; the analysers need it done.
 */
export async function loadTextModels(): Promise<void> {
  if (loaded) return;
  const [{ francAll }, { default: SentimentAnalyzer }] = await Promise.all([
    import('franc-min'),
    import('sentiment'),
  ]);
  loaded ??= { francAll, sentiment: new SentimentAnalyzer() };
}

export function textModels(): TextModels {
  if (!loaded) throw new Error('text models are not loaded: await loadTextModels() first');
  return loaded;
}
