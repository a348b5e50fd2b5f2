/** The bench's fleet: entries through the admin API, a real wisp-agent process, its CPU and RSS from /proc. `npm run bench -- --quick` makes it smaller (numbers not comparable). */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, waitFor } from '../scripts/local-stack.js';
import { TD, type Issuer } from './stack.js';
import { pool, QUICK } from './stats.js';

export { QUICK };
export const ADMIN_BATCH = 500;
export const AGENT_SVIDS = QUICK ? 200 : 1000;
const uid = process.getuid?.() ?? 0;

export function entry(path: string, parentId: string, selector: string, extra: Record<string, unknown> = {}) {
  return { spiffeId: `spiffe://${TD}${path}`, parentId, selectors: [{ type: 'unix', value: selector }], ...extra };
}

/** Creates entries through the admin API in batches; returns their ids. */
export async function createEntries(issuer: Issuer, entries: unknown[], concurrency = 2): Promise<string[]> {
  const batches = Array.from({ length: Math.ceil(entries.length / ADMIN_BATCH) }, (_, i) => entries.slice(i * ADMIN_BATCH, (i + 1) * ADMIN_BATCH));
  const out = await pool(batches.length, concurrency, async (i) => {
    const res = await issuer.admin<{ results: { status: { code: string }; entry?: { id: string } }[] }>('POST', '/entries/batch-create', { entries: batches[i] });
    return res.results.map((r) => {
      if (!r.entry) throw new Error(`entry not created: ${JSON.stringify(r.status)}`);
      return r.entry.id;
    });
  });
  return out.flat();
}

/** user + system CPU of a process, in clock ticks (10 ms) */
export function cpuTicks(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
}

export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

export function spawnLogged(args: string[], name: string, nodeArgs: string[] = []): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [...nodeArgs, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  child.on('exit', (code) => code && console.error(`${name} exited ${code}:\n${out.slice(-3000)}`));
  return { child, output: () => out };
}

export interface RealAgent {
  child: ChildProcess;
  socketPath: string;
  /** the entry of the bench process's own uid */
  entryId: string;
  agentId: string;
  dataDir: string;
  configPath: string;
}

/**
 * A real wisp-agent process (bin/wisp-agent.js) attested with a join token, parent of `svids` entries (one for
 * this process's uid); resolves once its cache holds them all. `config` overrides the agent config.
 */
export async function startRealAgent(issuer: Issuer, dir: string, options: { svids?: number; config?: Record<string, unknown> } = {}): Promise<RealAgent> {
  const svids = options.svids ?? AGENT_SVIDS;
  const { token } = await issuer.admin<{ token: string }>('POST', '/join-tokens', { ttlSeconds: 600 });
  const agentId = `spiffe://${TD}/spire/agent/join_token/${token}`;
  const mine = entry('/bench/workload', agentId, `uid:${uid}`);
  const [entryId] = await createEntries(issuer, [mine, ...Array.from({ length: svids - 1 }, (_, i) => entry(`/bench/agent-svid/${i}`, agentId, `uid:${100000 + i}`))]);
  const dataDir = join(dir, 'agent-data');
  const socketPath = join(dir, 'run', 'agent.sock');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const configPath = join(dir, 'agent.json');
  // metrics on (issue 17: the targets hold with them): the agent's Prometheus listener on a free loopback port
  writeFileSync(configPath, JSON.stringify({ serverUrl: issuer.url, trustDomain: TD, dataDir, socketPath, joinToken: token, logLevel: 'warn', syncIntervalSeconds: 1, telemetry: { prometheus: { host: '127.0.0.1', port: 0 } }, ...options.config }));
  // WISP_BENCH_AGENT_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": profile the agent under load
  const nodeArgs = process.env.WISP_BENCH_AGENT_NODE_ARGS?.split(' ').filter(Boolean);
  const agent = spawnLogged([join(REPO_ROOT, 'bin', 'wisp-agent.js'), 'run', '--config', configPath], 'wisp-agent', nodeArgs);
  const cacheFile = join(dataDir, 'svid-cache.json');
  await waitFor(`${svids} SVIDs in the agent cache`, async () => {
    if (agent.child.exitCode !== null) throw new Error(agent.output());
    if (!existsSync(cacheFile)) return undefined;
    const n = readFileSync(cacheFile, 'utf8').split('"certChain"').length - 1;
    return n >= svids ? true : undefined;
  }, 180_000, 500);
  return { child: agent.child, socketPath, entryId: entryId!, agentId, dataDir, configPath };
}
