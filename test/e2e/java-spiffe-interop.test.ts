// Interop: java-spiffe (io.spiffe java-spiffe-core / java-spiffe-provider, grpc-java netty-shaded) against a
// real wisp-agent and issuer, the client unchanged. test/interop/java is built here with Maven (artifacts from
// Maven Central into ~/.cache/wisp-test/m2; the build directory in ~/.cache/wisp-test, not the repository).
// grpc-java sends the socket's path as `:authority`, which Node's HTTP/2 refuses on its own: this suite is
// what proves src/agent/workload-api/authority.ts lets it through.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { startTwoWorkloads } from '../helpers/node/two-workloads.js';
import { asUid } from '../helpers/node/other-uid.js';

const TD = 'interop.example';
const ID_SERVER = `spiffe://${TD}/svc/server`;
const ID_CLIENT = `spiffe://${TD}/svc/client`;
const CLIENT_UID = 65534;
const isRoot = process.getuid?.() === 0;
const onPath = (cmd: string) => spawnSync(cmd, ['-version'], { stdio: 'ignore' }).error === undefined;
const missing = ['java', 'mvn'].filter((cmd) => !onPath(cmd));
const CACHE = join(homedir(), '.cache', 'wisp-test');

let root: string;
let classpath: string;
let issuer: RunningIssuer;
let agent: RunningAgent;
let socket: string;

function javaArgs(args: string[]): string[] {
  return ['-cp', classpath, 'wisp.interop.Main', '-socket', `unix:${socket}`, ...args];
}

function run(args: string[], uid?: number) {
  const res = spawnSync(...asUid(uid, ['java', ...javaArgs(args)]), { encoding: 'utf8', timeout: 90_000 });
  if (res.status !== 0) throw new Error(`java-spiffe client ${args.join(' ')} failed (${res.status}): ${res.stderr}`);
  return res.stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe.skipIf(missing.length > 0)(`java-spiffe 0.8.17 against wisp-agent${missing.length ? ` (skipped: ${missing.join(' and ')} not on PATH)` : ''}`, () => {
  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'wisp-java-interop-'));
    chmodSync(root, 0o755);
    const target = join(CACHE, 'java-interop', 'target');
    mkdirSync(target, { recursive: true });
    execFileSync('mvn', ['-q', '-B', 'package', `-Dmaven.repo.local=${join(CACHE, 'm2')}`, `-Dwisp.buildDir=${target}`], {
      cwd: join(REPO_ROOT, 'test', 'interop', 'java'),
      stdio: 'pipe',
    });
    const lib = join(target, 'lib');
    classpath = [join(target, 'classes'), ...readdirSync(lib).map((f) => join(lib, f))].join(':');
    if (isRoot) {
      // the other uid reads the classes and jars in the cache
      for (const dir of [homedir(), join(homedir(), '.cache'), CACHE, join(CACHE, 'java-interop')]) chmodSync(dir, 0o755);
      execFileSync('chmod', ['-R', 'a+rX', target]);
    }
    socket = join(root, 'run', 'agent.sock');
    ({ issuer, agent } = await startTwoWorkloads({ trustDomain: TD, serverId: ID_SERVER, clientId: ID_CLIENT, clientUid: CLIENT_UID, x509SvidTtl: '60s', issuerStateDir: join(root, 'issuer'), agentDataDir: join(root, 'agent'), socketPath: socket }));
    // until the agent has synced, FetchX509SVID has no SVID for this uid; a refused stream will never pass
    await waitFor('an SVID for java-spiffe', async () => {
      const r = spawnSync('java', javaArgs(['-mode', 'x509']), { encoding: 'utf8', timeout: 60_000 });
      if (/RST_STREAM|PROTOCOL_ERROR/.test(r.stderr)) throw new Error(`the agent refused java-spiffe's stream: ${r.stderr.split('\n').slice(0, 3).join(' ')}`);
      return r.status === 0 ? true : undefined;
    }, 120_000, 1000);
  }, 300_000);

  afterAll(async () => {
    await agent?.stop();
    await issuer?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('X509Source gets the entry\'s X509-SVID, and its chain validates against the bundle (SpiffeTrustManager)', () => {
    const [out] = run(['-mode', 'x509']);
    expect(out).toMatchObject({ spiffeId: ID_SERVER, chain: 1, bundleAuthorities: 1 });
    expect(out!.expiresAt as number).toBeGreaterThan(Date.now() / 1000);
  }, 60_000);

  it('JwtSource gets a JWT-SVID; it validates with the JWT bundle (JwtSvid.parseAndValidate) and through ValidateJWTSVID', () => {
    const [out] = run(['-mode', 'jwt', '-audience', 'interop-test']);
    expect(out).toMatchObject({ spiffeId: ID_SERVER, local: ID_SERVER, remote: ID_SERVER });
    expect(out!.expiresAt as number).toBeGreaterThan(Date.now() / 1000);
  }, 60_000);

  it.skipIf(!isRoot)('SpiffeKeyManager/SpiffeTrustManager: mutual TLS between two uids, each authorizing the other by SPIFFE ID', async () => {
    const server = spawn('java', javaArgs(['-mode', 'serve', '-peer', ID_CLIENT]), { stdio: ['ignore', 'pipe', 'pipe'] });
    let serverOut = '';
    let serverErr = '';
    server.stdout.on('data', (d) => (serverOut += d));
    server.stderr.on('data', (d) => (serverErr += d));
    const addr = await waitFor('the java TLS listener', async () => {
      if (server.exitCode !== null) throw new Error(`server exited: ${serverErr}`);
      const line = serverOut.split('\n').find((l) => l.includes('listening'));
      return line ? (JSON.parse(line) as { listening: string }).listening : undefined;
    }, 60_000, 100);
    const [dialed] = run(['-mode', 'dial', '-addr', addr, '-peer', ID_SERVER], CLIENT_UID);
    expect(dialed).toEqual({ received: 'pong', peer: ID_SERVER });
    if (server.exitCode === null) await new Promise((r) => server.once('exit', r));
    expect(server.exitCode, serverErr).toBe(0);
    const served = JSON.parse(serverOut.trim().split('\n').pop()!);
    expect(served).toEqual({ received: 'ping', peer: ID_CLIENT });
  }, 120_000);
});
