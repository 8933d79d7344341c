// The library API in one file, on a throwaway embedded store: a worker and a producer in one
// process, a service of our own, progress, a result, a time limit and a cancel.
//   node examples/quickstart.mjs
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createApp,
  loadConfig,
  openStore,
  ServiceRegistry,
  startWorker,
  TaskCancelledError,
  TaskTimeoutError,
} from 'aiecs';
import { registerBuiltinServices } from 'aiecs/services';

const dir = mkdtempSync(join(tmpdir(), 'aiecs-quickstart-'));
process.env.AIECS_LOG_LEVEL ??= 'warn';
const config = loadConfig(process.env);
const store = await openStore(`embedded:${dir}`);
const services = [new URL('./my-services.mjs', import.meta.url).pathname];
// The worker runs what its registry holds: here the built-in services, plus my-services.mjs.
const registry = registerBuiltinServices(new ServiceRegistry());
const worker = await startWorker({ store, config, registry, worker: { services } });
const app = createApp({ store, config });

try {
  // Like the seed's execute_task.delay(...).get(timeout=30)
  const analysis = await app.executeTask.delay({
    taskName: 'analyze_text',
    userId: 'user_123',
    mode: 'chat',
    service: 'text_analyzer',
    inputData: { text: 'I really love how fast and friendly this service is!' },
    context: { language: 'en' },
  });
  const record = await analysis.get({ timeout: 30 });
  console.log('analyze_text →', record.status, record.result.sentiment.label, record.result.language.code);

  const summary = await app.executeTask.delay({
    taskName: 'summarize',
    userId: 'user_123',
    mode: 'docs',
    service: 'summarizer',
    inputData: { text: 'aiecs queues AI work. Workers run it. Browsers watch it live. Nothing is lost.' },
    context: { sentences: 2 },
  });
  console.log('summarize →', (await summary.get({ timeout: 30 })).result.summary);

  const slow = await app.executeTask.delay(
    { taskName: 'sleep', userId: 'user_123', mode: 'util', service: 'sleeper', inputData: { seconds: 30 } },
    { timeLimit: 1, softTimeLimit: 0.5 },
  );
  await slow.get({ timeout: 30 }).catch((error) => {
    if (!(error instanceof TaskTimeoutError)) throw error;
    console.log('sleep with a 1 s limit →', error.code, `(${error.limit} limit)`);
  });

  const cancelled = await app.executeTask.delay({
    taskName: 'sleep',
    userId: 'user_123',
    mode: 'util',
    service: 'sleeper',
    inputData: { seconds: 30 },
  });
  while ((await cancelled.status()).status !== 'running') await new Promise((r) => setTimeout(r, 50));
  await cancelled.cancel();
  await cancelled.get({ timeout: 30 }).catch((error) => {
    if (!(error instanceof TaskCancelledError)) throw error;
    console.log('cancelled sleep →', error.code);
  });
} finally {
  await worker.close(5);
  await app.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
