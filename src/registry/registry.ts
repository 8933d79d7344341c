import { ServiceNotFoundError, ValidationError } from '../core/errors.js';
import type { ExecuteTaskMethod, ServiceMethod, TaskContext } from '../core/task-context.js';

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

export class ServiceRegistry {
  private readonly entries = new Map<string, ServiceEntry>();

  register(mode: string, service: string, impl: ServiceImpl, options: ServiceOptions = {}): ServiceEntry {
    const issues = [];
    if (typeof mode !== 'string' || !NAME.test(mode))
      issues.push({ field: 'mode', message: 'must be a name' });
    if (typeof service !== 'string' || !NAME.test(service))
      issues.push({ field: 'service', message: 'must be a name' });
    if ((typeof impl !== 'object' && typeof impl !== 'function') || impl === null)
      issues.push({ field: 'impl', message: 'must be a class or an object' });
    if (issues.length) throw new ValidationError(issues, 'registerService');

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

// One registry per process, even when the package is loaded twice (src under test, dist from a
// services module that imports 'aiecs').
const GLOBAL_KEY = Symbol.for('aiecs.registry');
const holder = globalThis as unknown as Record<symbol, ServiceRegistry | undefined>;
export const registry: ServiceRegistry = (holder[GLOBAL_KEY] ??= new ServiceRegistry());

/** Registers a service under `(mode, service)`; its methods are the task names. */
export function registerService(
  mode: string,
  service: string,
  impl: ServiceImpl,
  options?: ServiceOptions,
): void {
  registry.register(mode, service, impl, options);
}
