// End-to-end node attestation helpers (cloud-attestation and x509pop e2e tests): real wisp-agent processes
// configured with a node attestor instead of a join token, the issuer's admin record of an agent, and a
// workload's X509-SVID through the agent's Workload API.
import { join } from 'node:path';
import { expect } from 'vitest';
import type { X509SVID } from '../../../src/node/workload-api/gen/workload_pb.js';
import { createWorkloadApiClient } from '../../../src/node/workload-api/client.js';
import { adminCall, startAgent, waitFor, type RunningAgent, type RunningIssuer } from '../../../scripts/local-stack.js';

export interface AgentRecord {
  serialNumber: string;
  attestationType: string;
  nodeSelectors: Array<{ type: string; value: string }>;
}

/** The issuer's record of `agentId` (admin API), or undefined when it has none. */
export async function agentRecord(issuer: RunningIssuer, agentId: string): Promise<AgentRecord | undefined> {
  try {
    return (await adminCall<{ agent: AgentRecord }>(issuer, 'GET', `/agents/${encodeURIComponent(agentId)}`)).agent;
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_AGENT_NOT_FOUND') return undefined;
    throw e;
  }
}

/** Evicts the agent and waits until it has attested again on its own (a new serial on the issuer). */
export async function expectReattestationAfterEviction(issuer: RunningIssuer, agentId: string): Promise<void> {
  const before = await agentRecord(issuer, agentId);
  expect(before).toBeDefined();
  await adminCall(issuer, 'DELETE', `/agents/${encodeURIComponent(agentId)}`);
  await waitFor('the agent to attest again after eviction', async () => {
    const now = await agentRecord(issuer, agentId);
    return now && now.serialNumber !== before!.serialNumber ? true : undefined;
  }, 60_000, 500);
}

/** Waits until the agent serves an X509-SVID for `spiffeId` and returns it; the agent's output on failure. */
export async function workloadSvid(agent: RunningAgent, spiffeId: string): Promise<X509SVID> {
  const client = createWorkloadApiClient(`unix://${agent.socketPath}`);
  try {
    return await waitFor(`an X509-SVID for ${spiffeId}`, async () => {
      const ac = new AbortController();
      for await (const msg of client.fetchX509SVID({ signal: ac.signal })) {
        ac.abort();
        return msg.svids.find((s) => s.spiffeId === spiffeId);
      }
      return undefined;
    }, 60_000, 500);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- agent output ---\n${agent.output().slice(-3000)}`, { cause: e });
  } finally {
    client.close();
  }
}

/** Starts agents with a node attestor's config under `root`, and stops them all at the end. */
export function agentRunner(issuer: () => RunningIssuer, trustDomain: string, root: () => string) {
  const running: RunningAgent[] = [];
  async function run(name: string, extraConfig: Record<string, unknown>): Promise<RunningAgent> {
    const agent = await startAgent({
      serverUrl: issuer().url,
      trustDomain,
      dataDir: join(root(), `${name}-data`),
      socketPath: join(root(), `${name}.sock`),
      syncIntervalSeconds: 1,
      extraConfig,
    });
    running.push(agent);
    return agent;
  }
  return {
    run,
    /** Starts an agent that must fail to attest: it exits non-zero, and its output carries the issuer's reason. */
    async expectRefused(name: string, extraConfig: Record<string, unknown>, reason: RegExp): Promise<string> {
      let output: string;
      try {
        const agent = await run(name, extraConfig);
        await waitFor('the agent to give up', async () => (agent.process.exitCode !== null ? true : undefined), 60_000, 200);
        output = agent.output();
        expect(agent.process.exitCode).not.toBe(0);
      } catch (e) {
        // it exited before its socket appeared (startAgent's error carries the code and the output)
        output = (e as Error).message;
        expect(output).toMatch(/wisp-agent exited [1-9]/);
      }
      expect(output).toMatch(reason);
      return output;
    },
    async stopAll(): Promise<void> {
      for (const agent of running) await agent.stop();
    },
  };
}
