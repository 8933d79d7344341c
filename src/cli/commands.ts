/**
 * The commands besides `worker`: names, flags and help here, each action imported when its
 * command runs. Every `aiecs` process builds the whole program, and a long-lived worker should
 * not carry the client, demo and gateway code it never runs.
 */
import { Argument, Option, type Command } from 'commander';
import { CONTROL_COMMANDS, INSPECT_VERBS, type ControlCommand, type InspectVerb } from '../engine/control.js';
import type { EventsFlags } from './events.js';
import type { GatewayFlags, TokenFlags } from './gateway-command.js';
import { addWorkerFlags, collectList, intFlag, numberFlag, requiredFlag } from './options.js';
import type { BeatFlags } from './beat.js';
import type { AdminFlags, InspectFlags } from './inspect.js';
import type { PurgeFlags } from './purge.js';
import type { JsonFlag } from './status.js';
import type { SubmitFlags } from './submit.js';
import type { TemplatesFlags } from './templates.js';
import type { UpFlags } from './up.js';
import type { WorkflowSubmitFlags } from './workflow.js';

export function registerUpCommand(program: Command): void {
  const command = program
    .command('up')
    .description(
      'run the whole engine in this process (store, worker and HTTP/WebSocket gateway) until SIGTERM/SIGINT',
    );
  addWorkerFlags(command)
    .option('--port <n>', 'gateway port (default: PORT, 8000)', intFlag(0))
    .option('--host <host>', 'gateway address (default: AIECS_HOST, 127.0.0.1)')
    .option('--no-gateway', 'run without the HTTP/WebSocket gateway')
    .option(
      '--templates <file>',
      'task templates to submit by: a JSON or YAML list (default: AIECS_TEMPLATES_FILE)',
    );
  command.action(async (flags: UpFlags, cmd: Command) => (await import('./up.js')).upAction(flags, cmd));
}

/** `--expires 30` is seconds; anything else is a date, for the submit's checks to judge. */
const secondsOrDate = (v: string): number | string => (/^\d+(\.\d+)?$/.test(v.trim()) ? Number(v) : v);

export function registerSubmitCommand(program: Command): void {
  const command = program
    .command('submit')
    .description('submit a task; prints its id, or with --wait its final record');
  // A template names the service method itself.
  const unlessTemplate = { unless: 'template' };
  requiredFlag(command, '--mode <mode>', 'service mode, e.g. chat', undefined, unlessTemplate);
  requiredFlag(command, '--service <service>', 'service name, e.g. text_analyzer', undefined, unlessTemplate);
  requiredFlag(command, '--task <task>', 'task (method) name, e.g. analyze_text', undefined, unlessTemplate);
  requiredFlag(command, '--input <json>', 'input_data: a JSON object, @file.json or - (stdin)');
  command
    .option(
      '--template <name@version>',
      'submit by a task template instead of --mode/--service/--task (a name alone: its latest version); its defaults apply',
    )
    .option('--context <json>', 'context: a JSON object, @file.json or - (stdin)')
    .option('--user <user>', 'user id', 'cli')
    .option('--task-id <id>', 'your own task id (re-submitting the same request is a no-op)')
    .option('--step <n>', 'step number', intFlag())
    .option('--heavy', "submit to the heavy queue (process pool) instead of the fast one (or the template's)")
    .option('--priority <n>', 'priority 1-100, higher runs first', intFlag(1))
    .option('--countdown <s>', 'seconds to wait before the task may run', numberFlag())
    .option('--eta <date>', 'earliest start: ISO 8601 with offset (not with --countdown)')
    .option(
      '--expires <s|date>',
      'not started by then (seconds from now, or ISO 8601 with offset), the task ends cancelled (expired)',
      secondsOrDate,
    )
    .option('--time-limit <s>', 'hard time limit in seconds', numberFlag())
    .option('--soft-time-limit <s>', 'soft time limit in seconds', numberFlag())
    .option('--wait', 'wait for the task to end and print its record')
    .option('--timeout <s>', 'with --wait: give up waiting after this many seconds', numberFlag())
    .option('--json', 'print one JSON line')
    .action(async (flags: SubmitFlags, cmd: Command) =>
      (await import('./submit.js')).submitAction(flags, cmd),
    );
}

/** `status`, `cancel` and `workers`: about tasks and workers that already exist. */
export function registerStatusCommands(program: Command): void {
  program
    .command('status')
    .description("print a task's record")
    .argument('<id>', 'task id')
    .option('--tree', "print the workflow the task belongs to, each member's status")
    .option('--json', 'print one JSON line')
    .action(async (id: string, flags: JsonFlag & { tree?: boolean }, cmd: Command) =>
      flags.tree
        ? (await import('./workflow.js')).statusTreeAction(id, flags, cmd)
        : (await import('./status.js')).statusAction(id, flags, cmd),
    );

  program
    .command('retry')
    .description('run a failed, timed-out or cancelled task again, under the same id, as a new attempt')
    .argument('<id>', 'task id')
    .option('--json', 'print one JSON line')
    .action(async (id: string, flags: JsonFlag, cmd: Command) =>
      (await import('./status.js')).retryAction(id, flags, cmd),
    );

  program
    .command('cancel')
    .description('cancel a task: a pending one never runs, a running one is stopped')
    .argument('<id>', 'task id')
    .option('--json', 'print one JSON line')
    .action(async (id: string, flags: JsonFlag, cmd: Command) =>
      (await import('./status.js')).cancelAction(id, flags, cmd),
    );

  program
    .command('workers')
    .description('list live workers (from their heartbeats)')
    .option('--json', 'print one JSON line')
    .action(async (flags: JsonFlag, cmd: Command) => (await import('./status.js')).workersAction(flags, cmd));
}

/** `aiecs workflow submit`: a chain, group or chord from a JSON file. */
export function registerWorkflowCommand(program: Command): void {
  const workflow = program.command('workflow').description('workflows: chains, groups and chords of tasks');
  workflow
    .command('submit')
    .description(
      'submit a workflow from a JSON file ({"chain": [...]}, {"group": [...]} or {"chord": {"header": [...], "body": {...}}}, nested; each leaf a task as POST /api/tasks takes it); prints its root id, or with --wait its tree',
    )
    .argument('<file>', 'the JSON file, or - (stdin)')
    .option('--wait', 'wait for the workflow to end and print its tree')
    .option('--timeout <s>', 'with --wait: give up waiting after this many seconds', numberFlag())
    .option('--json', 'print one JSON line')
    .action(async (file: string, flags: WorkflowSubmitFlags, cmd: Command) =>
      (await import('./workflow.js')).workflowSubmitAction(file, flags, cmd),
    );
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run four tasks end to end on a temporary embedded store (ignores --broker)')
    .action(async () => (await import('./demo.js')).demoAction());
}

/** `aiecs gateway` (the HTTP/WebSocket gateway alone) and `aiecs token` (mint a JWT). */
export function registerGatewayCommands(program: Command): void {
  program
    .command('gateway')
    .description('run the HTTP API and WebSocket gateway alone (workers run elsewhere on the same store)')
    .option('--port <n>', 'port (default: PORT, 8000)', intFlag(0))
    .option('--host <host>', 'address (default: AIECS_HOST, 127.0.0.1)')
    .option(
      '--services <paths...>',
      "service modules to list and accept besides the workers' (space- or comma-separated)",
      collectList,
      [],
    )
    .option(
      '--templates <file>',
      'task templates to submit by: a JSON or YAML list (default: AIECS_TEMPLATES_FILE); the templates of --services modules too',
    )
    .action(async (flags: GatewayFlags, cmd: Command) =>
      (await import('./gateway-command.js')).gatewayAction(flags, cmd),
    );

  const token = program
    .command('token')
    .description('mint a JWT for a user with the configured secret (or the one `aiecs up` keeps)');
  requiredFlag(token, '--user <id>', "the user (the token's sub)");
  token
    .option('--admin', 'may see and cancel every task')
    .option('--ttl <duration>', 'lifetime: 90s, 30m, 1h, 7d', '1h')
    .action(async (flags: TokenFlags, cmd: Command) =>
      (await import('./gateway-command.js')).tokenAction(flags, cmd),
    );
}

/** Celery's operator verbs: `inspect`, `control`, `purge` and `events`. */
export function registerAdminCommands(program: Command): void {
  const timeout = () =>
    new Option('--timeout <s>', 'seconds the workers get to answer').argParser(numberFlag(0.05)).default(1);
  program
    .command('inspect')
    .description(
      'ask the live workers (active, stats, ping, registered) or read the queues (scheduled, reserved); names the workers that do not answer',
    )
    .addArgument(new Argument('<what>', 'what to inspect').choices(INSPECT_VERBS))
    .option('--worker <id>', 'only this worker (an id from `aiecs workers`)')
    .addOption(timeout())
    .option('--limit <n>', 'scheduled, reserved: tasks listed per queue', intFlag(0), 100)
    .option('--json', 'print one JSON line')
    .action(async (what: InspectVerb, flags: InspectFlags, cmd: Command) =>
      (await import('./inspect.js')).inspectAction(what, flags, cmd),
    );

  program
    .command('control')
    .description(
      'tell the live workers to shutdown, pool-resize N (or fast_tasks=N,heavy_tasks=N), cancel-consumer QUEUE or add-consumer QUEUE',
    )
    .addArgument(new Argument('<command>', 'what to do').choices(CONTROL_COMMANDS))
    .argument('[arg]', 'pool-resize: the size; cancel-consumer, add-consumer: the queue')
    .option('--worker <id>', 'only this worker (an id from `aiecs workers`)')
    .addOption(timeout())
    .option('--json', 'print one JSON line')
    .action(async (command: ControlCommand, arg: string | undefined, flags: AdminFlags, cmd: Command) =>
      (await import('./control.js')).controlAction(command, arg, flags, cmd),
    );

  program
    .command('purge')
    .description(
      'remove the tasks waiting and delayed in the queues (all when none is named); running tasks are untouched',
    )
    .argument('[queues...]', 'fast_tasks, heavy_tasks')
    .option('-f, --force', 'do not ask for confirmation')
    .option('--json', 'print one JSON line')
    .action(async (queues: string[], flags: PurgeFlags, cmd: Command) =>
      (await import('./purge.js')).purgeAction(queues, flags, cmd),
    );

  for (const verb of ['pause', 'resume'] as const)
    program
      .command(verb)
      .description(
        verb === 'pause'
          ? 'pause queues: they keep taking tasks and running ones finish, but none starts until resumed'
          : 'resume paused queues',
      )
      .argument('<queues...>', 'fast_tasks, heavy_tasks')
      .option('--json', 'print one JSON line')
      .action(async (queues: string[], flags: { json?: boolean }, cmd: Command) =>
        (await import('./purge.js')).pauseAction(queues, verb === 'pause', flags, cmd),
      );

  program
    .command('events')
    .description("follow every task's state changes, one line each, until Ctrl-C")
    .option('--json', 'print one JSON line per change')
    .action(async (flags: EventsFlags, cmd: Command) =>
      (await import('./events.js')).eventsAction(flags, cmd),
    );
}

/** Periodic tasks: `aiecs beat` (a schedule file) and `aiecs schedule` (one schedule at a time). */
export function registerTemplatesCommand(program: Command): void {
  program
    .command('templates')
    .description('list the task templates of a templates file, checked as `aiecs up` loads them')
    .option('--templates <file>', 'the templates file (default: AIECS_TEMPLATES_FILE)')
    .option('--json', 'print one JSON line, as GET /api/templates answers')
    .action(async (flags: TemplatesFlags, cmd: Command) =>
      (await import('./templates.js')).templatesAction(flags, cmd),
    );
}

export function registerScheduleCommands(program: Command): void {
  const beat = program
    .command('beat')
    .description(
      "make the store's schedules match a schedule file (JSON, YAML or a .js/.ts module); the store's job schedulers fire the tasks",
    );
  requiredFlag(beat, '--schedule <file>', 'the schedule file');
  beat
    .option('--watch', 'keep running and apply the file again whenever it changes')
    .action(async (flags: BeatFlags, cmd: Command) => (await import('./beat.js')).beatAction(flags, cmd));

  const schedule = program
    .command('schedule')
    .description('list, add, pause, resume, remove or run a schedule now');
  schedule
    .command('list')
    .description('every schedule with its next run time')
    .option('--json', 'print one JSON line')
    .action(async (flags: JsonFlag, cmd: Command) =>
      (await import('./schedule.js')).scheduleListAction(flags, cmd),
    );
  schedule
    .command('add')
    .description(
      'add a schedule, or replace the one of that name: a JSON entry as in a schedule file, @file.json or -',
    )
    .argument('<schedule>', 'e.g. {"name":"tick","every":60,"task":{...}}')
    .option('--json', 'print one JSON line')
    .action(async (entry: string, flags: JsonFlag, cmd: Command) =>
      (await import('./schedule.js')).scheduleAddAction(entry, flags, cmd),
    );
  for (const [verb, what] of [
    ['pause', 'pause a schedule: it fires nothing until resumed'],
    ['resume', 'resume a paused schedule (missed ticks are not replayed)'],
    ['remove', 'remove a schedule (tasks it fired stay)'],
    ['run-now', "fire a schedule's task now, as one more task"],
  ] as const)
    schedule
      .command(verb)
      .description(what)
      .argument('<name>', 'the schedule name')
      .option('--json', 'print one JSON line')
      .action(async (name: string, flags: JsonFlag, cmd: Command) =>
        (await import('./schedule.js')).scheduleVerbAction(verb, name, flags, cmd),
      );
}
