// The realtime contract (docs/design.md §3) through the official socket.io-client against a real gateway:
// ordering, replay, isolation between users, and the original's register/ping handshake.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GATEWAY_KINDS,
  GatewayEnv,
  expectedTokens,
  increasing,
  probe,
  progressProblem,
  seqKey,
  token,
  uid,
  until,
  type Client,
} from './gateway-harness.js';

describe.each(GATEWAY_KINDS)('gateway realtime on %s', (kind) => {
  let ge: GatewayEnv;
  beforeAll(async () => {
    ge = await GatewayEnv.create(kind);
  });
  afterAll(async () => {
    await ge?.cleanup();
  });

  it('delivers each task’s events in order, ends every task with one terminal event, and coalesces streams', async () => {
    const user = uid('order');
    const client = await ge.client(user);
    const a = await ge.api(user);
    const steps: string[] = [];
    const streams: Array<{ id: string; tokens: number }> = [];
    const echoes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await a.submit(probe('progress_steps', { steps: 8, ms: 5 }));
      expect(res.status).toBe(202);
      steps.push(res.body.task_id);
    }
    for (const tokens of [300, 200]) {
      const res = await a.submit(probe('stream_tokens', { tokens, ms: 1 }));
      expect(res.status).toBe(202);
      streams.push({ id: res.body.task_id, tokens });
    }
    const failing = (await a.submit(probe('fail', { message: 'on purpose' }))).body.task_id as string;
    const batch = await a.post('/api/tasks/batch', {
      tasks: Array.from({ length: 20 }, (_, i) => probe('echo', { i })),
    });
    expect(batch.status).toBe(202);
    echoes.push(...(batch.body.tasks as Array<{ task_id: string }>).map((t) => t.task_id));
    const all = [...steps, ...streams.map((s) => s.id), failing, ...echoes];
    await client.waitTerminal(all);

    for (const id of all) {
      expect(progressProblem(client.progressOf(id)), id).toBeUndefined();
      // Progress and stream events share one sequence per task and arrive in it.
      const seqs = client.of(id).map((r) => r.payload.seq);
      expect(increasing(seqs), `${id}: ${seqs.join(',')}`).toBe(true);
    }
    for (const id of steps) {
      const events = client.progressOf(id);
      expect(events.at(-1)!.status).toBe('completed');
      expect(events.at(-1)!.progress).toBe(100);
      // The original's fields are all there.
      for (const e of events) {
        expect(e).toMatchObject({ task_id: id, user_id: user, task: 'progress_steps', step: 0 });
        expect(typeof e.message).toBe('string');
        expect(typeof e.timestamp).toBe('number');
      }
      const percents = events.filter((e) => e.status === 'running').map((e) => e.progress);
      expect(percents).toEqual([...percents].sort((x, y) => x - y));
    }
    for (const { id, tokens } of streams) {
      const deltas = client.streamsOf(id);
      expect(increasing(deltas.map((d) => d.seq))).toBe(true);
      expect(deltas.map((d) => d.delta).join('')).toBe(expectedTokens(tokens));
      // Coalesced: tokens come every millisecond, messages a few times a second.
      expect(deltas.length).toBeLessThan(tokens);
      expect(client.terminal(id)?.result).toEqual({ tokens });
      // Every delta comes before the terminal event.
      const order = client.of(id);
      expect(order.at(-1)!.kind).toBe('progress');
    }
    const failed = client.terminal(failing)!;
    expect(failed).toMatchObject({ status: 'failed', task: 'fail', error_code: 'E003' });
    expect(failed.error).toContain('on purpose');
    // The error is a message, never a stack trace.
    expect(JSON.stringify(client.of(failing))).not.toMatch(/\n\s+at |"stack"|\.(ts|js|mjs):\d+/);
  });

  it('replays the whole history to a subscriber that comes after the task finished', async () => {
    const user = uid('late');
    const a = await ge.api(user);
    const res = await a.submit(probe('stream_tokens', { tokens: 120, ms: 1 }));
    expect(res.status).toBe(202);
    const id = res.body.task_id as string;
    expect((await a.settled(id)).status).toBe('completed');

    const client = await ge.client(user);
    expect(client.log).toEqual([]);
    const ack = await client.subscribe(id, -1);
    expect(ack).toMatchObject({ ok: true, status: 'completed' });
    await client.waitTerminal([id]);
    expect(ack.replayed).toBe(client.of(id).length);
    expect(progressProblem(client.progressOf(id))).toBeUndefined();
    expect(increasing(client.of(id).map((r) => r.payload.seq))).toBe(true);
    expect(
      client
        .streamsOf(id)
        .map((d) => d.delta)
        .join(''),
    ).toBe(expectedTokens(120));
    expect(client.terminal(id)).toMatchObject({ status: 'completed', result: { tokens: 120 } });

    // A subscriber that has seen everything gets nothing again.
    const lastSeq = client.of(id).at(-1)!.payload.seq;
    const again = await ge.client(user);
    expect(await again.subscribe(id, lastSeq)).toMatchObject({ ok: true, replayed: 0 });
  });

  it('loses nothing across a disconnect: a fresh socket subscribing after the last seen seq fills the gap', async () => {
    const user = uid('reconnect');
    const a = await ge.api(user);
    const reference = await ge.client(user);
    const first = await ge.client(user);
    const res = await a.submit(probe('stream_tokens', { tokens: 60, ms: 25 }));
    const id = res.body.task_id as string;
    await until(async () => first.streamsOf(id).length >= 3, 30_000, 'a few stream events');
    first.close();
    const seen = first.of(id);
    const lastSeq = Math.max(...seen.map((r) => r.payload.seq));
    expect(first.terminal(id)).toBeUndefined();

    const second = await ge.client(user);
    const ack = await second.subscribe(id, lastSeq);
    expect(ack.ok).toBe(true);
    await second.waitTerminal([id]);
    await reference.waitTerminal([id]);

    const secondSeqs = second.of(id).map((r) => r.payload.seq);
    // Nothing at or before after_seq is replayed (live events all come later anyway).
    expect(secondSeqs.filter((s) => s <= lastSeq)).toEqual([]);
    const union = new Set([...seen, ...second.of(id)].map(seqKey));
    const missing = reference.of(id).filter((r) => !union.has(seqKey(r)));
    expect(missing).toEqual([]);
    expect(
      [
        ...new Map(
          [...seen, ...second.of(id)].filter((r) => r.kind === 'stream').map((r) => [r.payload.seq, r]),
        ),
      ]
        .sort(([x], [y]) => x - y)
        .map(([, r]) => (r.payload as { delta: string }).delta)
        .join(''),
    ).toBe(expectedTokens(60));
  });

  it('keeps users apart: no event of another user’s task, 404 over HTTP, TASK_NOT_FOUND on subscribe; admins see all', async () => {
    const alice = uid('alice');
    const bob = uid('bob');
    const [ca, cb] = [await ge.client(alice), await ge.client(bob)];
    const [aa, ab] = [await ge.api(alice), await ge.api(bob)];
    const mine: Record<string, string[]> = { [alice]: [], [bob]: [] };
    for (let i = 0; i < 12; i++) {
      for (const [user, a] of [
        [alice, aa],
        [bob, ab],
      ] as const) {
        const body =
          i % 3 === 0
            ? probe('stream_tokens', { tokens: 30, ms: 2 })
            : i % 3 === 1
              ? probe('progress_steps', { steps: 3 })
              : probe('echo', { who: user });
        const res = await a.submit(body);
        expect(res.status).toBe(202);
        mine[user]!.push(res.body.task_id);
      }
    }
    await ca.waitTerminal(mine[alice]!);
    await cb.waitTerminal(mine[bob]!);
    const check = (c: Client, user: string) => {
      const own = new Set(mine[user]);
      expect([...c.taskIds()].filter((id) => !own.has(id))).toEqual([]);
      expect(c.progress.filter((e) => e.user_id !== user)).toEqual([]);
      expect(c.streams.length).toBeGreaterThan(0);
    };
    check(ca, alice);
    check(cb, bob);

    // Over HTTP, another user's task does not exist.
    const slow = await aa.submit(probe('sleep', { ms: 60_000 }));
    const slowId = slow.body.task_id as string;
    await until(async () => (await aa.task(slowId)).body.status === 'running', 20_000, 'slow task to run');
    expect((await ab.task(slowId)).status).toBe(404);
    expect((await ab.cancel(slowId)).status).toBe(404);
    expect((await aa.task(slowId)).body.status).toBe('running');
    expect(await cb.subscribe(slowId, -1)).toMatchObject({ ok: false, error: { code: 'TASK_NOT_FOUND' } });
    expect(await cb.subscribe(mine[alice]![0]!, -1)).toMatchObject({
      ok: false,
      error: { code: 'TASK_NOT_FOUND' },
    });

    // An admin can read, follow and cancel it.
    const root = uid('root');
    const admin = await ge.api(root, { admin: true });
    const adminClient = await ge.client({ token: await token(root, { admin: true }) });
    expect((await admin.task(slowId)).body).toMatchObject({ task_id: slowId, user_id: alice });
    expect(await adminClient.subscribe(slowId, -1)).toMatchObject({ ok: true, status: 'running' });
    const cancel = await admin.cancel(slowId);
    expect(cancel.status).toBe(200);
    expect(cancel.body).toMatchObject({ task_id: slowId, cancelled: true });
    await adminClient.waitTerminal([slowId]);
    await ca.waitTerminal([slowId]);
    expect(ca.terminal(slowId)!.status).toBe('cancelled');
    expect(adminClient.terminal(slowId)!.status).toBe('cancelled');
    // Bob still saw nothing of it.
    expect(cb.taskIds().has(slowId)).toBe(false);
  });

  it('accepts register for the token’s own user only, and answers ping with pong', async () => {
    const user = uid('reg');
    const c = await ge.client(user);
    expect(await c.emitWithAck('register', { user_id: user })).toMatchObject({ ok: true });
    expect(await c.emitWithAck('register', { user_id: 'someone-else' })).toMatchObject({
      ok: false,
      error: { code: 'FORBIDDEN' },
    });
    expect(await c.emitWithAck('register', {})).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    // Without an ack a refusal comes as an `error` event.
    c.socket.emit('register', { user_id: 'someone-else' });
    await until(async () => c.errors.some((e) => e.code === 'FORBIDDEN'), 10_000, 'error event');
    expect(await c.emitWithAck('ping')).toBe('pong');
    c.socket.emit('ping');
    await until(async () => c.pongs === 1, 10_000, 'pong event');
    expect(c.connected).toBe(true);
  });
});
