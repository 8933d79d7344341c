/**
 * A raw BullMQ worker process for the scaleout section: what a plain BullMQ user would run per
 * process, the no-op processor of the in-process side (targets.ts) and nothing of aiecs.
 *
 *   node dist-bench/bench/bullmq-worker.js <redis url> <prefix> <queue> <concurrency>
 *
 * Prints "bullmq worker ready" once it consumes; SIGTERM/SIGINT close it (running jobs finish).
 */
import { Worker } from 'bullmq';

const [url = '', prefix, queue = '', concurrency = '100'] = process.argv.slice(2);
const { hostname, port } = new URL(url);
const worker = new Worker(queue, async () => ({ ok: true }), {
  connection: { host: hostname, port: Number(port), maxRetriesPerRequest: null },
  ...(prefix ? { prefix } : {}),
  concurrency: Number(concurrency),
});
// A connection error must not end the process unseen: the parent sees jobs not completing.
worker.on('error', (error) => process.stderr.write(`bullmq worker: ${error.message}\n`));
await worker.waitUntilReady();
process.stdout.write('bullmq worker ready\n');
const stop = async () => {
  await worker.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
