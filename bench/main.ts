/**
 * `npm run bench`: the same workloads through aiecs and through raw BullMQ on the same store in one
 * run, with their ratio. The machine may be shared and noisy, so only ratios within one run count.
 *
 *   npm run bench [-- --json] [-- --quick] [-- --only redis,options,embedded,latency,io,rss,startup,fanout,llm,dashboard,workflow,history,celery,postgres,backlog,scaleout,celery_direct]
 *
 * Tables go to stdout, progress to stderr; with --json the last stdout line is one JSON object.
 * Everything talks to 127.0.0.1 only, and every child process and temp dir is removed at the end,
 * on error, on the watchdog and on Ctrl-C.
 */
import { backlog } from './backlog.js';
import { celery, celeryProblems } from './celery.js';
import { celeryDirect, celeryDirectProblems } from './celery-direct.js';
import { upStartup, workerIdleRss } from './children.js';
import { dashboard, dashboardProblems } from './dashboard.js';
import { fanout, fanoutProblems } from './fanout.js';
import { killEverything, killEverythingAndWait } from './lifecycle.js';
import { llm, llmProblems } from './llm.js';
import { BENCH_POSTGRES_URL, postgresUnavailable, redactPassword } from './postgres-server.js';
import { startRedis, type RedisServer } from './redis-server.js';
import { figures, historyProblems, renderTables, type Results } from './report.js';
import { optionCosts } from './option-costs.js';
import { scaleout } from './scaleout.js';
import { workflow } from './workflow.js';
import { ioWall, latency, throughput } from './workloads.js';

const SECTIONS = [
  'redis',
  'options',
  'embedded',
  'latency',
  'io',
  'rss',
  'startup',
  'fanout',
  'llm',
  'dashboard',
  'workflow',
  'history',
  'celery',
  'postgres',
  'backlog',
  'scaleout',
  'celery_direct',
] as const;
type Section = (typeof SECTIONS)[number];
const NEEDS_REDIS: ReadonlySet<Section> = new Set([
  'redis',
  'options',
  'latency',
  'io',
  'rss',
  'fanout',
  'llm',
  'dashboard',
  'workflow',
  'history',
  'celery',
  'backlog',
  'scaleout',
  'celery_direct',
]);

interface Options {
  json: boolean;
  quick: boolean;
  only: Section[];
}

const USAGE = `usage: npm run bench -- [--json] [--quick] [--only ${SECTIONS.join(',')}]`;

function parseArgs(argv: string[]): Options {
  const options: Options = { json: false, quick: false, only: [...SECTIONS] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--json') options.json = true;
    else if (arg === '--quick') options.quick = true;
    else if (arg === '--only' || arg.startsWith('--only=')) {
      const list = arg === '--only' ? argv[++i] : arg.slice('--only='.length);
      const names = (list ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const unknown = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
      if (names.length === 0 || unknown.length)
        throw new Error(`--only: unknown section(s) ${unknown.join(', ') || '(none)'}\n${USAGE}`);
      options.only = SECTIONS.filter((s) => names.includes(s));
    } else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}\n${USAGE}`);
  }
  return options;
}

/** Task counts: full runs as specified, --quick for a smoke run that still exercises every path. */
function sizes(quick: boolean) {
  return quick
    ? {
        redis: 1_000,
        options: 1_000,
        optionRounds: 1,
        embedded: 500,
        latency: 100,
        io: 200,
        fanout: 200,
        llm: 200,
        dashboard: 200,
        workflowGroup: 200,
        workflowChain: 20,
        workflowRounds: 2,
        rounds: 2,
        fanoutRounds: 2,
        celery: 1_000,
        celeryWarmup: 200,
        celeryRounds: 1,
        postgres: 500,
        backlog: 10_000,
        scaleout: 1_000,
        scaleoutRounds: 1,
      }
    : // Five alternating rounds per side: on a shared machine one slow round in two was common, and
      // the same code's rounds spread by a third (126-199 us/task) within one run.
      {
        redis: 10_000,
        options: 10_000,
        // One round in two or three ran on a machine slowed for a while, by a third or more: eight
        // rounds give their paired median enough pairs that a slow stretch hurts all four alike.
        optionRounds: 8,
        embedded: 3_000,
        // A p99 of 500 samples is the fifth-worst one: two runs of 5,000 a side put aiecs's at
        // 2.83 and 3.55 ms where 500-sample runs had read 3.55-5.28; about 4 s a side.
        latency: 5_000,
        io: 2_000,
        fanout: 2_000,
        llm: 2_000,
        dashboard: 2_000,
        workflowGroup: 1_000,
        workflowChain: 100,
        // A 100-step chain takes about 100 ms, so one round is at the mercy of a neighbour: with 5
        // rounds the same code's chain ratio spread 0.71-1.13 over nine runs (paired medians
        // 0.76-0.97); with 15, 0.72-0.89 over five (paired medians 0.84-0.87).
        workflowRounds: 15,
        rounds: 5,
        fanoutRounds: 3,
        // Issue 17's 5,000 messages; a Celery prefork round takes several seconds, three per side
        // keep the section within about three minutes.
        celery: 5_000,
        celeryWarmup: 500,
        celeryRounds: 3,
        // Issue 18: the embedded row's size (PostgreSQL's rate is of its order); a backlog of
        // 100,000 once per side; 10,000 tasks per worker count as the redis row, best of three.
        postgres: 3_000,
        backlog: 100_000,
        scaleout: 10_000,
        scaleoutRounds: 3,
      };
}

const IO_WAIT_MS = 500;
const IDLE_MS = 2_000;

const progress = (line: string) => console.error(line);

let bailing = false;
/** Exits without waiting for the workloads: kills and reaps our children, removes our temp dirs. */
function bail(code: number, why: string): void {
  bailing = true;
  console.error(`bench: ${why}`);
  void killEverythingAndWait().finally(() => process.exit(code));
}

async function run(options: Options): Promise<number> {
  const n = sizes(options.quick);
  const results: Results = { quick: options.quick };
  let failures = 0;
  let redis: RedisServer | undefined;
  try {
    if (options.only.some((s) => NEEDS_REDIS.has(s))) {
      redis = await startRedis();
      progress(`bench: redis-server on ${redis.url}`);
    }
    const url = redis?.url ?? '';
    const steps: Record<Section, () => Promise<void>> = {
      // Redis also runs raw BullMQ with aiecs's job options (what they cost BullMQ, apart from
      // aiecs), and aiecs with metrics on (what counting and scraping cost per task).
      redis: async () =>
        void (results.redis = await throughput(url, n.redis, n.rounds, progress, {
          withTaskOptions: true,
          withMetrics: true,
        })),
      options: async () =>
        void (results.options = await optionCosts(url, n.options, n.optionRounds, progress)),
      embedded: async () =>
        void (results.embedded = await throughput(undefined, n.embedded, n.rounds, progress)),
      latency: async () => void (results.latency = await latency(url, n.latency, progress)),
      io: async () => void (results.io = await ioWall(url, n.io, IO_WAIT_MS, progress)),
      rss: async () => void (results.rss = await workerIdleRss(url, IDLE_MS, progress)),
      startup: async () => void (results.startup = await upStartup(progress)),
      fanout: async () => {
        // The paced run is the goals'; the burst run is reported beside it (see fanout.ts).
        results.fanout = await fanout(url, n.fanout, 'paced', progress, n.fanoutRounds);
        results.fanoutBurst = await fanout(url, n.fanout, 'burst', progress);
        // Their figures are kept for the table, but lost or misdelivered events fail the section.
        const problems = [...fanoutProblems(results.fanout), ...fanoutProblems(results.fanoutBurst)];
        if (problems.length) throw new Error(problems.join('; '));
      },
      llm: async () => {
        results.llm = await llm(url, n.llm, progress);
        // Failed tasks or lost stream deltas fail the section; its figures still go in the table.
        const problems = llmProblems(results.llm);
        if (problems.length) throw new Error(problems.join('; '));
      },
      dashboard: async () => {
        results.dashboard = await dashboard(url, n.dashboard, progress);
        // Only lost events fail it; its figures still go in the table.
        const problems = dashboardProblems(results.dashboard);
        if (problems.length) throw new Error(problems.join('; '));
      },
      workflow: async () =>
        void (results.workflow = await workflow(
          url,
          { group: n.workflowGroup, chain: n.workflowChain },
          n.workflowRounds,
          progress,
        )),
      history: async () => {
        results.history = await throughput(url, n.redis, n.rounds, progress, {
          withHistory: { url: BENCH_POSTGRES_URL },
        });
        // Its figures are kept for the table, but a task missing from the history fails it.
        const problems = historyProblems(results.history);
        if (problems.length) throw new Error(problems.join('; '));
      },
      celery: async () => {
        results.celery = await celery(url, n.celery, n.celeryWarmup, n.celeryRounds, progress);
        // Skipped without a Python with Celery; a result that is not a completed body fails it.
        const problems = celeryProblems(results.celery);
        if (problems.length) throw new Error(problems.join('; '));
      },
      postgres: async () => {
        const why = await postgresUnavailable(BENCH_POSTGRES_URL);
        if (why) {
          progress(`bench: postgres skipped: ${why}`);
          results.postgres = { skipped: why };
          return;
        }
        progress(`bench: postgres on ${redactPassword(BENCH_POSTGRES_URL)}`);
        results.postgres = await throughput(BENCH_POSTGRES_URL, n.postgres, n.rounds, progress);
      },
      backlog: async () => void (results.backlog = await backlog(url, n.backlog, progress)),
      scaleout: async () =>
        void (results.scaleout = await scaleout(url, n.scaleout, n.scaleoutRounds, progress)),
      celery_direct: async () => {
        // Celery's side of the redis, latency and io rows, at their sizes.
        const { redis: count, celeryWarmup: warmup, celeryRounds: rounds, latency: lat, io } = n;
        const sizes = { count, warmup, rounds, latency: lat, io, ioWaitMs: IO_WAIT_MS };
        results.celeryDirect = await celeryDirect(url, sizes, progress);
        if ('skipped' in results.celeryDirect) return;
        // The ratios are within one run: aiecs's rows run here when this invocation left them out
        // (or they failed).
        for (const row of ['redis', 'latency', 'io'] as const) {
          if (results[row]) continue;
          progress(`bench: celery_direct: running the ${row} row for aiecs's side`);
          await steps[row]();
        }
        const problems = celeryDirectProblems(results.celeryDirect);
        if (problems.length) throw new Error(problems.join('; '));
      },
    };
    for (const section of options.only) {
      progress(`bench: ${section}…`);
      try {
        await steps[section]();
      } catch (error) {
        // One broken section should not hide the others' figures; the exit code still says it failed.
        failures += 1;
        progress(`bench: ${section} failed: ${(error as Error).stack ?? String(error)}`);
      }
    }
  } finally {
    await redis?.stop();
  }
  if (bailing) return 1;
  console.log(renderTables(results));
  if (options.json) console.log(JSON.stringify(figures(results)));
  return failures ? 1 : 0;
}

async function main(): Promise<void> {
  let options: Options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
  // Ctrl-C (or a kill) must not leave redis-server or an aiecs child running.
  process.once('SIGINT', () => bail(130, 'interrupted; stopped child processes and removed temp dirs'));
  process.once('SIGTERM', () => bail(143, 'terminated; stopped child processes and removed temp dirs'));
  // Whatever else goes wrong, nothing we started may outlive us.
  process.on('exit', () => killEverything());
  // A hung store call or child would otherwise hold the run forever.
  const budgetMs = (options.quick ? 8 : 35) * 60_000;
  setTimeout(
    () => bail(1, `watchdog: the run took longer than ${budgetMs / 60_000} minutes`),
    budgetMs,
  ).unref();

  const code = await run(options).catch((error: unknown) => {
    console.error(`bench: ${(error as Error).stack ?? String(error)}`);
    return 1;
  });
  // bail() owns the exit once it has started: it is still reaping the children.
  if (bailing) return;
  // Explicit exit: a connection a library left open must not keep a finished benchmark alive.
  killEverything();
  process.exit(code);
}

void main();
