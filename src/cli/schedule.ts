/**
 * `aiecs schedule list|add|pause|resume|remove|run-now`: the store's schedules, on the store
 * itself or through the running `aiecs up` that owns the embedded store (its /api/schedules).
 */
import type { Command } from 'commander';
import type { AiecsConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import type { ScheduleInfo } from '../engine/schedules.js';
import { openApp, runningGateway } from './client.js';
import type { GlobalOptions } from './options.js';
import { clientLogLevel, cliConfig, parseJsonObject } from './options.js';
import { jsonLine, table } from './output.js';

interface ScheduleClient {
  list(): Promise<ScheduleInfo[]>;
  add(entry: Record<string, unknown>): Promise<ScheduleInfo>;
  setPaused(name: string, paused: boolean): Promise<ScheduleInfo>;
  remove(name: string): Promise<void>;
  runNow(name: string): Promise<{ task_id: string; queue: string }>;
  close(): Promise<void>;
}

async function openScheduleClient(
  config: AiecsConfig,
  namespace: string | undefined,
): Promise<ScheduleClient> {
  const running = await runningGateway(config);
  if (running) {
    const { HttpClient } = await import('./http-client.js');
    const http = new HttpClient(running.url, running.token, running.refusedToken, running.timeoutMs);
    const path = (name: string, verb = '') => `/api/schedules/${encodeURIComponent(name)}${verb}`;
    return {
      list: async () => (await http.call<{ schedules: ScheduleInfo[] }>('GET', '/api/schedules')).schedules,
      add: (entry) => http.call<ScheduleInfo>('POST', '/api/schedules', entry),
      setPaused: (name, paused) => http.call<ScheduleInfo>('POST', path(name, paused ? '/pause' : '/resume')),
      remove: async (name) => void (await http.call('DELETE', path(name))),
      runNow: (name) => http.call('POST', path(name, '/run-now')),
      close: async () => undefined,
    };
  }
  const logger = createLogger(clientLogLevel(config));
  const { app, store } = await openApp({ config, logger, ...(namespace !== undefined ? { namespace } : {}) });
  const [{ Schedules }, { checkSchedule }] = await Promise.all([
    import('../engine/schedules.js'),
    import('../gateway/schedule-schema.js'),
  ]);
  const schedules = new Schedules(store, config, logger);
  return {
    list: () => schedules.list(),
    add: async (entry) => {
      const definition = checkSchedule(entry, config.maxInputBytes);
      await schedules.put(definition, 'api');
      return schedules.get(definition.spec.name);
    },
    setPaused: (name, paused) => schedules.setPaused(name, paused),
    remove: (name) => schedules.remove(name),
    runNow: (name) => schedules.runNow(name),
    close: async () => {
      await schedules.close();
      await app.close();
    },
  };
}

async function withSchedules<T>(cmd: Command, fn: (client: ScheduleClient) => Promise<T>): Promise<T> {
  const globals = cmd.optsWithGlobals<GlobalOptions>();
  const client = await openScheduleClient(cliConfig(globals), globals.namespace);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

const when = (s: ScheduleInfo) =>
  s.cron !== undefined ? `cron ${s.cron}${s.tz ? ` ${s.tz}` : ''}` : `every ${s.every} s`;

export function formatSchedules(list: ScheduleInfo[]): string {
  if (!list.length) return 'no schedules';
  const rows = list.map((s) => {
    const task = s.task as { mode?: unknown; service?: unknown; task_name?: unknown; user_id?: unknown };
    return [
      s.name,
      when(s),
      `${String(task.mode)}/${String(task.service)}.${String(task.task_name)}`,
      s.queue,
      s.paused ? 'paused' : (s.next_run ?? 'ended'),
      String(s.runs),
      s.source,
    ];
  });
  return table(['NAME', 'WHEN', 'TASK', 'QUEUE', 'NEXT RUN', 'RUNS', 'SOURCE'], rows);
}

export async function scheduleListAction(flags: { json?: boolean }, cmd: Command): Promise<void> {
  await withSchedules(cmd, async (client) => {
    const list = await client.list();
    console.log(flags.json ? jsonLine(list) : formatSchedules(list));
  });
}

export async function scheduleAddAction(
  entry: string,
  flags: { json?: boolean },
  cmd: Command,
): Promise<void> {
  const value = parseJsonObject('<schedule>', entry);
  await withSchedules(cmd, async (client) => {
    const info = await client.add(value);
    console.log(
      flags.json ? jsonLine(info) : `${info.name}: ${when(info)}, next run ${info.next_run ?? '-'}`,
    );
  });
}

export async function scheduleVerbAction(
  verb: 'pause' | 'resume' | 'remove' | 'run-now',
  name: string,
  flags: { json?: boolean },
  cmd: Command,
): Promise<void> {
  await withSchedules(cmd, async (client) => {
    let out: unknown;
    let line: string;
    if (verb === 'remove') {
      await client.remove(name);
      out = { name, removed: true };
      line = `${name}: removed`;
    } else if (verb === 'run-now') {
      const fired = await client.runNow(name);
      out = { ...fired, schedule: name };
      line = `${name}: fired task ${fired.task_id} on ${fired.queue}`;
    } else {
      const info = await client.setPaused(name, verb === 'pause');
      out = info;
      line = `${name}: ${info.paused ? 'paused' : `resumed, next run ${info.next_run ?? '-'}`}`;
    }
    console.log(flags.json ? jsonLine(out) : line);
  });
}
