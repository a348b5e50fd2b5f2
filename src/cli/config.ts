/**
 * How `wisp` reaches the issuer, parsed once at the edge (STYLE G14): an optional JSON config file
 * (`--config` / WISP_CONFIG), then the environment, then flags, later sources winning. Errors name the key
 * and the source its value came from. No other CLI module reads `process.env` or the config file.
 * @module
 */
import { readFileSync } from 'node:fs';
import { WispError } from '../shared/errors.js';
import { isLoopbackHost } from '../shared/net/loopback.js';

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

interface Sourced {
  value: unknown;
  source: string;
}

function bad(key: string, from: Sourced | undefined, message: string): WispError {
  return new WispError('ERR_CONFIG_INVALID', `${key}${from ? ` (from ${from.source})` : ''}: ${message}`);
}

/** Reads and parses the JSON config file. */
export function readCliConfigFile(path: string): { path: string; content: unknown } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new WispError('ERR_CONFIG_INVALID', `config file ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return { path, content: JSON.parse(text) as unknown };
  } catch (e) {
    throw new WispError('ERR_CONFIG_INVALID', `config file ${path}: not valid JSON (${(e as Error).message})`);
  }
}

function parseServerUrl(s: Sourced): string {
  if (typeof s.value !== 'string' || s.value === '') throw bad('serverURL', s, 'must be a URL');
  let url: URL;
  try {
    url = new URL(s.value);
  } catch {
    throw bad('serverURL', s, `"${s.value}" is not a URL`);
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) throw bad('serverURL', s, `http is allowed only for loopback hosts (got ${url.hostname}); use https`);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad('serverURL', s, `scheme must be https (got ${url.protocol.replace(':', '')})`);
  if (url.username || url.password || url.search || url.hash) throw bad('serverURL', s, 'must not contain credentials, a query or a fragment');
  return url.toString().replace(/\/+$/, '');
}

function parseBool(key: string, s: Sourced): boolean {
  if (typeof s.value === 'boolean') return s.value;
  if (s.value === 'true' || s.value === '1') return true;
  if (s.value === 'false' || s.value === '0' || s.value === '') return false;
  throw bad(key, s, 'must be true or false');
}

function parseString(key: string, s: Sourced): string {
  if (typeof s.value !== 'string' || s.value.trim() === '') throw bad(key, s, 'must be a non-empty string');
  return s.value;
}

/**
 * Merges file, environment and flags (later wins) into a `CliConfig`.
 * @example parseCliConfig(undefined, process.env, { serverURL: 'https://wisp.example.org' })
 */
export function parseCliConfig(
  file: { path: string; content: unknown } | undefined,
  env: Readonly<Record<string, string | undefined>>,
  flags: CliConfigInput,
): CliConfig {
  const merged = new Map<CliConfigKey, Sourced>();
  if (file) {
    const c = file.content;
    if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new WispError('ERR_CONFIG_INVALID', `config file ${file.path}: must be a JSON object`);
    for (const [key, value] of Object.entries(c)) {
      if (!(CLI_CONFIG_KEYS as readonly string[]).includes(key)) {
        throw new WispError('ERR_CONFIG_INVALID', `${key} (from file ${file.path}): unknown key; known keys: ${CLI_CONFIG_KEYS.join(', ')}`);
      }
      if (value !== undefined && value !== null) merged.set(key as CliConfigKey, { value, source: `file ${file.path}` });
    }
  }
  for (const key of CLI_CONFIG_KEYS) {
    const value = env[CLI_CONFIG_ENV[key]];
    if (value !== undefined && value !== '') merged.set(key, { value, source: `env ${CLI_CONFIG_ENV[key]}` });
  }
  for (const key of CLI_CONFIG_KEYS) {
    if (flags[key] !== undefined) merged.set(key, { value: flags[key], source: `flag --${key}` });
  }

  const serverUrlSource = merged.get('serverURL');
  if (!serverUrlSource) throw bad('serverURL', undefined, `is required (flag --serverURL, env ${CLI_CONFIG_ENV.serverURL} or a config file)`);
  const timeoutSource = merged.get('timeout') ?? { value: CLI_DEFAULT_TIMEOUT_SECONDS, source: 'default' };
  const timeout = typeof timeoutSource.value === 'string' && /^\d+$/.test(timeoutSource.value) ? Number(timeoutSource.value) : timeoutSource.value;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 1 || timeout > MAX_TIMEOUT_SECONDS) {
    throw bad('timeout', timeoutSource, `must be a whole number of seconds between 1 and ${MAX_TIMEOUT_SECONDS}`);
  }
  const token = merged.get('adminToken');
  const socket = merged.get('socketPath');
  const audience = merged.get('adminAudience');
  const useWorkloadApi = merged.has('useWorkloadAPI') ? parseBool('useWorkloadAPI', merged.get('useWorkloadAPI')!) : false;
  return {
    serverUrl: parseServerUrl(serverUrlSource),
    ...(token ? { adminToken: parseString('adminToken', token) } : {}),
    useWorkloadApi,
    ...(socket ? { socketPath: parseString('socketPath', socket) } : {}),
    ...(audience ? { adminAudience: parseString('adminAudience', audience) } : {}),
    timeoutSeconds: timeout,
  };
}
