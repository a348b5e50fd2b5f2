/**
 * `wisp-agent validate`: SPIRE's `spire-agent validate`. Takes the flags of `run` and checks the merged
 * configuration (file < env < flags) through the daemon's own parser, parseAgentConfig, without starting
 * anything; prints SPIRE's "… configuration file is valid." or the one-line reason.
 * @module
 */
import type { Command } from 'commander';
import { parseAgentConfig, readAgentConfigFile, type AgentConfig, type AgentConfigInput } from '../config.js';

/** The options `run` and `validate` share (`validate` takes the same arguments, as in SPIRE). */
export interface RunFlags {
  config?: string;
  serverURL?: string;
  trustDomain?: string;
  dataDir?: string;
  socketPath?: string;
  joinToken?: string;
  logLevel?: string;
}

/** `run`'s and `validate`'s options: name, value placeholder, help (main.ts's fast path takes the same names). */
export const RUN_OPTIONS: readonly (readonly [keyof RunFlags, string, string])[] = [
  ['config', '<file>', 'JSON config file (see docs/agent-config.md)'],
  ['serverURL', '<url>', 'issuer URL (https; http only for loopback)'],
  ['trustDomain', '<name>', 'trust domain'],
  ['dataDir', '<dir>', 'directory for the agent identity, bundle and workload SVID cache (holds private keys)'],
  ['socketPath', '<path>', 'Workload API socket path'],
  ['joinToken', '<token>', 'single-use join token for the first attestation'],
  ['logLevel', '<level>', 'trace|debug|info|warn|error'],
];

export function withRunOptions(cmd: Command): Command {
  for (const [name, value, help] of RUN_OPTIONS) cmd.option(`--${name} ${value}`, help);
  return cmd;
}

/** The configuration `run` would start with; throws the one-line config error. */
export function configOf(opts: RunFlags, env: Readonly<Record<string, string | undefined>>): AgentConfig {
  const flags: AgentConfigInput = {};
  if (opts.serverURL !== undefined) flags.serverUrl = opts.serverURL;
  if (opts.trustDomain !== undefined) flags.trustDomain = opts.trustDomain;
  if (opts.dataDir !== undefined) flags.dataDir = opts.dataDir;
  if (opts.socketPath !== undefined) flags.socketPath = opts.socketPath;
  if (opts.joinToken !== undefined) flags.joinToken = opts.joinToken;
  if (opts.logLevel !== undefined) flags.logLevel = opts.logLevel;
  return parseAgentConfig(opts.config ? readAgentConfigFile(opts.config) : undefined, env, flags);
}

export const AGENT_CONFIG_VALID = 'Wisp agent configuration file is valid.';
export const AGENT_CONFIG_INVALID = 'Wisp agent configuration file is invalid';

/** The line `validate` prints and whether the configuration is valid. */
export function validateAgentFlags(opts: RunFlags, env: Readonly<Record<string, string | undefined>>): { valid: boolean; line: string } {
  try {
    configOf(opts, env);
    return { valid: true, line: AGENT_CONFIG_VALID };
  } catch (e) {
    return { valid: false, line: `${AGENT_CONFIG_INVALID}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}` };
  }
}
