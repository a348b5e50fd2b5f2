// End to end: the npm package on its own. `npm pack` (its prepack builds the bundles), `npm install -g` of the
// tarball into an empty prefix, then the installed `wisp` and `wisp-agent`, run with an empty environment and a
// PATH of only that prefix's bin and node, against the real issuer (wrangler dev): the CLI makes the join
// token and the entry, the agent attests with it and a real Workload API client gets the X509-SVID. The
// installed package has no src/ and no tsx, so what runs is the prebuilt bundles.
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkloadApiClient, type WorkloadApiClient } from '../../src/node/workload-api/client.js';
import { REPO_ROOT, startAgent, startIssuer, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { expectServedX509Svid } from '../helpers/node/served-x509-svid.js';

const TD = 'example.org';
const ID = `spiffe://${TD}/workload/from-package`;
const uid = process.getuid?.() ?? 0;

let root: string;
let prefix: string;
let installed: string;
let issuer: RunningIssuer | undefined;
let agent: RunningAgent | undefined;
let client: WorkloadApiClient | undefined;

/** The environment of the installed commands: nothing but PATH (the prefix's bin, then node) and HOME. */
function packageEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: `${join(prefix, 'bin')}:${dirname(process.execPath)}`, HOME: root, ...extra };
}

function run(command: string, args: string[], extra: Record<string, string> = {}): string {
  const r = spawnSync(join(prefix, 'bin', command), args, { env: packageEnv(extra), cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-pack-'));
  prefix = join(root, 'prefix');
  mkdirSync(join(prefix, 'lib'), { recursive: true }); // npm install -g expects <prefix>/lib to exist
  // as a user's shell: without the npm_* variables of the npm that runs this test (the repo's .npmrc settings)
  const userEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  const npm = (args: string[], cwd: string) => {
    // npm from PATH (a Node from the registry has none beside it); it runs on the first node there, this one
    const r = spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...userEnv, npm_config_loglevel: 'error' } });
    if (r.status !== 0) throw new Error(`npm ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  npm(['pack', '--pack-destination', root], REPO_ROOT);
  const tarball = readdirSync(root).find((f) => /^wisp-.*\.tgz$/.test(f));
  if (!tarball) throw new Error(`npm pack wrote no wisp-*.tgz into ${root}`);
  npm(['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', join(root, tarball)], root);
  installed = join(prefix, 'lib', 'node_modules', 'wisp');

  issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD });
  const cli = { WISP_SERVER_URL: issuer.url, WISP_ADMIN_TOKEN: issuer.adminToken };
  const { token } = JSON.parse(run('wisp', ['token', 'generate', '--ttl', '300', '--output', 'json'], cli)) as { token: string };
  run('wisp', ['entry', 'create', '-spiffeID', ID, '-parentID', `spiffe://${TD}/spire/agent/join_token/${token}`, '-selector', `unix:uid:${uid}`], cli);
  const socketPath = join(root, 'run', 'api.sock');
  agent = await startAgent({
    serverUrl: issuer.url, trustDomain: TD, dataDir: join(root, 'data'), socketPath, joinToken: token, syncIntervalSeconds: 1,
    packaged: { executable: join(prefix, 'bin', 'wisp-agent'), env: packageEnv(), cwd: root },
  });
  client = createWorkloadApiClient(`unix://${socketPath}`);
}, 300_000);

afterAll(async () => {
  client?.close();
  await agent?.stop();
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('the npm package, installed with npm install -g from its tarball', () => {
  it('ships the bundles, the prebuilt addon and no sources or dev tools', () => {
    for (const f of ['bin/wisp.js', 'bin/wisp-agent.js', 'dist/agent/agent.cjs', 'dist/cli/cli.cjs', 'dist/csi/csi.cjs', 'dist/controller/controller.cjs', 'build/peercred.node']) expect(existsSync(join(installed, f)), f).toBe(true);
    expect(existsSync(join(installed, 'src'))).toBe(false);
    expect(existsSync(join(installed, 'node_modules', 'tsx'))).toBe(false);
    expect(existsSync(join(installed, 'node_modules', 'wrangler'))).toBe(false);
  });

  it('wisp-agent attests with the join token the installed wisp made, and serves the entry it made', async () => {
    await expectServedX509Svid(client!, ID);
  });

  it('wisp-csi-driver and wisp-controller-manager run from their bundles: their own parsers answer', () => {
    const answer = (command: string, args: string[]) => spawnSync(join(prefix, 'bin', command), args, { env: packageEnv(), cwd: root, encoding: 'utf8' });
    const csi = answer('wisp-csi-driver', ['-no-such-flag']);
    expect([csi.status, csi.stderr.trim()]).toEqual([2, "wisp-csi-driver: unknown option '--no-such-flag'"]);
    const missing = join(root, 'no-such-config.yaml');
    const controller = answer('wisp-controller-manager', ['--config', missing]);
    expect([controller.status, controller.stderr.trim()]).toEqual([2, `wisp-controller-manager: config file ${missing}: cannot read (ENOENT)`]);
  });

  it('wisp lists what it made, in the SPIRE shape', () => {
    const shown = run('wisp', ['entry', 'show', '-spiffeID', ID], { WISP_SERVER_URL: issuer!.url, WISP_ADMIN_TOKEN: issuer!.adminToken });
    expect(shown).toMatch(/^Found 1 entry$/m);
    expect(shown).toContain(`SPIFFE ID        : ${ID}`);
  });
});
