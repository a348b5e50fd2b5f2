/**
 * Start-up (issue 21): the agent restarted with its data dir intact until a workload's first X509-SVID, and
 * one `wisp entry create` end to end, each beside the floor `node -e 0` (the same Node, the same machine), all
 * started from bench/launcher.mjs, a small process, as a shell or systemd would start them.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, stopProcess } from '../scripts/local-stack.js';
import { entry, QUICK, startRealAgent } from './fleet.js';
import { record } from './report.js';
import { ADMIN_TOKEN, type Issuer } from './stack.js';
import { median, round } from './stats.js';

const RUNS = QUICK ? 3 : 7;
const AGENT_SVIDS = 5;

interface Launcher {
  /** ms from spawning `node args` to its exit; rejects unless it exits 0 */
  timeProcess(args: string[], env?: NodeJS.ProcessEnv): Promise<number>;
  /** ms from spawning `node args` to the first FetchX509SVID answer on a new connection to `socketPath`; it keeps running */
  timeFirstSvid(args: string[], socketPath: string): Promise<number>;
  /** stops what timeFirstSvid started */
  stopRunning(): Promise<void>;
  close(): void;
}

/** bench/launcher.mjs: the processes are started from it, a small process, not from this large one (why: its header). */
async function startLauncher(): Promise<Launcher> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bench', 'launcher.mjs')], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<number, { resolve: (ms: number) => void; reject: (e: Error) => void }>();
  let nextId = 0;
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`bench/launcher.mjs exited ${code}`)));
    child.once('message', () => resolve());
  });
  child.on('message', (m: { id: number; ms?: number; error?: string }) => {
    const w = waiting.get(m.id);
    waiting.delete(m.id);
    if (m.error !== undefined) w?.reject(new Error(m.error));
    else w?.resolve(m.ms!);
  });
  const ask = (msg: Record<string, unknown>) =>
    new Promise<number>((resolve, reject) => {
      const id = ++nextId;
      waiting.set(id, { resolve, reject });
      child.send({ id, cwd: REPO_ROOT, env: process.env, ...msg });
    });
  return {
    timeProcess: (args, env = process.env) => ask({ kind: 'exit', args, env }),
    timeFirstSvid: (args, socketPath) => ask({ kind: 'firstSvid', args, socketPath }),
    stopRunning: async () => void (await ask({ kind: 'stop' })),
    close: () => child.disconnect(),
  };
}

async function medianOf(runs: number, measure: (i: number) => Promise<number>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await measure(i));
  return round(median(times), 1);
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
  const launcher = await startLauncher();
  try {
    await benchStartupFrom(launcher, issuer, dir);
  } finally {
    launcher.close();
  }
}

async function benchStartupFrom(launcher: Launcher, issuer: Issuer, dir: string): Promise<void> {
  const { timeProcess } = launcher;
  const floor = await medianOf(RUNS, () => timeProcess(['-e', '0']));
  record('node_start_floor_ms', floor, { limit: '`node -e 0` on this Node' });

  const base = join(dir, 'startup');
  mkdirSync(join(base, 'run'), { recursive: true });
  const agent = await startRealAgent(issuer, base, { svids: AGENT_SVIDS });
  await stopProcess(agent.child);
  // one unmeasured restart: the first workload call hashes its executable (kept by the exe hash store), and the compile
  // cache, when NODE_COMPILE_CACHE turns it on, is written; the measured restarts then start as any later one
  const agentArgs = [join(REPO_ROOT, 'bin', 'wisp-agent.js'), 'run', '--config', agent.configPath];
  await launcher.timeFirstSvid(agentArgs, agent.socketPath);
  await launcher.stopRunning();
  const restart = await medianOf(RUNS, async () => {
    const ms = await launcher.timeFirstSvid(agentArgs, agent.socketPath);
    await launcher.stopRunning();
    return ms;
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
