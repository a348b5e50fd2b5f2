// Issue 17 end to end: a real Prometheus (Debian's `prometheus`) scrapes a real wisp-agent and the
// `wrangler dev` issuer's /admin/v1/metrics (admin token as its bearer credentials_file) with the jobs of
// deploy/prometheus/prometheus.yml and evaluates deploy/prometheus/wisp-rules.yml. After a scripted run (N
// FetchX509SVID, M FetchJWTSVID through the Workload API client, a forced rotation by tainting the X.509 CA,
// a wisp-agent refused with an unknown join token) the Prometheus HTTP API returns exactly the expected
// counters; `promtool check metrics` passes on both bodies (but for the allowance in test/helpers/node/
// promtool.ts); the issuer's counters are unchanged across a real restart of wrangler dev on the same persist
// dir, then count on; scrapes without a credential get 401 and with a wrong one 403 (target down); every
// PromQL expression of the Grafana dashboard and the rules evaluates and names only exposed metrics; the
// Kubernetes monitors match the agent's config; the Worker logs one telemetry event per counted event, with
// no secret in wrangler's output.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, freePort, REPO_ROOT, signalIssuer, startAgent, startIssuer, stopProcess, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import { createWorkloadApiClient, type WorkloadApiClient } from '../../src/node/workload-api/client.js';
import { checkMetrics, findPrometheusTool } from '../helpers/node/promtool.js';

const TD = 'prom.test';
const WORKLOAD_ID = `spiffe://${TD}/workload`;
const N_X509 = 5;
const M_JWT = 3;
const VARS = { ADMIN_TOKEN: `prom-admin-${randomBytes(16).toString('hex')}`, KEY_ENCRYPTION_SECRET: `prom-kek-${randomBytes(16).toString('hex')}` };
const DEPLOY = join(REPO_ROOT, 'deploy');

const prometheusBin = findPrometheusTool('prometheus');
const promtoolBin = findPrometheusTool('promtool');
const python = spawnSync('python3', ['-c', 'import yaml'], { stdio: 'ignore' }).status === 0;
const skipWhy = prometheusBin.why ?? promtoolBin.why ?? (python ? undefined : 'python3 with PyYAML is needed to read the deploy/ YAML files');

/** The YAML documents of a file, through PyYAML (the repo has no YAML parser of its own). */
function readYaml(path: string): unknown[] {
  const r = spawnSync('python3', ['-c', 'import json,sys,yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cannot parse ${path}: ${r.stderr}`);
  return JSON.parse(r.stdout) as unknown[];
}

/** A value inside parsed YAML by keys and indexes (undefined where the path is missing). */
const at = (doc: unknown, ...path: (string | number)[]): unknown => path.reduce<unknown>((v, k) => (v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[k] : undefined), doc);

type Job = Record<string, unknown> & { job_name: string; authorization?: { credentials_file: string } };
interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

let root: string;
let issuer: RunningIssuer | undefined;
let agent: RunningAgent | undefined;
let client: WorkloadApiClient | undefined;
let prometheus: ChildProcess | undefined;
let promUrl: string;
let metricsPort: number;
let joinToken: string;
let unknownToken: string;
/** wrangler's output of the issuer runs stopped so far */
const issuerOutputs: string[] = [];
const issuerStateDir = () => join(root, 'issuer');

const startTheIssuer = (port?: number) => startIssuer({ stateDir: issuerStateDir(), trustDomain: TD, vars: VARS, detached: true, ...(port ? { port } : {}) });

/** The test's Prometheus config: the shipped jobs pointed at this run's agent and issuer, plus two issuer jobs with a wrong and with no credential. */
function prometheusConfig(dir: string): string {
  const shipped = readYaml(join(DEPLOY, 'prometheus', 'prometheus.yml'))[0] as { scrape_configs: Job[] };
  const job = (name: string) => structuredClone(shipped.scrape_configs.find((j) => j.job_name === name)!);
  const tokenFile = join(dir, 'admin-token');
  const wrongFile = join(dir, 'wrong-token');
  writeFileSync(tokenFile, VARS.ADMIN_TOKEN, { mode: 0o600 });
  writeFileSync(wrongFile, `wrong-${randomBytes(16).toString('hex')}`, { mode: 0o600 });
  copyFileSync(join(DEPLOY, 'prometheus', 'wisp-rules.yml'), join(dir, 'wisp-rules.yml'));
  const agentJob = { ...job('wisp-agent'), static_configs: [{ targets: [`127.0.0.1:${metricsPort}`] }] };
  const issuerJob = { ...job('wisp-issuer'), scheme: 'http', scrape_interval: '1s', static_configs: [{ targets: [new URL(issuer!.url).host] }] };
  const withCredentials = (name: string, file: string | undefined): Job => {
    const { authorization, ...rest } = structuredClone(issuerJob) as Job;
    return file ? { ...rest, job_name: name, authorization: { ...authorization!, credentials_file: file } } : { ...rest, job_name: name };
  };
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: [join(dir, 'wisp-rules.yml')],
    scrape_configs: [agentJob, withCredentials('wisp-issuer', tokenFile), withCredentials('wisp-issuer-wrong-token', wrongFile), withCredentials('wisp-issuer-no-credential', undefined)],
  };
  const path = join(dir, 'prometheus.yml');
  writeFileSync(path, JSON.stringify(config, null, 2)); // JSON is YAML
  return path;
}

async function query(expr: string): Promise<PromResult[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as { status: string; error?: string; data?: { resultType: string; result: PromResult[] } };
  if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
  if (body.data!.resultType !== 'vector') throw new Error(`query ${expr}: a ${body.data!.resultType}`);
  return body.data!.result;
}

/** One number per expression (undefined: no series); polls until all equal `expected` or the deadline, then asserts. */
async function expectValues(expected: Record<string, number | undefined>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let got: Record<string, number | undefined> = {};
  for (;;) {
    got = {};
    for (const expr of Object.keys(expected)) {
      const r = await query(expr);
      if (r.length > 1) throw new Error(`${expr}: ${r.length} series`);
      got[expr] = r[0] ? Number(r[0].value[1]) : undefined;
    }
    if (Object.keys(expected).every((k) => got[k] === expected[k]) || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  expect(got).toEqual(expected);
}

async function scrapeIssuer(target: RunningIssuer): Promise<string> {
  const res = await fetch(`${target.url}/admin/v1/metrics`, { headers: { authorization: `Bearer ${target.adminToken}` }, signal: AbortSignal.timeout(10_000) });
  expect(res.status).toBe(200);
  return res.text();
}
async function scrapeAgent(path = '/metrics'): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${metricsPort}${path}`, { signal: AbortSignal.timeout(5000) });
  expect(res.status).toBe(200);
  return res.text();
}
/** `name{labels} value` lines of an exposition, as a map from the line's series to its value. */
const seriesOf = (text: string) => new Map([...text.matchAll(/^([a-z_:][a-z0-9_:]*(?:\{[^}]*\})?) (\S+)$/gim)].map((m) => [m[1]!, Number(m[2])]));

const agentQ = (name: string, labels = '') => `${name}{job="wisp-agent"${labels ? `,${labels}` : ''}}`;
const issuerQ = (name: string, labels = '') => `${name}{job="wisp-issuer"${labels ? `,${labels}` : ''}}`;

async function fetchX509Once(): Promise<string> {
  for await (const res of client!.fetchX509SVID()) return res.svids[0]!.spiffeId;
  throw new Error('the stream ended without an SVID');
}

beforeAll(async () => {
  if (skipWhy) return;
  root = mkdtempSync(join(tmpdir(), 'wisp-prom-'));
  issuer = await startTheIssuer();
  ({ token: joinToken } = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', {}));
  // an unknown token of the same shape: refused as unknown (Unauthenticated), not as malformed
  unknownToken = joinToken.replace(/[0-9a-f]/g, () => '0123456789abcdef'[randomInt(16)]!);
  await adminCall(issuer, 'POST', '/entries', { spiffeId: WORKLOAD_ID, parentId: `spiffe://${TD}/spire/agent/join_token/${joinToken}`, selectors: [{ type: 'unix', value: `uid:${process.getuid!()}` }] });
  metricsPort = await freePort();
  const socketPath = join(root, 'run', 'agent.sock');
  mkdirSync(join(root, 'run'), { recursive: true });
  agent = await startAgent({ serverUrl: issuer.url, trustDomain: TD, dataDir: join(root, 'agent'), socketPath, joinToken, syncIntervalSeconds: 1, extraConfig: { telemetry: { prometheus: { host: '127.0.0.1', port: metricsPort } } } });
  client = createWorkloadApiClient(socketPath);

  const promDir = join(root, 'prometheus');
  mkdirSync(promDir);
  const configPath = prometheusConfig(promDir);
  const checked = spawnSync(promtoolBin.path!, ['check', 'config', configPath], { encoding: 'utf8' });
  expect(checked.status, `${checked.stdout}${checked.stderr}`).toBe(0);
  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  const proc = spawn(prometheusBin.path!, [`--config.file=${configPath}`, `--storage.tsdb.path=${join(promDir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
  prometheus = proc;
  let promOut = '';
  proc.stdout.on('data', (d) => (promOut += d));
  proc.stderr.on('data', (d) => (promOut += d));
  await waitFor('Prometheus to be ready', async () => {
    if (proc.exitCode !== null) throw new Error(`prometheus exited ${proc.exitCode}: ${promOut}`);
    return (await fetch(`${promUrl}/-/ready`, { signal: AbortSignal.timeout(2000) })).status === 200 ? true : undefined;
  });
}, 240_000);

afterAll(async () => {
  client?.close();
  if (prometheus) await stopProcess(prometheus);
  await agent?.stop();
  if (issuer) await signalIssuer(issuer, 'SIGTERM');
  if (root) rmSync(root, { recursive: true, force: true });
});

describe.skipIf(skipWhy !== undefined)(`a real Prometheus scraping a real agent and issuer${skipWhy ? ` (skipped: ${skipWhy})` : ''}`, () => {
  // x509 signed: the agent's SVID at attestation, the workload's; after the taint the agent's renewal and the workload's again
  const X509_SIGNED = 4;

  it('counts the scripted run exactly, as Prometheus sees it', async () => {
    // ready without a Workload API call (those are counted): the agent's cache holds the workload's SVID
    await waitFor('the workload SVID in the agent cache', async () => (/^spire_agent_lru_cache_svid_map_size\{svid_type="x509"\} 1$/m.test(await scrapeAgent()) ? true : undefined), 60_000, 250);
    for (let i = 0; i < N_X509; i++) expect(await fetchX509Once()).toBe(WORKLOAD_ID);
    for (let i = 0; i < M_JWT; i++) expect((await client!.fetchJWTSVID({ audience: [`aud-${i}`] })).svids[0]!.spiffeId).toBe(WORKLOAD_ID);

    // forced rotation: a new X.509 CA prepared and activated, the old one tainted; the agent renews its SVID
    const shown = await adminCall<{ active: { authorityId: string } }>(issuer!, 'GET', '/localauthority/x509');
    const { preparedAuthority } = await adminCall<{ preparedAuthority: { authorityId: string } }>(issuer!, 'POST', '/localauthority/x509/prepare');
    await adminCall(issuer!, 'POST', '/localauthority/x509/activate', { authorityId: preparedAuthority.authorityId });
    await adminCall(issuer!, 'POST', '/localauthority/x509/taint', { authorityId: shown.active.authorityId });

    // a failed node attestation: a second wisp-agent with an unknown join token is refused and exits
    const refused = await startAgent({ serverUrl: issuer!.url, trustDomain: TD, dataDir: join(root, 'agent-refused'), socketPath: join(root, 'run', 'refused.sock'), joinToken: unknownToken }).then(
      (a) => waitFor('the refused agent to exit', async () => (a.process.exitCode !== null ? a.output() : undefined)),
      (e: Error) => e.message,
    );
    expect(refused).toMatch(/ERR_JOIN_TOKEN_INVALID/);

    await expectValues({
      [agentQ('spire_agent_rpc_workload_api_fetch_x509svid', 'status="OK"')]: N_X509,
      [`count(${agentQ('spire_agent_rpc_workload_api_fetch_x509svid', 'status!="OK"')})`]: undefined,
      [agentQ('spire_agent_rpc_workload_api_fetch_jwtsvid', 'status="OK"')]: M_JWT,
      [`count(${agentQ('spire_agent_rpc_workload_api_fetch_jwtsvid', 'status!="OK"')})`]: undefined,
      [agentQ('spire_agent_rpc_workload_api_fetch_x509svid_elapsed_time_count', 'status="OK"')]: N_X509,
      [agentQ('spire_agent_agent_svid_rotate', 'status="OK"')]: 1,
      [agentQ('spire_agent_node_attestor_new_svid', 'status="OK"')]: 1,
      [issuerQ('spire_server_server_ca_sign_x509_svid')]: X509_SIGNED,
      [issuerQ('spire_server_server_ca_sign_jwt_svid')]: M_JWT,
      [issuerQ('spire_server_rpc_agent_v1_agent_attest_agent', 'attestor="join_token",status="OK"')]: 1,
      [issuerQ('spire_server_rpc_agent_v1_agent_attest_agent', 'attestor="join_token",status="Unauthenticated"')]: 1,
      [`count(${issuerQ('spire_server_rpc_agent_v1_agent_attest_agent')})`]: 2,
      [issuerQ('spire_server_rpc_agent_v1_agent_renew_agent', 'status="OK"')]: 1,
      [issuerQ('spire_server_ca_manager_x509_ca_prepare')]: 2,
      [issuerQ('spire_server_ca_manager_x509_ca_activate')]: 2,
      [issuerQ('spire_server_ca_manager_x509_ca_taint')]: 1,
      [issuerQ('spire_server_ca_manager_jwt_key_prepare')]: 1,
      [issuerQ('spire_server_manager_jwt_key_activate')]: 1,
    });
  }, 180_000);

  it('passes `promtool check metrics` on both endpoints but for the SPIRE-naming allowance', async () => {
    for (const [what, body] of [['agent', await scrapeAgent()], ['issuer', await scrapeIssuer(issuer!)]] as const) {
      const { problems, unexpected } = checkMetrics(promtoolBin.path!, body);
      expect(unexpected, what).toEqual([]);
      expect(problems.length, `${what}: promtool ran and noted the _total suffixes`).toBeGreaterThan(0);
    }
  });

  it('refuses a scrape without a credential (401) or with a wrong one (403): those targets are down, the right one up', async () => {
    const bare = await fetch(`${issuer!.url}/admin/v1/metrics`);
    expect(bare.status).toBe(401);
    expect(((await bare.json()) as { error: { code: string } }).error.code).toBe('ERR_UNAUTHENTICATED');
    type Target = { labels: { job: string }; health: string; lastError: string };
    const targets = await waitFor('every target scraped once', async () => {
      const res = (await (await fetch(`${promUrl}/api/v1/targets?state=active`)).json()) as { data: { activeTargets: Target[] } };
      const byJob = new Map(res.data.activeTargets.map((t) => [t.labels.job, t]));
      return byJob.size === 4 && [...byJob.values()].every((t) => t.health !== 'unknown') ? byJob : undefined;
    });
    expect(Object.fromEntries([...targets].map(([job, t]) => [job, [t.health, t.lastError]]))).toEqual({
      'wisp-agent': ['up', ''],
      'wisp-issuer': ['up', ''],
      'wisp-issuer-wrong-token': ['down', 'server returned HTTP status 403 Forbidden'],
      'wisp-issuer-no-credential': ['down', 'server returned HTTP status 401 Unauthorized'],
    });
  });

  it("keeps the issuer's counters across a restart of wrangler dev on the same persist dir, then counts on", async () => {
    const counted = ['spire_server_server_ca_sign_x509_svid', 'spire_server_server_ca_sign_jwt_svid', 'spire_server_ca_manager_', 'spire_server_manager_jwt_key_activate', 'spire_server_rpc_agent_v1_agent_attest_agent{', 'spire_server_rpc_agent_v1_agent_renew_agent{'];
    const pick = (text: string) => new Map([...seriesOf(text)].filter(([s]) => counted.some((c) => s.startsWith(c))));
    const before = pick(await scrapeIssuer(issuer!));
    expect(before.get('spire_server_server_ca_sign_x509_svid')).toBe(X509_SIGNED);
    const port = issuer!.port;
    await signalIssuer(issuer!, 'SIGTERM');
    issuerOutputs.push(issuer!.output());
    issuer = undefined;
    issuer = await startTheIssuer(port);
    expect(pick(await scrapeIssuer(issuer))).toEqual(before);

    expect((await client!.fetchJWTSVID({ audience: ['aud-after-restart'] })).svids[0]!.spiffeId).toBe(WORKLOAD_ID);
    await expectValues({
      [issuerQ('spire_server_server_ca_sign_jwt_svid')]: M_JWT + 1,
      [issuerQ('spire_server_server_ca_sign_x509_svid')]: X509_SIGNED,
      [`resets(${issuerQ('spire_server_server_ca_sign_jwt_svid')}[10m])`]: 0,
      [`resets(${issuerQ('spire_server_server_ca_sign_x509_svid')}[10m])`]: 0,
      [agentQ('spire_agent_rpc_workload_api_fetch_jwtsvid', 'status="OK"')]: M_JWT + 1,
    });
  }, 180_000);

  it('evaluates every PromQL expression of the Grafana dashboard and the rules, naming only exposed metrics', async () => {
    const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'wisp-dashboard.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const rules = (readYaml(join(DEPLOY, 'prometheus', 'wisp-rules.yml'))[0] as { groups: { rules: { alert?: string; record?: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
    const checkedRules = spawnSync(promtoolBin.path!, ['check', 'rules', join(DEPLOY, 'prometheus', 'wisp-rules.yml')], { encoding: 'utf8' });
    expect(checkedRules.status, checkedRules.stdout + checkedRules.stderr).toBe(0);
    // the shipped config as it is, but for a credentials_file that exists (promtool refuses a missing one)
    const shippedDir = join(root, 'shipped');
    mkdirSync(shippedDir);
    copyFileSync(join(DEPLOY, 'prometheus', 'wisp-rules.yml'), join(shippedDir, 'wisp-rules.yml'));
    const shipped = readFileSync(join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8');
    expect(shipped).toContain('credentials_file: /etc/prometheus/wisp-admin-token');
    writeFileSync(join(shippedDir, 'prometheus.yml'), shipped.replace('/etc/prometheus/wisp-admin-token', join(root, 'prometheus', 'admin-token')));
    const checkedShipped = spawnSync(promtoolBin.path!, ['check', 'config', join(shippedDir, 'prometheus.yml')], { encoding: 'utf8' });
    expect(checkedShipped.status, checkedShipped.stdout + checkedShipped.stderr).toBe(0);
    expect(checkedShipped.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
    // Grafana's $__rate_interval is Grafana's to fill in; any range works for evaluation
    const exprs = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...rules.map((r) => r.expr)].map((e) => e.replaceAll('$__rate_interval', '1m'));
    expect(exprs.length).toBeGreaterThan(20);
    const exposed = new Set([...seriesOf(await scrapeAgent()).keys(), ...seriesOf(await scrapeIssuer(issuer!)).keys()].map((s) => s.replace(/\{.*$/, '')));
    exposed.add('up'); // Prometheus's own, per target
    const named = new Set(exprs.flatMap((e) => [...e.matchAll(/\b((?:spire_agent|spire_server|wisp_agent|process|nodejs)_[a-z0-9_]+|up)\b/g)].map((m) => m[1]!)));
    expect([...named].filter((n) => !exposed.has(n))).toEqual([]);
    for (const expr of exprs) await query(expr); // throws on a parse or evaluation error
    // and Prometheus itself evaluates the loaded rules without error
    const ruleHealth = await waitFor('the rules evaluated', async () => {
      const res = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as { data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] } };
      const all = res.data.groups.flatMap((g) => g.rules);
      return all.length === rules.length && all.every((r) => r.health !== 'unknown') ? all.map((r) => [r.name, r.health, r.lastError ?? '']) : undefined;
    });
    expect(ruleHealth).toEqual(rules.map((r) => [r.alert ?? r.record, 'ok', '']));
  });

  it('ships Kubernetes monitors that scrape the port and path the agent serves (shape only: the Prometheus Operator CRDs are not on this machine)', async () => {
    const dir = join(DEPLOY, 'kubernetes', 'telemetry');
    const [podMonitor] = readYaml(join(dir, 'podmonitor.yaml'));
    const [service, serviceMonitor] = readYaml(join(dir, 'servicemonitor.yaml'));
    // the agent DaemonSet and its config (deploy/kubernetes/agent/), where the metrics port is folded in
    const [daemonSet] = readYaml(join(DEPLOY, 'kubernetes', 'agent', 'daemonset.yaml'));
    const [configMap] = readYaml(join(DEPLOY, 'kubernetes', 'agent', 'configmap.yaml'));
    expect([at(podMonitor, 'apiVersion'), at(podMonitor, 'kind'), at(serviceMonitor, 'apiVersion'), at(serviceMonitor, 'kind'), at(service, 'kind')]).toEqual(['monitoring.coreos.com/v1', 'PodMonitor', 'monitoring.coreos.com/v1', 'ServiceMonitor', 'Service']);
    const container = (at(daemonSet, 'spec', 'template', 'spec', 'containers') as { name: string }[]).find((c) => c.name === 'wisp-agent');
    const metricsPort = (at(container, 'ports') as { name: string; containerPort: number }[]).find((p) => p.name === 'metrics');
    // the agent's own config parser reads the ConfigMap's agent.json
    const content = JSON.parse(at(configMap, 'data', 'agent.json') as string) as Record<string, unknown>;
    const config = parseAgentConfig({ path: 'k8s', content }, { MY_NODE_NAME: 'node-a' }, {});
    expect(config.telemetry?.prometheus).toEqual({ host: '0.0.0.0', port: metricsPort?.containerPort });
    const agentLabels = at(podMonitor, 'spec', 'selector', 'matchLabels');
    expect(at(daemonSet, 'spec', 'template', 'metadata', 'labels')).toMatchObject(agentLabels as Record<string, string>);
    expect(at(serviceMonitor, 'spec', 'selector', 'matchLabels')).toEqual(at(service, 'metadata', 'labels'));
    expect(at(service, 'spec', 'selector')).toEqual(agentLabels);
    expect(at(service, 'spec', 'ports', 0)).toMatchObject({ name: 'metrics', targetPort: 'metrics' });
    for (const ep of [at(podMonitor, 'spec', 'podMetricsEndpoints', 0), at(serviceMonitor, 'spec', 'endpoints', 0)]) {
      expect(ep).toMatchObject({ port: 'metrics', path: '/metrics' });
      expect(await scrapeAgent(at(ep, 'path') as string)).toContain('spire_agent_started{'); // the real agent answers that path
    }
  });

  it('logs one telemetry event per counted event in the Worker logs, and no secret', async () => {
    // wrangler colours the Worker's warnings: without the escapes each Worker line is one JSON object
    // eslint-disable-next-line no-control-regex
    const output = [...issuerOutputs, issuer!.output()].join('\n').replace(/\x1b\[[0-9;]*m/g, '');
    // the Worker's JSON lines (logEvent), as wrangler dev prints them
    const events = output
      .split('\n')
      .flatMap((l) => (l.includes('{"level"') ? [JSON.parse(l.slice(l.indexOf('{"level"'))) as Record<string, unknown>] : []))
      .filter((e) => e.msg === 'telemetry');
    const sum = (event: string, match: Record<string, unknown> = {}) => events.filter((e) => e.event === event && Object.entries(match).every(([k, v]) => e[k] === v)).reduce((n, e) => n + (typeof e.count === 'number' ? e.count : 1), 0);
    expect({
      x509: sum('spire_server_server_ca_sign_x509_svid'),
      jwt: sum('spire_server_server_ca_sign_jwt_svid'),
      attestOk: sum('spire_server_rpc_agent_v1_agent_attest_agent', { status: 'OK', attestor: 'join_token' }),
      attestRefused: sum('spire_server_rpc_agent_v1_agent_attest_agent', { status: 'Unauthenticated', attestor: 'join_token' }),
      renew: sum('spire_server_rpc_agent_v1_agent_renew_agent', { status: 'OK' }),
      x509CaActivate: sum('spire_server_ca_manager_x509_ca_activate'),
      x509CaTaint: sum('spire_server_ca_manager_x509_ca_taint'),
    }).toEqual({ x509: X509_SIGNED, jwt: M_JWT + 1, attestOk: 1, attestRefused: 1, renew: 1, x509CaActivate: 2, x509CaTaint: 1 });
    for (const e of events) expect(Object.keys(e).filter((k) => !['level', 'msg', 'event', 'count', 'status', 'attestor', 'elapsed_ms'].includes(k)), JSON.stringify(e)).toEqual([]);
    // the used join token is part of the agent's SPIFFE ID (spiffe://td/spire/agent/join_token/<token>, as in
    // SPIRE), a public name once the token is spent; bare, or the unused unknown one, it must not appear
    expect(output.replaceAll(`/spire/agent/join_token/${joinToken}`, '/spire/agent/join_token/<id>').includes(joinToken)).toBe(false);
    for (const secret of [unknownToken, VARS.KEY_ENCRYPTION_SECRET, 'PRIVATE KEY', 'CERTIFICATE REQUEST']) expect(output.includes(secret), secret.slice(0, 12)).toBe(false);
    expect(output.split('\n').filter((l) => l.includes(VARS.ADMIN_TOKEN))).toEqual([]);
  });
});
