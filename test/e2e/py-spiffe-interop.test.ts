// Interop: py-spiffe (`spiffe` and `spiffe-tls` from PyPI, pinned below) against a real wisp-agent and issuer,
// the library used unchanged. The setup builds a venv in ~/.cache/wisp-test/py-spiffe (reused across runs) and
// runs test/interop/python/check.py. The socket is laid out as `npm start` lays it out (scripts/local-layout.ts),
// so the workloads of other uids reach it as they would there.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareLocalLayout } from '../../scripts/local-layout.js';
import { REPO_ROOT, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { startTwoWorkloads } from '../helpers/node/two-workloads.js';
import { asUid } from '../helpers/node/other-uid.js';

const PY_SPIFFE_VERSIONS = { spiffe: '0.3.2', 'spiffe-tls': '0.4.0' } as const;

const TD = 'py.interop.example';
const ID_SERVER = `spiffe://${TD}/svc/server`;
const ID_CLIENT = `spiffe://${TD}/svc/client`;
const CLIENT_UID = 65534;
const VALIDATOR_UID = 65533; // no entry: a validator-only workload
const isRoot = process.getuid?.() === 0;
const hasSetpriv = spawnSync('setpriv', ['--version']).status === 0;
const CHECK = join(REPO_ROOT, 'test', 'interop', 'python', 'check.py');

/** Why py-spiffe cannot run here (no python3, or no venv module), else undefined. */
function pythonMissing(): string | undefined {
  const py = spawnSync('python3', ['-c', 'import venv, ensurepip'], { encoding: 'utf8' });
  if (py.error) return 'python3 is not on PATH';
  if (py.status !== 0) return `python3 has no venv/ensurepip: ${py.stderr.trim()}`;
  return undefined;
}
const missing = pythonMissing();

/** The venv with the pinned py-spiffe, built once into the cache; returns its python. */
function ensureVenv(): string {
  const tag = Object.entries(PY_SPIFFE_VERSIONS).map(([n, v]) => `${n}-${v}`).join('_');
  const venv = join(homedir(), '.cache', 'wisp-test', 'py-spiffe', tag);
  const python = join(venv, 'bin', 'python');
  const marker = join(venv, '.installed');
  if (existsSync(marker)) return python;
  rmSync(venv, { recursive: true, force: true });
  mkdirSync(join(venv, '..'), { recursive: true });
  const step = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.error}`);
  };
  step('python3', ['-m', 'venv', venv]);
  step(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', ...Object.entries(PY_SPIFFE_VERSIONS).map(([n, v]) => `${n}==${v}`)]);
  spawnSync('touch', [marker]);
  return python;
}

let root: string;
let python: string;
let issuer: RunningIssuer;
let agent: RunningAgent;
let socket: string;

function check(args: string[], uid?: number): Record<string, unknown>[] {
  const [cmd, argv] = asUid(uid, [python, CHECK, '--socket', `unix://${socket}`, ...args]);
  const res = spawnSync(cmd, argv, { encoding: 'utf8', timeout: 90_000, env: { ...process.env, HOME: tmpdir() } });
  if (res.status !== 0) throw new Error(`py-spiffe check ${args.join(' ')} failed (${res.status}): ${res.stderr}`);
  return res.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Why another uid cannot run the venv's python (e.g. a home directory closed to others), else undefined. */
function otherUidBlocked(): string | undefined {
  if (!isRoot || !hasSetpriv) return 'needs root and setpriv to run workloads as other uids';
  const r = spawnSync(...asUid(CLIENT_UID, [python, '-c', 'import spiffe, spiffetls']), { encoding: 'utf8' });
  return r.status === 0 ? undefined : `uid ${CLIENT_UID} cannot run the venv's python: ${r.stderr.trim() || r.error}`;
}

describe.skipIf(missing !== undefined)(`py-spiffe ${PY_SPIFFE_VERSIONS.spiffe} / spiffe-tls ${PY_SPIFFE_VERSIONS['spiffe-tls']} against wisp-agent`, () => {
  let blocked: string | undefined;

  beforeAll(async () => {
    python = ensureVenv();
    root = mkdtempSync(join(tmpdir(), 'wisp-py-interop-'));
    chmodSync(root, 0o755); // as a checkout would be; the layout below decides the rest
    const layout = prepareLocalLayout(join(root, '.wisp-local'));
    socket = layout.socketPath;
    ({ issuer, agent } = await startTwoWorkloads({ trustDomain: TD, serverId: ID_SERVER, clientId: ID_CLIENT, clientUid: CLIENT_UID, x509SvidTtl: '1h', issuerStateDir: layout.issuerDir, agentDataDir: layout.agentDataDir, socketPath: socket }));
    await waitFor('an SVID for py-spiffe', async () => {
      try {
        return check(['x509'])[0]?.spiffeId === ID_SERVER ? true : undefined;
      } catch {
        return undefined;
      }
    }, 60_000, 500);
    blocked = otherUidBlocked();
  }, 600_000);

  afterAll(async () => {
    await agent?.stop();
    await issuer?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('X509Source: the SVID of the entry, its chain to the bundle, its key', () => {
    const [out] = check(['x509']);
    expect(out).toMatchObject({ spiffeId: ID_SERVER, chainLength: 1, bundles: [TD], chainsToBundle: true, keyMatches: true });
    expect(out!.expiresAt as number).toBeGreaterThan(Date.now() / 1000);
  });

  it('JwtSource: fetches a JWT-SVID, validates it against the JWT bundle and through ValidateJWTSVID', () => {
    const [out] = check(['jwt', '--audience', 'py-interop']);
    expect(out).toMatchObject({ spiffeId: ID_SERVER, audience: ['py-interop'], local: ID_SERVER, remote: ID_SERVER, wrongAudienceRejected: true });
  });

  it('ValidateJWTSVID for a validator-only process of a uid with no entry; a bad token still fails', (ctx) => {
    if (blocked) ctx.skip(blocked);
    const [jwt] = check(['jwt', '--audience', 'legacy-service']);
    const [ok] = check(['validate', '--audience', 'legacy-service', '--token', jwt!.token as string], VALIDATOR_UID);
    expect(ok).toEqual({ ok: true, spiffeId: ID_SERVER });
    const [bad] = check(['validate', '--audience', 'someone-else', '--token', jwt!.token as string], VALIDATOR_UID);
    expect(bad).toMatchObject({ ok: false });
    expect(String(bad!.message)).toMatch(/INVALID_ARGUMENT|audience/i);
  });

  it('spiffe-tls: mutual TLS between two uids, each authorizing the other by SPIFFE ID', async (ctx) => {
    if (blocked) ctx.skip(blocked);
    const server = spawn(python, [CHECK, '--socket', `unix://${socket}`, 'serve', '--peer', ID_CLIENT], { stdio: ['ignore', 'pipe', 'pipe'] });
    let serverOut = '';
    let serverErr = '';
    server.stdout.on('data', (d) => (serverOut += d));
    server.stderr.on('data', (d) => (serverErr += d));
    const exited = new Promise((r) => server.once('exit', r));
    try {
      const addr = await waitFor('the spiffe-tls listener', async () => {
        if (server.exitCode !== null) throw new Error(`server exited: ${serverErr}`);
        const line = serverOut.split('\n').find((l) => l.includes('listening'));
        return line ? (JSON.parse(line) as { listening: string }).listening : undefined;
      }, 30_000, 100);
      const [dialed] = check(['dial', '--addr', addr, '--peer', ID_SERVER], CLIENT_UID);
      expect(dialed).toEqual({ received: 'pong', peer: ID_SERVER });
      await exited;
      const served = JSON.parse(serverOut.trim().split('\n').pop()!);
      expect(served).toEqual({ received: 'ping', peer: ID_CLIENT });
    } finally {
      server.kill();
    }
  }, 90_000);
});

describe.skipIf(missing === undefined)('py-spiffe interop', () => {
  it(`is skipped: ${missing}`, () => {
    expect(missing).toBeDefined();
  });
});
