import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config.js';
import { ValidationError } from '../core/errors.js';
import { resetProviders } from '../providers/index.js';
import type { ProviderSettings } from '../providers/types.js';
import type { FakeAiServer, FakeRequest } from '../../test/fake-ai/server.js';
import { startFakeAi } from '../../test/fake-ai/server.js';
import {
  DocGenerator,
  cleanSection,
  documentSpec,
  parseLength,
  parseOutline,
  parseReferences,
} from './doc-generator.js';
import { createTestTaskContext } from './test-task-context.js';

describe('document spec', () => {
  it('reads lengths as words', () => {
    expect(parseLength('5000 words')).toBe(5000);
    expect(parseLength('1,500 words')).toBe(1500);
    expect(parseLength('2k words')).toBe(2000);
    expect(parseLength('3 pages')).toBe(1500);
    expect(parseLength(800)).toBe(800);
    expect(parseLength('short')).toBe(600);
    expect(parseLength(undefined)).toBe(1200);
    expect(parseLength('a lot')).toBeUndefined();
    expect(parseLength(-3)).toBeUndefined();
  });

  it("takes the seed's example", () => {
    expect(
      documentSpec(
        { topic: 'AI development trends', length: '5000 words', style: 'academic paper' },
        { template: 'academic', references: true, citations: true },
      ),
    ).toEqual({
      topic: 'AI development trends',
      words: 5000,
      style: 'academic paper',
      template: 'academic',
      references: true,
      citations: true,
      sections: 8,
    });
  });

  it('names every bad field', () => {
    let error: unknown;
    try {
      documentSpec({ length: 'lots', style: 3 }, { template: '', sections: 99 });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues.map((i) => i.field)).toEqual([
      'input_data.topic',
      'input_data.length',
      'input_data.style',
      'context.template',
      'context.sections',
    ]);
  });
});

describe('outline parsing', () => {
  it('reads the JSON it asked for, in any wrapping', () => {
    expect(parseOutline('{"title": "T", "sections": ["Intro", "Body", "End"]}')).toEqual({
      title: 'T',
      sections: ['Intro', 'Body', 'End'],
    });
    expect(
      parseOutline(
        'Sure!\n```json\n{"title": "T", "outline": [{"title": "1. Intro"}, {"heading": "Body"}]}\n```',
      ),
    ).toEqual({ title: 'T', sections: ['Intro', 'Body'] });
    expect(parseOutline('["A", "B", "A"]')).toEqual({ sections: ['A', 'B'] });
  });

  it('falls back to numbered, bulleted or Markdown lists', () => {
    const text = [
      'Title: **The Future of AI**',
      '',
      'Here is the outline:',
      '1. Introduction',
      '2) **Current Trends**:',
      '- Challenges',
      '## Section 4: Outlook',
      'IV. Conclusion',
    ].join('\n');
    expect(parseOutline(text)).toEqual({
      title: 'The Future of AI',
      sections: ['Introduction', 'Current Trends', 'Challenges', 'Outlook', 'Conclusion'],
    });
    expect(parseOutline('# My Doc\n\n## One\n## Two')).toEqual({ title: 'My Doc', sections: ['One', 'Two'] });
    expect(parseOutline('nothing useful')).toEqual({ sections: [] });
  });

  it('drops a first line that repeats the heading, and reads reference lists', () => {
    expect(cleanSection('## Intro\n\nText here.', 'Intro')).toBe('Text here.');
    expect(cleanSection('Text here.', 'Intro')).toBe('Text here.');
    expect(parseReferences('1. A (2020)\n2. B (2021)\nNote: x')).toEqual(['A (2020)', 'B (2021)']);
    expect(parseReferences('["A", "B"]')).toEqual(['A', 'B']);
  });
});

describe('document/doc_generator.generate_document', () => {
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

  const system = (r: FakeRequest) => r.messages.find((m) => m.role === 'system')?.content ?? '';
  const user = (r: FakeRequest) => r.messages.find((m) => m.role === 'user')?.content ?? '';

  it('outlines, writes each section streamed, then references', async () => {
    providers = loadConfig({ XAI_API_KEY: 'k', AIECS_XAI_BASE_URL: fake.openaiBaseUrl }).providers;
    fake.script('grok-3-mini', {
      reply: (r) => {
        if (system(r).includes('plan documents'))
          return 'Here:\n```json\n{"title": "AI Trends", "sections": ["Introduction", "Models", "References", "Outlook"]}\n```';
        if (system(r).includes('reference lists'))
          return '1. Smith, J. (2021). Scaling.\n2. Doe, A. (2022). Agents.';
        const section = /"([^"]+)", in about/.exec(user(r))?.[1] ?? '?';
        return `Text about ${section.toLowerCase()} [Smith 2021].`;
      },
    });
    const t = createTestTaskContext({ providers });
    const doc = await new DocGenerator().generate_document(
      { topic: 'AI development trends', length: '900 words', style: 'academic paper' },
      { template: 'academic', references: true, citations: true, provider: 'xai' },
      t.task,
    );
    // References come separately: the outline's own "References" entry is dropped.
    expect(doc.outline).toEqual(['Introduction', 'Models', 'Outlook']);
    expect(doc.title).toBe('AI Trends');
    expect(doc.sections).toEqual([
      { title: 'Introduction', content: 'Text about introduction [Smith 2021].' },
      { title: 'Models', content: 'Text about models [Smith 2021].' },
      { title: 'Outlook', content: 'Text about outlook [Smith 2021].' },
    ]);
    expect(doc.references).toEqual(['Smith, J. (2021). Scaling.', 'Doe, A. (2022). Agents.']);
    expect(doc.markdown).toBe(
      [
        '# AI Trends',
        '',
        '## Introduction',
        '',
        'Text about introduction [Smith 2021].',
        '',
        '## Models',
        '',
        'Text about models [Smith 2021].',
        '',
        '## Outlook',
        '',
        'Text about outlook [Smith 2021].',
        '',
        '## References',
        '',
        '1. Smith, J. (2021). Scaling.',
        '2. Doe, A. (2022). Agents.',
        '',
      ].join('\n'),
    );
    expect(doc.word_count).toBeGreaterThan(20);
    expect(doc.provider).toBe('xai');
    // The stream is the document as it grew.
    expect(t.streamed.join('').trim()).toBe(doc.markdown.trim());
    // One call for the outline, one per section, one for references; each recorded.
    const calls = fake.requestsFor('grok-3-mini');
    expect(calls).toHaveLength(5);
    expect(t.usages).toHaveLength(5);
    expect(user(calls[4]!)).toContain('Smith 2021');
    // Progress per section, rising to 100.
    const percents = t.progress.map((p) => p.percent);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(t.progress.filter((p) => /^writing section/.test(p.message ?? ''))).toHaveLength(3);
    expect(percents.at(-1)).toBe(100);
  });

  it('uses the template when the outline has no titles, and adds no references unasked', async () => {
    providers = loadConfig({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: fake.openaiBaseUrl }).providers;
    fake.script('gpt-doc', {
      reply: (r) => (system(r).includes('plan documents') ? 'I cannot help with outlines.' : 'Body.'),
    });
    const t = createTestTaskContext({ providers });
    const doc = await new DocGenerator().generate_document(
      { topic: 'quarterly results' },
      { template: 'report', model: 'gpt-doc' },
      t.task,
    );
    expect(doc.outline).toEqual([
      'Executive Summary',
      'Background',
      'Findings',
      'Recommendations',
      'Conclusion',
    ]);
    expect(doc.title).toBe('Quarterly results');
    expect(doc.references).toBeUndefined();
    expect(doc.markdown).not.toContain('References');
    expect(t.logs.some((l) => l.level === 'warn' && /outline/.test(l.msg ?? ''))).toBe(true);
  });

  it('stops between sections when the task is cancelled', async () => {
    providers = loadConfig({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: fake.openaiBaseUrl }).providers;
    fake.script('gpt-cancel', {
      reply: (r) => (system(r).includes('plan documents') ? '["A", "B", "C", "D"]' : 'Body.'),
    });
    const t = createTestTaskContext({
      providers,
      onProgress: (call, controller) => {
        if (call.message?.startsWith('writing section 2/')) controller.abort(new Error('cancelled'));
      },
    });
    await expect(
      new DocGenerator().generate_document({ topic: 'x' }, { model: 'gpt-cancel' }, t.task),
    ).rejects.toThrow('cancelled');
    expect(fake.requestsFor('gpt-cancel')).toHaveLength(2); // outline + section 1
  });
});
