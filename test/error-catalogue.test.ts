// docs/errors.md is the one catalogue of error codes: every error class in src (its code, E-number,
// HTTP status and CLI exit code), every code of the gateway's status table and every code a
// reply or event spells out. This test reads both sides, so neither can change alone.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { HTTP_STATUS } from '../src/gateway/http-errors.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DASH = '—';

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts')
      ? [path]
      : [];
  });
}

interface ClassInfo {
  name: string;
  base: string | undefined;
  code: string | undefined;
  wireCode: string | undefined;
  /** `code` declared without a literal: set at run time (GatewayError). */
  dynamicCode: boolean;
  file: string;
}

const classes = new Map<string, ClassInfo>();
/** Codes written as `code: 'NAME'` in replies and events. */
const literalCodes = new Map<string, string>();

for (const file of sourceFiles(join(ROOT, 'src'))) {
  const text = readFileSync(file, 'utf8');
  const rel = file.slice(ROOT.length);
  for (const m of text.matchAll(/\bcode: '([A-Z][A-Z0-9_]*)'/g))
    if (!/^E\d{3}$/.test(m[1]!)) literalCodes.set(m[1]!, rel);
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const visit = (node: ts.Node): void => {
    if (ts.isClassDeclaration(node) && node.name) {
      const heritage = node.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword);
      const info: ClassInfo = {
        name: node.name.text,
        base: heritage?.types[0]?.expression.getText(source),
        code: undefined,
        wireCode: undefined,
        dynamicCode: false,
        file: rel,
      };
      for (const member of node.members) {
        if (!ts.isPropertyDeclaration(member) || !ts.isIdentifier(member.name)) continue;
        const key = member.name.text;
        if (key !== 'code' && key !== 'wireCode') continue;
        const value =
          member.initializer && ts.isStringLiteral(member.initializer) ? member.initializer.text : undefined;
        if (key === 'wireCode') info.wireCode = value;
        else if (value !== undefined) info.code = value;
        else info.dynamicCode = true;
      }
      expect(classes.has(info.name), `two classes named ${info.name}`).toBe(false);
      classes.set(info.name, info);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}

/** The chain from a class up to the first base not declared in src (Error). */
function chain(name: string): ClassInfo[] {
  const out: ClassInfo[] = [];
  for (let c = classes.get(name); c; c = c.base ? classes.get(c.base) : undefined) out.push(c);
  return out;
}

/** Error classes: those that reach AiecsError, and any other class that declares a `code`. */
const errorClasses = [...classes.values()].filter(
  (c) => chain(c.name).some((x) => x.name === 'AiecsError') || c.code !== undefined || c.dynamicCode,
);
const effective = (c: ClassInfo) => {
  const up = chain(c.name);
  const isAiecs = up.some((x) => x.name === 'AiecsError');
  return {
    code: c.dynamicCode ? undefined : up.find((x) => x.code !== undefined)?.code,
    wire: isAiecs ? up.find((x) => x.wireCode !== undefined)?.wireCode : undefined,
  };
};

const usageCodes = (() => {
  const main = readFileSync(join(ROOT, 'src/cli/main.ts'), 'utf8');
  const m = /USAGE_CODES = new Set\(\[([\s\S]*?)\]\)/.exec(main);
  if (!m) throw new Error('src/cli/main.ts no longer declares USAGE_CODES: update this test');
  return new Set([...m[1]!.matchAll(/'([A-Z_]+)'/g)].map((x) => x[1]!));
})();

const wireCodes = (() => {
  const errors = readFileSync(join(ROOT, 'src/core/errors.ts'), 'utf8');
  const m = /export type WireErrorCode = ([^;]+);/.exec(errors);
  if (!m) throw new Error('src/core/errors.ts no longer declares WireErrorCode: update this test');
  return [...m[1]!.matchAll(/'(E\d{3})'/g)].map((x) => x[1]!);
})();

/** The markdown tables of docs/errors.md, by their header, as rows of cell texts (no backticks). */
function tables(markdown: string): Map<string, string[][]> {
  const out = new Map<string, string[][]>();
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('|') || !lines[i + 1]?.startsWith('| -')) continue;
    const cells = (line: string) =>
      line
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim().replaceAll('`', ''));
    const header = cells(lines[i]!).join(' | ');
    const rows: string[][] = [];
    for (i += 2; i < lines.length && lines[i]!.startsWith('|'); i++) rows.push(cells(lines[i]!));
    out.set(header, rows);
  }
  return out;
}

const doc = tables(readFileSync(join(ROOT, 'docs/errors.md'), 'utf8'));
const table = (header: string) => {
  const rows = doc.get(header);
  if (!rows) throw new Error(`docs/errors.md has no table "| ${header} |"`);
  return rows;
};
const classRows = table('class | code | E-number | HTTP | CLI exit | where it appears');
const codeRows = table('code | HTTP | where it appears');
const wireRows = table('E-number | meaning');
const httpOf = (code: string | undefined) =>
  code !== undefined && HTTP_STATUS[code] !== undefined ? String(HTTP_STATUS[code]) : DASH;

describe('docs/errors.md, the error catalogue', () => {
  it('finds the error classes it checks', () => {
    const names = errorClasses.map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(['AiecsError', 'ValidationError', 'ServiceNotFoundError']));
    expect(names).toEqual(expect.arrayContaining(['ProviderNotConfiguredError', 'StoreLockedError']));
  });

  it('lists every error class once, with its code, E-number, HTTP status and CLI exit code', () => {
    const problems: string[] = [];
    for (const c of errorClasses) {
      const rows = classRows.filter((r) => r[0] === c.name);
      if (rows.length !== 1) {
        problems.push(`${c.name} (${c.file}) is listed ${rows.length} times`);
        continue;
      }
      const [, code, wire, http, exit] = rows[0]!;
      const { code: realCode, wire: realWire } = effective(c);
      if (realCode === undefined) continue; // set at run time: documented in words
      const want = {
        code: realCode,
        wire: realWire ?? DASH,
        http: httpOf(realCode),
        exit: usageCodes.has(realCode) ? '2' : '1',
      };
      const have = { code, wire, http, exit };
      if (JSON.stringify(have) !== JSON.stringify(want))
        problems.push(`${c.name}: documented ${JSON.stringify(have)}, is ${JSON.stringify(want)}`);
    }
    for (const row of classRows)
      if (!errorClasses.some((c) => c.name === row[0]))
        problems.push(`${row[0]} is documented but no such error class is in src`);
    expect(problems).toEqual([]);
  });

  it('lists every code of the HTTP status table and every code a reply or event spells out', () => {
    const classCodes = new Set(errorClasses.map((c) => effective(c).code));
    const problems: string[] = [];
    const need = new Map<string, string>([
      ...Object.keys(HTTP_STATUS).map((code): [string, string] => [code, 'src/gateway/http-errors.ts']),
      ...literalCodes,
    ]);
    for (const [code, where] of need) {
      if (classCodes.has(code)) continue;
      const rows = codeRows.filter((r) => r[0] === code);
      if (rows.length !== 1) problems.push(`${code} (${where}) is listed ${rows.length} times`);
      else if (rows[0]![1] !== httpOf(code))
        problems.push(`${code}: documented HTTP ${rows[0]![1]}, is ${httpOf(code)}`);
    }
    for (const row of codeRows) {
      if (!need.has(row[0]!)) problems.push(`${row[0]} is documented but nothing in src uses it`);
      if (classCodes.has(row[0])) problems.push(`${row[0]} belongs to a class: list it with its class`);
    }
    expect(problems).toEqual([]);
  });

  it('explains every E-number', () => {
    expect(wireCodes.length).toBeGreaterThanOrEqual(8);
    expect(wireRows.map((r) => r[0])).toEqual(wireCodes);
    for (const row of wireRows) expect(row[1], row[0]).not.toBe('');
  });

  it('is where the README sends readers for error codes', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('(docs/errors.md)');
  });
});
