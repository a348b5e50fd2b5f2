/**
 * Runs Wisp locally: the issuer in workerd (`wrangler dev`, local D1 and Durable Objects, migrations applied)
 * and wisp-agent processes. Used by `npm start` and by the end-to-end tests, so both exercise the same path.
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(import.meta.dirname, '..');
const WRANGLER = join(REPO_ROOT, 'node_modules', 'wrangler', 'bin', 'wrangler.js');
const TSX = join(REPO_ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs');
const AGENT_MAIN = join(REPO_ROOT, 'src', 'agent', 'main.ts');
/** scripts/build-agent.mjs (plain JS; a non-literal specifier so tsc does not look for its types) */
const BUILD_AGENT: string = './build-agent.mjs';

/**
 * How to run the agent: the precompiled bundle dist/agent/main.js when it is there and not older than its
 * sources (scripts/build-agent.mjs), else src/agent/main.ts through tsx.
 */
async function agentCommand(): Promise<string[]> {
  const { agentBundle } = (await import(BUILD_AGENT)) as { agentBundle(): string | undefined };
  const bundle = agentBundle();
  return bundle ? [bundle] : [TSX, AGENT_MAIN];
}

export interface IssuerOptions {
  /** directory for wrangler's local D1/DO state */
  stateDir: string;
  port?: number;
  trustDomain?: string;
  /** extra [vars], e.g. { X509_SVID_TTL: '20s' } */
  vars?: Record<string, string>;
  /** stream the issuer's output to this process's stderr */
  verbose?: boolean;
  /** run wrangler in its own process group, so a test can signal it and workerd at once (process.kill(-pid)) */
  detached?: boolean;
  /** extra environment of wrangler dev, e.g. NODE_EXTRA_CA_CERTS (miniflare adds it to the CAs outbound fetch trusts) */
  env?: Record<string, string>;
}

export interface RunningIssuer {
  url: string;
  port: number;
  adminToken: string;
  trustDomain: string;
  process: ChildProcess;
  /** what wrangler and the Worker wrote (stdout and stderr), the last 100-200 kB */
  output(): string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? REPO_ROOT, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolveRun(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${out}`))));
  });
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

/** Stops a child process: SIGTERM, then SIGKILL after a grace period. */
export function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveStop();
    });
    child.kill('SIGTERM');
  });
}

/** Starts the issuer with `wrangler dev` over a persistent local state directory. */
export async function startIssuer(opts: IssuerOptions): Promise<RunningIssuer> {
  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 }); // D1 and the CA's keys: the owner's only
  const port = opts.port ?? (await freePort());
  const trustDomain = opts.trustDomain ?? 'example.org';
  const adminToken = opts.vars?.ADMIN_TOKEN ?? `local-admin-${randomBytes(24).toString('hex')}`;
  const url = `http://127.0.0.1:${port}`;
  const vars: Record<string, string> = {
    TRUST_DOMAIN: trustDomain,
    JWT_ISSUER: url,
    ADMIN_TOKEN: adminToken,
    KEY_ENCRYPTION_SECRET: opts.vars?.KEY_ENCRYPTION_SECRET ?? `local-kek-${randomBytes(24).toString('hex')}`,
    ...opts.vars,
  };
  const persist = ['--persist-to', opts.stateDir];
  await run(process.execPath, [WRANGLER, 'd1', 'migrations', 'apply', 'DB', '--local', ...persist], {
    env: { ...process.env, CI: 'true', WRANGLER_SEND_METRICS: 'false' },
  });
  const varArgs = Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}:${v}`]);
  const child = spawn(
    process.execPath,
    [WRANGLER, 'dev', '--ip', '127.0.0.1', '--port', String(port), '--inspector-port', String(await freePort()), ...persist, ...varArgs, '--show-interactive-dev-session=false'],
    { cwd: REPO_ROOT, env: { ...process.env, ...opts.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'], detached: opts.detached ?? false },
  );
  let output = '';
  const collect = (d: Buffer) => {
    output += d.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
    if (opts.verbose) process.stderr.write(d);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const stop = () => stopProcess(child);
  try {
    await waitFor('the issuer to become healthy', async () => {
      if (child.exitCode !== null) throw new Error(`wrangler dev exited ${child.exitCode}:\n${output}`);
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      return res.status === 200 ? true : undefined;
    }, 90_000);
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n--- wrangler output ---\n${output.slice(-5000)}`, { cause: e });
  }
  return { url, port, adminToken, trustDomain, process: child, output: () => output, stop };
}

/**
 * Signals the process group of an issuer started with `detached` (wrangler and the workerd it runs) and waits
 * until wrangler is gone; then kills whatever of the group is left, so nothing holds the state dir.
 */
export async function signalIssuer(running: RunningIssuer, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
  const exited = new Promise<void>((resolveExit) => (running.process.exitCode !== null || running.process.signalCode !== null ? resolveExit() : running.process.once('exit', () => resolveExit())));
  process.kill(-running.process.pid!, signal);
  await exited;
  try {
    process.kill(-running.process.pid!, 'SIGKILL');
  } catch {
    // the group is gone
  }
}

/** Calls the issuer's admin API; throws with the issuer's error code on failure. */
export async function adminCall<T = unknown>(issuer: Pick<RunningIssuer, 'url' | 'adminToken'>, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${issuer.url}/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${issuer.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!res.ok) {
    const err = new Error(`${method} ${path}: ${res.status} ${json?.error?.code ?? ''} ${json?.error?.message ?? text}`);
    (err as Error & { code?: string }).code = json?.error?.code;
    throw err;
  }
  return json as T;
}

export interface AgentOptions {
  serverUrl: string;
  trustDomain: string;
  dataDir: string;
  socketPath: string;
  joinToken?: string;
  /** further config-file keys, e.g. { awsIid: { metadataUrl } } for a cloud node attestor */
  extraConfig?: Record<string, unknown>;
  logLevel?: string;
  syncIntervalSeconds?: number;
  verbose?: boolean;
  /**
   * A packaged agent instead of `node bin/wisp-agent.js`: the executable (the single-file binary, an installed
   * package's bin), run in `cwd` with exactly the environment `env`
   */
  packaged?: { executable: string; env: NodeJS.ProcessEnv; cwd: string };
}

export interface RunningAgent {
  process: ChildProcess;
  socketPath: string;
  output(): string;
  stop(): Promise<void>;
}

/** Starts a real wisp-agent process with a config file in its data dir. */
export async function startAgent(opts: AgentOptions): Promise<RunningAgent> {
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const configPath = join(opts.dataDir, '..', `${opts.dataDir.split('/').pop()}.agent.json`);
  const config: Record<string, unknown> = {
    serverUrl: opts.serverUrl,
    trustDomain: opts.trustDomain,
    dataDir: opts.dataDir,
    socketPath: opts.socketPath,
    logLevel: opts.logLevel ?? 'info',
  };
  if (opts.joinToken) config.joinToken = opts.joinToken;
  Object.assign(config, opts.extraConfig);
  if (opts.syncIntervalSeconds) config.syncIntervalSeconds = opts.syncIntervalSeconds;
  writeFileSync(configPath, JSON.stringify(config, null, 2), { mode: 0o600 });
  const [file, prefix] = opts.packaged ? [opts.packaged.executable, []] : [process.execPath, await agentCommand()];
  const child = spawn(file, [...prefix, 'run', '--config', configPath], {
    cwd: opts.packaged?.cwd ?? REPO_ROOT,
    env: opts.packaged?.env ?? { ...process.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (d: Buffer) => {
    output += d.toString();
    if (output.length > 500_000) output = output.slice(-250_000);
    if (opts.verbose) process.stderr.write(d);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  // an agent that exits before serving fails at once (waitFor would retry a throwing probe until its deadline)
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`wisp-agent exited ${code}:\n${output}`))));
  exited.catch(() => undefined);
  try {
    await Promise.race([waitFor('the agent socket', async () => (existsSync(opts.socketPath) ? true : undefined), 60_000), exited]);
  } catch (e) {
    await stopProcess(child);
    throw new Error(`${(e as Error).message}\n--- agent output ---\n${output.slice(-5000)}`, { cause: e });
  }
  return { process: child, socketPath: opts.socketPath, output: () => output, stop: () => stopProcess(child) };
}

/** Runs the wisp-agent CLI once (e.g. `api fetch x509`) and returns its output. */
export async function agentCli(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  const command = await agentCommand();
  return new Promise((resolveCli) => {
    const child = spawn(process.execPath, [...command, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolveCli({ code: code ?? 1, stdout, stderr }));
  });
}
