// What a socket may see, and who may connect: a task's events stay with the task (not its id, which
// retention frees for another user), a socket lives no longer than its token, and the gateway's own
// origin is let in beside CORS_ALLOWED_ORIGINS while foreign ones stay out.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS } from './harness.js';
import { GatewayEnv, probe, request, token, tryConnect, uid, until } from './gateway-harness.js';

const ALLOWED = 'http://app.example';
const EVIL = 'http://evil.example';

describe.each(STORE_KINDS)('gateway isolation on %s', (kind) => {
  let ge: GatewayEnv;
  beforeAll(async () => {
    ge = await GatewayEnv.create(kind, { AIECS_RETENTION_COMPLETED_S: '1', CORS_ALLOWED_ORIGINS: ALLOWED });
  });
  afterAll(async () => {
    await ge?.cleanup();
  });

  it('keeps a reused task id’s events and result with its current owner', async () => {
    const [alice, bob] = [uid('alice'), uid('bob')];
    const taskId = uid('reused');
    const a = { socket: await ge.client(alice), api: await ge.api(alice) };
    const b = { socket: await ge.client(bob), api: await ge.api(bob) };

    expect((await a.api.submit(probe('echo', { owner: 'alice' }, { task_id: taskId }))).status).toBe(202);
    await a.socket.waitTerminal([taskId]);
    expect(a.socket.terminal(taskId)?.result).toMatchObject({ echo: { owner: 'alice' } });
    // Alice's replay is there to be leaked: her own subscribe gets it.
    expect((await a.socket.subscribe(taskId, -1)).replayed).toBeGreaterThan(1);
    // An admin follows Alice's task: that task, not whatever later takes its id.
    const admin = await ge.client({ token: await token(uid('admin'), { admin: true }) });
    expect((await admin.subscribe(taskId, -1)).ok).toBe(true);
    await until(
      async () => (await a.api.task(taskId)).status === 404,
      30_000,
      'retention to remove the task',
    );
    const aliceSaw = a.socket.of(taskId).length;
    const adminSaw = admin.of(taskId).length;

    expect((await b.api.submit(probe('echo', { owner: 'bob' }, { task_id: taskId }))).status).toBe(202);
    // At once, as a client does after submitting: whatever the bridge has seen of the new task yet.
    const early = await b.socket.subscribe(taskId, -1);
    expect(early.ok).toBe(true);
    await b.socket.waitTerminal([taskId]);
    // Bob's live events, and his replays now and later, are all of his own task.
    const late = await b.socket.subscribe(taskId, -1);
    expect(late).toMatchObject({ ok: true, status: 'completed' });
    // His whole history (pending, running, completed), not a stand-in snapshot of the record.
    expect(late.replayed).toBeGreaterThan(1);
    const bobs = b.socket.progressOf(taskId);
    for (const e of bobs) {
      expect(e.user_id, JSON.stringify(e)).toBe(bob);
      if (e.result !== undefined) expect(e.result).toMatchObject({ echo: { owner: 'bob' } });
    }
    expect(bobs.filter((e) => e.status === 'completed').length).toBeGreaterThan(0);
    // His live events came to him: more than the replays' events alone.
    expect(bobs.length).toBeGreaterThan((early.replayed ?? 0) + (late.replayed ?? 0));

    // Alice got nothing of Bob's task: a ping answered after Bob's end orders everything before it.
    expect(await a.socket.emitWithAck('ping')).toBe('pong');
    expect(a.socket.of(taskId).slice(aliceSaw)).toEqual([]);
    expect(await admin.emitWithAck('ping')).toBe('pong');
    expect(admin.of(taskId).slice(adminSaw)).toEqual([]);
    // And her subscribe to the id now is refused like any other user's task.
    expect((await a.socket.subscribe(taskId, -1)).error?.code).toBe('TASK_NOT_FOUND');
  });

  it('disconnects a socket when its token expires; a fresh token connects and catches up', async () => {
    const user = uid('expiring');
    // Long enough to connect on a busy machine, short enough to pass while the task runs.
    const c = await ge.client({ token: await token(user, { ttlS: 5 }) });
    const api = await ge.api(user);
    // Progress every 50 ms, for longer than the test needs: it is cancelled at the end.
    const res = await api.submit(probe('progress_steps', { steps: 2_000, ms: 50 }));
    expect(res.status).toBe(202);
    const id = res.body.task_id as string;

    await until(async () => c.disconnectReason, 30_000, 'the server to disconnect the socket');
    // The server ended it (a client-side drop would say "transport close"), and said why.
    expect(c.disconnectReason).toBe('io server disconnect');
    expect(c.errors).toContainEqual(expect.objectContaining({ code: 'TOKEN_EXPIRED' }));
    const seen = c.log.length;
    expect((await api.task(id)).body.status).not.toMatch(/completed|failed/);

    const fresh = await ge.client(user);
    const lastSeq = c.of(id).at(-1)?.payload.seq ?? -1;
    expect((await fresh.subscribe(id, lastSeq)).ok).toBe(true);
    const live = (n: number) => fresh.progressOf(id).filter((e) => e.status === 'running').length >= n;
    await until(async () => live(5), 30_000, 'live events on the fresh socket');
    expect((await api.cancel(id)).status).toBe(200);
    await fresh.waitTerminal([id]);
    expect(fresh.terminal(id)?.status).toBe('cancelled');
    // The expired socket got nothing after its disconnect, though the task went on.
    expect(c.log.length).toBe(seen);
    expect(c.connected).toBe(false);
  });

  it('lets the gateway’s own origin in on HTTP and socket.io, and keeps refusing foreign ones', async () => {
    const own = ge.url; // http://127.0.0.1:<port>, as a page the gateway serves or websocket-client sends
    const port = Number(new URL(own).port);
    const tok = await token(uid('sameorigin'));
    const submit = (origin: string) =>
      request(ge.url, '/api/tasks', { token: tok, body: probe('echo', { origin }), headers: { origin } });

    const ok = await submit(own);
    expect(ok.status, ok.text).toBe(202);
    expect(ok.headers.get('access-control-allow-origin')).toBe(own);
    for (const transports of [['websocket'], ['polling']]) {
      const allowed = await tryConnect(ge.url, tok, { transports, extraHeaders: { origin: own } });
      expect(allowed.error, transports[0]).toBeUndefined();
      expect(await allowed.client!.emitWithAck('ping')).toBe('pong');
      allowed.client!.close();
    }
    // The listed origin still works; a foreign one, another port, or https on this http port do not.
    expect((await submit(ALLOWED)).status).toBe(202);
    for (const origin of [EVIL, `http://127.0.0.1:${port + 1}`, `https://127.0.0.1:${port}`, 'null']) {
      const refused = await submit(origin);
      expect(refused.status, origin).toBe(403);
      expect(refused.headers.get('access-control-allow-origin'), origin).toBeNull();
      for (const transports of [['websocket'], ['polling']]) {
        const attempt = await tryConnect(ge.url, tok, { transports, extraHeaders: { origin } });
        expect(attempt.client, `${origin} ${transports[0]}`).toBeUndefined();
      }
    }
    // Behind a proxy that ended TLS, the page's origin is https.
    const proxied = await request(ge.url, '/api/tasks', {
      token: tok,
      body: probe('echo', {}),
      headers: { origin: `https://127.0.0.1:${port}`, 'x-forwarded-proto': 'https' },
    });
    expect(proxied.status).toBe(202);
  });
});
