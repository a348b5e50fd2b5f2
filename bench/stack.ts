/**
 * The issuer under benchmark: the Worker bundled by wrangler (the same bundle `wrangler deploy` uploads), run
 * by Miniflare's API in workerd with a local D1 (migrations applied by wrangler) and the CA Durable Object,
 * listening on loopback without the `wrangler dev` proxy. A second worker, `limits`, measures the crypto
 * limits in the same workerd. Also: a signed agent-API client (attested with a join token).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import { createAgentProof, randomJti } from '../src/shared/agent-proof.js';
import { CONFIG_DEFAULTS } from '../src/worker/config.js';
import { REPO_ROOT } from '../scripts/local-stack.js';
import { exchangeBenchVars } from './exchange.js';

export const TD = 'example.org';
export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
const D1_ID = '00000000-0000-0000-0000-000000000000';
const WRANGLER = join(REPO_ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const ESBUILD = join(REPO_ROOT, 'node_modules', '.bin', 'esbuild');
/** wrangler.toml's, so the bench runs the date that is deployed */
const COMPATIBILITY_DATE = /^compatibility_date = "([\d-]+)"$/m.exec(readFileSync(join(REPO_ROOT, 'wrangler.toml'), 'utf8'))![1]!;

/**
 * fetch, retried once when a kept-alive loopback connection was closed by workerd while idle (undici then
 * fails with ECONNRESET before the request reached the Worker).
 */
export async function fetchRetry(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (e) {
    if ((e as { cause?: { code?: string } }).cause?.code !== 'ECONNRESET') throw e;
    return fetch(url, init);
  }
}

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
}

export interface Issuer {
  url: string;
  /**
   * The Worker itself, not through Miniflare's entry worker (a JS proxy that costs workerd CPU per request
   * and that production does not have: Cloudflare's edge routes outside the Worker). Routes only: no
   * CF-Connecting-IP is set, so attestation's per-address limit sees one shared source.
   */
  directUrl: string;
  mf: Miniflare;
  admin<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  /** time of one request to the limits worker, ms */
  limits(path: string, n: number): Promise<number>;
  d1(): Promise<D1Like>;
  stop(): Promise<void>;
}

export interface D1Like {
  prepare(sql: string): { bind(...v: unknown[]): { run(): Promise<unknown>; first<T>(): Promise<T | null> } };
}

/**
 * `inspectorPort`: expose workerd's DevTools protocol (profiling the issuer under load). `mainModule`: a module
 * in `dir` run as the Worker instead of the bundle, which it imports as `./worker/index.js` (bench/scale's meter).
 */
export async function startIssuer(dir: string, options: { inspectorPort?: number; mainModule?: string } = {}): Promise<Issuer> {
  const state = join(dir, 'state');
  mkdirSync(state, { recursive: true });
  run(process.execPath, [WRANGLER, 'deploy', '--dry-run', '--outdir', join(dir, 'worker')]);
  run(ESBUILD, [join(REPO_ROOT, 'bench', 'limits-worker.ts'), '--bundle', '--format=esm', `--outfile=${join(dir, 'limits.js')}`, '--log-level=warning']);
  run(process.execPath, [WRANGLER, 'd1', 'migrations', 'apply', 'DB', '--local', '--persist-to', state]);
  const bindings = {
    TRUST_DOMAIN: TD,
    JWT_ISSUER: 'http://127.0.0.1',
    ...CONFIG_DEFAULTS,
    ADMIN_TOKEN,
    KEY_ENCRYPTION_SECRET: 'bench-kek-0123456789abcdef0123456789abcdef',
    ...(await exchangeBenchVars()),
  };
  // Miniflare 5 takes { workers: [{ config }] }; its own converter keeps the v4 shape readable here
  const mf = new Miniflare(convertV4MiniflareOptions({
    host: '127.0.0.1',
    port: 0,
    ...(options.inspectorPort ? { inspectorPort: options.inspectorPort } : {}),
    // the Worker's JSON logs would drown the table
    handleStructuredLogs() {}, // (Miniflare 5 has no handleRuntimeStdio: workerd's output arrives as structured logs)
    // where `wrangler d1 migrations apply --persist-to state` wrote (Miniflare 5 drops v4's d1Persist and
    // durableObjectsPersist: one root, <root>/d1 and <root>/do)
    resourcePersistencePath: join(state, 'v3'),
    workers: [
      {
        name: 'wisp',
        modulesRoot: dir,
        ...(options.mainModule
          ? { modules: [{ type: 'ESModule' as const, path: join(dir, options.mainModule) }, { type: 'ESModule' as const, path: join(dir, 'worker', 'index.js') }] }
          : { modules: true, scriptPath: join(dir, 'worker', 'index.js') }),
        compatibilityDate: COMPATIBILITY_DATE,
        bindings,
        d1Databases: { DB: D1_ID },
        durableObjects: { CA: { className: 'TrustDomainCa', useSQLite: true }, NOTIFIER: { className: 'AgentNotifier', useSQLite: true } },
        // the Worker on a socket of its own, without Miniflare's entry worker in front (see Issuer.directUrl)
        unsafeDirectSockets: [{ host: '127.0.0.1', port: 0 }],
      },
      {
        name: 'limits',
        modules: true,
        modulesRoot: dir,
        scriptPath: join(dir, 'limits.js'),
        compatibilityDate: COMPATIBILITY_DATE,
        bindings: { TRUST_DOMAIN: TD },
        durableObjects: { CA: { className: 'TrustDomainCa', scriptName: 'wisp', useSQLite: true } },
      },
    ],
  }));
  const url = (await mf.ready).toString().replace(/\/$/, '');
  const limitsWorker = (await mf.getWorker('limits')) as unknown as { fetch(url: string): Promise<{ status: number; text(): Promise<string> }> };
  const directUrl = (await mf.unsafeGetDirectURL('wisp')).toString().replace(/\/$/, '');
  const issuer: Issuer = {
    url,
    directUrl,
    mf,
    async admin<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await fetchRetry(`${url}/admin/v1${path}`, {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
      return (text ? JSON.parse(text) : undefined) as T;
    },
    async limits(path, n) {
      const t0 = performance.now();
      const res = await limitsWorker.fetch(`http://limits${path}?n=${n}`);
      const text = await res.text();
      if (res.status !== 200) throw new Error(`limits ${path}: ${res.status} ${text}`);
      return performance.now() - t0;
    },
    async d1() {
      return (await mf.getD1Database('DB')) as unknown as D1Like;
    },
    stop: () => mf.dispose(),
  };
  await issuer.limits('/noop', 0);
  return issuer;
}

type Key = Parameters<typeof crypto.subtle.sign>[1];
type KeyPair = { publicKey: Key; privateKey: Key };

export const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const ES256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** A DER PKCS#10 CSR for a fresh P-256 key. */
export async function makeCsr(): Promise<{ der: Uint8Array; keys: KeyPair }> {
  const keys = (await crypto.subtle.generateKey(P256, false, ['sign', 'verify'])) as KeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=bench', keys, signingAlgorithm: ES256 });
  return { der: new Uint8Array(csr.rawData), keys };
}

export const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** An attested agent identity held by the benchmark, sending signed agent-API requests. */
export interface BenchAgent {
  agentId: string;
  call<T = unknown>(path: string, body: unknown): Promise<T>;
  /** prepares a signed request (proof made beforehand) and returns a function that sends it; a GET has no body */
  prepare(path: string, body: unknown, method?: 'POST' | 'GET'): Promise<() => Promise<Response>>;
}

/** `direct`: the agent's signed calls go to `issuer.directUrl` (attestation still goes through `url`). */
export async function attestAgent(issuer: Issuer, options: { direct?: boolean } = {}): Promise<BenchAgent> {
  const base = options.direct ? issuer.directUrl : issuer.url;
  const { token } = await issuer.admin<{ token: string }>('POST', '/join-tokens', { ttlSeconds: 600 });
  const csr = await makeCsr();
  const res = await fetchRetry(`${issuer.url}/agent/v1/attest`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ attestationType: 'join_token', payload: { token }, csr: b64(csr.der) }),
  });
  if (!res.ok) throw new Error(`attest: ${res.status} ${await res.text()}`);
  const { svid } = (await res.json()) as { svid: { spiffeId: string; certChain: string[] } };
  const chain = svid.certChain.map((c) => new Uint8Array(Buffer.from(c, 'base64')));
  const agent: BenchAgent = {
    agentId: svid.spiffeId,
    async prepare(path, body, method = 'POST') {
      const raw = method === 'GET' ? '' : JSON.stringify(body);
      const authorization = await createAgentProof({
        method,
        pathAndQuery: path,
        body: raw,
        certChainDer: chain,
        privateKey: csr.keys.privateKey as never,
        now: Date.now() / 1000,
        jti: randomJti(),
      });
      if (method === 'GET') return () => fetchRetry(`${base}${path}`, { headers: { authorization } });
      return () => fetchRetry(`${base}${path}`, { method: 'POST', headers: { authorization, 'content-type': 'application/json' }, body: raw });
    },
    async call<T>(path: string, body: unknown): Promise<T> {
      const res = await (await agent.prepare(path, body))();
      const text = await res.text();
      if (!res.ok) throw new Error(`${path}: ${res.status} ${text.slice(0, 500)}`);
      return JSON.parse(text) as T;
    },
  };
  return agent;
}
