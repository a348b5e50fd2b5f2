/**
 * The `wisp-agent` command line (commander): `run` starts the daemon, `validate` checks its config; `healthcheck` and `api …` talk to a
 * running agent over its Workload API socket like any workload. Errors are one line on stderr, exit 1.
 * This is the edge: the only module that reads `process.env`, `process.argv` and installs signal handlers.
 * @module
 */
import type { Command } from 'commander';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runAgent } from './agent.js';
import { fetchJwt, fetchJwtBundles, fetchX509, healthcheck, validateJwt, watchX509, type ApiCommandOptions, type OutputFormat } from './cli/api.js';
import { configOf, RUN_OPTIONS, validateAgentFlags, withRunOptions, type RunFlags } from './cli/validate.js';
import { AGENT_CONFIG_DEFAULTS } from './config.js';
import { createLogger } from './log.js';
import { agentVersion } from './telemetry/version.js';
import { normalizeGoFlags } from '../node/go-flags.js';
import { isGrpcError } from '../node/workload-api/client.js';

const API_TIMEOUT_MS = 10_000;

class CliError extends Error {}

/**
 * Keeps V8's young generation at its initial size (1 MB semi-spaces) in the daemon. By default V8 doubles it
 * up to 16 MB semi-spaces (~34 MB of new space) during any allocation burst, such as the first sync of 1,000
 * SVIDs, and keeps it: that is a third of the agent's RSS, for objects that live a few ms. The cost is more
 * frequent scavenges, each as cheap as the live young objects are few (docs/performance.md, agent RSS).
 * `--max-semi-space-size` cannot be set once the heap exists; the growth factor is read at each growth, so it
 * can. Left alone when the operator sizes the young generation (node flags or NODE_OPTIONS).
 */
function capYoungGeneration(): void {
  const flags = [...process.execArgv, process.env['NODE_OPTIONS'] ?? ''].join(' ');
  if (!/semi[-_]space/.test(flags)) setFlagsFromString('--semi-space-growth-factor=1');
}

function fail(message: string): never {
  throw new CliError(message);
}

/** The socket for api/healthcheck: the flag, else SPIFFE_ENDPOINT_SOCKET, else WISP_SOCKET_PATH, else the default. */
function endpointOf(flag: string | undefined): string {
  return flag ?? process.env['SPIFFE_ENDPOINT_SOCKET'] ?? process.env['WISP_SOCKET_PATH'] ?? AGENT_CONFIG_DEFAULTS.socketPath;
}

function apiOptions(opts: { socketPath?: string; output?: OutputFormat; timeout?: string }): ApiCommandOptions {
  const timeoutSeconds = opts.timeout === undefined ? API_TIMEOUT_MS / 1000 : Number(opts.timeout);
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) fail(`--timeout: "${opts.timeout}" is not a positive number of seconds`);
  return { address: endpointOf(opts.socketPath), output: opts.output ?? 'pretty', timeoutMs: timeoutSeconds * 1000, print: (line) => process.stdout.write(`${line}\n`) };
}

/** Adds the options every api subcommand shares. */
function withApiOptions(cmd: Command, Option: typeof import('commander').Option): Command {
  return cmd
    .option('--socketPath <path>', 'Workload API socket (or unix:// address); default $SPIFFE_ENDPOINT_SOCKET')
    .addOption(new Option('--output <format>', 'output format').choices(['pretty', 'json']).default('pretty'))
    .option('--timeout <seconds>', 'give up after this long', String(API_TIMEOUT_MS / 1000));
}

/** `run`: the daemon, until SIGINT or SIGTERM. */
async function runDaemon(opts: RunFlags): Promise<void> {
  const config = configOf(opts, process.env);
  capYoungGeneration();
  const log = createLogger(config.logLevel);
  const controller = new AbortController();
  const stop = (sig: string) => {
    if (controller.signal.aborted) return;
    log.info({ signal: sig }, 'shutting down');
    controller.abort();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  try {
    await runAgent(config, { log, signal: controller.signal });
  } catch (e) {
    log.fatal({ err: e instanceof CliError ? undefined : e }, `agent stopped: ${(e as Error).message}`);
    await new Promise<void>((resolve) => log.flush(() => resolve()));
    throw new CliError((e as Error).message);
  }
}

/** The `run` flags the fast path takes: withRunOptions's. */
const RUN_FLAG_NAMES = new Set<string>(RUN_OPTIONS.map(([name]) => name));

/**
 * `run` with only known `--name value` flags, each once (the daemon's usual command line), parsed here so the
 * daemon does not load commander (~8 ms of its start, docs/performance.md, start-up). Anything else (help, an
 * unknown or repeated flag, `--name=value`, a value starting with `-`) is undefined and goes to commander.
 */
export function fastRunFlags(args: readonly string[]): RunFlags | undefined {
  if (args[0] !== 'run' || args.length % 2 === 0) return undefined;
  const flags: Record<string, string> = {};
  for (let i = 1; i < args.length; i += 2) {
    const flag = args[i]!;
    const name = flag.startsWith('--') ? flag.slice(2) : '';
    const value = args[i + 1]!;
    if (!RUN_FLAG_NAMES.has(name) || name in flags || value.startsWith('-')) return undefined;
    flags[name] = value;
  }
  return flags as RunFlags;
}

export async function buildProgram(): Promise<Command> {
  const { Command, Option } = await import('commander');
  const program = new Command('wisp-agent').description('Wisp agent: serves the SPIFFE Workload API on this node').showHelpAfterError().exitOverride();
  program.version(agentVersion(), '--version', 'print the version');

  withRunOptions(program.command('run').description('run the agent daemon')).action(runDaemon);

  withRunOptions(program.command('validate').description('check the configuration run would start with (as spire-agent validate); exit 1 and one line if invalid'))
    .action((opts: RunFlags) => {
      const result = validateAgentFlags(opts, process.env);
      (result.valid ? process.stdout : process.stderr).write(`${result.line}\n`);
      if (!result.valid) process.exitCode = 1;
    });

  program
    .command('healthcheck')
    .description('exit 0 if the agent answers on its socket and is ready, 1 otherwise')
    .option('--socketPath <path>', 'Workload API socket; default $SPIFFE_ENDPOINT_SOCKET')
    .option('--shallow', 'only check that the socket accepts a call (same as default; kept for SPIRE compatibility)')
    .option('--verbose', 'print the result')
    .action(async (opts: { socketPath?: string; verbose?: boolean }) => {
      const result = await healthcheck({ address: endpointOf(opts.socketPath), timeoutMs: 5_000 });
      if (opts.verbose || !result.healthy) process.stderr.write(`${result.healthy ? 'healthy' : 'unhealthy'}: ${result.detail}\n`);
      if (!result.healthy) process.exitCode = 1;
    });

  const api = program.command('api').description('call the Workload API like a workload');
  const fetch = api.command('fetch').description('fetch SVIDs or bundles');
  withApiOptions(fetch.command('x509').description('fetch X509-SVIDs (and write them with --write)'), Option)
    .option('--write <dir>', 'write svid.N.pem, svid.N.key, bundle.N.pem into this directory')
    .action(async (opts) => fetchX509({ ...apiOptions(opts), ...(opts.write ? { writeDir: opts.write as string } : {}) }));
  withApiOptions(fetch.command('jwt').description('fetch a JWT-SVID'), Option)
    .requiredOption('--audience <aud...>', 'audience(s)')
    .option('--spiffeID <id>', 'the SPIFFE ID to fetch a token for (default: all the caller holds)')
    .action(async (opts) => fetchJwt({ ...apiOptions(opts), audience: opts.audience as string[], ...(opts.spiffeID ? { spiffeId: opts.spiffeID as string } : {}) }));
  withApiOptions(fetch.command('jwtbundles').description('fetch JWT bundles (JWKS per trust domain)'), Option).action(async (opts) => fetchJwtBundles(apiOptions(opts)));
  withApiOptions(api.command('validate').command('jwt').description('validate a JWT-SVID'), Option)
    .requiredOption('--audience <aud>', 'expected audience')
    .requiredOption('--svid <token>', 'the JWT-SVID')
    .action(async (opts) => validateJwt({ ...apiOptions(opts), audience: opts.audience as string, svid: opts.svid as string }));
  withApiOptions(api.command('watch').description('print X509-SVID updates until interrupted'), Option).action(async (opts) => {
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    process.once('SIGTERM', () => controller.abort());
    await watchX509(apiOptions(opts), controller.signal);
  });
  return program;
}

/** One line for any failure: commander's own, WispError, gRPC status, or anything else. */
function oneLine(e: unknown): string {
  if (isGrpcError(e)) return `Workload API: ${e.details || e.message}`;
  return (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? 'error';
}

export async function main(argv: string[]): Promise<number> {
  // SPIRE's single-dash spellings (-config, -socketPath) as well as --config
  const args = normalizeGoFlags(argv.slice(2));
  try {
    const run = fastRunFlags(args);
    if (run) await runDaemon(run);
    else await (await buildProgram()).parseAsync(args, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help') return 0;
    if (typeof code === 'string' && code.startsWith('commander.')) return 1; // commander already printed it
    process.stderr.write(`wisp-agent: ${oneLine(e)}\n`);
    return 1;
  }
}

/** True when this file is the process entry (`tsx src/agent/main.ts …`), not imported (bin/wisp-agent.js, tests). */
function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main(process.argv).then((code) => process.exit(code));
}
