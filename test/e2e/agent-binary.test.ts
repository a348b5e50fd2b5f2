// End to end: the single-file agent (dist/bin/wisp-agent, scripts/build-agent-binary.mjs) started with an empty
// environment and a PATH without node, against the real issuer (wrangler dev); a real Workload API client
// gets an X509-SVID through its socket, so the embedded SO_PEERCRED addon was loaded too.
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkloadApiClient, type WorkloadApiClient } from '../../src/node/workload-api/client.js';
import { adminCall, REPO_ROOT, startAgent, startIssuer, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { expectServedX509Svid } from '../helpers/node/served-x509-svid.js';

const TD = 'example.org';
const ID = `spiffe://${TD}/workload/binary`;
/** scripts/build-agent-binary.mjs (plain JS; a non-literal specifier so tsc does not look for its types) */
const BUILD_BINARY: string = '../../scripts/build-agent-binary.mjs';
const uid = process.getuid?.() ?? 0;

let root: string;
let binary: string;
let issuer: RunningIssuer | undefined;
let agent: RunningAgent | undefined;
let client: WorkloadApiClient | undefined;
let emptyPath: string;
let addonTmp: string;
let socketPath: string;
let socketReadyMs: number;

beforeAll(async () => {
  const { agentBinary, buildAgentBinary } = (await import(BUILD_BINARY)) as { agentBinary(): string | undefined; buildAgentBinary(): Promise<string> };
  binary = agentBinary() ?? (await buildAgentBinary());
  root = mkdtempSync(join(tmpdir(), 'wisp-binary-'));
  emptyPath = join(root, 'path'); // nothing in it: the agent must need no program from PATH
  addonTmp = join(root, 'tmp');
  mkdirSync(emptyPath);
  mkdirSync(addonTmp, { mode: 0o700 });
  socketPath = join(root, 'run', 'api.sock');
  issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD });
  const { token } = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', { ttlSeconds: 300 });
  const parentId = `spiffe://${TD}/spire/agent/join_token/${token}`;
  await adminCall(issuer, 'POST', '/entries', { spiffeId: ID, parentId, selectors: [{ type: 'unix', value: `uid:${uid}` }] });
  const started = performance.now();
  agent = await startAgent({
    serverUrl: issuer.url, trustDomain: TD, dataDir: join(root, 'data'), socketPath, joinToken: token, syncIntervalSeconds: 1,
    packaged: { executable: binary, env: { PATH: emptyPath, TMPDIR: addonTmp }, cwd: root },
  });
  socketReadyMs = performance.now() - started;
  client = createWorkloadApiClient(`unix://${socketPath}`);
}, 240_000);

afterAll(async () => {
  client?.close();
  await agent?.stop();
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('dist/bin/wisp-agent', () => {
  it('runs with no node on its PATH, as the executable itself (not through a node binary)', () => {
    const probe = spawnSync('/bin/sh', ['-c', 'command -v node'], { env: { PATH: emptyPath }, encoding: 'utf8' });
    expect(probe.status, probe.stdout).not.toBe(0);
    expect(realpathSync(readlinkSync(`/proc/${agent!.process.pid}/exe`))).toBe(realpathSync(binary));
    console.log(`wisp-agent binary: socket ready ${Math.round(socketReadyMs)} ms after start`);
  });

  it('serves an X509-SVID over the Workload API, through the embedded SO_PEERCRED addon', async () => {
    await expectServedX509Svid(client!, ID);
    // the addon's private copy is gone once it is loaded
    expect(readdirSync(addonTmp)).toEqual([]);
  });

  it('prints its version without a package.json beside it', () => {
    const r = spawnSync('/usr/bin/env', ['-i', `PATH=${emptyPath}`, binary, '--version'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe((JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  });
});
