// A workflow member's progress events carry root_id and parent_id (docs/design.md §9), so a UI
// drawing the tree needs no other read; a template-submitted task's carry its template version.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GATEWAY_KINDS, GatewayEnv, uid } from './gateway-harness.js';

describe.each(GATEWAY_KINDS)('workflow events on %s', (kind) => {
  let ge: GatewayEnv;
  beforeAll(async () => {
    ge = await GatewayEnv.create(kind);
  });
  afterAll(async () => {
    await ge?.cleanup();
  });

  it('puts root_id and parent_id on every progress event of a member, and on no lone task', async () => {
    const user = uid('wf');
    const client = await ge.client(user);
    const leaf = (tag: string) => ({
      task: {
        queue: 'fast_tasks' as const,
        request: { task_name: 'echo', user_id: user, mode: 'test', service: 'probe', input_data: { tag } },
      },
    });
    const h = await ge.main.app.submitWorkflow({ chain: [leaf('a'), leaf('b')] });
    const [first, second] = (h.children as { chain: Array<{ task: string }> }).chain.map((c) => c.task);
    const lone = await ge.main.app.executeTask.delay({
      taskName: 'echo',
      userId: user,
      mode: 'test',
      service: 'probe',
    });
    await client.waitTerminal([first!, second!, lone.id]);

    const ofFirst = client.progressOf(first!);
    expect(ofFirst.length).toBeGreaterThan(0);
    for (const e of ofFirst) expect(e).toMatchObject({ root_id: h.id, parent_id: second });
    for (const e of client.progressOf(second!)) expect(e).toMatchObject({ root_id: h.id, parent_id: null });
    for (const e of client.progressOf(lone.id)) expect(e).not.toHaveProperty('root_id');
    for (const e of client.progressOf(lone.id)) expect(e).not.toHaveProperty('template');
  });

  it('puts the template version on every progress event of a task submitted by a template', async () => {
    const user = uid('tpl');
    const client = await ge.client(user);
    const app = ge.main.app;
    app.templates.register({
      name: 'echo_tpl',
      version: 3,
      mode: 'test',
      service: 'probe',
      task_name: 'echo',
    });
    const h = await app.template('echo_tpl').delay({ tag: 't' }, { userId: user });
    await client.waitTerminal([h.id]);
    const events = client.progressOf(h.id);
    expect(events.length).toBeGreaterThan(1);
    for (const e of events) expect(e).toMatchObject({ template: 'echo_tpl@3' });
  });
});
