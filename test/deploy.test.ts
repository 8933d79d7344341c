/**
 * The deployment files (Dockerfile, deploy/): Docker and Kubernetes cannot run here, so this checks
 * what can be checked without them. Every YAML parses; the Kubernetes objects carry probes,
 * resources, grace periods and budgets that fit each other and the configuration; promtool accepts
 * the Prometheus files and the alerts fire on their unit tests; every metric a panel or rule queries
 * is one aiecs exports; and the Dockerfile's stages are replayed without Docker (its build context,
 * its COPY steps and its build), so its CMD, flags and health checks are tried on a real gateway
 * and worker started as Kubernetes starts them.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { freePort } from '../bench/lifecycle.js';
import { loadConfig } from '../src/core/config.js';
import { METRIC_NAMES } from '../src/core/metrics.js';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'kubernetes');
const PROMETHEUS = join(DEPLOY, 'prometheus');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** Every document of a YAML file; a syntax error or warning fails with the file and line. */
function yamlDocs(path: string): Loose[] {
  // merge: the compose file shares settings through `<<: *anchor`.
  const docs = parseAllDocuments(read(path), { merge: true, prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const problems = list.flatMap((d) => [...d.errors, ...d.warnings]).map((e) => e.message);
  expect(problems, path).toEqual([]);
  return list.map((d) => d.toJS() as Loose).filter((d) => d !== null && d !== undefined);
}
const yamlDoc = (path: string): Loose => yamlDocs(path)[0];

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)],
  );
}
const rel = (abs: string) => relative(ROOT, abs).split('\\').join('/');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  return new Promise((done, fail) => {
    execFile(
      file,
      args,
      { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, timeout: 120_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        if (error && (error as NodeJS.ErrnoException).code === 'ENOENT') return fail(error);
        done({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------
// The metrics aiecs exports (issue 12's fixed table) and what their labels may hold.

interface MetricSpec {
  type: 'counter' | 'gauge' | 'histogram';
  labels: string[];
}

const AIECS_METRICS: Record<string, MetricSpec> = {
  celery_task_executions_total: { type: 'counter', labels: ['task_name', 'status'] },
  celery_task_duration_seconds: { type: 'histogram', labels: ['task_name'] },
  celery_active_tasks: { type: 'gauge', labels: [] },
  aiecs_queue_depth: { type: 'gauge', labels: ['queue', 'state'] },
  aiecs_task_retries_total: { type: 'counter', labels: ['task_name'] },
  aiecs_task_timeouts_total: { type: 'counter', labels: ['task_name', 'kind'] },
  aiecs_workers_live: { type: 'gauge', labels: [] },
  aiecs_stream_events_total: { type: 'counter', labels: [] },
  aiecs_progress_events_total: { type: 'counter', labels: [] },
  aiecs_sockets_connected: { type: 'gauge', labels: [] },
  aiecs_provider_requests_total: { type: 'counter', labels: ['provider', 'model', 'outcome'] },
  aiecs_provider_tokens_total: { type: 'counter', labels: ['provider', 'model', 'direction'] },
  aiecs_provider_cost_usd_total: { type: 'counter', labels: ['provider', 'model'] },
  aiecs_history_entries_total: { type: 'counter', labels: ['queue'] },
  aiecs_history_gaps_total: { type: 'counter', labels: ['queue'] },
  aiecs_history_refused_total: { type: 'counter', labels: ['queue'] },
  aiecs_embedded_upkeep_seconds: { type: 'histogram', labels: ['statement'] },
};

const LABEL_VALUES: Record<string, string[]> = {
  status: ['completed', 'failed', 'timed_out', 'cancelled', 'retry'],
  state: ['waiting', 'delayed', 'active', 'failed'],
  queue: ['fast_tasks', 'heavy_tasks'],
  kind: ['soft', 'hard'],
  direction: ['input', 'output'],
  outcome: ['ok', 'error', 'retry'],
  statement: ['vacuum', 'analyze', 'checkpoint'],
};

/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = ['instance', 'job'];

/** prom-client's default process metrics, by name, as a fresh registry exports them. */
async function defaultMetrics(): Promise<Record<string, MetricSpec>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const out: Record<string, MetricSpec> = {};
  for (const m of await registry.getMetricsAsJSON()) {
    const type = String(m.type);
    out[m.name] = {
      type: type === 'histogram' ? 'histogram' : type === 'counter' ? 'counter' : 'gauge',
      labels: [],
    };
  }
  registry.clear();
  return out;
}

// ---------------------------------------------------------------------------------------------
// PromQL, read just enough to find the series a query selects and the labels it groups by.

interface Matcher {
  label: string;
  op: string;
  value: string;
}
interface Selection {
  metric: string;
  matchers: Matcher[];
}
interface QueryParts {
  selections: Selection[];
  grouping: string[];
}

const GROUPING = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2']);
// Aggregations may be followed by `by (…)` instead of their parenthesis: never a metric.
const AGGREGATIONS = new Set(
  'sum avg min max count group stddev stdvar topk bottomk quantile count_values limitk limit_ratio'.split(
    ' ',
  ),
);
const TOKEN =
  /("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(\[[^\]]*\])|(\{[^}]*\})|(\d+(?:\.\d+)?(?:e[+-]?\d+)?)|([a-zA-Z_:][\w:]*)|(\$\{[^}]*\}|\$\w+)|(\S)/gi;

function matchers(block: string): Matcher[] {
  const out: Matcher[] = [];
  for (const m of block.slice(1, -1).matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g))
    out.push({ label: m[1]!, op: m[2]!, value: m[3]! });
  return out;
}

function parseQuery(expr: string): QueryParts {
  const tokens = [...expr.matchAll(TOKEN)].map((m) => ({
    text: m[0],
    kind: m[1]
      ? 'string'
      : m[2]
        ? 'range'
        : m[3]
          ? 'labels'
          : m[4]
            ? 'number'
            : m[5]
              ? 'ident'
              : m[6]
                ? 'var'
                : 'punct',
  }));
  const parts: QueryParts = { selections: [], grouping: [] };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.kind !== 'ident') continue;
    const next = tokens[i + 1];
    if (GROUPING.has(t.text) && next?.text === '(') {
      // by (a, b): label names up to the closing parenthesis
      for (i += 2; i < tokens.length && tokens[i]!.text !== ')'; i++)
        if (tokens[i]!.kind === 'ident') parts.grouping.push(tokens[i]!.text);
      continue;
    }
    if (next?.text === '(' || KEYWORDS.has(t.text) || AGGREGATIONS.has(t.text)) continue; // a function or an operator
    const labels = next?.kind === 'labels' ? matchers(next.text) : [];
    parts.selections.push({ metric: t.text, matchers: labels });
  }
  return parts;
}

/** What is wrong with a query, against the known metrics: unknown names, labels or label values. */
function queryProblems(expr: string, known: Record<string, MetricSpec>): string[] {
  const problems: string[] = [];
  const { selections, grouping } = parseQuery(expr);
  if (selections.length === 0) problems.push('selects no metric');
  const usable = new Set(TARGET_LABELS);
  for (const { metric, matchers: ms } of selections) {
    const base = metric.replace(/_(bucket|sum|count)$/, '');
    const spec = known[metric] ?? (known[base]?.type === 'histogram' ? known[base] : undefined);
    if (!spec) {
      problems.push(`unknown metric ${metric}`);
      continue;
    }
    const allowed = new Set([
      ...spec.labels,
      ...TARGET_LABELS,
      ...(metric.endsWith('_bucket') ? ['le'] : []),
    ]);
    allowed.forEach((l) => usable.add(l));
    for (const m of ms) {
      if (!allowed.has(m.label)) problems.push(`${metric} has no label ${m.label}`);
      const values = LABEL_VALUES[m.label];
      if (!values || m.value.includes('$')) continue;
      for (const v of m.value.split('|'))
        if (!values.includes(v))
          problems.push(`${metric}{${m.label}} is never "${v}" (one of ${values.join(', ')})`);
    }
  }
  for (const label of grouping)
    if (!usable.has(label)) problems.push(`groups by ${label}, which no selected metric has`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Dockerfile, read as Docker reads it: continuation lines joined, comments dropped.

interface Instruction {
  op: string;
  args: string;
  stage: string;
}

function dockerfile(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && current === '')) continue;
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    logical.push(`${current}${line}`.trim());
    current = '';
  }
  if (current) logical.push(current.trim());
  const out: Instruction[] = [];
  let stage = '';
  for (const line of logical.filter(Boolean)) {
    const [op = '', ...rest] = line.split(/\s+/);
    const args = line.slice(op.length).trim();
    if (op.toUpperCase() === 'FROM') stage = /\bAS\s+(\S+)/i.exec(args)?.[1] ?? String(out.length);
    out.push({ op: op.toUpperCase(), args: rest.length ? args : '', stage });
  }
  return out;
}

/** An instruction's argument list: a JSON array (exec form) or words (shell form), without --flags. */
function words(args: string): { flags: Record<string, string>; list: string[] } {
  const flags: Record<string, string> = {};
  let rest = args;
  for (let m = /^--([\w-]+)=(\S+)\s*/.exec(rest); m; m = /^--([\w-]+)=(\S+)\s*/.exec(rest)) {
    flags[m[1]!] = m[2]!;
    rest = rest.slice(m[0].length);
  }
  const list = rest.startsWith('[') ? (JSON.parse(rest) as string[]) : rest.split(/\s+/).filter(Boolean);
  return { flags, list };
}

/** Import and export statements, dynamic imports and require calls (a comment may say `from "…"`). */
const IMPORTS =
  /^\s*import\s*['"]([^'"]+)['"]|^\s*(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]|\bimport\s*\(\s*['"]([^'"]+)['"]|\brequire\s*\(\s*['"]([^'"]+)['"]/gm;

/** .dockerignore as Docker applies it: patterns in order, the last match wins, `!` re-includes. */
function dockerIgnore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize(l.slice(negate ? 1 : 0).replace(/^\/+/, '')).replace(/\/+$/, '');
      const source = pattern
        .split(/(\*\*\/|\*\*|\*|\?)/)
        .map((part) =>
          part === '**/'
            ? '(?:.*/)?'
            : part === '**'
              ? '.*'
              : part === '*'
                ? '[^/]*'
                : part === '?'
                  ? '[^/]'
                  : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
        )
        .join('');
      return { negate, regex: new RegExp(`^${source}$`) };
    });
  return (path) => {
    const segments = path.split('/');
    const prefixes = segments.map((_, i) => segments.slice(0, i + 1).join('/'));
    let ignored = false;
    for (const rule of rules) if (prefixes.some((p) => rule.regex.test(p))) ignored = !rule.negate;
    return ignored;
  };
}

// ---------------------------------------------------------------------------------------------

describe('every deployment file parses', () => {
  it('YAML (yaml package) and the dashboard JSON', () => {
    const yamlFiles = filesUnder(DEPLOY).filter((f) => /\.ya?ml$/.test(f));
    expect(yamlFiles.length).toBeGreaterThanOrEqual(12);
    for (const file of yamlFiles) expect(yamlDocs(rel(file)).length, rel(file)).toBeGreaterThan(0);
    expect(() => JSON.parse(read('deploy/grafana/aiecs.json'))).not.toThrow();
  });
});

describe('Kubernetes manifests', () => {
  const kustomization = () => yamlDoc('deploy/kubernetes/kustomization.yaml');
  const objects = (): Loose[] =>
    (kustomization().resources as string[]).flatMap((r) => yamlDocs(`deploy/kubernetes/${r}`));
  const byKind = (kind: string) => objects().filter((o) => o.kind === kind);
  const deployments = () => byKind('Deployment');
  const named = (kind: string, name: string) => byKind(kind).find((o) => o.metadata.name === name);
  const configMap = () => byKind('ConfigMap')[0];
  const selects = (selector: Record<string, string>, labels: Record<string, string>) =>
    Object.entries(selector).every(([k, v]) => labels[k] === v);
  /** The drain deadline the pods get, through the same parser the processes use. */
  const shutdownS = () => loadConfig(configMap().data).shutdownTimeoutS;

  it('kustomize-ready: every manifest listed and present, the secret example left out', () => {
    const k = kustomization();
    expect(k.kind).toBe('Kustomization');
    const listed = new Set(k.resources as string[]);
    const onDisk = readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml');
    for (const f of listed) expect(onDisk, `kustomization lists ${f}`).toContain(f);
    // A placeholder secret applied by `kubectl apply -k` would be a real, guessable secret.
    expect(listed.has('secret.example.yaml')).toBe(false);
    expect(onDisk.filter((f) => !listed.has(f))).toEqual(['secret.example.yaml']);
    expect(k.images.map((i: Loose) => i.name)).toEqual(['aiecs']);
    for (const d of deployments())
      for (const c of d.spec.template.spec.containers) expect(c.image, d.metadata.name).toBe('aiecs');
  });

  it('ConfigMap values are strings the configuration accepts; the Secret example holds the JWT secret', () => {
    const data = configMap().data as Record<string, unknown>;
    for (const [k, v] of Object.entries(data)) expect(typeof v, `ConfigMap ${k}`).toBe('string');
    expect(() => loadConfig(data as Record<string, string>)).not.toThrow();
    expect(data.AIECS_HOST).toBe('0.0.0.0'); // the default 127.0.0.1 is unreachable from a probe or Service
    expect(data.AIECS_BROKER_URL).toMatch(/^(redis|rediss|postgres|postgresql):\/\//);
    const secret = yamlDoc('deploy/kubernetes/secret.example.yaml');
    expect(secret.kind).toBe('Secret');
    expect(Object.keys(secret.stringData)).toContain('AIECS_JWT_SECRET');
    // Secrets never sit in the ConfigMap.
    for (const k of Object.keys(data)) expect(k).not.toMatch(/SECRET|API_KEY|TOKEN|PASSWORD/);
    for (const d of deployments()) {
      const from = d.spec.template.spec.containers[0].envFrom as Loose[];
      expect(
        from.map((f) => f.configMapRef?.name ?? f.secretRef?.name),
        d.metadata.name,
      ).toEqual([configMap().metadata.name, secret.metadata.name]);
    }
  });

  it('gateway and workers: probes, resources, grace period, selectors', () => {
    const grace = shutdownS() + 10;
    expect(deployments().map((d) => d.metadata.name)).toEqual([
      'aiecs-gateway',
      'aiecs-worker-fast',
      'aiecs-worker-heavy',
    ]);
    for (const d of deployments()) {
      const name = d.metadata.name as string;
      const pod = d.spec.template;
      expect(selects(d.spec.selector.matchLabels, pod.metadata.labels), name).toBe(true);
      expect(pod.spec.terminationGracePeriodSeconds, `${name}: AIECS_SHUTDOWN_TIMEOUT_S + 10`).toBe(grace);
      expect(pod.spec.securityContext.runAsNonRoot, name).toBe(true);
      expect(pod.spec.containers).toHaveLength(1);
      const c = pod.spec.containers[0];
      const ports = new Map((c.ports as Loose[]).map((p) => [p.name, p.containerPort]));
      expect(c.livenessProbe.httpGet.path, name).toBe('/healthz');
      // The gateway is ready when its store answers; a worker's metrics port has /healthz only
      // (the live test below fetches every probe path from a running gateway and worker).
      expect(c.readinessProbe.httpGet.path, name).toBe(name === 'aiecs-gateway' ? '/readyz' : '/healthz');
      for (const probe of [c.livenessProbe, c.readinessProbe])
        expect(ports.has(probe.httpGet.port), name).toBe(true);
      for (const key of ['requests', 'limits'])
        for (const r of ['memory', 'cpu']) expect(c.resources[key][r], `${name} ${key}.${r}`).toBeTruthy();
      // Prometheus scrapes the port the probes use, which serves /metrics.
      expect(pod.metadata.annotations['prometheus.io/port']).toBe(
        String(ports.get(c.livenessProbe.httpGet.port)),
      );
      if (name.startsWith('aiecs-worker')) {
        // The seed's figures for workers.
        expect(c.resources).toEqual({
          requests: { memory: '512Mi', cpu: '250m' },
          limits: { memory: '1Gi', cpu: '500m' },
        });
        const args = c.args as string[];
        expect(args[0]).toBe('worker');
        expect(args[args.indexOf('-Q') + 1]).toBe(name.endsWith('fast') ? 'fast_tasks' : 'heavy_tasks');
        expect(args[args.indexOf('--metrics-port') + 1]).toBe(String(ports.get('metrics')));
      } else {
        expect(c.args).toEqual(['gateway']);
        expect(ports.get('http')).toBe(loadConfig({}).port);
      }
    }
  });

  it('each Deployment has one PodDisruptionBudget, selecting its pods and no others', () => {
    const pdbs = byKind('PodDisruptionBudget');
    for (const d of deployments()) {
      const mine = pdbs.filter((p) => selects(p.spec.selector.matchLabels, d.spec.template.metadata.labels));
      expect(mine, d.metadata.name).toHaveLength(1);
      // maxUnavailable, not minAvailable: a one-replica Deployment can still be drained.
      expect(mine[0].spec.maxUnavailable).toBe(1);
    }
    expect(pdbs).toHaveLength(deployments().length);
  });

  it('the Service selects the gateway pods and the HPA scales the gateway on CPU', () => {
    const gateway = named('Deployment', 'aiecs-gateway');
    const service = named('Service', 'aiecs-gateway');
    expect(selects(service.spec.selector, gateway.spec.template.metadata.labels)).toBe(true);
    for (const w of ['aiecs-worker-fast', 'aiecs-worker-heavy'])
      expect(selects(service.spec.selector, named('Deployment', w).spec.template.metadata.labels), w).toBe(
        false,
      );
    const container = gateway.spec.template.spec.containers[0];
    expect((container.ports as Loose[]).map((p) => p.name)).toContain(service.spec.ports[0].targetPort);
    const hpa = named('HorizontalPodAutoscaler', 'aiecs-gateway');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'aiecs-gateway',
    });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    // CPU utilisation is a share of the request: without one the HPA cannot act.
    expect(hpa.spec.metrics[0].resource.name).toBe('cpu');
    expect(container.resources.requests.cpu).toBeTruthy();
  });
});

describe('docker compose', () => {
  const compose = () => yamlDoc('deploy/docker-compose.yml');
  const prometheus = () => yamlDoc('deploy/prometheus/prometheus.yml');

  it('redis with AOF, a gateway, a fast and a heavy worker, prometheus and grafana', () => {
    const s = compose().services;
    expect(Object.keys(s).sort()).toEqual([
      'gateway',
      'grafana',
      'prometheus',
      'redis',
      'worker-fast',
      'worker-heavy',
    ]);
    const redis = s.redis.command as string[];
    expect(redis[redis.indexOf('--appendonly') + 1]).toBe('yes');
    expect(s.gateway.command).toEqual(['gateway']);
    for (const [name, queue] of [
      ['worker-fast', 'fast_tasks'],
      ['worker-heavy', 'heavy_tasks'],
    ] as const) {
      const command = s[name].command as string[];
      expect(command[0]).toBe('worker');
      expect(command[command.indexOf('-Q') + 1], name).toBe(queue);
      // The image's HEALTHCHECK targets the gateway's port: a worker needs its own.
      expect(s[name].healthcheck.test.join(' '), name).toContain(
        `:${command[command.indexOf('--metrics-port') + 1]}/`,
      );
    }
    for (const name of ['gateway', 'worker-fast', 'worker-heavy']) {
      expect(s[name].build.context, name).toBe('..');
      expect(existsSync(join(DEPLOY, s[name].build.context, s[name].build.dockerfile))).toBe(true);
      expect(s[name].environment.AIECS_BROKER_URL, name).toBe('redis://redis:6379/0');
      expect(s[name].depends_on.redis.condition).toBe('service_healthy');
      // Docker's default 10 s stop timeout would cut the drain short.
      const shutdown = loadConfig({
        AIECS_SHUTDOWN_TIMEOUT_S: s[name].environment.AIECS_SHUTDOWN_TIMEOUT_S,
      }).shutdownTimeoutS;
      expect(Number.parseInt(s[name].stop_grace_period, 10), name).toBe(shutdown + 10);
    }
  });

  it('secrets come from the environment (deploy/.env), never from the file', () => {
    const s = compose().services;
    expect(s.gateway.environment.AIECS_JWT_SECRET).toMatch(/^\$\{AIECS_JWT_SECRET:\?.+\}$/);
    for (const [name, service] of Object.entries<Loose>(s))
      for (const [key, value] of Object.entries(service.environment ?? {}))
        if (/SECRET|API_KEY|PASSWORD|TOKEN/.test(key))
          expect(value, `${name}.${key}`).toMatch(/^\$\{[A-Z_]+(:[-?].*)?\}$/);
    const example = read('deploy/.env.example');
    // Every variable compose requires (${NAME:?…}) is in the example.
    const required = [...read('deploy/docker-compose.yml').matchAll(/\$\{(\w+):\?/g)].map((m) => m[1]!);
    expect(required).toEqual(['AIECS_JWT_SECRET', 'GRAFANA_ADMIN_PASSWORD']);
    for (const name of required) expect(example).toMatch(new RegExp(`^${name}=$`, 'm'));
    expect(read('.gitignore').split('\n')).toContain('.env');
  });

  it('prometheus scrapes the gateway and the workers on their ports, with the alert rules', () => {
    const s = compose().services;
    const jobs = prometheus().scrape_configs as Loose[];
    const targets = jobs.flatMap((j) =>
      (j.dns_sd_configs as Loose[]).flatMap((d) =>
        (d.names as string[]).map((n) => ({ name: n, port: d.port })),
      ),
    );
    const gatewayPort = Number((s.gateway.ports[0] as string).split(':').at(-1));
    expect(targets).toContainEqual({ name: 'gateway', port: gatewayPort });
    for (const w of ['worker-fast', 'worker-heavy']) {
      const command = s[w].command as string[];
      expect(targets).toContainEqual({
        name: w,
        port: Number(command[command.indexOf('--metrics-port') + 1]),
      });
    }
    expect(prometheus().rule_files).toEqual(['alerts.yml']);
    const mounts = (s.prometheus.volumes as string[]).map((v) => v.split(':'));
    expect(mounts).toContainEqual(['./prometheus', '/etc/prometheus', 'ro']);
    expect(s.prometheus.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
  });

  it('grafana is provisioned with the Prometheus data source and the dashboard', () => {
    const grafana = compose().services.grafana;
    const mounts = new Map((grafana.volumes as string[]).map((v) => v.split(':') as [string, string]));
    expect(mounts.get('./grafana/provisioning')).toBe('/etc/grafana/provisioning');
    const dashboardMount = mounts.get('./grafana/aiecs.json');
    expect(dashboardMount).toBeDefined();
    const providers = yamlDoc('deploy/grafana/provisioning/dashboards/aiecs.yml').providers as Loose[];
    expect(providers.map((p) => p.options.path)).toContain(posix.dirname(dashboardMount!));
    const sources = yamlDoc('deploy/grafana/provisioning/datasources/prometheus.yml').datasources as Loose[];
    expect(sources).toHaveLength(1);
    expect(sources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true });
  });
});

describe('Prometheus files (promtool)', () => {
  async function promtool(...args: string[]): Promise<Run> {
    try {
      return await run('promtool', args);
    } catch {
      throw new Error(
        "promtool not found: install Debian's prometheus package (apt-get install prometheus); .ci/run does",
      );
    }
  }

  it('check config and check rules pass', async () => {
    const config = await promtool('check', 'config', 'deploy/prometheus/prometheus.yml');
    expect(config.code, config.stdout + config.stderr).toBe(0);
    const rules = await promtool('check', 'rules', 'deploy/prometheus/alerts.yml');
    expect(rules.code, rules.stdout + rules.stderr).toBe(0);
    expect(rules.stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it('the alerts fire on their unit tests (failure rate, backlog, no workers, p95) and stay quiet when healthy', async () => {
    const names = (yamlDoc('deploy/prometheus/alerts.yml').groups as Loose[]).flatMap((g) =>
      (g.rules as Loose[]).map((r) => r.alert as string),
    );
    for (const required of [
      'AiecsTaskFailureRateHigh',
      'AiecsQueueBacklogGrowing',
      'AiecsNoLiveWorkers',
      'AiecsTaskDurationP95High',
    ])
      expect(names).toContain(required);
    // Every alert has a firing case in the unit tests.
    const tests = yamlDoc('deploy/prometheus/alerts.test.yml').tests as Loose[];
    const fired = new Set(
      tests.flatMap((t) =>
        (t.alert_rule_test as Loose[])
          .filter((a) => a.exp_alerts.length > 0)
          .map((a) => a.alertname as string),
      ),
    );
    expect([...fired].sort()).toEqual([...names].sort());
    const result = await promtool('test', 'rules', 'deploy/prometheus/alerts.test.yml');
    expect(result.code, result.stdout + result.stderr).toBe(0);
  });

  it('promtool test rules fails when a threshold no longer fires', async () => {
    // The unit tests can fail: the same tests against a rule file with the failure rate's
    // threshold raised to 50% (the tests' third of failures no longer fires).
    const dir = mkdtempSync(join(tmpdir(), 'aiecs-alerts-'));
    try {
      cpSync(join(PROMETHEUS, 'alerts.test.yml'), join(dir, 'alerts.test.yml'));
      const rules = read('deploy/prometheus/alerts.yml');
      const weakened = rules.replace(/\) > 0\.1\n/, ') > 0.5\n');
      expect(weakened).not.toBe(rules);
      writeFileSync(join(dir, 'alerts.yml'), weakened);
      const result = await promtool('test', 'rules', join(dir, 'alerts.test.yml'));
      expect(result.code).not.toBe(0);
      expect(result.stdout + result.stderr).toContain('AiecsTaskFailureRateHigh');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('every metric queried exists', () => {
  let known: Record<string, MetricSpec>;
  beforeAll(async () => {
    known = { ...(await defaultMetrics()), ...AIECS_METRICS };
  });

  /** Every PromQL expression of the dashboard: panel targets (rows included) and variables. */
  function dashboardQueries(): { where: string; expr: string }[] {
    const dash = JSON.parse(read('deploy/grafana/aiecs.json')) as Loose;
    const panels = (dash.panels as Loose[]).flatMap((p) => [p, ...((p.panels as Loose[] | undefined) ?? [])]);
    const out = panels.flatMap((p) =>
      ((p.targets as Loose[] | undefined) ?? []).map((t) => ({
        where: `panel "${p.title}"`,
        expr: t.expr as string,
      })),
    );
    for (const v of dash.templating.list as Loose[]) {
      if (v.type !== 'query') continue;
      const q = typeof v.query === 'string' ? v.query : v.query.query;
      // label_values(metric, label): the metric is the first argument.
      const m = /^label_values\(\s*([^,]+),\s*(\w+)\s*\)$/.exec(q);
      expect(m, `variable ${v.name}: ${q}`).not.toBeNull();
      out.push({ where: `variable ${v.name}`, expr: `${m![1]}{${m![2]}!=""}` });
    }
    return out;
  }

  function ruleQueries(): { where: string; expr: string }[] {
    return (yamlDoc('deploy/prometheus/alerts.yml').groups as Loose[]).flatMap((g) =>
      (g.rules as Loose[]).map((r) => ({ where: `rule ${r.alert}`, expr: r.expr as string })),
    );
  }

  it('the checker finds the series and labels of a query, and reports unknown ones', () => {
    expect(
      parseQuery(
        'histogram_quantile(0.95, sum(rate(celery_task_duration_seconds_bucket{task_name=~"$task_name"}[5m])) by (le))',
      ),
    ).toEqual({
      selections: [
        {
          metric: 'celery_task_duration_seconds_bucket',
          matchers: [{ label: 'task_name', op: '=~', value: '$task_name' }],
        },
      ],
      grouping: ['le'],
    });
    expect(queryProblems('sum(rate(celery_task_executions_total[5m])) by (status)', known)).toEqual([]);
    expect(queryProblems('sum(rate(celery_task_execution_total[5m]))', known)).toEqual([
      'unknown metric celery_task_execution_total',
    ]);
    expect(queryProblems('sum(aiecs_queue_depth{state="pending"}) by (queue)', known)).toEqual([
      'aiecs_queue_depth{state} is never "pending" (one of waiting, delayed, active, failed)',
    ]);
    expect(queryProblems('sum by (queue) (celery_active_tasks)', known)).toEqual([
      'groups by queue, which no selected metric has',
    ]);
  });

  it('in the Grafana dashboard, which is built on the seed queries', () => {
    const queries = dashboardQueries();
    for (const { where, expr } of queries)
      expect(queryProblems(expr, known), `${where}: ${expr}`).toEqual([]);
    const plain = queries.map((q) =>
      q.expr.replace(/\{task_name=~"\$task_name"\}/g, '').replace(/\s+/g, ' '),
    );
    // The seed's own queries (success rate by status, p95 duration), with a task filter.
    expect(plain).toContain('sum(rate(celery_task_executions_total[5m])) by (status)');
    expect(plain).toContain(
      'histogram_quantile(0.95, sum(rate(celery_task_duration_seconds_bucket[5m])) by (le))',
    );
    expect(plain).toContain('sum(celery_active_tasks)');
    const queried = queries.flatMap((q) => parseQuery(q.expr).selections.map((s) => s.metric));
    for (const m of [
      'aiecs_queue_depth',
      'aiecs_workers_live',
      'aiecs_provider_tokens_total',
      'aiecs_provider_cost_usd_total',
    ])
      expect(queried, m).toContain(m);
  });

  it('in the alert rules and their unit tests', () => {
    for (const { where, expr } of ruleQueries())
      expect(queryProblems(expr, known), `${where}: ${expr}`).toEqual([]);
    for (const t of yamlDoc('deploy/prometheus/alerts.test.yml').tests as Loose[])
      for (const s of t.input_series as Loose[])
        expect(queryProblems(s.series as string, known), `input series ${s.series}`).toEqual([]);
  });

  it('dashboard panels have unique ids and do not overlap', () => {
    const dash = JSON.parse(read('deploy/grafana/aiecs.json')) as Loose;
    const panels = dash.panels as Loose[];
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + h; j++) {
          expect(cells.has(`${i},${j}`), `${p.title} overlaps at ${i},${j}`).toBe(false);
          cells.add(`${i},${j}`);
        }
      if (p.type !== 'row') expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
    }
    expect((dash.templating.list as Loose[]).map((v) => v.name)).toContain('datasource');
  });
});

const instructions = () => dockerfile(read('Dockerfile'));
const stages = () => [...new Set(instructions().map((i) => i.stage))];
const inStage = (stage: string, op: string) => instructions().filter((i) => i.stage === stage && i.op === op);
const finalStage = () => stages().at(-1)!;

describe('Dockerfile', () => {
  it('two node:20-slim stages: npm ci and the build, then npm ci --omit=dev, non-root, HEALTHCHECK, tini', () => {
    expect(stages()).toEqual(['build', 'runtime']);
    for (const from of instructions().filter((i) => i.op === 'FROM'))
      expect(from.args).toMatch(/^node:20-slim AS \w+$/);
    const buildRuns = inStage('build', 'RUN').map((r) => r.args);
    expect(buildRuns).toEqual(['npm ci --no-audit --no-fund', 'npm run build']);
    const runtimeRuns = inStage('runtime', 'RUN').map((r) => r.args);
    expect(runtimeRuns.some((r) => /^npm ci --omit=dev\b/.test(r))).toBe(true);
    expect(runtimeRuns.some((r) => /\bnpm ci\b(?!.*--omit=dev)/.test(r))).toBe(false);
    expect(runtimeRuns.some((r) => /apt-get install .*\btini\b/.test(r))).toBe(true);
    const user = inStage('runtime', 'USER');
    expect(user).toHaveLength(1);
    expect(user[0]!.args).not.toMatch(/^(root|0)\b/);
    const entrypoint = words(inStage('runtime', 'ENTRYPOINT')[0]!.args).list;
    expect(entrypoint.slice(0, 2)).toEqual(['/usr/bin/tini', '--']);
    expect(inStage('runtime', 'HEALTHCHECK')).toHaveLength(1);
    expect(inStage('runtime', 'ENV')[0]!.args).toMatch(/\bAIECS_HOST=0\.0\.0\.0\b/);
  });

  it('every COPY source exists and is in the build context (.dockerignore), --from names an earlier stage', () => {
    const ignored = dockerIgnore(read('.dockerignore'));
    const order = stages();
    for (const copy of instructions().filter((i) => i.op === 'COPY')) {
      const { flags, list } = words(copy.args);
      const sources = list.slice(0, -1);
      expect(sources.length, copy.args).toBeGreaterThan(0);
      if (flags.from) {
        expect(order.indexOf(flags.from), `COPY --from=${flags.from}`).toBeGreaterThanOrEqual(0);
        expect(order.indexOf(flags.from), `COPY --from=${flags.from}`).toBeLessThan(
          order.indexOf(copy.stage),
        );
        continue;
      }
      for (const source of sources) {
        expect(existsSync(join(ROOT, source)), `COPY ${source}`).toBe(true);
        const files = statSync(join(ROOT, source)).isDirectory()
          ? filesUnder(join(ROOT, source)).map(rel)
          : [source];
        // Test files may stay out (the build excludes them); nothing else may.
        const missing = files.filter((f) => ignored(f) && !f.endsWith('.test.ts'));
        expect(missing, `COPY ${source}: excluded by .dockerignore`).toEqual([]);
        expect(
          files.some((f) => !ignored(f)),
          `COPY ${source}`,
        ).toBe(true);
      }
    }
    // What must never reach the image.
    for (const path of [
      'node_modules/x',
      'dist/index.js',
      '.aiecs/data/secret',
      '.git/config',
      'deploy/.env',
      '.env',
    ])
      expect(ignored(path), path).toBe(true);
  });
});

describe('Dockerfile, replayed without Docker', () => {
  let work: string;
  let runtimeApp: string;
  let redisUrl: string;
  const children: ChildProcess[] = [];

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'aiecs-docker-'));
    redisUrl = inject('redisUrl');
  });
  afterAll(() => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('the build stage builds from its context alone, and the runtime stage needs no dev dependency', async () => {
    // Replays the COPY steps into a directory per stage; `npm ci` becomes a link to the
    // installed node_modules (the registry is not reached from tests).
    const ignored = dockerIgnore(read('.dockerignore'));
    const stageDirs: Record<string, string> = {};
    const workdirs: Record<string, string> = {};
    for (const ins of instructions()) {
      const root = (stageDirs[ins.stage] ??= join(work, ins.stage));
      const cwd = () => join(root, workdirs[ins.stage] ?? '/');
      if (ins.op === 'WORKDIR') {
        workdirs[ins.stage] = ins.args;
        mkdirSync(cwd(), { recursive: true });
      } else if (ins.op === 'COPY') {
        const { flags, list } = words(ins.args);
        const target = list.at(-1)!;
        for (const source of list.slice(0, -1)) {
          const from = flags.from ? join(stageDirs[flags.from]!, source) : join(ROOT, source);
          const to = target.startsWith('/') ? join(root, target) : join(cwd(), target);
          const dest = target.endsWith('/') ? join(to, posix.basename(source)) : to;
          mkdirSync(dirname(dest), { recursive: true });
          cpSync(from, dest, {
            recursive: true,
            filter: (src) => flags.from !== undefined || src === from || !ignored(rel(src)),
          });
        }
      } else if (ins.op === 'RUN' && /^npm ci\b/.test(ins.args)) {
        symlinkSync(join(ROOT, 'node_modules'), join(cwd(), 'node_modules'), 'dir');
      } else if (ins.op === 'RUN' && ins.args === 'npm run build') {
        const built = await run('npm', ['run', 'build'], { cwd: cwd() });
        expect(built.code, built.stdout + built.stderr).toBe(0);
      }
    }
    runtimeApp = join(stageDirs[finalStage()]!, workdirs[finalStage()]!);
    const entrypoint = words(inStage(finalStage(), 'ENTRYPOINT')[0]!.args).list;
    const script = entrypoint.at(-1)!;
    expect(script.startsWith(`${workdirs[finalStage()]}/`)).toBe(true);
    expect(existsSync(join(stageDirs[finalStage()]!, script)), script).toBe(true);
    // The package's bin is the script the image runs.
    const pkg = JSON.parse(read('package.json')) as {
      bin: Record<string, string>;
      dependencies: Record<string, string>;
    };
    expect(posix.join(workdirs[finalStage()]!, pkg.bin.aiecs!)).toBe(script);

    // --omit=dev: every package the built code imports is a production dependency.
    const builtins = new Set(builtinModules);
    const imported = new Set<string>();
    for (const file of filesUnder(join(runtimeApp, 'dist')).filter((f) => f.endsWith('.js'))) {
      const code = readFileSync(file, 'utf8');
      for (const m of code.matchAll(IMPORTS)) {
        const spec = (m[1] ?? m[2] ?? m[3] ?? m[4])!;
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect(imported.size).toBeGreaterThan(5);
    for (const name of imported)
      expect(Object.keys(pkg.dependencies), `dist imports ${name}`).toContain(name);
  }, 240_000);

  /** The image's command line for `args` (ENTRYPOINT + args), run from the replayed runtime stage. */
  function imageCommand(args: string[]): { file: string; argv: string[] } {
    const entrypoint = words(inStage(finalStage(), 'ENTRYPOINT')[0]!.args).list;
    const [, , node, script] = entrypoint; // /usr/bin/tini -- node /app/dist/cli/main.js
    expect(node).toBe('node');
    return { file: process.execPath, argv: [join(runtimeApp, relative(appDir(), script!)), ...args] };
  }
  const appDir = () => inStage(finalStage(), 'WORKDIR').at(-1)!.args;

  /** The environment the image sets (ENV), as KEY=value pairs. */
  function imageEnv(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const ins of inStage(finalStage(), 'ENV'))
      for (const m of ins.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
    return env;
  }

  it('the CMD and every command line in compose and Kubernetes name real commands and flags', async () => {
    expect(runtimeApp, 'the replay above ran').toBeDefined();
    const lines: { where: string; args: string[] }[] = [
      { where: 'Dockerfile CMD', args: words(inStage(finalStage(), 'CMD')[0]!.args).list },
    ];
    const compose = yamlDoc('deploy/docker-compose.yml');
    for (const [name, s] of Object.entries<Loose>(compose.services))
      if (s.build) lines.push({ where: `compose ${name}`, args: s.command });
    for (const r of yamlDoc('deploy/kubernetes/kustomization.yaml').resources as string[])
      for (const o of yamlDocs(`deploy/kubernetes/${r}`))
        if (o.kind === 'Deployment')
          lines.push({
            where: `kubernetes ${o.metadata.name}`,
            args: o.spec.template.spec.containers[0].args,
          });
    expect(lines.map((l) => l.args[0])).toContain('gateway');

    const helps = new Map<string, string>();
    for (const { where, args } of lines) {
      const command = args[0]!;
      if (!helps.has(command)) {
        const { file, argv } = imageCommand([command, '--help']);
        const help = await run(file, argv, { cwd: runtimeApp });
        expect(help.code, `${where}: aiecs ${command} --help: ${help.stderr}`).toBe(0);
        helps.set(command, help.stdout);
      }
      for (const flag of args.filter((a) => /^-{1,2}[a-zA-Z]/.test(a)))
        expect(helps.get(command), `${where}: aiecs ${command} has no ${flag}`).toMatch(
          new RegExp(`(^|[\\s,])${flag}([\\s,=]|$)`, 'm'),
        );
    }
  }, 120_000);

  /** A process of the image (ENTRYPOINT + args) with the Kubernetes ConfigMap's settings, on the test's Redis. */
  function startImage(args: string[], extraEnv: Record<string, string>) {
    const configMap = yamlDoc('deploy/kubernetes/configmap.yaml').data as Record<string, string>;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      ...imageEnv(),
      ...configMap, // the Kubernetes settings load as they are
      AIECS_BROKER_URL: redisUrl,
      AIECS_HOST: '127.0.0.1', // the image listens on every address; a test, on loopback only
      ...extraEnv,
    };
    const { file, argv } = imageCommand([...args, '--namespace', `deploy_${process.pid}`]);
    const child = spawn(file, argv, { cwd: runtimeApp, env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const proc = {
      child,
      out: '',
      exited: new Promise<number | null>((done) => child.on('exit', (code) => done(code))),
    };
    child.stdout.on('data', (c: Buffer) => (proc.out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (proc.out += c.toString()));
    return proc;
  }
  async function until(proc: ReturnType<typeof startImage>, text: string): Promise<void> {
    for (let i = 0; i < 1200 && !proc.out.includes(text) && proc.child.exitCode === null; i++)
      await new Promise((r) => setTimeout(r, 50));
    expect(proc.out).toContain(text);
  }
  const exec = (list: string[], env: Record<string, string> = {}) => {
    expect(list[0]).toBe('node');
    return run(process.execPath, list.slice(1), { env: { PATH: process.env.PATH, ...env } });
  };
  /** `# TYPE name type` lines of an exposition. */
  const exposed = (text: string) =>
    new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!] as [string, string]));

  it('the gateway (default CMD) and a worker as Kubernetes runs them: health checks, probes, every queried metric, SIGTERM', async () => {
    expect(runtimeApp, 'the replay above ran').toBeDefined();
    const port = await freePort();
    const gateway = startImage(words(inStage(finalStage(), 'CMD')[0]!.args).list, {
      AIECS_JWT_SECRET: 'deploy-test-secret-0123456789abcdef0123',
      PORT: String(port),
    });
    const workerPod = yamlDoc('deploy/kubernetes/worker-fast-deployment.yaml').spec.template.spec
      .containers[0];
    const workerArgs = [...(workerPod.args as string[])];
    const metricsPort = await freePort();
    workerArgs[workerArgs.indexOf('--metrics-port') + 1] = String(metricsPort);
    const worker = startImage(workerArgs, {});
    await until(gateway, `aiecs gateway: http://127.0.0.1:${port}`);
    await until(worker, 'aiecs worker: ');

    // The image's HEALTHCHECK, as Docker runs it (with the container's PORT).
    const healthcheck = words(
      inStage(finalStage(), 'HEALTHCHECK')[0]!.args.replace(/^(--\S+\s+)*CMD\s+/, ''),
    ).list;
    const gatewayHealth = () => exec(healthcheck, { PORT: String(port) });
    expect((await gatewayHealth()).code, 'healthy gateway').toBe(0);
    // The compose file's worker health check, on this worker's port.
    const compose = yamlDoc('deploy/docker-compose.yml');
    const composePort =
      compose.services['worker-fast'].command[
        compose.services['worker-fast'].command.indexOf('--metrics-port') + 1
      ];
    const workerCheck = (compose.services['worker-fast'].healthcheck.test as string[])
      .slice(1)
      .map((a) => a.replace(`:${composePort}/`, `:${metricsPort}/`));
    expect((await exec(workerCheck)).code, 'healthy worker').toBe(0);

    // The Kubernetes probes' paths answer on the ports they name.
    const gatewayPod = yamlDoc('deploy/kubernetes/gateway-deployment.yaml').spec.template.spec.containers[0];
    for (const [pod, at] of [
      [gatewayPod, port],
      [workerPod, metricsPort],
    ] as const)
      for (const p of [pod.livenessProbe, pod.readinessProbe])
        expect(
          (await fetch(`http://127.0.0.1:${at}${p.httpGet.path}`)).status,
          `${pod.name} ${p.httpGet.path}`,
        ).toBe(200);

    // Every metric the dashboard and the rules query is exported by the gateway or the worker, with
    // the type the checks above assume; and the fixed table is the metrics module's.
    const metrics = new Map([
      ...exposed(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()),
      ...exposed(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()),
    ]);
    const dash = JSON.parse(read('deploy/grafana/aiecs.json')) as Loose;
    const exprs = [
      ...(dash.panels as Loose[]).flatMap((p) =>
        ((p.targets as Loose[] | undefined) ?? []).map((t) => t.expr as string),
      ),
      ...(yamlDoc('deploy/prometheus/alerts.yml').groups as Loose[]).flatMap((g) =>
        (g.rules as Loose[]).map((r) => r.expr as string),
      ),
    ];
    const queried = new Set(exprs.flatMap((e) => parseQuery(e).selections.map((q) => q.metric)));
    expect(queried.size).toBeGreaterThan(10);
    for (const name of queried) {
      const base = name.replace(/_bucket$/, '');
      expect(metrics.has(base) ? base : name, `${name} in a live /metrics`).toBe(base);
      if (base !== name) expect(metrics.get(base), name).toBe('histogram');
    }
    for (const [name, spec] of Object.entries(AIECS_METRICS)) expect(metrics.get(name), name).toBe(spec.type);
    expect(Object.keys(AIECS_METRICS).sort()).toEqual([...METRIC_NAMES].sort());

    // SIGTERM (what tini forwards on `docker stop` and the kubelet sends) ends both cleanly.
    gateway.child.kill('SIGTERM');
    worker.child.kill('SIGTERM');
    expect(await gateway.exited, gateway.out).toBe(0);
    expect(await worker.exited, worker.out).toBe(0);
    expect((await gatewayHealth()).code, 'stopped gateway').toBe(1);
    expect((await exec(workerCheck)).code, 'stopped worker').toBe(1);
  }, 120_000);
});
