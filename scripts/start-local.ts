/**
 * `npm start`: Wisp on one machine. Starts the issuer in workerd (wrangler dev, local D1 + Durable Objects,
 * migrations applied), creates a join token and a registration entry for the current user's uid, starts
 * wisp-agent, fetches an X509-SVID over the Workload API like any workload, prints where the socket is, and
 * runs until Ctrl-C. State (CA keys, D1, the agent's identity) persists in .wisp-local/ across restarts.
 * @module
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { hasReusableAgentSvid } from '../src/agent/node-attestation.js';
import { closedAncestors, prepareLocalLayout } from './local-layout.js';
import { adminCall, agentCli, REPO_ROOT, startAgent, startIssuer, type RunningAgent, type RunningIssuer } from './local-stack.js';

// others may reach the socket in run/, the rest stays private (see local-layout.ts)
const LAYOUT = prepareLocalLayout(join(REPO_ROOT, '.wisp-local'));
const STATE_FILE = LAYOUT.stateFile;
const PORT = Number(process.env.WISP_PORT ?? 8787);
const TRUST_DOMAIN = 'example.org';

interface LocalState {
  adminToken: string;
  keyEncryptionSecret: string;
  agentId?: string;
}

function loadState(): LocalState {
  if (existsSync(STATE_FILE)) return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as LocalState;
  const random = () => Buffer.from(crypto.getRandomValues(new Uint8Array(24))).toString('hex');
  const state = { adminToken: `local-admin-${random()}`, keyEncryptionSecret: `local-kek-${random()}` };
  writeFileSync(STATE_FILE, JSON.stringify(state, null, 2), { mode: 0o600 });
  return state;
}

function saveState(state: LocalState): void {
  writeFileSync(STATE_FILE, JSON.stringify(state, null, 2), { mode: 0o600 });
}

async function main(): Promise<void> {
  const state = loadState();
  let issuer: RunningIssuer | undefined;
  let agent: RunningAgent | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping…');
    await agent?.stop();
    await issuer?.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void stop(0));
  process.on('SIGTERM', () => void stop(0));

  try {
    console.log(`starting the issuer (workerd) on http://127.0.0.1:${PORT} …`);
    issuer = await startIssuer({
      stateDir: LAYOUT.issuerDir,
      port: PORT,
      trustDomain: TRUST_DOMAIN,
      vars: { ADMIN_TOKEN: state.adminToken, KEY_ENCRYPTION_SECRET: state.keyEncryptionSecret },
    });
    const agentDataDir = LAYOUT.agentDataDir;
    let joinToken: string | undefined;
    // a .wisp-local of an earlier day holds an expired agent SVID: the agent must attest again, with a new token
    if (!state.agentId || !(await hasReusableAgentSvid(agentDataDir, Date.now()))) {
      const created = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', { ttlSeconds: 600 });
      joinToken = created.token;
      state.agentId = `spiffe://${TRUST_DOMAIN}/spire/agent/join_token/${joinToken}`;
      saveState(state);
    }
    const uid = process.getuid?.() ?? 0;
    const spiffeId = `spiffe://${TRUST_DOMAIN}/workload/uid-${uid}`;
    try {
      await adminCall(issuer, 'POST', '/entries', {
        spiffeId,
        parentId: state.agentId,
        selectors: [{ type: 'unix', value: `uid:${uid}` }],
        dnsNames: [`${userInfo().username}.local`],
      });
      console.log(`registered ${spiffeId} for unix:uid:${uid}`);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ERR_ENTRY_EXISTS') throw e;
    }
    const socketPath = LAYOUT.socketPath;
    console.log('starting wisp-agent …');
    agent = await startAgent({
      serverUrl: issuer.url,
      trustDomain: TRUST_DOMAIN,
      dataDir: agentDataDir,
      socketPath,
      joinToken,
      syncIntervalSeconds: 2,
    });
    const env = { ...process.env, SPIFFE_ENDPOINT_SOCKET: `unix://${socketPath}` };
    let fetched = await agentCli(['api', 'fetch', 'x509'], env);
    for (let i = 0; fetched.code !== 0 && i < 30; i++) {
      await new Promise((r) => setTimeout(r, 500));
      fetched = await agentCli(['api', 'fetch', 'x509'], env);
    }
    if (fetched.code !== 0) throw new Error(`fetching an X509-SVID failed: ${fetched.stderr.trim()}`);
    console.log('');
    console.log(`SPIFFE_ENDPOINT_SOCKET=unix://${socketPath}`);
    console.log(fetched.stdout.trim());
    console.log('');
    console.log(`issuer:      ${issuer.url}  (admin token in ${STATE_FILE})`);
    console.log(`try:         SPIFFE_ENDPOINT_SOCKET=unix://${socketPath} node bin/wisp-agent.js api fetch jwt --audience demo`);
    const closed = closedAncestors(socketPath);
    if (closed.length > 0) console.log(`note:        other users cannot reach the socket: ${closed.join(', ')} not traversable by others (o+x)`);
    console.log('Ctrl-C stops everything.');
    agent.process.on('exit', (code) => {
      if (!stopping) {
        console.error(`wisp-agent exited (${code}):\n${agent?.output().slice(-3000)}`);
        void stop(1);
      }
    });
    issuer.process.on('exit', (code) => {
      if (!stopping) {
        console.error(`the issuer exited (${code})`);
        void stop(1);
      }
    });
  } catch (e) {
    console.error(`wisp: ${(e as Error).message}`);
    await stop(1);
  }
}

void main();
