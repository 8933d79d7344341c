/**
 * Text every store can keep. PostgreSQL's JSON refuses the NUL character and unpaired UTF-16
 * surrogates (JSON.stringify writes them as `\u0000` and `\udXXX` escapes), while Redis would keep
 * them: so they are refused at submit, on every store alike, naming where they are.
 */
import type { FieldIssue } from './errors.js';

/** A character that may make text unstorable: a NUL or a surrogate (paired ones are fine). */
export const SUSPECT_TEXT = /[\0\ud800-\udfff]/;

/** Why a string cannot be stored (a NUL, an unpaired surrogate), or undefined. */
export function textProblem(text: string): string | undefined {
  if (!SUSPECT_TEXT.test(text)) return undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0) return 'contains a NUL character (U+0000)';
    if (c < 0xd800 || c > 0xdfff) continue;
    const next = text.charCodeAt(i + 1);
    if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      i++; // a pair: one character outside the BMP, fine
      continue;
    }
    const code = c.toString(16).toUpperCase();
    return `contains an unpaired surrogate (U+${code}); text must be well-formed Unicode`;
  }
  return undefined;
}

/**
 * Text for display (progress messages, streamed output) made storable: a NUL or an unpaired
 * surrogate becomes U+FFFD, as a UTF-8 decoder shows a bad byte. Refusing would lose the event.
 */
export function storableText(text: string): string {
  if (!SUSPECT_TEXT.test(text)) return text;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c !== 0 && (c < 0xd800 || c > 0xdfff)) {
      out += text[i];
      continue;
    }
    const next = text.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out += text.slice(i, i + 2);
      i++;
    } else out += '\ufffd';
  }
  return out;
}

const PLAIN_KEY = /^[A-Za-z_$][\w$-]*$/;

function keyPath(path: string, key: string): string {
  if (PLAIN_KEY.test(key)) return `${path}.${key}`;
  const quoted = JSON.stringify(key.length > 40 ? `${key.slice(0, 40)}…` : key);
  return `${path}[${quoted}]`;
}

/** The first key or string in a JSON value that cannot be stored, named by its path. */
export function findTextProblem(value: unknown, path: string): FieldIssue | undefined {
  if (typeof value === 'string') {
    const problem = textProblem(value);
    return problem ? { field: path, message: problem } : undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const issue = findTextProblem(value[i], `${path}[${i}]`);
      if (issue) return issue;
    }
    return undefined;
  }
  for (const [key, item] of Object.entries(value)) {
    const problem = textProblem(key);
    if (problem) return { field: path, message: `key ${JSON.stringify(key)} ${problem}` };
    const issue = findTextProblem(item, keyPath(path, key));
    if (issue) return issue;
  }
  return undefined;
}

/**
 * The problem in a value already serialized as `json` (the submit path has the text anyway): one
 * scan of the text, and a walk only when it finds an escape that may be one.
 */
export function jsonTextProblem(json: string, path: string): FieldIssue | undefined {
  if (!hasSuspectEscape(json)) return undefined;
  // The walk reads what is stored (the parsed text), so toJSON() output and an escaped
  // backslash before "u0000" are judged right.
  return findTextProblem(JSON.parse(json), path);
}

/**
 * Whether JSON.stringify output holds `\u0000` or `\ud800`–`\udfff` (it writes NUL and unpaired
 * surrogates so, in lower-case hex, by the spec). indexOf, not a regex: about ten times faster
 * on a 1 MB input, and `\u` is rare in JSON text (only other control characters use it).
 */
function hasSuspectEscape(json: string): boolean {
  for (let i = json.indexOf('\\u'); i !== -1; i = json.indexOf('\\u', i + 2)) {
    if (json.startsWith('0000', i + 2)) return true;
    if (json.charCodeAt(i + 2) === 0x64 /* d */ && '89abcdef'.includes(json.charAt(i + 3))) return true;
  }
  return false;
}

/**
 * A JSON value with every string and key made storable (storableText), for text that was never
 * checked at submit (an error's details); the value itself when nothing needs it.
 */
export function storableJson(value: unknown): unknown {
  return findTextProblem(value, '') === undefined ? value : storableCopy(value);
}

function storableCopy(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(storableCopy);
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[storableText(key)] = storableCopy(item);
  return out;
}

/** JSON text (JSON.stringify's) PostgreSQL's jsonb accepts: one scan, a rewrite only when needed. */
export function storableJsonText(json: string): string {
  return hasSuspectEscape(json) ? JSON.stringify(storableJson(JSON.parse(json))) : json;
}
