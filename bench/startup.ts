/**
 * Start-up (issue 21): the agent restarted with its data dir intact until a workload's first X509-SVID, and
 * one `wisp entry create` end to end, each beside the floor `node -e 0` (the same Node, the same machine).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, stopProcess } from '../scripts/local-stack.js';
import { callOnNewConnection } from './grpc-raw.js';
import { entry, QUICK, startRealAgent } from './fleet.js';
import { record } from './report.js';
import { ADMIN_TOKEN, type Issuer } from './stack.js';
import { median, round, sleep } from './stats.js';

const RUNS = QUICK ? 3 : 7;
const AGENT_SVIDS = 5;

/** ms from spawning `node args` to its exit; rejects unless it exits 0 */
function timeProcess(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`node ${args.join(' ')} exited ${code}: ${err.slice(-2000)}`))));
  });
}

async function medianOf(runs: number, measure: (i: number) => Promise<number>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await measure(i));
  return round(median(times), 1);
}

/** Spawns the agent over its existing data dir; resolves with ms until the first FetchX509SVID answer on a new connection. */
async function restartToFirstSvid(configPath: string, socketPath: string): Promise<{ ms: number; stop: () => Promise<void> }> {
  rmSync(socketPath, { force: true });
  const t0 = performance.now();
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'wisp-agent.js'), 'run', '--config', configPath], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const deadline = t0 + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wisp-agent exited ${child.exitCode}: ${err.slice(-2000)}`);
    if (performance.now() > deadline) throw new Error(`wisp-agent served no SVID within 30 s: ${err.slice(-2000)}`);
    if (existsSync(socketPath)) {
      try {
        await callOnNewConnection({ socketPath, kind: 'stream', method: 'stream', request: Buffer.alloc(0) });
        return { ms: performance.now() - t0, stop: () => stopProcess(child) };
      } catch {
        // bound but not yet listening: try again
      }
    }
    await sleep(1);
  }
}

/** scripts/build-agent.mjs (plain JS; a non-literal specifier so tsc does not look for its types) */
const BUILD_AGENT: string = '../scripts/build-agent.mjs';
interface BuildAgent {
  agentBundle(): string | undefined;
  commandBundle(name: string): string | undefined;
  buildAgent(): Promise<string | undefined>;
  buildPackageBundles(names: string[]): Promise<void>;
}

/** What an installed checkout runs (postinstall builds both bundles): built here if a source is newer, so tsx is never what is timed. */
async function ensureBundles(): Promise<void> {
  const build = (await import(BUILD_AGENT)) as BuildAgent;
  if (!build.agentBundle()) await build.buildAgent();
  if (!build.commandBundle('cli')) await build.buildPackageBundles(['cli']);
  if (!build.agentBundle() || !build.commandBundle('cli')) throw new Error('bench startup: the agent and CLI bundles could not be built (esbuild missing?)');
}

export async function benchStartup(issuer: Issuer, dir: string): Promise<void> {
  console.log('\n== Start-up: agent restart to first SVID, one CLI command, beside `node -e 0`');
  await ensureBundles();
  const floor = await medianOf(RUNS, () => timeProcess(['-e', '0']));
  record('node_start_floor_ms', floor, { limit: '`node -e 0` on this Node' });

  const base = join(dir, 'startup');
  mkdirSync(join(base, 'run'), { recursive: true });
  const agent = await startRealAgent(issuer, base, { svids: AGENT_SVIDS });
  await stopProcess(agent.child);
  // one unmeasured restart: the first workload call hashes its executable (kept by the exe hash store), and the compile
  // cache, when NODE_COMPILE_CACHE turns it on, is written; the measured restarts then start as any later one
  await (await restartToFirstSvid(agent.configPath, agent.socketPath)).stop();
  const restart = await medianOf(RUNS, async () => {
    const r = await restartToFirstSvid(agent.configPath, agent.socketPath);
    await r.stop();
    return r.ms;
  });
  record('agent_restart_to_first_svid_ms', restart, { limit: `floor ${floor}`, target: '≤ 100', met: restart <= 100 });

  const env = { ...process.env, WISP_SERVER_URL: issuer.url, WISP_ADMIN_TOKEN: ADMIN_TOKEN };
  const wisp = join(REPO_ROOT, 'bin', 'wisp.js');
  const cliFloor = await medianOf(RUNS, () => timeProcess([wisp, '--help'], env));
  record('cli_floor_ms', cliFloor, { limit: `floor ${floor}` });
  const create = (i: number) => {
    const e = entry(`/bench/startup/cli/${Date.now()}-${i}`, agent.agentId, `uid:${200000 + i}`);
    return timeProcess([wisp, 'entry', 'create', '-parentID', e.parentId, '-spiffeID', e.spiffeId, '-selector', `unix:${e.selectors[0]!.value}`], env);
  };
  await create(-1); // unmeasured: writes the CLI's compile cache
  const cli = await medianOf(RUNS, create);
  record('cli_entry_create_ms', cli, { limit: `floor ${floor}`, target: '≤ 150', met: cli <= 150 });
}
