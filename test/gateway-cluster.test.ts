// Two gateways and two workers (one in this process, one in its own) on one Redis: every gateway
// relays every event to its own sockets, each exactly once, wherever the task was submitted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GatewayEnv,
  api,
  probe,
  progressProblem,
  sleep,
  until,
  token,
  uid,
  type Client,
  type GatewayHandle,
  type Received,
} from './gateway-harness.js';

describe('two gateways and two workers on one Redis', () => {
  let ge: GatewayEnv;
  let second: GatewayHandle;
  let workerPid: number | undefined;
  beforeAll(async () => {
    // Two slots per worker: a burst of slow tasks cannot all go to one of them.
    const slots = { CELERY_WORKER_CONCURRENCY: 'fast_tasks=2,heavy_tasks=1' };
    ge = await GatewayEnv.create('redis', slots);
    const proc = await ge.env.workerProcess(slots);
    workerPid = proc.proc.pid;
    second = await ge.addGateway();
  });
  afterAll(async () => {
    await ge?.cleanup();
  });

  it('delivers each event of a user’s tasks exactly once to each of its sockets, on either gateway', async () => {
    const [alice, bob] = [uid('alice'), uid('bob')];
    const urls = [ge.url, second.url];
    // Alice on both gateways, bob on the second one only.
    const clients: Record<string, Client[]> = {
      [alice]: [await ge.client(alice, { url: urls[0] }), await ge.client(alice, { url: urls[1] })],
      [bob]: [await ge.client(bob, { url: urls[1] })],
    };
    const tasks: Record<string, string[]> = { [alice]: [], [bob]: [] };
    for (let i = 0; i < 16; i++) {
      for (const user of [alice, bob]) {
        // Submitted through either gateway.
        const a = api(urls[(i + (user === bob ? 1 : 0)) % 2]!, await token(user));
        const body =
          i % 4 === 0
            ? probe('stream_tokens', { tokens: 40, ms: 2 })
            : i % 4 === 1
              ? probe('progress_steps', { steps: 4, ms: 5 })
              : i % 4 === 2
                ? probe('sleep', { ms: 50 })
                : probe('echo', { i });
        const res = await a.submit(body);
        expect(res.status).toBe(202);
        tasks[user]!.push(res.body.task_id);
      }
    }
    for (const user of [alice, bob])
      for (const c of clients[user]!) await c.waitTerminal(tasks[user]!, 60_000);

    const key = (r: Received) => `${r.payload.task_id}/${r.kind}/${r.payload.seq}`;
    for (const user of [alice, bob]) {
      const own = new Set(tasks[user]);
      for (const c of clients[user]!) {
        const keys = c.log.map(key);
        const dupes = keys.filter((k, i) => keys.indexOf(k) !== i);
        expect(dupes, `duplicates for ${user}`).toEqual([]);
        expect([...c.taskIds()].filter((id) => !own.has(id))).toEqual([]);
        for (const id of tasks[user]!) expect(progressProblem(c.progressOf(id)), id).toBeUndefined();
      }
    }
    // Alice's two sockets, on two gateways, saw the same events.
    const [onFirst, onSecond] = clients[alice]!;
    expect(new Set(onFirst!.log.map(key))).toEqual(new Set(onSecond!.log.map(key)));

    // A failed task too.
    const failed = (await (await ge.api(alice)).submit(probe('fail', { message: 'nope' }))).body
      .task_id as string;
    await onFirst!.waitTerminal([failed]);
    await onSecond!.waitTerminal([failed]);

    // A gateway started after the tasks ended has none of their events: it replays the record,
    // with the seq its terminal event had live.
    const late = await ge.addGateway();
    const c = await ge.client(alice, { url: late.url });
    for (const id of [...tasks[alice]!.slice(0, 4), failed]) {
      const seen = onFirst!.terminal(id)!;
      const ack = await c.subscribe(id, -1);
      expect(ack).toMatchObject({ ok: true, status: seen.status, replayed: 1 });
      await c.waitTerminal([id]);
      expect(c.terminal(id)).toMatchObject({
        status: seen.status,
        seq: seen.seq,
        ...(seen.result !== undefined ? { result: seen.result } : {}),
        ...(seen.error !== undefined ? { error: seen.error, error_code: seen.error_code } : {}),
      });
      // Nothing again after what was seen.
      expect(await c.subscribe(id, seen.seq)).toMatchObject({ ok: true, replayed: 0 });
    }

    // Both workers take part: six slow tasks at once outnumber one worker's two slots.
    const burst: string[] = [];
    for (let i = 0; i < 6; i++)
      burst.push((await (await ge.api(alice)).submit(probe('sleep', { ms: 1_500 }))).body.task_id as string);
    await onFirst!.waitTerminal(burst, 60_000);
    const ran = new Set<unknown>();
    for (const id of burst) {
      const r = (await (await ge.api(alice)).task(id)).body as { result?: { pid?: number } };
      ran.add(r.result?.pid);
    }
    expect(ran).toEqual(new Set([process.pid, workerPid]));
  });

  it('keeps a task cancelled before it ran cancelled on every gateway, with one terminal seq', async () => {
    const user = uid('canceller');
    const a = await ge.api(user);
    const clients = [await ge.client(user), await ge.client(user, { url: second.url })];
    const id = (await a.submit(probe('echo', {}, { countdown: 3600 }))).body.task_id as string;
    expect((await a.cancel(id)).body).toMatchObject({ status: 'cancelled', cancelled: true });
    for (const c of clients) await c.waitTerminal([id]);
    // A worker still takes the job (the cancel promoted it) and drops it: BullMQ moves it to failed.
    const queue = await ge.main.app.queue('fast_tasks');
    await until(async () => (await (await queue.getJob(id))?.getState()) === 'failed', 20_000, 'the drain');
    // Events are relayed in stream order: once a later task's events are in, the drain's are too.
    const sentinel = (await a.submit(probe('echo'))).body.task_id as string;
    for (const c of clients) await c.waitTerminal([sentinel]);
    const seen = clients[0]!.terminal(id)!;
    expect(seen).toMatchObject({ status: 'cancelled', error_code: 'E004' });
    for (const c of clients) {
      expect(progressProblem(c.progressOf(id))).toBeUndefined();
      expect(c.progressOf(id).map((e) => e.status)).toEqual(['pending', 'cancelled']);
      expect(c.terminal(id)!.seq).toBe(seen.seq);
    }
    expect((await a.task(id)).body.status).toBe('cancelled');

    // A gateway that never saw it replays the same terminal event. (Fails while the worker, on
    // dropping a job cancelled before it ran, rewrites its progress as attempt 1 with a new seq.)
    const late = await ge.addGateway();
    const c = await ge.client(user, { url: late.url });
    expect(await c.subscribe(id, -1)).toMatchObject({ ok: true, status: 'cancelled', replayed: 1 });
    await c.waitTerminal([id]);
    expect(c.terminal(id)).toMatchObject({ status: 'cancelled', error_code: 'E004', seq: seen.seq });
  });

  it('holds a user to one rate limit across gateways, not one per gateway', async () => {
    // 6 requests per 60 s window on each node: each node's own bucket would let 6 through.
    const limits = { AIECS_RATE_LIMIT_PER_S: '0.1', AIECS_RATE_LIMIT_BURST: '6' };
    const [a, b] = [await ge.addGateway(limits), await ge.addGateway(limits)];
    const tok = await token(uid('limited'));
    const [onA, onB] = [api(a.url, tok), api(b.url, tok)];
    // The shared count lives in fixed windows: stay clear of a window's end.
    while (60_000 - (Date.now() % 60_000) < 5_000) await sleep(250);
    const first = await Promise.all(Array.from({ length: 6 }, () => onA.get('/api/tasks?limit=1')));
    expect(first.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const second = await Promise.all(Array.from({ length: 6 }, () => onB.get('/api/tasks?limit=1')));
    expect(second.map((r) => r.status)).toEqual([429, 429, 429, 429, 429, 429]);
    expect(second[0]!.body.error.code).toBe('RATE_LIMITED');
    expect(Number(second[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Another user is not touched by it.
    expect((await api(b.url, await token(uid('other'))).get('/api/tasks?limit=1')).status).toBe(200);
  });
});
