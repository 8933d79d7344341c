import { describe, expect, it } from 'vitest';
import {
  ForbiddenError,
  PayloadTooLargeError,
  ServiceNotFoundError,
  WorkflowInvalidError,
  WorkflowTooLargeError,
} from '../core/errors.js';
import { checkServices, checkWorkflow, type WorkflowLimits } from './workflow-schema.js';

const LIMITS: WorkflowLimits = { maxTasks: 10_000, maxDepth: 32, maxInputBytes: 64 * 1024 };
const ALICE = { userId: 'alice', admin: false };
const task = (extra: Record<string, unknown> = {}) => ({
  task_name: 'echo',
  mode: 'test',
  service: 'probe',
  input_data: {},
  ...extra,
});

/** The issues a refused tree lists, as `field: message`. */
function issuesOf(body: unknown, limits = LIMITS, who = ALICE): string[] {
  try {
    checkWorkflow(body, who, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(WorkflowInvalidError);
    return (error as WorkflowInvalidError).issues.map((i) => `${i.field}: ${i.message}`);
  }
  throw new Error('the tree was accepted');
}

/** A chain nested `levels` deep around one task: {chain: [{chain: [... task]}]}. */
function nested(levels: number): unknown {
  let node: unknown = task();
  for (let i = 0; i < levels; i++) node = { chain: [node] };
  return node;
}

describe('checkWorkflow', () => {
  it('accepts nested chains, groups and chords and lists the leaves with their paths', () => {
    const body = {
      chain: [
        task({ task_name: 'a' }),
        {
          group: [task({ task_name: 'b' }), { chain: [task({ task_name: 'c' }), task({ task_name: 'd' })] }],
        },
        {
          chord: {
            header: [task({ task_name: 'e' }), task({ task_name: 'f', heavy: true })],
            body: task({ task_name: 'g' }),
          },
        },
      ],
    };
    const checked = checkWorkflow(body, ALICE, LIMITS);
    expect(checked.userId).toBe('alice');
    expect(checked.leaves.map((l) => [l.path, l.task.task_name])).toEqual([
      ['chain[0]', 'a'],
      ['chain[1].group[0]', 'b'],
      ['chain[1].group[1].chain[0]', 'c'],
      ['chain[1].group[1].chain[1]', 'd'],
      ['chain[2].chord.header[0]', 'e'],
      ['chain[2].chord.header[1]', 'f'],
      ['chain[2].chord.body', 'g'],
    ]);
    // Leaves are parsed as POST /api/tasks parses them: defaults and the owner filled in.
    expect(checked.leaves[5]!.task).toMatchObject({ user_id: 'alice', heavy: true, step: 0, context: {} });
    // The engine's tree: each leaf split into queue, request (owner filled in) and options.
    const leaf = (name: string, queue = 'fast_tasks') => ({
      task: { queue, request: { task_name: name, user_id: 'alice' } },
    });
    expect(checked.tree).toMatchObject({
      chain: [
        leaf('a'),
        { group: [leaf('b'), { chain: [leaf('c'), leaf('d')] }] },
        { chord: { header: [leaf('e'), leaf('f', 'heavy_tasks')], body: leaf('g') } },
      ],
    });
  });

  it('names a bad leaf by its path and lists every issue', () => {
    const body = {
      chain: [
        task(),
        task(),
        { group: [task(), task({ mode: 'bad mode!', priority: 0 })] },
        { chord: { header: [task({ colour: 'red' })], body: task({ step: -1 }) } },
      ],
    };
    const issues = issuesOf(body);
    expect(issues).toContain(
      'chain[2].group[1].mode: must start with a letter or _ and hold only letters, digits, _ . -',
    );
    expect(issues.some((i) => i.startsWith('chain[2].group[1].priority: '))).toBe(true);
    expect(issues).toContain('chain[3].chord.header[0]: unknown field(s): colour');
    expect(issues).toContain('chain[3].chord.body.step: must be >= 0');
    expect(issues).toHaveLength(4);
  });

  it('refuses a root that is not a chain, group or chord', () => {
    expect(issuesOf(task())).toEqual([
      '(root): must be {"chain": [...]}, {"group": [...]} or {"chord": {...}}; submit one task with POST /api/tasks',
    ]);
    expect(issuesOf([task()])[0]).toMatch(/^\(root\): must be a task request or one of/);
    expect(issuesOf('chain')[0]).toMatch(/^\(root\): /);
    expect(issuesOf(null)[0]).toMatch(/^\(root\): /);
  });

  it('refuses malformed nodes: empty or non-array members, two kinds, stray keys, a chord without body', () => {
    expect(issuesOf({ chain: [] })).toEqual(['chain: must hold at least one task']);
    expect(issuesOf({ group: { a: 1 } })).toEqual(['group: must be an array of tasks or workflow nodes']);
    expect(issuesOf({ chain: [task()], group: [task()] })).toEqual([
      '(root): a chain node holds only "chain"; unknown field(s): group',
    ]);
    expect(issuesOf({ group: [task(), { chain: [task()], step: 1 }] })).toEqual([
      'group[1]: a chain node holds only "chain"; unknown field(s): step',
    ]);
    expect(issuesOf({ group: [task(), 7] })).toEqual([
      'group[1]: must be a task request or one of {"chain": [...]}, {"group": [...]}, {"chord": {...}}',
    ]);
    expect(issuesOf({ chord: { header: [task()] } })).toEqual(['chord.body: is required: the callback']);
    expect(issuesOf({ chord: { header: [], body: task(), extra: 1 } })).toEqual([
      'chord: unknown field(s): extra; a chord holds header and body',
      'chord.header: must hold at least one task',
    ]);
    expect(issuesOf({ chord: [task()] })).toEqual(['chord: must be {"header": [...], "body": {...}}']);
  });

  it('refuses more tasks than the limit with 413, before reading any leaf', () => {
    const limits = { ...LIMITS, maxTasks: 3 };
    expect(() => checkWorkflow({ group: [task(), task(), task()] }, ALICE, limits)).not.toThrow();
    const tooMany = { group: [task(), { chain: [task(), { bad: true }] }, task()] };
    const error = (() => {
      try {
        checkWorkflow(tooMany, ALICE, limits);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(WorkflowTooLargeError);
    expect((error as WorkflowTooLargeError).details).toEqual({ tasks: 4, limit: 3 });
    expect((error as Error).message).toMatch(/4 tasks, over the limit of 3 \(AIECS_WORKFLOW_MAX_TASKS\)/);
  });

  it('counts chord bodies as tasks', () => {
    const limits = { ...LIMITS, maxTasks: 2 };
    expect(() => checkWorkflow({ chord: { header: [task(), task()], body: task() } }, ALICE, limits)).toThrow(
      WorkflowTooLargeError,
    );
  });

  it('accepts the depth limit and refuses one level more, naming the node', () => {
    expect(checkWorkflow(nested(32), ALICE, LIMITS).leaves[0]!.path).toBe(
      `${'chain[0].'.repeat(31)}chain[0]`,
    );
    expect(issuesOf(nested(33))).toEqual([
      `${'chain[0].'.repeat(32)}chain: nested 33 levels deep; a workflow nests at most 32 (AIECS_WORKFLOW_MAX_DEPTH)`,
    ]);
    expect(issuesOf(nested(3), { ...LIMITS, maxDepth: 2 })).toHaveLength(1);
  });

  it('does not recurse into a hostile depth', () => {
    expect(issuesOf(nested(100_000))).toHaveLength(1);
  });

  it('refuses tasks submitted as another user unless the submitter is an admin', () => {
    const body = { chain: [task(), task({ user_id: 'bob' })] };
    expect(() => checkWorkflow(body, ALICE, LIMITS)).toThrow(ForbiddenError);
    expect(() => checkWorkflow(body, ALICE, LIMITS)).toThrow(
      'chain[1].user_id: cannot submit tasks as user bob',
    );
    const asAdmin = { chain: [task({ user_id: 'bob' }), task({ user_id: 'bob' })] };
    expect(checkWorkflow(asAdmin, { userId: 'root', admin: true }, LIMITS).userId).toBe('bob');
  });

  it('gives a workflow one owner', () => {
    const body = { group: [task({ user_id: 'bob' }), task()] };
    expect(issuesOf(body, LIMITS, { userId: 'root', admin: true })).toEqual([
      'group[1].user_id: every task of a workflow has one owner: root is not bob',
    ]);
  });

  it('refuses a task id used twice in one tree', () => {
    const body = { chain: [task({ task_id: 'same' }), { group: [task({ task_id: 'same' })] }] };
    expect(issuesOf(body)).toEqual(['chain[1].group[0].task_id: same is also the id of chain[0]']);
  });

  it("refuses at the leaf's path what the engine would refuse when it queues it", () => {
    const body = {
      group: [
        task({ countdown: 5, eta: new Date(Date.now() + 60_000).toISOString() }),
        task({ time_limit: 5, soft_time_limit: 10 }),
      ],
    };
    // Both fields are named, as POST /api/tasks names them.
    expect(issuesOf(body)).toEqual([
      'group[0].countdown: give countdown or eta, not both',
      'group[0].eta: give countdown or eta, not both',
      'group[1].soft_time_limit: must not exceed time_limit',
    ]);
    const big = { chain: [task(), task({ input_data: { text: 'x'.repeat(2000) } })] };
    expect(() => checkWorkflow(big, ALICE, { ...LIMITS, maxInputBytes: 1000 })).toThrow(PayloadTooLargeError);
    expect(() => checkWorkflow(big, ALICE, { ...LIMITS, maxInputBytes: 1000 })).toThrow(
      /^chain\[1\]\.input_data\+context is \d+ bytes, over the limit of 1000 bytes$/,
    );
  });

  it('caps the message and keeps every issue in the details', () => {
    const body = { group: Array.from({ length: 25 }, () => task({ mode: '' })) };
    try {
      checkWorkflow(body, ALICE, LIMITS);
      expect.unreachable();
    } catch (error) {
      const e = error as WorkflowInvalidError;
      expect(e.issues).toHaveLength(25);
      expect(e.message).toMatch(/; and 15 more$/);
      expect(e.details.issues).toHaveLength(25);
    }
  });
});

describe('checkServices', () => {
  const registered = ['test/probe'];
  const check = async (mode: string, service: string, taskName: string) => {
    calls.push(`${mode}/${service}/${taskName}`);
    if (`${mode}/${service}` !== 'test/probe')
      throw new ServiceNotFoundError(mode, service, taskName, registered);
    if (taskName === 'missing')
      throw new ServiceNotFoundError(
        mode,
        service,
        taskName,
        registered,
        `service test/probe has no method missing`,
      );
  };
  let calls: string[] = [];

  it('names every task no worker can run by its path, the first in the message', async () => {
    calls = [];
    const items = [
      { path: 'chain[0]', task: task() },
      { path: 'chain[1].group[0]', task: task({ service: 'nope' }) },
      { path: 'chain[1].group[1]', task: task({ task_name: 'missing' }) },
      { path: 'chain[2]', task: task({ service: 'nope' }) },
    ];
    const error = (await checkServices(items, check).catch((e: unknown) => e)) as ServiceNotFoundError;
    expect(error).toBeInstanceOf(ServiceNotFoundError);
    expect(error.message).toMatch(/^chain\[1\]\.group\[0\]\.service: no service registered as test\/nope/);
    expect((error.details.issues as Array<{ field: string }>).map((i) => i.field)).toEqual([
      'chain[1].group[0].service',
      'chain[1].group[1].task_name',
      'chain[2].service',
    ]);
    // One look-up per distinct mode/service/task.
    expect(calls).toEqual(['test/probe/echo', 'test/nope/echo', 'test/probe/missing']);
  });

  it('passes when every service is known, and lets other errors through', async () => {
    await expect(checkServices([{ path: 'group[0]', task: task() }], check)).resolves.toBeUndefined();
    const down = () => Promise.reject(new Error('store down'));
    await expect(checkServices([{ path: 'group[0]', task: task() }], down)).rejects.toThrow('store down');
  });
});
