/**
 * How `wisp` reaches the issuer, parsed once at the edge (STYLE G14): an optional JSON config file
 * (`--config` / WISP_CONFIG), then the environment, then flags, later sources winning. Errors name the key
 * and the source its value came from; the layering is the agent's (src/node/config-sources.ts), the value
 * kinds src/shared/config/schema.ts. No other CLI module reads `process.env` or the config file.
 * @module
 */
import * as v from 'valibot';
import { mergeConfigSources, parseMergedConfig, type ConfigFile, type ConfigLayout } from '../node/config-sources.js';
import { issuerBaseUrl, nonEmptyString, required, wholeNumber } from '../shared/config/schema.js';

export interface CliConfig {
  /** issuer base URL: https, or http for loopback hosts only; no trailing slash */
  serverUrl: string;
  adminToken?: string;
  /** authenticate with an admin JWT-SVID fetched from the local Workload API instead of the admin token */
  useWorkloadApi: boolean;
  /** the Workload API socket (for --useWorkloadAPI) */
  socketPath?: string;
  /** audience of the admin JWT-SVID; defaults to the server URL */
  adminAudience?: string;
  timeoutSeconds: number;
}

/** Keys of the config file; each is also a flag of the same name (SPIRE spelling). */
export const CLI_CONFIG_KEYS = ['serverURL', 'adminToken', 'useWorkloadAPI', 'socketPath', 'adminAudience', 'timeout'] as const;
export type CliConfigKey = (typeof CLI_CONFIG_KEYS)[number];
export type CliConfigInput = Partial<Record<CliConfigKey, unknown>>;

export const CLI_CONFIG_ENV: Record<CliConfigKey, string> = {
  serverURL: 'WISP_SERVER_URL',
  adminToken: 'WISP_ADMIN_TOKEN',
  useWorkloadAPI: 'WISP_USE_WORKLOAD_API',
  socketPath: 'SPIFFE_ENDPOINT_SOCKET',
  adminAudience: 'WISP_ADMIN_AUDIENCE',
  timeout: 'WISP_TIMEOUT_SECONDS',
};

export const CLI_DEFAULT_TIMEOUT_SECONDS = 30;
const MAX_TIMEOUT_SECONDS = 600;
const TIMEOUT = `must be a whole number of seconds between 1 and ${MAX_TIMEOUT_SECONDS}`;

const LAYOUT: ConfigLayout<CliConfigKey> = {
  keys: CLI_CONFIG_KEYS,
  env: (key) => [CLI_CONFIG_ENV[key]],
  flag: (key) => `--${key}`,
};

/** A flag (a boolean) or the environment: `true`/`1`, `false`/`0`/empty. */
const flagBoolean = v.pipe(
  v.union([v.boolean(), v.picklist(['true', '1', 'false', '0', ''])], 'must be true or false'),
  v.transform((b) => b === true || b === 'true' || b === '1'),
);

/** Keys in the order their errors are reported. */
const CLI_SCHEMA = v.object({
  serverURL: required(issuerBaseUrl(), `is required (flag --serverURL, env ${CLI_CONFIG_ENV.serverURL} or a config file)`),
  timeout: v.optional(wholeNumber(1, MAX_TIMEOUT_SECONDS, { notWhole: () => TIMEOUT, outOfRange: TIMEOUT }), CLI_DEFAULT_TIMEOUT_SECONDS),
  useWorkloadAPI: v.optional(flagBoolean, false),
  adminToken: v.optional(nonEmptyString()),
  socketPath: v.optional(nonEmptyString()),
  adminAudience: v.optional(nonEmptyString()),
});

/**
 * Merges file, environment and flags (later wins) into a `CliConfig`.
 * @example parseCliConfig(undefined, process.env, { serverURL: 'https://wisp.example.org' })
 */
export function parseCliConfig(
  file: ConfigFile | undefined,
  env: Readonly<Record<string, string | undefined>>,
  flags: CliConfigInput,
): CliConfig {
  const c = parseMergedConfig(LAYOUT, mergeConfigSources(LAYOUT, file, env, flags), CLI_SCHEMA);
  return {
    serverUrl: c.serverURL,
    ...(c.adminToken !== undefined ? { adminToken: c.adminToken } : {}),
    useWorkloadApi: c.useWorkloadAPI,
    ...(c.socketPath !== undefined ? { socketPath: c.socketPath } : {}),
    ...(c.adminAudience !== undefined ? { adminAudience: c.adminAudience } : {}),
    timeoutSeconds: c.timeout,
  };
}
