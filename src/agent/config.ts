/**
 * The agent's configuration, parsed once at the edge (STYLE G14): a JSON file, then the environment
 * (`WISP_*`, `SPIFFE_ENDPOINT_SOCKET`), then command-line flags, later sources winning. Errors name the key
 * and the source its value came from. No module below this one reads `process.env` or a config path.
 * Format documented in docs/agent-config.md.
 * @module
 */
import { readFileSync } from 'node:fs';
import { WispError } from '../shared/errors.js';
import { isLoopbackHost } from '../shared/net/loopback.js';
import { parseTrustDomain, type TrustDomain } from '../shared/spiffe/id.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export interface AgentConfig {
  /** issuer base URL: https, or http for loopback hosts only; no trailing slash */
  serverUrl: string;
  trustDomain: TrustDomain;
  /** holds the agent key, SVID and bundle (0700) */
  dataDir: string;
  /** the Workload API Unix socket */
  socketPath: string;
  /** single-use; needed only for the first attestation (or when the agent must re-attest) */
  joinToken?: string;
  /** cloud node attestors: at most one node attestor (these or joinToken) may be configured */
  awsIid?: AwsIidAgentConfig;
  gcpIit?: GcpIitAgentConfig;
  azureMsi?: AzureMsiAgentConfig;
  logLevel: LogLevel;
  syncIntervalSeconds: number;
  /** timeout of every request to the issuer */
  requestTimeoutSeconds: number;
}

/** aws_iid: the EC2 instance metadata service (IMDSv2; IMDSv1 only with imdsV1Fallback). */
export interface AwsIidAgentConfig {
  metadataUrl: string;
  imdsV1Fallback: boolean;
  timeoutSeconds: number;
}

/** gcp_iit: the GCP metadata server. */
export interface GcpIitAgentConfig {
  metadataUrl: string;
  audience: string;
  serviceAccount: string;
  timeoutSeconds: number;
}

/** azure_msi: the Azure instance metadata service. */
export interface AzureMsiAgentConfig {
  metadataUrl: string;
  resource: string;
  timeoutSeconds: number;
}

export const CLOUD_ATTESTOR_DEFAULTS = {
  awsIid: { metadataUrl: 'http://169.254.169.254', imdsV1Fallback: false, timeoutSeconds: 5 },
  gcpIit: { metadataUrl: 'http://metadata.google.internal', audience: 'spire-gcp-node-attestor', serviceAccount: 'default', timeoutSeconds: 5 },
  azureMsi: { metadataUrl: 'http://169.254.169.254', resource: 'https://management.azure.com/', timeoutSeconds: 5 },
} as const;

/** Keys of the JSON config file; anything else is an error. */
export type AgentConfigKey = keyof AgentConfig;
export type AgentConfigInput = Partial<Record<AgentConfigKey, unknown>>;

export const AGENT_CONFIG_DEFAULTS = {
  dataDir: '/var/lib/wisp-agent',
  socketPath: '/run/wisp-agent/api.sock',
  logLevel: 'info',
  syncIntervalSeconds: 5,
  requestTimeoutSeconds: 10,
} as const satisfies Partial<Record<AgentConfigKey, unknown>>;

/** Environment variable of each key. `SPIFFE_ENDPOINT_SOCKET` also sets socketPath (WISP_SOCKET_PATH wins). */
export const AGENT_CONFIG_ENV: Record<AgentConfigKey, string> = {
  serverUrl: 'WISP_SERVER_URL',
  trustDomain: 'WISP_TRUST_DOMAIN',
  dataDir: 'WISP_DATA_DIR',
  socketPath: 'WISP_SOCKET_PATH',
  joinToken: 'WISP_JOIN_TOKEN',
  awsIid: 'WISP_AWS_IID',
  gcpIit: 'WISP_GCP_IIT',
  azureMsi: 'WISP_AZURE_MSI',
  logLevel: 'WISP_LOG_LEVEL',
  syncIntervalSeconds: 'WISP_SYNC_INTERVAL_SECONDS',
  requestTimeoutSeconds: 'WISP_REQUEST_TIMEOUT_SECONDS',
};

/** Command-line flag of each key (SPIRE spelling: --serverURL). */
export const AGENT_CONFIG_FLAGS: Partial<Record<AgentConfigKey, string>> = {
  serverUrl: '--serverURL',
  trustDomain: '--trustDomain',
  dataDir: '--dataDir',
  socketPath: '--socketPath',
  joinToken: '--joinToken',
  logLevel: '--logLevel',
};

const KEYS = Object.keys(AGENT_CONFIG_ENV) as AgentConfigKey[];
const MAX_SYNC_INTERVAL_SECONDS = 3600;
const MAX_REQUEST_TIMEOUT_SECONDS = 300;

/** A parsed JSON config file and where it came from (for error messages). */
export interface AgentConfigFile {
  path: string;
  content: unknown;
}

/** Reads and JSON-parses a config file; a one-line `WispError` if it cannot. */
export function readAgentConfigFile(path: string): AgentConfigFile {
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

interface Sourced {
  value: unknown;
  source: string;
}

function bad(key: string, from: Sourced | undefined, message: string): WispError {
  return new WispError('ERR_CONFIG_INVALID', `${key}${from ? ` (from ${from.source})` : ''}: ${message}`);
}

function parseServerUrl(s: Sourced): string {
  if (typeof s.value !== 'string' || s.value === '') throw bad('serverUrl', s, 'must be a URL string');
  let url: URL;
  try {
    url = new URL(s.value);
  } catch {
    throw bad('serverUrl', s, `"${s.value}" is not a URL`);
  }
  if (url.protocol === 'http:') {
    if (!isLoopbackHost(url.hostname)) throw bad('serverUrl', s, `http is allowed only for loopback hosts (got ${url.hostname}); use https`);
  } else if (url.protocol !== 'https:') {
    throw bad('serverUrl', s, `scheme must be https (got ${url.protocol.replace(':', '')})`);
  }
  if (url.username || url.password) throw bad('serverUrl', s, 'must not contain credentials');
  if (url.search || url.hash) throw bad('serverUrl', s, 'must not contain a query or fragment');
  return url.toString().replace(/\/+$/, '');
}

function parseString(key: AgentConfigKey, s: Sourced): string {
  if (typeof s.value !== 'string' || s.value.trim() === '') throw bad(key, s, 'must be a non-empty string');
  return s.value;
}

function parseInteger(key: AgentConfigKey, s: Sourced, min: number, max: number): number {
  const n = typeof s.value === 'string' && /^\s*\d+\s*$/.test(s.value) ? Number(s.value) : s.value;
  if (typeof n !== 'number' || !Number.isInteger(n)) throw bad(key, s, `must be a whole number of seconds (got ${JSON.stringify(s.value)})`);
  if (n < min || n > max) throw bad(key, s, `must be between ${min} and ${max}`);
  return n;
}

/** A cloud attestor's object: from the file as JSON, from the environment as a JSON string. */
function cloudObject(key: AgentConfigKey, s: Sourced, known: readonly string[]): Record<string, unknown> {
  let value = s.value;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      throw bad(key, s, 'must be a JSON object');
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(key, s, 'must be an object (e.g. {} for the defaults)');
  for (const k of Object.keys(value)) {
    if (!known.includes(k)) throw bad(`${key}.${k}`, s, `unknown key; known keys: ${known.join(', ')}`);
  }
  return value as Record<string, unknown>;
}

function metadataUrl(key: string, s: Sourced, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') throw bad(key, s, 'must be a URL string');
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw bad(key, s, `"${value}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(key, s, 'must be http or https');
  if (url.search || url.hash || url.username) throw bad(key, s, 'must be a base URL without credentials, query or fragment');
  return value.replace(/\/+$/, '');
}

function cloudString(key: string, s: Sourced, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.trim() === '') throw bad(key, s, 'must be a non-empty string');
  return value;
}

function cloudTimeout(key: string, s: Sourced, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 60) throw bad(key, s, 'must be a whole number of seconds between 1 and 60');
  return value;
}

function parseAwsIid(s: Sourced): AwsIidAgentConfig {
  const d = CLOUD_ATTESTOR_DEFAULTS.awsIid;
  const o = cloudObject('awsIid', s, ['metadataUrl', 'imdsV1Fallback', 'timeoutSeconds']);
  if (o.imdsV1Fallback !== undefined && typeof o.imdsV1Fallback !== 'boolean') throw bad('awsIid.imdsV1Fallback', s, 'must be true or false');
  return {
    metadataUrl: metadataUrl('awsIid.metadataUrl', s, o.metadataUrl, d.metadataUrl),
    imdsV1Fallback: (o.imdsV1Fallback as boolean | undefined) ?? d.imdsV1Fallback,
    timeoutSeconds: cloudTimeout('awsIid.timeoutSeconds', s, o.timeoutSeconds, d.timeoutSeconds),
  };
}

function parseGcpIit(s: Sourced): GcpIitAgentConfig {
  const d = CLOUD_ATTESTOR_DEFAULTS.gcpIit;
  const o = cloudObject('gcpIit', s, ['metadataUrl', 'audience', 'serviceAccount', 'timeoutSeconds']);
  return {
    metadataUrl: metadataUrl('gcpIit.metadataUrl', s, o.metadataUrl, d.metadataUrl),
    audience: cloudString('gcpIit.audience', s, o.audience, d.audience),
    serviceAccount: cloudString('gcpIit.serviceAccount', s, o.serviceAccount, d.serviceAccount),
    timeoutSeconds: cloudTimeout('gcpIit.timeoutSeconds', s, o.timeoutSeconds, d.timeoutSeconds),
  };
}

function parseAzureMsi(s: Sourced): AzureMsiAgentConfig {
  const d = CLOUD_ATTESTOR_DEFAULTS.azureMsi;
  const o = cloudObject('azureMsi', s, ['metadataUrl', 'resource', 'timeoutSeconds']);
  return {
    metadataUrl: metadataUrl('azureMsi.metadataUrl', s, o.metadataUrl, d.metadataUrl),
    resource: cloudString('azureMsi.resource', s, o.resource, d.resource),
    timeoutSeconds: cloudTimeout('azureMsi.timeoutSeconds', s, o.timeoutSeconds, d.timeoutSeconds),
  };
}

/** `unix:///run/x.sock` (SPIFFE Workload Endpoint §4) or a plain path → the path. */
export function socketPathFromEndpoint(value: string): string {
  if (value.startsWith('unix://')) {
    const url = new URL(value);
    if (url.host !== '') throw new TypeError('unix endpoint must have an empty authority');
    return decodeURIComponent(url.pathname);
  }
  if (value.startsWith('unix:')) return value.slice('unix:'.length);
  return value;
}

function parseSocketPath(s: Sourced): string {
  const raw = parseString('socketPath', s);
  let path: string;
  try {
    path = socketPathFromEndpoint(raw);
  } catch {
    throw bad('socketPath', s, `"${raw}" is not a unix:// endpoint or an absolute path`);
  }
  if (!path.startsWith('/')) throw bad('socketPath', s, `must be an absolute path (got "${raw}")`);
  return path;
}

/**
 * Merges file, environment and flags (later wins) into an `AgentConfig`, applying defaults.
 * @example parseAgentConfig(readAgentConfigFile('/etc/wisp/agent.json'), process.env, { joinToken })
 */
export function parseAgentConfig(
  file: AgentConfigFile | undefined,
  env: Readonly<Record<string, string | undefined>>,
  flags: AgentConfigInput,
): AgentConfig {
  const merged = new Map<AgentConfigKey, Sourced>();

  if (file) {
    const c = file.content;
    if (typeof c !== 'object' || c === null || Array.isArray(c)) {
      throw new WispError('ERR_CONFIG_INVALID', `config file ${file.path}: must be a JSON object`);
    }
    for (const [key, value] of Object.entries(c)) {
      if (!(KEYS as string[]).includes(key)) {
        throw new WispError('ERR_CONFIG_INVALID', `${key} (from file ${file.path}): unknown key; known keys: ${KEYS.join(', ')}`);
      }
      if (value !== undefined && value !== null) merged.set(key as AgentConfigKey, { value, source: `file ${file.path}` });
    }
  }

  const endpoint = env['SPIFFE_ENDPOINT_SOCKET'];
  if (endpoint) merged.set('socketPath', { value: endpoint, source: 'env SPIFFE_ENDPOINT_SOCKET' });
  for (const key of KEYS) {
    const name = AGENT_CONFIG_ENV[key];
    const value = env[name];
    if (value !== undefined && value !== '') merged.set(key, { value, source: `env ${name}` });
  }

  for (const key of Object.keys(flags) as AgentConfigKey[]) {
    const value = flags[key];
    if (!(KEYS as string[]).includes(key)) throw new TypeError(`unknown config flag key ${String(key)}`);
    if (value !== undefined) merged.set(key, { value, source: `flag ${AGENT_CONFIG_FLAGS[key] ?? key}` });
  }

  const get = (key: AgentConfigKey): Sourced | undefined => merged.get(key);
  const orDefault = (key: keyof typeof AGENT_CONFIG_DEFAULTS): Sourced =>
    get(key) ?? { value: AGENT_CONFIG_DEFAULTS[key], source: 'default' };
  const required = (key: AgentConfigKey): Sourced => {
    const s = get(key);
    if (!s) {
      throw bad(key, undefined, `is required (config file, env ${AGENT_CONFIG_ENV[key]}${AGENT_CONFIG_FLAGS[key] ? ` or flag ${AGENT_CONFIG_FLAGS[key]}` : ''})`);
    }
    return s;
  };

  const serverUrl = parseServerUrl(required('serverUrl'));
  const tdSource = required('trustDomain');
  let trustDomain: TrustDomain;
  try {
    trustDomain = parseTrustDomain(tdSource.value);
  } catch (e) {
    throw bad('trustDomain', tdSource, (e as Error).message);
  }
  const logLevelSource = orDefault('logLevel');
  if (!LOG_LEVELS.includes(logLevelSource.value as LogLevel)) {
    throw bad('logLevel', logLevelSource, `must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const dataDirSource = orDefault('dataDir');
  const dataDir = parseString('dataDir', dataDirSource);
  if (!dataDir.startsWith('/')) throw bad('dataDir', dataDirSource, 'must be an absolute path');
  const joinTokenSource = get('joinToken');
  const attestorKeys = (['joinToken', 'awsIid', 'gcpIit', 'azureMsi'] as const).filter((k) => get(k));
  if (attestorKeys.length > 1) {
    const [first, second] = attestorKeys.map((k) => `${k} (from ${get(k)!.source})`);
    throw new WispError('ERR_CONFIG_INVALID', `${first} and ${second}: configure one node attestor only`);
  }
  const awsIidSource = get('awsIid');
  const gcpIitSource = get('gcpIit');
  const azureMsiSource = get('azureMsi');

  return {
    serverUrl,
    trustDomain,
    dataDir,
    socketPath: parseSocketPath(orDefault('socketPath')),
    ...(joinTokenSource ? { joinToken: parseString('joinToken', joinTokenSource) } : {}),
    ...(awsIidSource ? { awsIid: parseAwsIid(awsIidSource) } : {}),
    ...(gcpIitSource ? { gcpIit: parseGcpIit(gcpIitSource) } : {}),
    ...(azureMsiSource ? { azureMsi: parseAzureMsi(azureMsiSource) } : {}),
    logLevel: logLevelSource.value as LogLevel,
    syncIntervalSeconds: parseInteger('syncIntervalSeconds', orDefault('syncIntervalSeconds'), 1, MAX_SYNC_INTERVAL_SECONDS),
    requestTimeoutSeconds: parseInteger('requestTimeoutSeconds', orDefault('requestTimeoutSeconds'), 1, MAX_REQUEST_TIMEOUT_SECONDS),
  };
}
