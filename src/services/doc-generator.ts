import type { FieldIssue } from '../core/errors.js';
import { ValidationError } from '../core/errors.js';
import { llm } from '../providers/client.js';
import { parseJsonLoose } from '../providers/json.js';
import type { ProviderName } from '../providers/types.js';
import type { TaskContext } from '../core/task-context.js';
import { samplingOptions } from './llm-chat.js';
import { words } from './text-analyzer.js';

export interface DocumentSection {
  title: string;
  content: string;
}

export interface GeneratedDocument {
  title: string;
  outline: string[];
  sections: DocumentSection[];
  /** The whole document: title, sections and, when asked, references. */
  markdown: string;
  word_count: number;
  /** Present when the context asked for references or citations. */
  references?: string[];
  model: string;
  provider: ProviderName;
}

export interface DocumentSpec {
  topic: string;
  words: number;
  style: string;
  template: string;
  references: boolean;
  citations: boolean;
  sections: number;
  language?: string;
}

const NAMED_LENGTHS: Record<string, number> = { short: 600, medium: 1500, long: 3000 };
const DEFAULT_WORDS = 1200;
const MIN_WORDS = 100;
const MAX_WORDS = 20_000;
const MAX_SECTIONS = 20;

/** Template → what its outline should look like. */
const TEMPLATES: Record<string, { hint: string; fallback: string[] }> = {
  academic: {
    hint: 'an academic paper: Abstract, Introduction, background or related work, the body, Discussion, Conclusion',
    fallback: ['Abstract', 'Introduction', 'Background', 'Discussion', 'Conclusion'],
  },
  report: {
    hint: 'a report: Executive Summary, Background, Findings, Recommendations, Conclusion',
    fallback: ['Executive Summary', 'Background', 'Findings', 'Recommendations', 'Conclusion'],
  },
  technical: {
    hint: 'a technical document: Overview, Concepts, Design or Architecture, Usage, Limitations',
    fallback: ['Overview', 'Concepts', 'Design', 'Usage', 'Limitations'],
  },
  blog: {
    hint: 'a blog post: a hook, a few focused sections, a takeaway',
    fallback: ['Introduction', 'Why It Matters', 'What To Know', 'Takeaways'],
  },
};
const GENERIC = { hint: 'an article', fallback: ['Introduction', 'Background', 'Discussion', 'Conclusion'] };

/** `5000`, `"5000 words"`, `"3 pages"`, `"short"` → a word count. */
export function parseLength(raw: unknown): number | undefined {
  if (raw === undefined || raw === null) return DEFAULT_WORDS;
  if (typeof raw === 'number') return Number.isFinite(raw) && raw > 0 ? Math.round(raw) : undefined;
  if (typeof raw !== 'string') return undefined;
  const text = raw.trim().toLowerCase();
  if (NAMED_LENGTHS[text]) return NAMED_LENGTHS[text];
  const m = /^(\d[\d,_]*(?:\.\d+)?)\s*(k)?\s*(words?|pages?)?$/.exec(text);
  if (!m) return undefined;
  let n = Number(m[1]!.replace(/[,_]/g, ''));
  if (m[2]) n *= 1000;
  if (m[3]?.startsWith('page')) n *= 500;
  return n > 0 ? Math.round(n) : undefined;
}

function flag(value: unknown): boolean {
  return value === true || value === 'true' || value === 1 || value === 'yes';
}

/** The document asked for, from the seed's input `{topic, length, style}` and context `{template, references, citations}`. */
export function documentSpec(input: Record<string, unknown>, context: Record<string, unknown>): DocumentSpec {
  const issues: FieldIssue[] = [];
  const topic = input.topic;
  if (typeof topic !== 'string' || !topic.trim())
    issues.push({
      field: 'input_data.topic',
      message: topic === undefined ? 'is required' : 'must be a non-empty string',
    });
  else if (topic.length > 2000)
    issues.push({ field: 'input_data.topic', message: 'must be at most 2000 characters' });
  const parsed = parseLength(input.length);
  if (parsed === undefined)
    issues.push({
      field: 'input_data.length',
      message: 'must be a number of words, "5000 words", "3 pages", short, medium or long',
    });
  if (input.style !== undefined && (typeof input.style !== 'string' || !input.style.trim()))
    issues.push({ field: 'input_data.style', message: 'must be a non-empty string' });
  if (context.template !== undefined && (typeof context.template !== 'string' || !context.template.trim()))
    issues.push({ field: 'context.template', message: 'must be a non-empty string' });
  const sectionsRaw = context.sections ?? input.sections;
  if (
    sectionsRaw !== undefined &&
    !(
      typeof sectionsRaw === 'number' &&
      Number.isInteger(sectionsRaw) &&
      sectionsRaw >= 1 &&
      sectionsRaw <= MAX_SECTIONS
    )
  )
    issues.push({
      field: context.sections !== undefined ? 'context.sections' : 'input_data.sections',
      message: `must be a whole number from 1 to ${MAX_SECTIONS}`,
    });
  if (issues.length) throw new ValidationError(issues);

  const wordsWanted = Math.min(MAX_WORDS, Math.max(MIN_WORDS, parsed!));
  const spec: DocumentSpec = {
    topic: (topic as string).trim(),
    words: wordsWanted,
    style: typeof input.style === 'string' ? input.style.trim() : 'clear and informative',
    template: typeof context.template === 'string' ? context.template.trim() : 'article',
    references: flag(context.references),
    citations: flag(context.citations),
    sections: (sectionsRaw as number | undefined) ?? Math.min(10, Math.max(3, Math.round(wordsWanted / 600))),
  };
  if (typeof context.language === 'string' && context.language.trim())
    spec.language = context.language.trim();
  return spec;
}

const REFERENCE_TITLE = /^(references|bibliography|works cited|sources|citations)$/i;

/** A heading as models write it, without numbering, bullets, emphasis or quotes. */
function cleanTitle(raw: string): string {
  return raw
    .replace(/^\s*#+\s*/, '')
    .replace(/^\s*(?:[-*•+]|\d+[.)]|[ivxlc]+[.)]|[a-z][.)])\s+/i, '')
    .replace(/^(?:section|chapter|part)\s+\d+\s*[:.-]\s*/i, '')
    .replace(/\*\*|__|`/g, '')
    .replace(/^["'“”‘’]+|["'“”‘’]+$/g, '')
    .replace(/\s*[:：]\s*$/, '')
    .trim();
}

function itemTitle(item: unknown): string | undefined {
  if (typeof item === 'string') return item;
  if (typeof item === 'object' && item !== null) {
    const o = item as Record<string, unknown>;
    for (const key of ['title', 'heading', 'name', 'section']) if (typeof o[key] === 'string') return o[key];
  }
  return undefined;
}

/**
 * Section titles from the outline call, whatever shape they came in: `{"title", "sections": [...]}`
 * (strings or `{title}` objects), a bare JSON array, or a numbered / bulleted / Markdown list.
 */
export function parseOutline(text: string): { title?: string; sections: string[] } {
  const json = parseJsonLoose(text);
  let title: string | undefined;
  let items: unknown[] | undefined;
  if (Array.isArray(json)) items = json;
  else if (json && typeof json === 'object') {
    const o = json as Record<string, unknown>;
    if (typeof o.title === 'string') title = o.title;
    for (const key of ['sections', 'outline', 'headings', 'section_titles', 'chapters']) {
      if (Array.isArray(o[key])) {
        items = o[key];
        break;
      }
    }
  }
  let sections: string[];
  if (items) {
    sections = items.map(itemTitle).filter((t): t is string => t !== undefined);
  } else {
    sections = [];
    for (const line of text.split(/\r?\n/)) {
      const trimmed = line.trim();
      if (!trimmed || trimmed.startsWith('```')) continue;
      const titled = /^(?:#\s+|\*\*)?title\s*[:：]\s*(.+)$/i.exec(trimmed);
      if (titled) {
        title ??= cleanTitle(titled[1]!);
        continue;
      }
      if (/^#\s/.test(trimmed) && !title) {
        title = cleanTitle(trimmed);
        continue;
      }
      // Only list items and headings: prose around the list is not an outline.
      if (/^(?:#{2,6}\s|[-*•+]\s|\d+[.)]\s|[ivxlc]+[.)]\s)/i.test(trimmed)) sections.push(trimmed);
    }
  }
  const seen = new Set<string>();
  const clean = sections
    .map(cleanTitle)
    .filter((t) => t.length > 0 && t.length <= 200 && !/^(outline|sections?)$/i.test(t))
    .filter((t) => (seen.has(t.toLowerCase()) ? false : (seen.add(t.toLowerCase()), true)));
  const out: { title?: string; sections: string[] } = { sections: clean.slice(0, MAX_SECTIONS) };
  if (title && cleanTitle(title)) out.title = cleanTitle(title);
  return out;
}

/** A section's text without a first line that repeats its heading. */
export function cleanSection(text: string, title: string): string {
  const lines = text.trim().split(/\r?\n/);
  if (lines.length && cleanTitle(lines[0]!).toLowerCase() === title.toLowerCase()) lines.shift();
  return lines.join('\n').trim();
}

/** References from a Markdown / numbered list or a JSON array. */
export function parseReferences(text: string): string[] {
  const json = parseJsonLoose(text);
  const items = Array.isArray(json)
    ? json
    : json && typeof json === 'object' && Array.isArray((json as { references?: unknown }).references)
      ? ((json as { references: unknown[] }).references as unknown[])
      : undefined;
  const raw = items
    ? items.map((i) => (typeof i === 'string' ? i : itemTitle(i))).filter((t): t is string => !!t)
    : text.split(/\r?\n/).filter((l) => /^\s*(?:[-*•+]|\d+[.)]|\[\d+\])\s+/.test(l));
  return raw.map((r) => r.replace(/^\s*(?:[-*•+]|\d+[.)])\s+/, '').trim()).filter(Boolean);
}

function titleCase(topic: string): string {
  return topic.charAt(0).toUpperCase() + topic.slice(1);
}

/**
 * Writes a document with a model: an outline first (one call returning section titles), then
 * each section (one call each, its tokens streamed to the user), then references when asked.
 * The streamed text is the Markdown document as it grows.
 */
export class DocGenerator {
  async generate_document(
    input: Record<string, unknown>,
    context: Record<string, unknown>,
    task: TaskContext,
  ): Promise<GeneratedDocument> {
    const spec = documentSpec(input, context);
    const { temperature } = samplingOptions({}, context);
    const model = llm(task, context);
    const template = TEMPLATES[spec.template.toLowerCase()] ?? GENERIC;
    const language = spec.language ? ` Write in the language "${spec.language}".` : '';
    const sampling = temperature !== undefined ? { temperature } : {};

    task.progress(2, `outlining with ${model.provider} ${model.model}`);
    const outlineAnswer = await model.chat(
      [
        {
          role: 'system',
          content: 'You plan documents. Answer with one JSON object and nothing else.',
        },
        {
          role: 'user',
          content:
            `Plan ${template.hint} (template "${spec.template}") about: ${spec.topic}\n` +
            `Style: ${spec.style}. Length: about ${spec.words} words in total.\n` +
            `Answer with {"title": "<document title>", "sections": ["<section title>", ...]} holding ${spec.sections} section titles in reading order.` +
            (spec.references || spec.citations
              ? ' Leave out a References section: it is added separately.'
              : ''),
        },
      ],
      { ...sampling, responseFormat: 'json', stream: false, maxTokens: 1000 },
    );
    const parsed = parseOutline(outlineAnswer.text);
    let outline = parsed.sections.filter(
      (t) => !(spec.references || spec.citations) || !REFERENCE_TITLE.test(t),
    );
    if (!outline.length) {
      task.log.warn(
        { answer: outlineAnswer.text.slice(0, 500) },
        'outline had no section titles; using the template',
      );
      outline = template.fallback;
    }
    const title = parsed.title ?? titleCase(spec.topic);
    const extra = spec.references || spec.citations ? 1 : 0;
    const steps = outline.length + extra;
    task.progress(10, `outline: ${outline.length} sections`);

    const perSection = Math.max(50, Math.round(spec.words / outline.length));
    const maxTokens = Math.min(8192, Math.max(512, Math.ceil(perSection * 3)));
    const outlineList = outline.map((t, i) => `${i + 1}. ${t}`).join('\n');
    let markdown = `# ${title}\n\n`;
    task.stream(markdown);
    const sections: DocumentSection[] = [];
    for (const [i, sectionTitle] of outline.entries()) {
      task.progress(
        10 + Math.floor((80 * i) / steps),
        `writing section ${i + 1}/${outline.length}: ${sectionTitle}`,
      );
      const heading = `## ${sectionTitle}\n\n`;
      task.stream(heading);
      const answer = await model.chat(
        [
          {
            role: 'system',
            content:
              `You write ${template.hint} in a ${spec.style} style, in Markdown.${language} ` +
              'Write only the body of the section you are asked for: no heading for it, no preamble.',
          },
          {
            role: 'user',
            content:
              `Document: "${title}" (about: ${spec.topic}).\nOutline:\n${outlineList}\n\n` +
              `Write section ${i + 1}, "${sectionTitle}", in about ${perSection} words.` +
              (spec.citations
                ? ' Support claims with citations in square brackets, such as [Smith 2021], naming real, well-known sources.'
                : ''),
          },
        ],
        { ...sampling, maxTokens },
      );
      task.stream('\n\n');
      const content = cleanSection(answer.text, sectionTitle);
      sections.push({ title: sectionTitle, content });
      markdown += `${heading}${content}\n\n`;
    }

    let references: string[] | undefined;
    if (extra) {
      task.progress(10 + Math.floor((80 * outline.length) / steps), 'writing references');
      const cited = spec.citations
        ? [
            ...new Set(
              sections.flatMap((s) => [...s.content.matchAll(/\[([^[\]\n]{2,120})\]/g)].map((m) => m[1]!)),
            ),
          ]
            .filter((c) => /\d/.test(c))
            .slice(0, 100)
        : [];
      const heading = '## References\n\n';
      task.stream(heading);
      const answer = await model.chat(
        [
          {
            role: 'system',
            content: `You compile reference lists for ${template.hint}. Answer with a Markdown numbered list, one reference per line, nothing else.`,
          },
          {
            role: 'user',
            content: cited.length
              ? `List full references for the sources cited in the document "${title}": ${cited.join('; ')}.`
              : `List 5 to 10 real, well-known references for further reading on the document "${title}" with these sections:\n${outlineList}`,
          },
        ],
        { ...sampling, maxTokens: 2000 },
      );
      task.stream('\n');
      references = parseReferences(answer.text);
      const body = references.length
        ? references.map((r, i) => `${i + 1}. ${r}`).join('\n')
        : answer.text.trim();
      markdown += `${heading}${body}\n`;
    }
    markdown = markdown.trimEnd() + '\n';
    task.progress(100, 'document written');
    const doc: GeneratedDocument = {
      title,
      outline,
      sections,
      markdown,
      word_count: words(markdown.replace(/^#+\s/gm, '')).length,
      model: outlineAnswer.model,
      provider: model.provider,
    };
    if (references) doc.references = references;
    return doc;
  }
}
