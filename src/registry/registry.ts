import { ConfigError, ServiceNotFoundError, ValidationError } from '../core/errors.js';
import type { ExecuteTaskMethod, ServiceMethod, TaskContext } from '../core/task-context.js';
// A type only: registering a template records it; the app's TemplateRegistry (zod) checks it.
import type { TemplateDefinition } from '../core/template-registry.js';

/** A service is a class (one instance per task, as in the original) or a plain object. */
export type ServiceImpl = object | (new () => object);

export interface ServiceOptions {
  /** One line for listings (`GET /api/services`). */
  description?: string;
}

export interface ServiceEntry {
  mode: string;
  service: string;
  impl: ServiceImpl;
  isClass: boolean;
  methods: string[];
  hasExecuteTask: boolean;
  description?: string;
}

export interface ServiceDescription {
  mode: string;
  service: string;
  methods: string[];
  accepts_any_task: boolean;
  description?: string;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const HIDDEN = new Set(['constructor', 'execute_task', 'executeTask']);

function isClass(impl: ServiceImpl): impl is new () => object {
  return typeof impl === 'function' && /^class[\s{]/.test(Function.prototype.toString.call(impl));
}

/** Public callable names on an object or a class prototype, own and inherited (not Object's). */
function methodNames(target: object): string[] {
  const names = new Set<string>();
  for (
    let o: object | null = target;
    o && o !== Object.prototype;
    o = Object.getPrototypeOf(o) as object | null
  ) {
    for (const key of Object.getOwnPropertyNames(o)) {
      if (HIDDEN.has(key) || key.startsWith('_')) continue;
      const desc = Object.getOwnPropertyDescriptor(o, key);
      if (desc && typeof desc.value === 'function') names.add(key);
    }
  }
  return [...names].sort();
}

function checkRegistration(mode: string, service: string, impl: ServiceImpl): void {
  const issues = [];
  if (typeof mode !== 'string' || !NAME.test(mode)) issues.push({ field: 'mode', message: 'must be a name' });
  if (typeof service !== 'string' || !NAME.test(service))
    issues.push({ field: 'service', message: 'must be a name' });
  if ((typeof impl !== 'object' && typeof impl !== 'function') || impl === null)
    issues.push({ field: 'impl', message: 'must be a class or an object' });
  if (issues.length) throw new ValidationError(issues, 'registerService');
}

/**
 * The services one worker (or gateway, or CLI check) can run. Each owner makes its own and passes
 * it down, as graphile-worker passes its task list: two apps in one process never share one.
 */
export class ServiceRegistry {
  private readonly entries = new Map<string, ServiceEntry>();

  private readonly loaded: string[] = [];

  private readonly declared: TemplateDefinition[] = [];

  register(mode: string, service: string, impl: ServiceImpl, options: ServiceOptions = {}): ServiceEntry {
    checkRegistration(mode, service, impl);
    const klass = isClass(impl);
    const shape = klass ? (impl as { prototype: object }).prototype : impl;
    const hasExecuteTask =
      typeof (shape as Record<string, unknown>).execute_task === 'function' ||
      typeof (shape as Record<string, unknown>).executeTask === 'function';
    const entry: ServiceEntry = {
      mode,
      service,
      impl,
      isClass: klass,
      methods: methodNames(shape),
      hasExecuteTask,
    };
    if (options.description !== undefined) entry.description = options.description;
    this.entries.set(key(mode, service), entry);
    return entry;
  }

  /**
   * Where this registry's services came from: service module paths, or a marker such as the
   * built-in services'. A process-pool child loads the same sources to get the same services.
   */
  get sources(): readonly string[] {
    return this.loaded;
  }

  addSource(source: string): void {
    if (!this.loaded.includes(source)) this.loaded.push(source);
  }

  /**
   * The task templates its services modules declared (`registerTemplate`), unchecked: a worker
   * never uses them; `aiecs up` and `aiecs gateway` hand them to their app's TemplateRegistry.
   */
  get templates(): readonly TemplateDefinition[] {
    return this.declared;
  }

  declareTemplate(definition: TemplateDefinition): void {
    this.declared.push(definition);
  }

  unregister(mode: string, service: string): boolean {
    return this.entries.delete(key(mode, service));
  }

  get(mode: string, service: string): ServiceEntry | undefined {
    return this.entries.get(key(mode, service));
  }

  list(): ServiceDescription[] {
    return [...this.entries.values()]
      .map((e) => {
        const d: ServiceDescription = {
          mode: e.mode,
          service: e.service,
          methods: e.methods,
          accepts_any_task: e.hasExecuteTask,
        };
        if (e.description !== undefined) d.description = e.description;
        return d;
      })
      .sort((a, b) => key(a.mode, a.service).localeCompare(key(b.mode, b.service)));
  }

  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** Throws ServiceNotFoundError unless `(mode, service)` can run `taskName`. */
  check(mode: string, service: string, taskName: string): ServiceEntry {
    const entry = this.get(mode, service);
    if (!entry) throw new ServiceNotFoundError(mode, service, taskName, this.names());
    if (!entry.methods.includes(taskName) && !entry.hasExecuteTask) {
      throw new ServiceNotFoundError(
        mode,
        service,
        taskName,
        this.names(),
        `service ${mode}/${service} has no method ${taskName}; its methods: ${entry.methods.join(', ') || '(none)'}`,
      );
    }
    return entry;
  }

  /** Calls the task's method (a fresh instance per task for classes); what it returns comes back as is. */
  call(
    mode: string,
    service: string,
    taskName: string,
    input: Record<string, unknown>,
    ctx: Record<string, unknown>,
    task: TaskContext,
  ): unknown {
    const entry = this.check(mode, service, taskName);
    const target = (entry.isClass ? new (entry.impl as new () => object)() : entry.impl) as Record<
      string,
      unknown
    >;
    if (entry.methods.includes(taskName))
      return (target[taskName] as ServiceMethod).call(target, input, ctx, task);
    const fallback = (target.execute_task ?? target.executeTask) as ExecuteTaskMethod;
    return fallback.call(target, taskName, input, ctx, task);
  }

  /** Resolves the call for one task: a fresh instance per task for classes. */
  resolve(
    mode: string,
    service: string,
    taskName: string,
  ): (input: Record<string, unknown>, ctx: Record<string, unknown>, task: TaskContext) => unknown {
    const entry = this.check(mode, service, taskName);
    const target = (entry.isClass ? new (entry.impl as new () => object)() : entry.impl) as Record<
      string,
      unknown
    >;
    if (entry.methods.includes(taskName)) {
      const method = target[taskName] as ServiceMethod;
      return (input, ctx, task) => method.call(target, input, ctx, task);
    }
    const fallback = (target.execute_task ?? target.executeTask) as ExecuteTaskMethod;
    return (input, ctx, task) => fallback.call(target, taskName, input, ctx, task);
  }
}

function key(mode: string, service: string): string {
  return `${mode}/${service}`;
}

/** One `registerService` (or `registerTemplate`) call made while a services module was being loaded. */
export type Registration =
  | { mode: string; service: string; impl: ServiceImpl; options?: ServiceOptions; template?: undefined }
  | { template: TemplateDefinition };

/**
 * The hand-off between a services module's top level and the loader importing it
 * (service-loader.ts). It holds no services of its own: only what the module being loaded
 * registers, and per module what it registered, because ESM evaluates a module once per process
 * and a second worker loading it must still get its services. It sits on globalThis because the
 * package can be loaded twice in one process (the suite's src, dist from a services module that
 * imports 'aiecs'), and both copies must meet here.
 */
export interface LoadingSlot {
  /** Registrations of the module now loading; undefined when none is. */
  recording: Registration[] | undefined;
  /** What each module registered when it was evaluated, by URL. */
  readonly byModule: Map<string, Registration[]>;
  /** Loads run one at a time, so two loaders never record into each other. */
  queue: Promise<unknown>;
}

const SLOT_KEY = Symbol.for('aiecs.service-loading');

export function loadingSlot(): LoadingSlot {
  const holder = globalThis as unknown as Record<symbol, LoadingSlot | undefined>;
  return (holder[SLOT_KEY] ??= { recording: undefined, byModule: new Map(), queue: Promise.resolve() });
}

/**
 * Registers a service under `(mode, service)` in the registry of the worker loading this module
 * (`--services`, `worker.services`); its methods are the task names. Outside such a load there is
 * no registry to register into: use `registry.register(...)` on the one you pass to the worker.
 */
export function registerService(
  mode: string,
  service: string,
  impl: ServiceImpl,
  options?: ServiceOptions,
): void {
  const recording = loadingSlot().recording;
  if (!recording)
    throw new ConfigError(
      `registerService('${String(mode)}', '${String(service)}') ran outside a services module being loaded: ` +
        'pass the module to the worker (--services, worker.services), or call register() on the ServiceRegistry you give it',
    );
  // Checked now, so a bad name fails the module's load where it is, not at a later replay.
  checkRegistration(mode, service, impl);
  recording.push(options === undefined ? { mode, service, impl } : { mode, service, impl, options });
}

/**
 * Declares a task template (docs/design.md §11) in a services module, for the process loading it:
 * `aiecs up` and `aiecs gateway --services` submit by it. Checked there (a bad one stops their
 * start, naming the field); outside such a load, register it on the app's `templates` instead.
 */
export function registerTemplate(definition: TemplateDefinition): void {
  const recording = loadingSlot().recording;
  if (!recording)
    throw new ConfigError(
      'registerTemplate(...) ran outside a services module being loaded: pass the module to aiecs up or ' +
        'aiecs gateway (--services), or call app.templates.register(...) on your app',
    );
  if (typeof definition !== 'object' || definition === null)
    throw new ValidationError(
      [{ field: 'template', message: 'must be a template object' }],
      'registerTemplate',
    );
  recording.push({ template: definition });
}
