/**
 * The agent's CPU per new X509-SVID: a real wisp-agent process (bench/fleet.ts startRealAgent) holding one
 * SVID gets AGENT_SVIDS new entries in one admin batch; its user + system CPU (/proc) from the batch create
 * until its cache file holds them all, divided by their number. Beside it the floor: one P-256 key
 * generation and one ECDSA P-256 signature (node:crypto, what the agent uses), median, in a Node child of
 * the agent's version, not in this process (busy with the issuer).
 * @module
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stopProcess, waitFor } from '../scripts/local-stack.js';
import { AGENT_SVIDS, cpuTicks, createEntries, entry, startRealAgent } from './fleet.js';
import { record } from './report.js';
import { round } from './stats.js';
import type { Issuer } from './stack.js';

/** ms per clock tick of /proc/<pid>/stat (USER_HZ, 100 on Linux) */
const TICK_MS = 10;

/** The child's script: keygen + sign, timed one by one after a warm-up; prints the median in ms. */
const FLOOR_SCRIPT = `
const { generateKeyPairSync, sign } = require('node:crypto');
const data = Buffer.alloc(300, 7);
const once = () => { const k = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }); sign('sha256', data, k.privateKey); };
for (let i = 0; i < 200; i++) once();
const t = [];
for (let i = 0; i < 1000; i++) { const s = performance.now(); once(); t.push(performance.now() - s); }
t.sort((a, b) => a - b);
process.stdout.write(String(t[t.length >> 1]));
`;

export function keygenSignFloorMs(): number {
  return Number(execFileSync(process.execPath, ['-e', FLOOR_SCRIPT], { encoding: 'utf8' }));
}

export async function benchAgentCpu(issuer: Issuer, dir: string): Promise<void> {
  console.log(`\n== Agent CPU per new SVID (${AGENT_SVIDS} new entries)`);
  const root = join(dir, 'agent-cpu');
  mkdirSync(join(root, 'run'), { recursive: true });
  const floor = keygenSignFloorMs();
  const agent = await startRealAgent(issuer, root, { svids: 1 });
  try {
    const pid = agent.child.pid!;
    // let the start-up settle (first sync, cache write, metrics listener)
    await new Promise((r) => setTimeout(r, 1500));
    const entries = Array.from({ length: AGENT_SVIDS }, (_, i) => entry(`/bench/agent-cpu/${i}`, agent.agentId, `uid:${300000 + i}`));
    const before = cpuTicks(pid);
    await createEntries(issuer, entries);
    const cacheFile = join(agent.dataDir, 'svid-cache.json');
    await waitFor(`${AGENT_SVIDS + 1} SVIDs in the agent cache`, async () => {
      if (agent.child.exitCode !== null) throw new Error('wisp-agent exited');
      if (!existsSync(cacheFile)) return undefined;
      return readFileSync(cacheFile, 'utf8').split('"certChain"').length - 1 > AGENT_SVIDS ? true : undefined;
    }, 120_000, 50);
    const perSvid = ((cpuTicks(pid) - before) * TICK_MS) / AGENT_SVIDS;
    record('agent_keygen_sign_floor_ms', round(floor, 3), { limit: 'one P-256 key generation + one ECDSA signature, node:crypto, median' });
    record('agent_cpu_ms_per_new_svid', round(perSvid), { limit: `${round(floor, 3)} ms keygen + sign floor`, target: '≤ 0.7', met: perSvid <= 0.7 });
  } finally {
    await stopProcess(agent.child);
  }
}
