/**
 * Task templates (issue 16): a named, versioned way to submit one service method, with a schema
 * for its input and default context and options. A template is the producer's business: it is
 * resolved and its input checked at submit, and the task it makes is an ordinary task whose record
 * names the template (`template: "summarize@2"`); workers never look templates up.
 */
import { z } from 'zod';
import type { FieldIssue } from './errors.js';
import { TemplateInvalidError, TemplateNotFoundError, ValidationError } from './errors.js';
import type { WireSubmitOptions } from './submission.js';
import { submitOptionsSchema } from './submission.js';
import type { QueueKind, RequestContext } from './task.js';
import { FAST_QUEUE, HEAVY_QUEUE } from './task.js';
import { zodIssues } from './zod-issues.js';

/** A JSON Schema document (an object schema for `input_data`). */
export type JsonSchema = Record<string, unknown>;

/** The defaults a template gives its tasks; a request's own values win. */
export interface TemplateOptions {
  /** Run on heavy_tasks (default false: fast_tasks). */
  heavy?: boolean;
  priority?: number;
  time_limit?: number;
  soft_time_limit?: number;
  /** Total attempts including the first (retries + 1). */
  attempts?: number;
}

/** A template as registered in code or written in a templates file (the wire's snake_case). */
export interface TemplateDefinition {
  /** Letters, digits, _ . - (no `@`): `summarize`. */
  name: string;
  /** A positive integer; without `@v` a submit takes the highest registered. */
  version: number;
  mode: string;
  service: string;
  task_name: string;
  /** `input_data`'s schema: JSON Schema, or a zod schema in code; default: any object. */
  input_schema?: JsonSchema | z.ZodType;
  /** Default `context`, merged under the request's (its keys win). */
  context?: RequestContext;
  options?: TemplateOptions;
  description?: string;
}

/** A template as `GET /api/templates` lists it. */
export interface TemplateDescription {
  name: string;
  version: number;
  /** `name@version`, as tasks' records name it. */
  ref: string;
  /** The version a submit without `@v` takes. */
  latest: boolean;
  mode: string;
  service: string;
  task_name: string;
  queue: QueueKind;
  input_schema: JsonSchema;
  context: RequestContext;
  options: Omit<TemplateOptions, 'heavy'>;
  description?: string;
}

interface TemplateEntry extends Omit<TemplateDescription, 'latest'> {
  validator: z.ZodType;
}

/** What a template submit resolves to: a plain task submission, and the version it used. */
export interface ResolvedTemplateSubmission {
  ref: string;
  queue: QueueKind;
  request: Record<string, unknown>;
  options: WireSubmitOptions;
}

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const identifier = z
  .string()
  .min(1, 'must not be empty')
  .max(128, 'must be at most 128 characters')
  .regex(NAME_PATTERN, 'must start with a letter or _ and hold only letters, digits, _ . -');
const jsonObject = z.record(z.string(), z.unknown());

const optionsSchema = submitOptionsSchema
  .pick({ priority: true, time_limit: true, soft_time_limit: true, attempts: true })
  .extend({ heavy: z.boolean().optional() });

const definitionSchema = z.strictObject({
  name: identifier,
  version: z.number().int('must be an integer').min(1, 'must be a positive integer').max(1_000_000_000),
  mode: identifier,
  service: identifier,
  task_name: identifier,
  input_schema: jsonObject.optional(),
  context: jsonObject.optional(),
  options: optionsSchema
    .refine(
      (o) =>
        o.soft_time_limit === undefined || o.time_limit === undefined || o.soft_time_limit <= o.time_limit,
      { path: ['soft_time_limit'], message: 'must not exceed time_limit' },
    )
    .optional(),
  description: z.string().max(1000).optional(),
});

/** `summarize@2` or `summarize`; TEMPLATE_REF is what the HTTP schema checks the text with. */
export const TEMPLATE_REF = /^([A-Za-z_][A-Za-z0-9_.-]{0,127})(?:@([1-9][0-9]{0,9}))?$/;

/** The name and, if given, the version of a template reference; undefined when it is not one. */
export function parseTemplateRef(ref: string): { name: string; version?: number } | undefined {
  const m = TEMPLATE_REF.exec(ref);
  if (!m) return undefined;
  return m[2] === undefined ? { name: m[1]! } : { name: m[1]!, version: Number(m[2]) };
}

const isZodSchema = (v: unknown): v is z.ZodType =>
  typeof v === 'object' && v !== null && '_zod' in v && typeof (v as z.ZodType).safeParse === 'function';

/**
 * The templates one app (and the gateway on it) can submit by. Each owner makes its own and passes
 * it down (`createApp({ templates })`), as with the ServiceRegistry: no process-wide list.
 */
export class TemplateRegistry {
  private readonly byName = new Map<string, Map<number, TemplateEntry>>();

  /**
   * Adds a template, or replaces the same name and version. Throws TemplateInvalidError naming
   * each bad field (`summarize@2.input_schema`).
   */
  register(definition: TemplateDefinition): this {
    this.add(checkDefinition(definition, 'template'));
    return this;
  }

  private add(entry: TemplateEntry): void {
    let versions = this.byName.get(entry.name);
    if (!versions) this.byName.set(entry.name, (versions = new Map()));
    versions.set(entry.version, entry);
  }

  /**
   * Adds a list of templates whole or not at all (a file's, a module's): every entry is checked
   * first, and a name and version given twice is refused, naming both entries.
   */
  registerAll(definitions: readonly unknown[], source = 'templates'): this {
    const issues: FieldIssue[] = [];
    const entries: TemplateEntry[] = [];
    const first = new Map<string, number>();
    for (const [i, definition] of definitions.entries()) {
      try {
        const entry = checkDefinition(definition as TemplateDefinition, `[${i}]`);
        const seen = first.get(entry.ref);
        if (seen !== undefined)
          issues.push({ field: `[${i}].version`, message: `repeats ${entry.ref} of entry [${seen}]` });
        else first.set(entry.ref, i);
        entries.push(entry);
      } catch (error) {
        if (!(error instanceof TemplateInvalidError)) throw error;
        issues.push(...error.issues);
      }
    }
    if (issues.length) throw new TemplateInvalidError(issues, source);
    for (const entry of entries) this.add(entry);
    return this;
  }

  /** Removes one version, or every version of the name; false when there was none. */
  unregister(name: string, version?: number): boolean {
    const versions = this.byName.get(name);
    if (!versions) return false;
    if (version === undefined) return this.byName.delete(name);
    const removed = versions.delete(version);
    if (versions.size === 0) this.byName.delete(name);
    return removed;
  }

  get size(): number {
    let n = 0;
    for (const versions of this.byName.values()) n += versions.size;
    return n;
  }

  /** Every version of every template, by name then version; the highest version is `latest`. */
  list(): TemplateDescription[] {
    return [...this.byName.keys()].sort().flatMap((name) => {
      const versions = [...this.byName.get(name)!.values()].sort((a, b) => a.version - b.version);
      const top = versions.at(-1)!.version;
      return versions.map(({ validator: _validator, ...entry }) => ({
        ...entry,
        latest: entry.version === top,
      }));
    });
  }

  /** The template a reference names (`name@v`, or `name` for the latest); TemplateNotFoundError if none. */
  get(ref: string): TemplateDescription {
    const { validator: _validator, ...entry } = this.entry(ref);
    return { ...entry, latest: entry.version === Math.max(...this.byName.get(entry.name)!.keys()) };
  }

  private entry(ref: string): TemplateEntry {
    const parsed = parseTemplateRef(ref);
    if (!parsed)
      throw new ValidationError([{ field: 'template', message: 'must be a name, or name@version' }]);
    const versions = this.byName.get(parsed.name);
    if (!versions) throw new TemplateNotFoundError(ref, []);
    const version = parsed.version ?? Math.max(...versions.keys());
    const entry = versions.get(version);
    if (!entry)
      throw new TemplateNotFoundError(
        ref,
        [...versions.keys()].sort((a, b) => a - b),
      );
    return entry;
  }

  /**
   * A template submit as a plain one: the template's service method, its context under the
   * request's, its options under the request's, its queue unless `heavy` is given. The input is
   * checked against the template's schema here, before anything is queued: a bad one is a
   * ValidationError naming `input_data.<path>` of every failing field; a good one goes on as the
   * schema parsed it, with the schema's defaults (JSON Schema `default`, zod `.default()`) filled in.
   */
  resolve(
    ref: string,
    request: Record<string, unknown>,
    options: WireSubmitOptions = {},
    heavy?: boolean,
  ): ResolvedTemplateSubmission {
    const entry = this.entry(ref);
    const issues: FieldIssue[] = [];
    for (const field of ['task_name', 'mode', 'service'])
      if (request[field] !== undefined)
        issues.push({ field, message: `comes from the template ${entry.ref}: leave it out` });
    const input = request.input_data ?? {};
    const checked = entry.validator.safeParse(input);
    if (!checked.success) issues.push(...zodIssues(checked.error, 'input_data'));
    if (issues.length) throw new ValidationError(issues);
    const context = request.context;
    const merged =
      typeof context === 'object' && context !== null && !Array.isArray(context)
        ? { ...entry.context, ...context }
        : (context ?? entry.context);
    return {
      ref: entry.ref,
      queue: heavy === undefined ? entry.queue : heavy ? HEAVY_QUEUE : FAST_QUEUE,
      request: {
        ...request,
        task_name: entry.task_name,
        mode: entry.mode,
        service: entry.service,
        // As the schema parsed it: its `default`s filled in where the input leaves a field out.
        input_data: checked.success ? checked.data : input,
        context: merged,
      },
      options: { ...entry.options, ...withoutUndefined(options) },
    };
  }
}

function withoutUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Checks one definition; issues are named `<name>@<version>.<field>`, else `<fallback>.<field>`. */
function checkDefinition(definition: TemplateDefinition, fallback: string): TemplateEntry {
  const raw = definition as unknown;
  const given = typeof raw === 'object' && raw !== null && !Array.isArray(raw);
  const { input_schema: schema, ...rest } = given ? (raw as TemplateDefinition) : ({} as TemplateDefinition);
  const zodGiven = isZodSchema(schema);
  const parsed = definitionSchema.safeParse(given ? (zodGiven ? rest : raw) : raw);
  const name = given ? (raw as { name?: unknown }).name : undefined;
  const version = given ? (raw as { version?: unknown }).version : undefined;
  const named = typeof name === 'string' && NAME_PATTERN.test(name) && Number.isSafeInteger(version);
  const prefix = named && (version as number) > 0 ? `${name as string}@${version as number}` : fallback;
  const issues = parsed.success ? [] : zodIssues(parsed.error, prefix);
  let validator: z.ZodType | undefined;
  let jsonSchema: JsonSchema = { type: 'object' };
  if (zodGiven) {
    validator = schema;
    try {
      jsonSchema = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
    } catch (error) {
      issues.push({
        field: `${prefix}.input_schema`,
        message: `cannot be listed: ${(error as Error).message}`,
      });
    }
  } else if (schema !== undefined && parsed.success) {
    const problem = schemaProblem(schema);
    if (problem) issues.push({ field: `${prefix}.input_schema`, message: problem });
    else
      try {
        validator = z.fromJSONSchema(schema as Parameters<typeof z.fromJSONSchema>[0]);
        jsonSchema = schema;
      } catch (error) {
        issues.push({ field: `${prefix}.input_schema`, message: `not usable: ${(error as Error).message}` });
      }
  }
  if (issues.length || !parsed.success) throw new TemplateInvalidError(issues);
  const d = parsed.data;
  const { heavy, ...options } = d.options ?? {};
  const entry: TemplateEntry = {
    name: d.name,
    version: d.version,
    ref: `${d.name}@${d.version}`,
    mode: d.mode,
    service: d.service,
    task_name: d.task_name,
    queue: heavy ? HEAVY_QUEUE : FAST_QUEUE,
    input_schema: jsonSchema,
    context: d.context ?? {},
    options,
    validator: validator ?? jsonObject,
  };
  if (d.description !== undefined) entry.description = d.description;
  return entry;
}

/** `input_data` is a JSON object: a schema for anything else could never pass. */
function schemaProblem(schema: JsonSchema): string | undefined {
  const type = schema.type;
  if (type !== undefined && type !== 'object' && !(Array.isArray(type) && type.includes('object')))
    return 'must describe an object (type "object"): input_data is a JSON object';
  return undefined;
}
