/**
 * A quick look at the agent's memory alone: a real `wisp-agent` process (bin/wisp-agent.js, so the bundle
 * when it is built) against the real issuer app in this process (test/helpers/node/in-process-issuer.ts:
 * the app and CA core in Node, D1 from Miniflare) holding N workload entries. It prints VmRSS (and its anonymous / file parts) once the agent has
 * cached N X509-SVIDs. The figure in docs/performance.md comes from `npm run bench` (the real issuer); this
 * one is for trying agent changes and Node flags in seconds:
 *
 *   npx tsx bench/agent-rss.ts [svids=1000] [--load] [node flags…]
 *   npx tsx bench/agent-rss.ts 1000 --max-semi-space-size=1
 *
 * `--load` then puts a shorter copy of the full bench's Workload API load on it (bench/run.ts: 100 clients
 * each opening a connection for one FetchX509SVID stream or FetchJWTSVID call, then 1,000 streams on 20
 * connections) and prints the RSS again (`agent_rss_mb_after_load`) with the calls/s it saw (noisy; for
 * comparing one change against another in the same minute, not against the echo baseline).
 * WISP_RSS_HOLD=<s> keeps the agent running that long at the end (to read /proc/<pid>/smaps);
 * WISP_RSS_SIGNAL=1 sends it SIGUSR2 before the first reading (with `--require` of a script that writes a heap snapshot).
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_BATCH_MAX_ITEMS } from '../src/worker/routes/admin/params.js';
import { callOnce, jwtSvidRequest, maxRate, newClient, type RawTarget } from './grpc-raw.js';
import { startInProcessIssuer } from '../test/helpers/node/in-process-issuer.js';
import { REPO_ROOT } from '../scripts/local-stack.js';

const n = Number(process.argv[2] ?? 1000);
const load = process.argv.includes('--load');
const nodeArgs = process.argv.slice(3).filter((a) => a !== '--load');
const uid = process.getuid?.() ?? 0;

function status(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of readFileSync(`/proc/${pid}/status`, 'utf8').matchAll(/^(VmRSS|RssAnon|RssFile|VmHWM):\s+(\d+) kB/gm)) out[m[1]!] = Math.round(Number(m[2]) / 102.4) / 10;
  return out;
}

/** The Workload API part of the full bench, shorter: calls/s of each kind, then 1,000 streams opened and closed. */
async function putLoad(socketPath: string): Promise<Record<string, number>> {
  const x509: RawTarget = { socketPath, kind: 'stream', method: 'stream', request: Buffer.alloc(0) };
  const jwt: RawTarget = { socketPath, kind: 'unary', method: 'unary', request: jwtSvidRequest('bench-audience') };
  const out: Record<string, number> = {};
  for (let round = 0; round < 2; round++) {
    out.x509PerS = Math.round(await maxRate(x509, 1500, 100));
    out.jwtPerS = Math.round(await maxRate(jwt, 1500, 100));
  }
  const clients = Array.from({ length: 20 }, () => newClient(socketPath));
  await Promise.all(Array.from({ length: 1000 }, (_, i) => callOnce(clients[i % clients.length]!, x509)));
  for (const c of clients) c.close();
  await new Promise((r) => setTimeout(r, 2000));
  return out;
}

const issuer = await startInProcessIssuer({ trustDomain: 'example.org', config: { X509_SVID_TTL: '1h' } });
const { token } = await issuer.admin<{ token: string }>('POST', '/join-tokens', {});
const entries = Array.from({ length: n }, (_, i) => ({
  id: `e-${i}`,
  spiffeId: `spiffe://example.org/rss/${i}`,
  parentId: `spiffe://example.org/spire/agent/join_token/${token}`,
  selectors: [{ type: 'unix', value: `uid:${i === 0 ? uid : 100000 + i}` }],
}));
for (let i = 0; i < n; i += ADMIN_BATCH_MAX_ITEMS) await issuer.admin('POST', '/entries/batch-create', { entries: entries.slice(i, i + ADMIN_BATCH_MAX_ITEMS) });
const dir = mkdtempSync(join(tmpdir(), 'wisp-agent-rss-'));
const dataDir = join(dir, 'data');
mkdirSync(dataDir, { recursive: true, mode: 0o700 });
const config = join(dir, 'agent.json');
writeFileSync(config, JSON.stringify({ serverUrl: issuer.url, trustDomain: 'example.org', dataDir, socketPath: join(dir, 'agent.sock'), joinToken: token, logLevel: process.env.WISP_RSS_LOG ?? 'warn', syncIntervalSeconds: 1, telemetry: { prometheus: { host: '127.0.0.1', port: 0 } } }));
const agent = spawn(process.execPath, [...nodeArgs, join(REPO_ROOT, 'bin', 'wisp-agent.js'), 'run', '--config', config], { stdio: ['ignore', 'inherit', 'inherit'] });
const started = Date.now();
try {
  const cacheFile = join(dataDir, 'svid-cache.json');
  for (;;) {
    if (agent.exitCode !== null) throw new Error(`wisp-agent exited ${agent.exitCode}`);
    if (Date.now() - started > 180_000) throw new Error('timed out waiting for the SVIDs');
    if (existsSync(cacheFile) && readFileSync(cacheFile, 'utf8').split('"certChain"').length - 1 >= n) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const cachedAfter = Date.now() - started;
  await new Promise((r) => setTimeout(r, 2000));
  if (process.env.WISP_RSS_SIGNAL) agent.kill('SIGUSR2');
  await new Promise((r) => setTimeout(r, 300));
  console.log(JSON.stringify({ svids: n, nodeArgs, cachedAfterMs: cachedAfter, ...status(agent.pid!) }));
  if (load) console.log(JSON.stringify({ afterLoad: true, ...(await putLoad(join(dir, 'agent.sock'))), ...status(agent.pid!) }));
  if (process.env.WISP_RSS_HOLD) {
    console.log(`holding agent pid ${agent.pid} for ${process.env.WISP_RSS_HOLD} s`);
    await new Promise((r) => setTimeout(r, Number(process.env.WISP_RSS_HOLD) * 1000));
  }
} finally {
  agent.kill('SIGTERM');
  await new Promise((r) => agent.once('exit', r));
  await issuer.close();
  rmSync(dir, { recursive: true, force: true });
}
