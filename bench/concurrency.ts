/**
 * The Workload API under concurrency (issue 21): 32 concurrent callers against the agent and against the bare
 * grpc-js echo server, closed loop (each caller calls again as soon as its call ends), from the Go client
 * (bench/latency-client, grpc-go), so the client's own GC stays out of the figures. Each X.509 caller keeps
 * its connection and on it opens a FetchX509SVID stream, reads the first response and cancels the stream, as
 * a workload's SPIFFE library does on a reconnect; the same with a new connection per call is reported too.
 * The JWT callers make unary FetchJWTSVID calls on kept connections. Also the pieces the Workload API's
 * benchmarks share (bench/run.ts): the echo server process and the Go client.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, stopProcess, waitFor } from '../scripts/local-stack.js';
import { jwtSvidRequest, methodPath, type RawTarget } from './grpc-raw.js';
import { cpuTicks, QUICK, spawnLogged } from './fleet.js';
import { record } from './report.js';
import { median, round } from './stats.js';

/** concurrent callers: the load the side-by-side with spire-agent named */
export const CONCURRENCY = 32;
const ROUNDS = QUICK ? 2 : 3;
/** one closed-loop round */
const ROUND_MS = QUICK ? 1500 : 2500;
/** the targets of issue 21 */
const RATIO_TARGET = 0.8;

/**
 * Builds bench/latency-client (Go, grpc-go): the open-loop client of the p99 measurements. A grpc-js client in
 * this process pauses for 3-10 ms scavenges under that load, and an open-loop measurement counts the client's
 * pauses as server latency; Go's collector does not stop the client that long.
 */
export function buildLatencyClient(dir: string): string {
  const bin = join(dir, 'latency-client');
  try {
    execFileSync('go', ['build', '-o', bin, '.'], { cwd: join(REPO_ROOT, 'bench', 'latency-client'), stdio: 'pipe', env: { ...process.env, CGO_ENABLED: '0' } });
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    throw new Error(`building bench/latency-client needs the Go toolchain (go build): ${err.stderr?.toString() || err.message}`, { cause: e });
  }
  return bin;
}

const execFileAsync = promisify(execFile);

export interface LatencyResult {
  calls: number;
  errors: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  firstError?: string;
  /** closed loop only: calls per second */
  perSecond?: number;
}

async function runLatencyClient(bin: string, t: RawTarget, mode: string[], durationMs: number, newConnection: boolean): Promise<LatencyResult> {
  const args = ['-socket', t.socketPath, '-method', methodPath(t), '-kind', t.kind, '-req', t.request.toString('hex'), ...mode, '-duration', `${durationMs}ms`];
  const { stdout } = await execFileAsync(bin, newConnection ? [...args, '-new-connection'] : args, { timeout: durationMs + 60_000 });
  const r = JSON.parse(stdout) as LatencyResult;
  if (r.errors > 0) throw new Error(`${methodPath(t)}: ${r.errors} of ${r.calls} calls failed (${r.firstError})`);
  return r;
}

/** One open-loop round of the Go latency client: `rate` calls/s for `durationMs`, over `clients` connected clients or a new connection per call. */
export function goLatency(bin: string, t: RawTarget, rate: number, durationMs: number, clients: number, newConnection = false): Promise<LatencyResult> {
  return runLatencyClient(bin, t, ['-rate', String(rate), '-clients', String(clients)], durationMs, newConnection);
}

/** One closed-loop round: `concurrency` callers for `durationMs`; the rate and the calls' latencies. */
export function goClosedLoop(bin: string, t: RawTarget, concurrency: number, durationMs: number, newConnection = false): Promise<LatencyResult> {
  return runLatencyClient(bin, t, ['-concurrency', String(concurrency)], durationMs, newConnection);
}

export interface EchoServer {
  socketPath: string;
  /** the echo server's own process (for its CPU) */
  pid: number;
  stop(): Promise<void>;
}

/** The baseline: bench/echo-server.ts in a process of its own, on `<dir>/run/echo.sock`. */
export async function startEchoServer(dir: string): Promise<EchoServer> {
  const socketPath = join(dir, 'run', 'echo.sock');
  const echo = spawnLogged([join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), join(REPO_ROOT, 'bench', 'echo-server.ts'), socketPath], 'echo-server');
  try {
    await waitFor('the echo server', async () => (existsSync(socketPath) ? true : undefined), 30_000, 100);
    // tsx runs the script in a child process; the echo server's own pid is its only child
    const pid = await waitFor('the echo server pid', async () => {
      const kids = readFileSync(`/proc/${echo.child.pid}/task/${echo.child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      return kids[0] ?? echo.child.pid;
    });
    return { socketPath, pid, stop: () => stopProcess(echo.child) };
  } catch (e) {
    await stopProcess(echo.child);
    throw e;
  }
}

/** The four targets: the agent's two methods and the echo server's two shapes. */
export function workloadTargets(agentSocket: string, echoSocket: string) {
  return {
    x509: { socketPath: agentSocket, kind: 'stream', method: 'stream', request: Buffer.alloc(0) } satisfies RawTarget,
    echoStream: { socketPath: echoSocket, kind: 'stream', method: 'echoStream', request: Buffer.alloc(700) } satisfies RawTarget,
    jwt: { socketPath: agentSocket, kind: 'unary', method: 'unary', request: jwtSvidRequest('bench-audience') } satisfies RawTarget,
    echoUnary: { socketPath: echoSocket, kind: 'unary', method: 'echoUnary', request: Buffer.alloc(700) } satisfies RawTarget,
  };
}

/**
 * `workload_x509_ratio_c32`, `workload_jwt_ratio_c32` and their p99s, beside the echo server's at the same
 * concurrency, in interleaved rounds (medians); the agent's CPU per call from /proc.
 */
export async function benchConcurrency(agent: { socketPath: string; pid: number }, echo: EchoServer, latencyClient: string): Promise<void> {
  console.log(`\n== Workload API at ${CONCURRENCY} concurrent callers (closed loop, Go client) vs the echo server`);
  const t = workloadTargets(agent.socketPath, echo.socketPath);
  const cases = {
    x509: { agent: t.x509, echo: t.echoStream, newConnection: false },
    x509New: { agent: t.x509, echo: t.echoStream, newConnection: true },
    jwt: { agent: t.jwt, echo: t.echoUnary, newConnection: false },
  };
  type Samples = { ratio: number[]; rate: number[]; echoRate: number[]; p99: number[]; echoP99: number[]; cpu: number[]; echoCpu: number[] };
  const samples = (): Samples => ({ ratio: [], rate: [], echoRate: [], p99: [], echoP99: [], cpu: [], echoCpu: [] });
  const s: Record<keyof typeof cases, Samples> = { x509: samples(), x509New: samples(), jwt: samples() };
  const run = async (target: RawTarget, pid: number, newConnection: boolean, ms = ROUND_MS) => {
    const c0 = cpuTicks(pid);
    const r = await goClosedLoop(latencyClient, target, CONCURRENCY, ms, newConnection);
    return { ...r, cpuMsPerCall: ((cpuTicks(pid) - c0) * 10) / r.calls };
  };
  // warm-up
  for (const c of Object.values(cases)) {
    await run(c.echo, echo.pid, c.newConnection, 500);
    await run(c.agent, agent.pid, c.newConnection, 500);
  }
  for (let i = 0; i < ROUNDS; i++) {
    const line: string[] = [];
    for (const [name, c] of Object.entries(cases) as [keyof typeof cases, (typeof cases)[keyof typeof cases]][]) {
      const e = await run(c.echo, echo.pid, c.newConnection);
      const a = await run(c.agent, agent.pid, c.newConnection);
      const x = s[name];
      x.rate.push(a.perSecond!);
      x.echoRate.push(e.perSecond!);
      x.ratio.push(a.perSecond! / e.perSecond!);
      x.p99.push(a.p99);
      x.echoP99.push(e.p99);
      x.cpu.push(a.cpuMsPerCall);
      x.echoCpu.push(e.cpuMsPerCall);
      line.push(`${name} ${Math.round(a.perSecond!)}/s (echo ${Math.round(e.perSecond!)}), p99 ${round(a.p99)} ms (echo ${round(e.p99)}), ${round(a.cpuMsPerCall, 3)} ms CPU/call (echo ${round(e.cpuMsPerCall, 3)})`);
    }
    console.log(`  round ${i + 1}: ${line.join('; ')}`);
  }
  const report = (name: keyof typeof cases, key: string, what: string, targeted: boolean) => {
    const x = s[name];
    const ratio = round(median(x.ratio));
    const suffix = targeted ? 'c32' : 'c32_new_connection';
    const echoRate = `${Math.round(median(x.echoRate))}/s echo, ${what}`;
    record(`${key}_calls_per_s_${suffix}`, Math.round(median(x.rate)), { limit: echoRate });
    record(`${key}_ratio_${suffix}`, ratio, targeted ? { limit: echoRate, target: `≥ ${RATIO_TARGET}`, met: ratio >= RATIO_TARGET } : { limit: echoRate });
    record(`${key}_p99_ms_${suffix}`, round(median(x.p99)), { limit: `echo p99 ${round(median(x.echoP99))} ms at ${CONCURRENCY} callers` });
    record(`${key}_agent_cpu_ms_per_call_${suffix}`, round(median(x.cpu), 3), { limit: `${round(median(x.echoCpu), 3)} ms echo server` });
  };
  report('x509', 'workload_x509', `${CONCURRENCY} callers on kept connections, a stream each call`, true);
  report('jwt', 'workload_jwt', `${CONCURRENCY} unary callers on kept connections`, true);
  report('x509New', 'workload_x509', `${CONCURRENCY} callers, a new connection each call`, false);
}
