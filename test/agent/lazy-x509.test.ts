// The agent's start and steady state never evaluate @peculiar/x509 (nor reflect-metadata, tsyringe and the
// @peculiar/asn1-* schemas): ~35 ms of a restart and ~2.7 MB of heap (docs/performance.md, start-up). Two
// checks that can fail: the import graph of the agent's bundle (esbuild's metafile), where only the named
// lazy sites may lead to those modules; and the built bundle itself, started as wisp-agent against the real
// issuer in process, with a probe that reports whether reflect-metadata (which @peculiar/x509 cannot load
// without) ever ran: after attesting and serving, after a restart over its data dir, and, as the control
// that the probe sees a lazy load, after a taint makes the agent load the authority-ID check.
// Beside them, one check that grpc-js' proto loader (channelz and ORCA only) stays out of the bundle.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkloadApiClient } from '../../src/node/workload-api/client.js';
import { startAgentTestIssuer, type AgentTestIssuer } from '../helpers/node/agent/test-issuer.js';

const ROOT = resolve('.');
/** what the agent must not evaluate on its start path and in steady state */
const HEAVY = /node_modules\/(@peculiar\/x509|reflect-metadata|tsyringe|@peculiar\/asn1-[^/]+)\//;
/** the only dynamic imports that may lead there (importer → imported), each a feature that needs general ASN.1 */
const LAZY_SITES: ReadonlyArray<readonly [string, string]> = [
  ['src/agent/cache/svid-cache.ts', 'src/shared/ca/authority-id.ts'], // a tainted X.509 authority: AKIDs
  ['src/agent/attestor/x509pop.ts', 'src/shared/attestation/x509pop.ts'], // the x509pop node attestor
  ['src/agent/attestor/x509pop.ts', '@peculiar/x509'],
  ['src/agent/attestor/x509pop.ts', 'reflect-metadata'],
  ['src/shared/spiffe/bundle.ts', 'src/shared/spiffe/x509.ts'], // the issuer's default certificate reader
];

/** the bundle is built under dist/ at the depth of dist/agent, so its addon lookup (peer.ts) finds build/ */
const outDir = join(ROOT, 'dist', `agent-probe-${process.pid}`);
let metafile: Metafile;

beforeAll(async () => {
  const esbuild = await import('esbuild');
  // @ts-expect-error plain JS without types
  const { bundleOptions } = (await import('../../scripts/build-agent.mjs')) as { bundleOptions: (entry: string, out: string) => Record<string, unknown> };
  mkdirSync(outDir, { recursive: true });
  const result = await esbuild.build({ ...bundleOptions(join(ROOT, 'src', 'agent', 'main.ts'), join(outDir, 'agent.cjs')), sourcemap: false });
  metafile = result.metafile!;
  writeFileSync(
    join(outDir, 'main.mjs'),
    `import { loadAgentBundle } from '../../scripts/build-agent.mjs';\nconst { main } = loadAgentBundle(new URL('./agent.cjs', import.meta.url).pathname);\nmain(process.argv).then((code) => process.exit(code));\n`,
  );
  // on SIGUSR2 the probe writes whether reflect-metadata ran (its Reflect.getMetadata) into PROBE_OUT
  writeFileSync(
    join(outDir, 'probe.cjs'),
    `process.on('SIGUSR2', () => require('node:fs').writeFileSync(process.env.PROBE_OUT, typeof Reflect.getMetadata));\n`,
  );
}, 60_000);

afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe('the agent bundle', () => {
  it('reaches @peculiar/x509 and its schemas only through the named lazy sites (the modules are in the bundle, evaluated on demand)', () => {
    const inputs = metafile.inputs;
    const name = (path: string) => path.replace(/^.*node_modules\/((?:@[^/]+\/)?[^/]+)\/.*$/, '$1');
    const allowed = (from: string, to: string) => LAZY_SITES.some(([f, t]) => f === from && (to === t || name(to) === t));
    const entry = Object.keys(inputs).find((f) => f.endsWith('src/agent/main.ts'))!;
    const via = new Map<string, string | undefined>([[entry, undefined]]);
    const queue = [entry];
    while (queue.length > 0) {
      const file = queue.shift()!;
      for (const imp of inputs[file]?.imports ?? []) {
        if (imp.external || via.has(imp.path)) continue;
        if (imp.kind === 'dynamic-import' && allowed(file, imp.path)) continue;
        via.set(imp.path, file);
        queue.push(imp.path);
      }
    }
    const chainTo = (file: string) => {
      const chain: string[] = [];
      for (let f: string | undefined = file; f !== undefined; f = via.get(f)) chain.unshift(f);
      return chain.join(' -> ');
    };
    // each way in once: the first heavy module on its chain
    const reached = [...via.keys()].filter((f) => HEAVY.test(f) && !HEAVY.test(via.get(f) ?? ''));
    expect(reached.map(chainTo)).toEqual([]);
    // and the lazy sites are real: the bundle holds those modules, and each site's dynamic import is in the graph
    expect(Object.keys(inputs).some((f) => /node_modules\/@peculiar\/x509\//.test(f))).toBe(true);
    for (const [from, to] of LAZY_SITES) {
      const imports = inputs[Object.keys(inputs).find((f) => f.endsWith(from))!]?.imports ?? [];
      expect(imports.some((i) => i.kind === 'dynamic-import' && (i.path.endsWith(to) || name(i.path) === to)), `${from} imports ${to} lazily`).toBe(true);
    }
  });
});

describe('the agent bundle leaves out grpc-js\' proto loader', () => {
  it('holds no @grpc/proto-loader nor protobufjs (channelz and ORCA only, both off), only the stub that says so', () => {
    const files = Object.keys(metafile.inputs);
    expect(files.filter((f) => /node_modules\/(@grpc\/proto-loader|protobufjs|long)\//.test(f))).toEqual([]);
    // grpc-js' two lazy requires of it are still there, and lead to the stub
    const stub = files.find((f) => f.endsWith('scripts/bundle-stubs/grpc-proto-loader.cjs'));
    expect(stub).toBeDefined();
    const importers = files.filter((f) => metafile.inputs[f]!.imports.some((i) => i.path === stub));
    expect(importers.map((f) => f.replace(/^.*node_modules\//, ''))).toEqual(['@grpc/grpc-js/build/src/channelz.js', '@grpc/grpc-js/build/src/orca.js']);
  });
});

describe('wisp-agent run (the built bundle)', () => {
  let issuer: AgentTestIssuer;
  let dir: string;
  let agent: ChildProcess | undefined;
  beforeAll(async () => {
    issuer = await startAgentTestIssuer({ trustDomain: 'example.org', clock: Date.now });
    dir = mkdtempSync(join(tmpdir(), 'wisp-lazy-x509-'));
  });
  afterAll(async () => {
    await stop();
    await issuer.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const socketPath = () => join(dir, 'api.sock');
  const probeOut = () => join(dir, 'probe.txt');

  function start(configPath: string): void {
    rmSync(socketPath(), { force: true });
    agent = spawn(process.execPath, ['--require', join(outDir, 'probe.cjs'), join(outDir, 'main.mjs'), 'run', '--config', configPath], {
      env: { ...process.env, PROBE_OUT: probeOut() },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
  }
  async function stop(): Promise<void> {
    const child = agent;
    agent = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise((done) => child.once('exit', done).kill('SIGTERM'));
  }
  /** what the agent process says of reflect-metadata: 'undefined' if it never ran */
  async function probe(): Promise<string> {
    rmSync(probeOut(), { force: true });
    agent!.kill('SIGUSR2');
    await until(async () => existsSync(probeOut()) && readFileSync(probeOut(), 'utf8') !== '');
    return readFileSync(probeOut(), 'utf8');
  }
  /** the first FetchX509SVID answer: SPIFFE ID and leaf-first chain bytes */
  async function firstSvid(): Promise<{ spiffeId: string; chain: string }> {
    const client = createWorkloadApiClient(`unix://${socketPath()}`);
    try {
      for await (const res of client.fetchX509SVID({ signal: AbortSignal.timeout(5_000) })) {
        if (res.svids.length > 0) return { spiffeId: res.svids[0]!.spiffeId, chain: Buffer.from(res.svids[0]!.x509Svid).toString('base64') };
      }
      throw new Error('stream ended');
    } finally {
      client.close();
    }
  }
  async function until(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check().catch(() => false))) {
      if (agent?.exitCode !== null && agent?.exitCode !== undefined) throw new Error(`wisp-agent exited ${agent.exitCode}`);
      if (Date.now() > deadline) throw new Error('timed out waiting');
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const served = async () => {
    let svid: { spiffeId: string; chain: string } | undefined;
    await until(async () => existsSync(socketPath()) && (svid = await firstSvid()) !== undefined);
    return svid!;
  };

  it('attests, serves, restarts over its data dir and serves without evaluating them; a taint loads them', async () => {
    const token = await issuer.createJoinToken();
    await issuer.addEntry('e-me', '/me', [{ type: 'unix', value: `uid:${process.getuid!()}` }], { parentId: issuer.agentIdOf(token) });
    const configPath = join(dir, 'agent.json');
    writeFileSync(configPath, JSON.stringify({ serverUrl: issuer.url, trustDomain: 'example.org', dataDir: join(dir, 'data'), socketPath: socketPath(), joinToken: token, logLevel: 'warn', syncIntervalSeconds: 1 }));

    start(configPath);
    expect((await served()).spiffeId).toBe('spiffe://example.org/me');
    const jwt = await (async () => {
      const client = createWorkloadApiClient(`unix://${socketPath()}`);
      try {
        return await client.fetchJWTSVID({ audience: ['probe'] });
      } finally {
        client.close();
      }
    })();
    expect(jwt.svids[0]!.spiffeId).toBe('spiffe://example.org/me');
    await new Promise((r) => setTimeout(r, 1_500)); // a steady-state sync or more
    expect(await probe()).toBe('undefined');
    await stop();

    start(configPath); // the join token is spent: this runs only from the stored identity, bundle and cache
    const before = await served();
    expect(before.spiffeId).toBe('spiffe://example.org/me');
    expect(await probe()).toBe('undefined');

    // the control: tainting the authority that signed it makes the agent load the AKID check, and the probe sees it
    const la = <T>(path: string, body?: unknown) => issuer.admin<T>(body === undefined && !path.endsWith('prepare') ? 'GET' : 'POST', `/localauthority${path}`, body);
    const first = (await la<{ active: { authorityId: string } }>('/x509')).active.authorityId;
    const next = (await la<{ preparedAuthority: { authorityId: string } }>('/x509/prepare')).preparedAuthority.authorityId;
    await la('/x509/activate', { authorityId: next });
    await la('/x509/taint', { authorityId: first });
    await until(async () => (await firstSvid()).chain !== before.chain);
    expect(await probe()).toBe('function');
  }, 90_000);
});
