/**
 * What can run on a store: the registry this process was given (if any) and every live worker's
 * (from their heartbeats). The gateway and the CLI both refuse a task no worker can run before queueing it,
 * with the same check, whatever the store.
 */
import { ServiceNotFoundError } from '../core/errors.js';
import type { Store } from '../engine/store.js';
import type { ServiceDescription, ServiceRegistry } from './registry.js';

export class ServiceCatalog {
  private cached: { at: number; services: ServiceDescription[] } | undefined;
  constructor(
    private readonly store: Pick<Store, 'listHeartbeats'>,
    private readonly local?: ServiceRegistry,
  ) {}

  async list(): Promise<ServiceDescription[]> {
    if (this.cached && Date.now() - this.cached.at < 2_000) return this.cached.services;
    const byKey = new Map<string, ServiceDescription>();
    for (const s of this.local?.list() ?? []) byKey.set(`${s.mode}/${s.service}`, s);
    for (const beat of await this.store.listHeartbeats()) {
      for (const s of beat.services ?? []) {
        const known = byKey.get(`${s.mode}/${s.service}`);
        const methods = [...new Set([...(known?.methods ?? []), ...s.methods])].sort();
        byKey.set(`${s.mode}/${s.service}`, {
          ...known,
          ...s,
          methods,
          accepts_any_task: s.accepts_any_task || (known?.accepts_any_task ?? false),
        });
      }
    }
    const services = [...byKey.values()].sort((a, b) =>
      `${a.mode}/${a.service}`.localeCompare(`${b.mode}/${b.service}`),
    );
    this.cached = { at: Date.now(), services };
    return services;
  }

  /** Throws ServiceNotFoundError (422 on HTTP) unless some worker or this process can run the task. */
  async check(mode: string, service: string, taskName: string): Promise<void> {
    const services = await this.list();
    const entry = services.find((s) => s.mode === mode && s.service === service);
    const names = services.map((s) => `${s.mode}/${s.service}`);
    if (!entry) throw new ServiceNotFoundError(mode, service, taskName, names);
    if (!entry.methods.includes(taskName) && !entry.accepts_any_task) {
      throw new ServiceNotFoundError(
        mode,
        service,
        taskName,
        names,
        `service ${mode}/${service} has no method ${taskName}; its methods: ${entry.methods.join(', ')}`,
      );
    }
  }
}
