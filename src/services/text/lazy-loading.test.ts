import { describe, expect, it, vi } from 'vitest';
import type * as ScriptFiles from '../../core/script-files.js';
import { createTestTaskContext } from '../test-task-context.js';

// Counts the imports of the two heavy libraries (tens of MB of trigram data and word lists).
const imported = vi.hoisted(() => ({ franc: 0, sentiment: 0 }));
vi.mock('franc-min', async (original) => {
  imported.franc++;
  return original();
});
vi.mock('sentiment', async (original) => {
  imported.sentiment++;
  return original();
});
// Records which data files are read, and how often.
const reads = vi.hoisted(() => [] as string[]);
vi.mock('../../core/script-files.js', async (original) => {
  const actual = await original<typeof ScriptFiles>();
  return {
    ...actual,
    readScript: (path: string, url: string) => {
      reads.push(path);
      return actual.readScript(path, url);
    },
  };
});

describe('text analyser loading', () => {
  it('imports franc-min and sentiment on the first task, not with the service module', async () => {
    const { TextAnalyzer } = await import('../text-analyzer.js');
    await import('../doc-generator.js');
    expect(imported).toEqual({ franc: 0, sentiment: 0 });
    expect(reads).toEqual([]);

    const analyzer = new TextAnalyzer();
    const text = { text: 'The quick brown fox jumps over the lazy dog, and the dog sleeps on.' };
    await analyzer.analyze_text(text, {}, createTestTaskContext().task);
    await analyzer.analyze_text(text, {}, createTestTaskContext().task);
    await analyzer.moderate_content(text);
    expect(imported).toEqual({ franc: 1, sentiment: 1 });
    // Each word table is read once, when an analyser first needs it.
    expect(reads.sort()).toEqual([
      './data/languages.json',
      './data/moderation-terms.json',
      './data/stop-words.json',
    ]);
  });
});
