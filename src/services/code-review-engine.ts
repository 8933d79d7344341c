import path from 'node:path';
import ts from 'typescript';
import { ValidationError } from '../core/errors.js';
import type { FieldIssue } from '../core/errors.js';
import type { TaskContext } from '../core/task-context.js';
import { checkpoint, round } from './cooperative.js';

export type DiagnosticCategory = 'error' | 'warning' | 'suggestion';

export interface ReviewDiagnostic {
  path: string;
  line: number;
  column: number;
  code: number;
  category: DiagnosticCategory;
  message: string;
}

export interface FunctionMetrics {
  name: string;
  line: number;
  end_line: number;
  /** McCabe: 1 + if/for/while/do/case/catch/&&/||/??/?: (nested functions count on their own). */
  complexity: number;
  /** Deepest nesting of if/loop/switch/try blocks, counted as ESLint's max-depth does. */
  max_nesting: number;
  /** Non-blank, non-comment lines. */
  loc: number;
}

export interface FileReview {
  path: string;
  /** All lines, including blank lines and comments. */
  lines: number;
  loc: number;
  functions: FunctionMetrics[];
  max_complexity: number;
  average_complexity: number;
  errors: number;
  warnings: number;
  diagnostics: ReviewDiagnostic[];
}

export interface Hotspot {
  path: string;
  name: string;
  line: number;
  complexity: number;
}

export interface Finding {
  path: string;
  line: number;
  severity: DiagnosticCategory;
  message: string;
  code?: number;
}

export interface CodeReview {
  files: FileReview[];
  summary: {
    files: number;
    loc: number;
    functions: number;
    errors: number;
    warnings: number;
    max_complexity: number;
    average_complexity: number;
    hotspots: Hotspot[];
  };
  findings: Finding[];
}

export const MAX_FILES = 200;
/** Functions above this cyclomatic complexity are reported as warnings. */
export const COMPLEXITY_LIMIT = 10;
const EXTENSIONS = ['.ts', '.tsx', '.js', '.jsx', '.mts', '.cts'];
/** Submitted files live under this virtual root; nothing under it touches the disk. */
const ROOT = '/__review__/';

const OPTIONS: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2023,
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  // Each file is its own module, so two submitted scripts declaring `x` do not collide.
  moduleDetection: ts.ModuleDetectionKind.Force,
  allowJs: true,
  checkJs: true,
  jsx: ts.JsxEmit.Preserve,
  allowImportingTsExtensions: true,
  noUnusedLocals: true,
  noUnusedParameters: true,
  noImplicitReturns: true,
  noFallthroughCasesInSwitch: true,
  allowUnreachableCode: false,
  allowUnusedLabels: false,
  skipLibCheck: true,
  types: [],
};

/** Checks that flag style and hygiene rather than wrong types: reported as warnings. */
const WARNING_CODES = new Set([
  6133, // 'x' is declared but its value is never read.
  6138, // Property 'x' is declared but its value is never read.
  6192, // All imports in import declaration are unused.
  6196, // 'X' is declared but never used.
  6198, // All destructured elements are unused.
  6199, // All variables are unused.
  6205, // All type parameters are unused.
  7027, // Unreachable code detected.
  7028, // Unused label.
  7029, // Fallthrough case in switch.
  7030, // Not all code paths return a value.
]);

/** Implicit-any checks: in plain JavaScript there is nowhere to write a type, so only hints. */
const IMPLICIT_ANY_CODES = new Set([7005, 7006, 7008, 7010, 7011, 7015, 7019, 7031, 7034, 7053]);
const JS_FILE = /\.(?:js|jsx)$/;

/**
 * Diagnostics about the environment rather than the code: packages, Node or test-runner types and
 * JSX typings that were not submitted. Reporting them would bury the real findings.
 */
const ENVIRONMENT_CODES = new Set([
  2307, // Cannot find module 'x' (only dropped for bare package specifiers, see below).
  2875, // This JSX tag requires the module path 'react/jsx-runtime' to exist.
  7016, // Could not find a declaration file for module 'x'.
  2580, // Cannot find name 'require'/'process'. Do you need to install type definitions for node?
  2582, // Cannot find name 'describe'/'it'. Do you need type definitions for a test runner?
  2591, // Same as 2580, with a hint to add 'node' to `types`.
  2593, // Same as 2582, with a hint to add the test runner to `types`.
  7026, // JSX element implicitly has type 'any' because no interface 'JSX.IntrinsicElements' exists.
]);

// ---------------------------------------------------------------------------------------------
// Lib files: read from the installed typescript package once per process, parsed once per target.

const libDirectory = path.dirname(ts.getDefaultLibFilePath(OPTIONS));
const libSourceFiles = new Map<string, ts.SourceFile | undefined>();

function libSourceFile(fileName: string, languageVersion: ts.ScriptTarget | ts.CreateSourceFileOptions) {
  const version = typeof languageVersion === 'object' ? languageVersion.languageVersion : languageVersion;
  const key = `${version}:${fileName}`;
  if (!libSourceFiles.has(key)) {
    const text = ts.sys.readFile(fileName);
    // The program binds a SourceFile in place, and a bound file is reused as is by later programs.
    libSourceFiles.set(
      key,
      text === undefined ? undefined : ts.createSourceFile(fileName, text, languageVersion),
    );
  }
  return libSourceFiles.get(key);
}

function isLibFile(fileName: string): boolean {
  return path.dirname(fileName) === libDirectory && path.basename(fileName).startsWith('lib.');
}

function createHost(files: Map<string, string>): ts.CompilerHost {
  const directories = new Set<string>();
  for (const name of files.keys()) {
    for (let d = path.posix.dirname(name); d.length >= ROOT.length - 1; d = path.posix.dirname(d)) {
      directories.add(d);
      if (d === path.posix.dirname(d)) break;
    }
  }
  return {
    getSourceFile(fileName, languageVersion) {
      const text = files.get(fileName);
      if (text !== undefined) return ts.createSourceFile(fileName, text, languageVersion, true);
      return isLibFile(fileName) ? libSourceFile(fileName, languageVersion) : undefined;
    },
    getDefaultLibFileName: (options) => ts.getDefaultLibFilePath(options),
    getDefaultLibLocation: () => libDirectory,
    writeFile: () => undefined,
    getCurrentDirectory: () => ROOT,
    getDirectories: () => [],
    fileExists: (fileName) => files.has(fileName) || (isLibFile(fileName) && ts.sys.fileExists(fileName)),
    readFile: (fileName) =>
      files.get(fileName) ?? (isLibFile(fileName) ? ts.sys.readFile(fileName) : undefined),
    directoryExists: (dir) => directories.has(dir.replace(/\/$/, '')) || dir === libDirectory,
    getCanonicalFileName: (fileName) => fileName,
    useCaseSensitiveFileNames: () => true,
    getNewLine: () => '\n',
  };
}

// ---------------------------------------------------------------------------------------------
// Metrics.

type FunctionLike =
  | ts.FunctionDeclaration
  | ts.FunctionExpression
  | ts.ArrowFunction
  | ts.MethodDeclaration
  | ts.ConstructorDeclaration
  | ts.GetAccessorDeclaration
  | ts.SetAccessorDeclaration;

function isFunctionLike(node: ts.Node): node is FunctionLike {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isFunctionExpression(node) ||
    ts.isArrowFunction(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessorDeclaration(node) ||
    ts.isSetAccessorDeclaration(node)
  );
}

function propertyName(name: ts.PropertyName | ts.BindingName, sf: ts.SourceFile): string {
  if (
    ts.isIdentifier(name) ||
    ts.isPrivateIdentifier(name) ||
    ts.isStringLiteral(name) ||
    ts.isNumericLiteral(name)
  ) {
    return name.text;
  }
  return name.getText(sf);
}

/** A readable name: declared name, else the variable, property or class member it is assigned to. */
function functionName(node: FunctionLike, sf: ts.SourceFile): string {
  const owner =
    node.parent && (ts.isClassDeclaration(node.parent) || ts.isClassExpression(node.parent))
      ? node.parent.name?.text
      : undefined;
  const qualify = (name: string) => (owner ? `${owner}.${name}` : name);
  if (ts.isConstructorDeclaration(node)) return qualify('constructor');
  if (ts.isGetAccessorDeclaration(node)) return qualify(`get ${propertyName(node.name, sf)}`);
  if (ts.isSetAccessorDeclaration(node)) return qualify(`set ${propertyName(node.name, sf)}`);
  if (node.name) return qualify(propertyName(node.name, sf));
  const parent = node.parent;
  if (
    ts.isVariableDeclaration(parent) ||
    ts.isPropertyAssignment(parent) ||
    ts.isPropertyDeclaration(parent)
  ) {
    return propertyName(parent.name, sf);
  }
  if (ts.isBinaryExpression(parent) && parent.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
    return parent.left.getText(sf);
  }
  if (ts.isExportAssignment(parent)) return 'default';
  return '<anonymous>';
}

const DECISION_OPERATORS = new Set([
  ts.SyntaxKind.AmpersandAmpersandToken,
  ts.SyntaxKind.BarBarToken,
  ts.SyntaxKind.QuestionQuestionToken,
  ts.SyntaxKind.AmpersandAmpersandEqualsToken,
  ts.SyntaxKind.BarBarEqualsToken,
  ts.SyntaxKind.QuestionQuestionEqualsToken,
]);

function isDecisionPoint(node: ts.Node): boolean {
  switch (node.kind) {
    case ts.SyntaxKind.IfStatement:
    case ts.SyntaxKind.ForStatement:
    case ts.SyntaxKind.ForInStatement:
    case ts.SyntaxKind.ForOfStatement:
    case ts.SyntaxKind.WhileStatement:
    case ts.SyntaxKind.DoStatement:
    case ts.SyntaxKind.CaseClause:
    case ts.SyntaxKind.CatchClause:
    case ts.SyntaxKind.ConditionalExpression:
      return true;
    case ts.SyntaxKind.BinaryExpression:
      return DECISION_OPERATORS.has((node as ts.BinaryExpression).operatorToken.kind);
    default:
      return false;
  }
}

function isNestingBlock(node: ts.Node): boolean {
  switch (node.kind) {
    case ts.SyntaxKind.ForStatement:
    case ts.SyntaxKind.ForInStatement:
    case ts.SyntaxKind.ForOfStatement:
    case ts.SyntaxKind.WhileStatement:
    case ts.SyntaxKind.DoStatement:
    case ts.SyntaxKind.SwitchStatement:
    case ts.SyntaxKind.TryStatement:
    case ts.SyntaxKind.WithStatement:
      return true;
    case ts.SyntaxKind.IfStatement:
      // `else if` continues the chain at the same depth.
      return !(ts.isIfStatement(node.parent) && node.parent.elseStatement === node);
    default:
      return false;
  }
}

/** Marks each line holding at least one token, so blank lines and comment-only lines drop out. */
function codeLines(sf: ts.SourceFile): boolean[] {
  const marks = new Array<boolean>(sf.getLineStarts().length).fill(false);
  const visit = (node: ts.Node): void => {
    // JSDoc blocks are parsed into nodes, but they are comments.
    if (node.kind >= ts.SyntaxKind.FirstJSDocNode && node.kind <= ts.SyntaxKind.LastJSDocNode) return;
    const children = node.getChildren(sf);
    if (children.length === 0) {
      if (node.kind === ts.SyntaxKind.EndOfFileToken) return;
      if (node.kind === ts.SyntaxKind.JsxText && !node.getText(sf).trim()) return;
      const start = node.getStart(sf);
      if (start >= node.end) return;
      const first = sf.getLineAndCharacterOfPosition(start).line;
      const last = sf.getLineAndCharacterOfPosition(node.end).line;
      for (let l = first; l <= last; l++) marks[l] = true;
      return;
    }
    for (const child of children) visit(child);
  };
  visit(sf);
  return marks;
}

function lineCount(text: string): number {
  if (!text) return 0;
  return text.split(/\r\n|\r|\n/).length - (/(?:\r\n|\r|\n)$/.test(text) ? 1 : 0);
}

function countLines(marks: boolean[], from: number, to: number): number {
  let n = 0;
  for (let l = from; l <= to; l++) if (marks[l]) n++;
  return n;
}

export function functionMetrics(sf: ts.SourceFile, marks: boolean[] = codeLines(sf)): FunctionMetrics[] {
  const out: FunctionMetrics[] = [];

  const measure = (fn: FunctionLike): void => {
    let complexity = 1;
    let maxNesting = 0;
    const walk = (node: ts.Node, depth: number): void => {
      if (isFunctionLike(node)) {
        measure(node); // a nested function has its own figures
        return;
      }
      if (isDecisionPoint(node)) complexity++;
      const d = isNestingBlock(node) ? depth + 1 : depth;
      maxNesting = Math.max(maxNesting, d);
      ts.forEachChild(node, (child) => walk(child, d));
    };
    // Parameters may hold default values with decisions (`a = b ?? c`); the body holds the rest.
    for (const p of fn.parameters) walk(p, 0);
    if (fn.body) walk(fn.body, 0);
    const line = sf.getLineAndCharacterOfPosition(fn.getStart(sf)).line;
    const endLine = sf.getLineAndCharacterOfPosition(fn.end).line;
    out.push({
      name: functionName(fn, sf),
      line: line + 1,
      end_line: endLine + 1,
      complexity,
      max_nesting: maxNesting,
      loc: countLines(marks, line, endLine),
    });
  };

  const find = (node: ts.Node): void => {
    if (isFunctionLike(node)) measure(node);
    else ts.forEachChild(node, find);
  };
  find(sf);
  return out.sort((a, b) => a.line - b.line);
}

// ---------------------------------------------------------------------------------------------
// Input.

interface SubmittedFile {
  path: string;
  content: string;
}

function normalizePath(raw: string): string | undefined {
  const p = path.posix.normalize(raw.replace(/\\/g, '/')).replace(/^\/+/, '');
  if (!p || p === '.' || p.startsWith('../') || p === '..' || p.includes('\0')) return undefined;
  return p;
}

function validateInput(input: Record<string, unknown>): SubmittedFile[] {
  const issues: FieldIssue[] = [];
  let raw: { field: string; path: unknown; content: unknown }[];
  if (input.files !== undefined && input.code !== undefined) {
    throw new ValidationError([{ field: 'input_data', message: 'give either files or code, not both' }]);
  }
  if (input.files !== undefined) {
    const files = input.files;
    if (!Array.isArray(files) || files.length === 0) {
      throw new ValidationError([
        { field: 'input_data.files', message: 'must be a non-empty array of { path, content }' },
      ]);
    }
    if (files.length > MAX_FILES) {
      throw new ValidationError([
        {
          field: 'input_data.files',
          message: `has ${files.length} files; at most ${MAX_FILES} are reviewed per task`,
        },
      ]);
    }
    raw = files.map((f: unknown, i) => {
      const o = (typeof f === 'object' && f !== null ? f : {}) as Record<string, unknown>;
      return { field: `input_data.files[${i}]`, path: o.path, content: o.content };
    });
  } else if (input.code !== undefined) {
    raw = [{ field: 'input_data', path: input.path ?? 'input.ts', content: input.code }];
  } else {
    throw new ValidationError([
      { field: 'input_data.files', message: 'is required (or give code and path)' },
    ]);
  }

  const out: SubmittedFile[] = [];
  const seen = new Set<string>();
  for (const f of raw) {
    const contentField = f.field === 'input_data' ? 'input_data.code' : `${f.field}.content`;
    const pathField = `${f.field}.path`;
    if (typeof f.content !== 'string') issues.push({ field: contentField, message: 'must be a string' });
    if (typeof f.path !== 'string') {
      issues.push({ field: pathField, message: 'must be a string' });
      continue;
    }
    const p = normalizePath(f.path);
    if (!p) issues.push({ field: pathField, message: 'must be a relative path inside the project' });
    else if (!EXTENSIONS.some((ext) => p.endsWith(ext)) || p.endsWith('.d.ts')) {
      issues.push({ field: pathField, message: `must end in one of ${EXTENSIONS.join(', ')}` });
    } else if (seen.has(p)) issues.push({ field: pathField, message: `duplicates ${p}` });
    else {
      seen.add(p);
      if (typeof f.content === 'string') out.push({ path: p, content: f.content });
    }
  }
  if (issues.length) throw new ValidationError(issues);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Diagnostics.

function category(d: ts.Diagnostic, relPath: string): DiagnosticCategory {
  if (WARNING_CODES.has(d.code)) return 'warning';
  if (IMPLICIT_ANY_CODES.has(d.code) && JS_FILE.test(relPath)) return 'suggestion';
  if (d.category === ts.DiagnosticCategory.Error) return 'error';
  if (d.category === ts.DiagnosticCategory.Warning) return 'warning';
  return 'suggestion';
}

function isEnvironmental(d: ts.Diagnostic, sf: ts.SourceFile): boolean {
  if (!ENVIRONMENT_CODES.has(d.code)) return false;
  if (d.code !== 2307 || d.start === undefined) return true;
  // A missing relative import is the submitter's mistake; a missing package is ours.
  const specifier = sf.text.slice(d.start, d.start + (d.length ?? 0)).replace(/^['"`]|['"`]$/g, '');
  return !specifier.startsWith('.') && !specifier.startsWith('/');
}

function toDiagnostic(d: ts.Diagnostic, sf: ts.SourceFile, relPath: string): ReviewDiagnostic {
  const { line, character } = sf.getLineAndCharacterOfPosition(d.start ?? 0);
  return {
    path: relPath,
    line: line + 1,
    column: character + 1,
    code: d.code,
    category: category(d, relPath),
    message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
  };
}

// ---------------------------------------------------------------------------------------------
// The service.

/** Type-checks TypeScript/JavaScript in memory (strict) and measures function complexity. */
/** The review itself; loaded on first use, since the TypeScript compiler is large. */
export async function reviewCode(input: Record<string, unknown>, task: TaskContext): Promise<CodeReview> {
  {
    const submitted = validateInput(input);
    const files = new Map(submitted.map((f) => [ROOT + f.path, f.content]));
    await checkpoint(task.signal);

    const started = Date.now();
    const program = ts.createProgram({
      rootNames: [...files.keys()],
      options: OPTIONS,
      host: createHost(files),
    });
    task.log.debug({ files: submitted.length, ms: Date.now() - started }, 'program created');

    const reviews: FileReview[] = [];
    for (const [i, file] of submitted.entries()) {
      await checkpoint(task.signal);
      const sf = program.getSourceFile(ROOT + file.path);
      if (!sf) throw new Error(`source file ${file.path} missing from the program`);
      const diagnostics = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)]
        .filter((d) => !isEnvironmental(d, sf))
        .map((d) => toDiagnostic(d, sf, file.path))
        .sort((a, b) => a.line - b.line || a.column - b.column || a.code - b.code);
      const marks = codeLines(sf);
      const functions = functionMetrics(sf, marks);
      const complexities = functions.map((f) => f.complexity);
      reviews.push({
        path: file.path,
        lines: lineCount(sf.text),
        loc: countLines(marks, 0, marks.length - 1),
        functions,
        max_complexity: Math.max(0, ...complexities),
        average_complexity: complexities.length ? round(sum(complexities) / complexities.length, 2) : 0,
        errors: diagnostics.filter((d) => d.category === 'error').length,
        warnings: diagnostics.filter((d) => d.category === 'warning').length,
        diagnostics,
      });
      task.progress(Math.round((100 * (i + 1)) / submitted.length), `reviewed ${file.path}`);
    }
    return { files: reviews, summary: summarize(reviews), findings: findings(reviews) };
  }
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}

function summarize(reviews: FileReview[]): CodeReview['summary'] {
  const all = reviews.flatMap((r) => r.functions.map((f) => ({ path: r.path, ...f })));
  return {
    files: reviews.length,
    loc: sum(reviews.map((r) => r.loc)),
    functions: all.length,
    errors: sum(reviews.map((r) => r.errors)),
    warnings: sum(reviews.map((r) => r.warnings)),
    max_complexity: Math.max(0, ...all.map((f) => f.complexity)),
    average_complexity: all.length ? round(sum(all.map((f) => f.complexity)) / all.length, 2) : 0,
    hotspots: all
      .sort((a, b) => b.complexity - a.complexity || a.path.localeCompare(b.path) || a.line - b.line)
      .slice(0, 5)
      .map(({ path: p, name, line, complexity }) => ({ path: p, name, line, complexity })),
  };
}

function findings(reviews: FileReview[]): Finding[] {
  const out: Finding[] = [];
  for (const r of reviews) {
    for (const d of r.diagnostics) {
      out.push({
        path: d.path,
        line: d.line,
        severity: d.category,
        message: `TS${d.code}: ${d.message}`,
        code: d.code,
      });
    }
    for (const f of r.functions) {
      if (f.complexity > COMPLEXITY_LIMIT) {
        out.push({
          path: r.path,
          line: f.line,
          severity: 'warning',
          message: `${f.name} has cyclomatic complexity ${f.complexity} (over ${COMPLEXITY_LIMIT}); consider splitting it`,
        });
      }
    }
  }
  const rank: Record<DiagnosticCategory, number> = { error: 0, warning: 1, suggestion: 2 };
  return out.sort(
    (a, b) => rank[a.severity] - rank[b.severity] || a.path.localeCompare(b.path) || a.line - b.line,
  );
}
