/**
 * wisp-csi-driver's command line, with the upstream SPIFFE CSI driver's flag names so its manifests' args
 * work unchanged. Upstream is a Go program, whose flag package takes `-name value`, `-name=value`,
 * `--name value` and `--name=value` alike; commander knows only `--name` for long flags, so a single-dash
 * long flag is rewritten to two dashes before parsing (short flags: only `-h`).
 * @module
 */
import { Command, CommanderError, Option } from 'commander';
import { isAbsolute } from 'node:path';
import { normalizeGoFlags } from '../node/go-flags.js';
import { dnsNameProblem } from '../shared/spiffe/dns-name.js';

export const DEFAULT_PLUGIN_NAME = 'csi.spiffe.io';
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type CsiLogLevel = (typeof LOG_LEVELS)[number];

export interface CsiDriverConfig {
  workloadApiSocketDir: string;
  csiSocketPath: string;
  pluginName: string;
  nodeId: string;
  logLevel: CsiLogLevel;
  /** where to serve the kubelet's plugin-registration API (plugins_registry/<name>-reg.sock), if at all */
  kubeletRegistrationSocket?: string;
  /** the CSI socket's path as the kubelet sees it (differs when the driver runs in a container) */
  kubeletRegistrationPath: string;
}

/** A command-line problem: the message to print and exit code 2; `help` when -h asked for the usage. */
export class CsiConfigError extends Error {
  constructor(
    message: string,
    readonly help = false,
  ) {
    super(message);
    this.name = 'CsiConfigError';
  }
}

export { normalizeGoFlags };

/** The CSI spec's rule for GetPluginInfo's name: domain name notation, at most 63 characters. */
const PLUGIN_NAME_MAX_LENGTH = 63;

function pluginNameProblem(name: string): string | undefined {
  if (name.length > PLUGIN_NAME_MAX_LENGTH) return `longer than ${PLUGIN_NAME_MAX_LENGTH} characters`;
  if (name.includes('*')) return 'a wildcard is not a name';
  return dnsNameProblem(name);
}

function command(): Command {
  return new Command('wisp-csi-driver')
    .description("SPIFFE CSI driver: mounts the Workload API socket directory read-only into pods as an ephemeral inline volume. Flags take one dash or two (-name value, --name=value).")
    .helpOption('-h, --help', 'show this help')
    .addOption(new Option('--workload-api-socket-dir <dir>', 'directory holding the Workload API socket (required)'))
    .addOption(new Option('--csi-socket-path <path>', 'the CSI socket to serve').default('/spiffe-csi/csi.sock'))
    .addOption(new Option('--plugin-name <name>', 'the CSI driver name').default(DEFAULT_PLUGIN_NAME))
    .addOption(new Option('--node-id <id>', 'this node\'s ID (default: the environment variable named by -node-id-env)'))
    .addOption(new Option('--node-id-env <name>', 'environment variable holding the node ID').default('MY_NODE_NAME'))
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--kubelet-registration-socket <path>', 'serve the kubelet plugin-registration API on this socket (without node-driver-registrar)'))
    .addOption(new Option('--kubelet-registration-path <path>', 'the CSI socket path the kubelet dials (default: -csi-socket-path)'))
    .exitOverride()
    .configureOutput({ writeOut: () => undefined, writeErr: () => undefined });
}

/** The usage text (for -h). */
export function usage(): string {
  return command().helpInformation();
}

/**
 * Parses the driver's arguments (without node and script) and the environment.
 * @example parseCsiArgs(['-workload-api-socket-dir', '/run/spire/sockets'], { MY_NODE_NAME: 'node-1' })
 */
export function parseCsiArgs(args: readonly string[], env: Record<string, string | undefined>): CsiDriverConfig {
  const cmd = command();
  try {
    cmd.parse(normalizeGoFlags(args), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) throw new CsiConfigError(err.code === 'commander.helpDisplayed' ? usage() : err.message.replace(/^error: /, ''), err.code === 'commander.helpDisplayed');
    throw err;
  }
  if (cmd.args.length > 0) throw new CsiConfigError(`unexpected argument "${cmd.args[0]}"`);
  const o = cmd.opts<Record<string, string | undefined>>();
  const paths: Record<string, string | undefined> = {
    '-workload-api-socket-dir': o.workloadApiSocketDir,
    '-csi-socket-path': o.csiSocketPath,
    '-kubelet-registration-socket': o.kubeletRegistrationSocket,
    '-kubelet-registration-path': o.kubeletRegistrationPath,
  };
  if (!o.workloadApiSocketDir) throw new CsiConfigError('-workload-api-socket-dir is required');
  for (const [flag, value] of Object.entries(paths)) {
    if (value !== undefined && !isAbsolute(value)) throw new CsiConfigError(`${flag} must be an absolute path, got "${value}"`);
  }
  const nameProblem = pluginNameProblem(o.pluginName!);
  if (nameProblem) throw new CsiConfigError(`-plugin-name "${o.pluginName}" is not a valid CSI driver name: ${nameProblem}`);
  const nodeId = o.nodeId || env[o.nodeIdEnv!];
  if (!nodeId) throw new CsiConfigError(`no node ID: pass -node-id or set ${o.nodeIdEnv}`);
  return {
    workloadApiSocketDir: o.workloadApiSocketDir,
    csiSocketPath: o.csiSocketPath!,
    pluginName: o.pluginName!,
    nodeId,
    logLevel: o.logLevel as CsiLogLevel,
    ...(o.kubeletRegistrationSocket ? { kubeletRegistrationSocket: o.kubeletRegistrationSocket } : {}),
    kubeletRegistrationPath: o.kubeletRegistrationPath ?? o.csiSocketPath!,
  };
}
