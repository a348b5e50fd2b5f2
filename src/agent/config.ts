/**
 * The agent's configuration, parsed once at the edge (STYLE G14): a JSON file, then the environment
 * (`WISP_*`, `SPIFFE_ENDPOINT_SOCKET`), then command-line flags, later sources winning. Errors name the key
 * and the source its value came from (the layering: src/node/config-sources.ts; the value kinds:
 * src/shared/config/schema.ts). No module below this one reads `process.env` or a config path.
 * Format documented in docs/agent-config.md.
 * @module
 */
import * as v from 'valibot';
import { mergeConfigSources, parseMergedConfig, readConfigFile, type ConfigFile, type ConfigLayout } from '../node/config-sources.js';
import { issuerBaseUrl, jsonObject, knownKeys, nonEmptyString, oneOf, parsedBy, required, urlString, wholeNumber } from '../shared/config/schema.js';
import { CLUSTER_NAME } from '../shared/attestation/k8s-psat.js';
import { WispError } from '../shared/errors.js';
import { LOOPBACK_IPV4 } from '../shared/net/loopback.js';
import { parseTrustDomain, type TrustDomain } from '../shared/spiffe/id.js';
import { SDS_DEFAULTS, type SdsConfig } from './sds/defaults.js';
import { RATE_LIMITED_METHODS, type RateLimitKey, type WorkloadRateLimits } from './workload-api/rate-limit.js';
import type { WorkloadAttestorsConfig } from './workload-api/workload-attestors.js';
import { resolveWorkloadAttestors, workloadAttestorsObject } from './workload-api/workload-attestors-config.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const satisfies readonly LogLevel[];

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
  /** k8s_psat: the projected service account token of the agent's pod */
  k8sPsat?: K8sPsatAgentConfig;
  /** x509pop: a device certificate and its key (SPIRE's x509pop agent plugin) */
  x509pop?: X509popAgentConfig;
  logLevel: LogLevel;
  syncIntervalSeconds: number;
  /** absent or true: hold the issuer's notification channel and sync as soon as it says so (the poll stays); false: poll only */
  notifications?: boolean;
  /** timeout of every request to the issuer */
  requestTimeoutSeconds: number;
  /** Envoy SDS resource names and validation (SPIRE's `sds` block); SPIRE's defaults when absent */
  sds?: SdsConfig;
  /** true: no Envoy SDS on the socket (SPIRE `disable_sds_api`) */
  disableSdsApi?: boolean;
  /** per-caller limits on Workload API and SDS calls (SPIRE's `experimental.ratelimit`); absent: unlimited */
  rateLimit?: WorkloadRateLimits;
  /** workload attestors besides `unix` (always on): `k8s` (SPIRE's `WorkloadAttestor "k8s"`) */
  workloadAttestors?: WorkloadAttestorsConfig;
  /** SPIRE's `telemetry` block: only `prometheus` (the metrics listener, docs/telemetry.md); absent: no metrics */
  telemetry?: { prometheus?: PrometheusConfig };
  /** SPIRE's `health_checks`: HTTP live/ready probes; absent or listenerEnabled false: no listener */
  healthChecks?: HealthChecksConfig;
}

/** The metrics listener: plain HTTP, loopback unless `host` says otherwise. */
export interface PrometheusConfig {
  host: string;
  /** 0: any free port (logged) */
  port: number;
}

/** SPIRE's `health_checks` keys, camelCased. */
export interface HealthChecksConfig {
  listenerEnabled: boolean;
  bindAddress: string;
  bindPort: number;
  livePath: string;
  readyPath: string;
}

export const TELEMETRY_DEFAULTS = { prometheusHost: LOOPBACK_IPV4 } as const;
export const HEALTH_CHECKS_DEFAULTS = { listenerEnabled: false, bindAddress: LOOPBACK_IPV4, bindPort: 8080, livePath: '/live', readyPath: '/ready' } as const;

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

/** k8s_psat: which issuer-side cluster, and where the kubelet projects the token. */
export interface K8sPsatAgentConfig {
  cluster: string;
  tokenPath: string;
}

/** x509pop: SPIRE's `certificate_path`, `private_key_path`, `intermediates_path` (PEM files, read at each attestation). */
export interface X509popAgentConfig {
  certificatePath: string;
  privateKeyPath: string;
  intermediatesPath?: string;
}

/** SPIRE's default token path. */
export const K8S_PSAT_DEFAULT_TOKEN_PATH = '/var/run/secrets/tokens/spire-agent';

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
  k8sPsat: 'WISP_K8S_PSAT',
  x509pop: 'WISP_X509POP',
  logLevel: 'WISP_LOG_LEVEL',
  syncIntervalSeconds: 'WISP_SYNC_INTERVAL_SECONDS',
  notifications: 'WISP_NOTIFICATIONS',
  requestTimeoutSeconds: 'WISP_REQUEST_TIMEOUT_SECONDS',
  sds: 'WISP_SDS',
  disableSdsApi: 'WISP_DISABLE_SDS_API',
  rateLimit: 'WISP_RATE_LIMIT',
  workloadAttestors: 'WISP_WORKLOAD_ATTESTORS',
  telemetry: 'WISP_TELEMETRY',
  healthChecks: 'WISP_HEALTH_CHECKS',
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
export type AgentConfigFile = ConfigFile;

/** Reads and JSON-parses a config file; a one-line `WispError` if it cannot. */
export const readAgentConfigFile: (path: string) => AgentConfigFile = readConfigFile;

const LAYOUT: ConfigLayout<AgentConfigKey> = {
  keys: KEYS,
  // SPIFFE_ENDPOINT_SOCKET (the standard's variable) sets socketPath too; WISP_SOCKET_PATH wins
  env: (key) => (key === 'socketPath' ? ['SPIFFE_ENDPOINT_SOCKET', AGENT_CONFIG_ENV[key]] : [AGENT_CONFIG_ENV[key]]),
  flag: (key) => AGENT_CONFIG_FLAGS[key] ?? key,
};

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

const seconds = (max: number) =>
  wholeNumber(1, max, { notWhole: (x) => `must be a whole number of seconds (got ${JSON.stringify(x)})`, outOfRange: `must be between 1 and ${max}` });

const requiredKey = (key: AgentConfigKey) =>
  `is required (config file, env ${AGENT_CONFIG_ENV[key]}${AGENT_CONFIG_FLAGS[key] ? ` or flag ${AGENT_CONFIG_FLAGS[key]}` : ''})`;

const metadataUrl = (fallback: string) =>
  v.optional(
    v.pipe(
      urlString('must be a URL string'),
      v.check((s) => ['http:', 'https:'].includes(new URL(s).protocol), 'must be http or https'),
      v.check((s) => { const u = new URL(s); return !u.search && !u.hash && !u.username; }, 'must be a base URL without credentials, query or fragment'),
      v.transform((s) => s.replace(/\/+$/, '')),
    ),
    fallback,
  );

const TIMEOUT = 'must be a whole number of seconds between 1 and 60';
const cloudTimeout = (fallback: number) => v.optional(v.pipe(v.number(TIMEOUT), v.integer(TIMEOUT), v.minValue(1, TIMEOUT), v.maxValue(60, TIMEOUT)), fallback);

/** A cloud attestor's object: from the file as JSON, from the environment as a JSON string. */
const cloudObject = <E extends v.ObjectEntries>(entries: E) =>
  v.optional(v.pipe(jsonObject('must be a JSON object', 'must be an object (e.g. {} for the defaults)'), knownKeys(entries)));

const absolutePath = v.pipe(nonEmptyString(), v.check((s: string) => s.startsWith('/'), 'must be an absolute path'));

const BOOLEAN = 'must be true or false';
/** true/false, or from the environment the strings "true"/"false" */
const booleanish = () => v.union([v.boolean(BOOLEAN), v.pipe(v.picklist(['true', 'false'], BOOLEAN), v.transform((s) => s === 'true'))], BOOLEAN);

/** Most calls per second a limit may name; far above SPIRE's examples (500/s), low enough to catch a typo. */
export const MAX_RATE_LIMIT_PER_SECOND = 1_000_000;
const RATE = `must be a whole number of calls per second from 0 (unlimited) to ${MAX_RATE_LIMIT_PER_SECOND}`;
const perSecond = v.optional(v.pipe(v.number(RATE), v.integer(RATE), v.minValue(0, RATE), v.maxValue(MAX_RATE_LIMIT_PER_SECOND, RATE)));
/** camelCase key → SPIRE's snake_case spelling (`fetchX509Svid` → `fetch_x509_svid`), both accepted */
const snakeCase = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const RATE_LIMIT_KEYS = Object.keys(RATE_LIMITED_METHODS) as RateLimitKey[];
/** The `rateLimit` object: each key in Wisp's camelCase or SPIRE's snake_case, not both. */
const rateLimitObject = v.optional(
  v.pipe(
    jsonObject('must be a JSON object', 'must be an object of calls per second, e.g. {"fetch_jwt_svid": 500}'),
    knownKeys(Object.fromEntries(RATE_LIMIT_KEYS.flatMap((k) => [[k, perSecond], [snakeCase(k), perSecond]]))),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const input = dataset.value as Record<string, number | undefined>;
      const out: WorkloadRateLimits = {};
      for (const key of RATE_LIMIT_KEYS) {
        const camel = input[key];
        const snake = input[snakeCase(key)];
        if (camel !== undefined && snake !== undefined) {
          addIssue({ message: `${key} and ${snakeCase(key)} are the same limit; give one`, path: [{ type: 'object', origin: 'value', input, key: snakeCase(key), value: snake }] });
          return NEVER;
        }
        const rate = camel ?? snake;
        if (rate !== undefined) out[key] = rate;
      }
      return out;
    }),
  ),
);

const PORT = 'must be a whole number from 0 (any free port) to 65535';
const port = (fallback?: number) => {
  const p = v.pipe(v.number(PORT), v.integer(PORT), v.minValue(0, PORT), v.maxValue(65535, PORT));
  return fallback === undefined ? required(p, 'is required (a port number)') : v.optional(p, fallback);
};
const HOST = 'must be a host name or IP address to listen on';
const listenHost = (fallback: string) => v.optional(v.pipe(nonEmptyString(), v.regex(/^[A-Za-z0-9.:_-]+$/, HOST)), fallback);
const httpPath = (fallback: string) => v.optional(v.pipe(nonEmptyString(), v.regex(/^\/[A-Za-z0-9._~/-]*$/, 'must be a path starting with /')), fallback);
const HC = HEALTH_CHECKS_DEFAULTS;

const AWS = CLOUD_ATTESTOR_DEFAULTS.awsIid;
const GCP = CLOUD_ATTESTOR_DEFAULTS.gcpIit;
const AZURE = CLOUD_ATTESTOR_DEFAULTS.azureMsi;

/** Keys in the order their errors are reported. */
const AGENT_SCHEMA = v.object({
  serverUrl: required(issuerBaseUrl(), requiredKey('serverUrl')),
  trustDomain: required(v.pipe(v.unknown(), parsedBy((x: unknown) => parseTrustDomain(x))), requiredKey('trustDomain')),
  logLevel: v.optional(oneOf(LOG_LEVELS), AGENT_CONFIG_DEFAULTS.logLevel),
  dataDir: v.optional(v.pipe(nonEmptyString(), v.check((s) => s.startsWith('/'), 'must be an absolute path')), AGENT_CONFIG_DEFAULTS.dataDir),
  socketPath: v.optional(
    v.pipe(
      nonEmptyString(),
      parsedBy(
        (raw: string) => {
          let path: string;
          try {
            path = socketPathFromEndpoint(raw);
          } catch {
            throw new Error(`"${raw}" is not a unix:// endpoint or an absolute path`);
          }
          if (!path.startsWith('/')) throw new Error(`must be an absolute path (got "${raw}")`);
          return path;
        },
      ),
    ),
    AGENT_CONFIG_DEFAULTS.socketPath,
  ),
  joinToken: v.optional(nonEmptyString()),
  awsIid: cloudObject({
    metadataUrl: metadataUrl(AWS.metadataUrl),
    imdsV1Fallback: v.optional(v.boolean('must be true or false'), AWS.imdsV1Fallback),
    timeoutSeconds: cloudTimeout(AWS.timeoutSeconds),
  }),
  gcpIit: cloudObject({
    metadataUrl: metadataUrl(GCP.metadataUrl),
    audience: v.optional(nonEmptyString(), GCP.audience),
    serviceAccount: v.optional(nonEmptyString(), GCP.serviceAccount),
    timeoutSeconds: cloudTimeout(GCP.timeoutSeconds),
  }),
  azureMsi: cloudObject({
    metadataUrl: metadataUrl(AZURE.metadataUrl),
    resource: v.optional(nonEmptyString(), AZURE.resource),
    timeoutSeconds: cloudTimeout(AZURE.timeoutSeconds),
  }),
  k8sPsat: cloudObject({
    cluster: required(v.pipe(nonEmptyString(), v.regex(CLUSTER_NAME, 'must be a cluster name (letters, digits, ".", "_", "-")')), 'is required (the cluster name the issuer\'s K8S_PSAT configures)'),
    tokenPath: v.optional(v.pipe(nonEmptyString(), v.check((s) => s.startsWith('/'), 'must be an absolute path')), K8S_PSAT_DEFAULT_TOKEN_PATH),
  }),
  x509pop: cloudObject({
    certificatePath: required(absolutePath, 'is required (PEM: the device certificate, then any intermediates)'),
    privateKeyPath: required(absolutePath, 'is required (PEM: the certificate\'s private key, PKCS#1, SEC1 or PKCS#8)'),
    intermediatesPath: v.optional(absolutePath),
  }),
  syncIntervalSeconds: v.optional(seconds(MAX_SYNC_INTERVAL_SECONDS), AGENT_CONFIG_DEFAULTS.syncIntervalSeconds),
  notifications: v.optional(booleanish()),
  requestTimeoutSeconds: v.optional(seconds(MAX_REQUEST_TIMEOUT_SECONDS), AGENT_CONFIG_DEFAULTS.requestTimeoutSeconds),
  sds: cloudObject({
    defaultSvidName: v.optional(nonEmptyString(), SDS_DEFAULTS.defaultSvidName),
    defaultBundleName: v.optional(nonEmptyString(), SDS_DEFAULTS.defaultBundleName),
    defaultAllBundlesName: v.optional(nonEmptyString(), SDS_DEFAULTS.defaultAllBundlesName),
    disableSpiffeCertValidation: v.optional(v.boolean(BOOLEAN), SDS_DEFAULTS.disableSpiffeCertValidation),
  }),
  disableSdsApi: v.optional(booleanish()),
  rateLimit: rateLimitObject,
  workloadAttestors: workloadAttestorsObject,
  telemetry: cloudObject({
    prometheus: v.optional(v.pipe(jsonObject('must be a JSON object', 'must be an object like {"port": 9988}'), knownKeys({ host: listenHost(TELEMETRY_DEFAULTS.prometheusHost), port: port() }))),
  }),
  healthChecks: v.optional(
    v.pipe(
      jsonObject('must be a JSON object', 'must be an object like {"listenerEnabled": true, "bindPort": 8080}'),
      knownKeys({
        listenerEnabled: v.optional(v.boolean(BOOLEAN), HC.listenerEnabled),
        bindAddress: listenHost(HC.bindAddress),
        bindPort: port(HC.bindPort),
        livePath: httpPath(HC.livePath),
        readyPath: httpPath(HC.readyPath),
      }),
      v.check((h) => h.livePath !== h.readyPath, 'livePath and readyPath must differ'),
    ),
  ),
});

const NODE_ATTESTOR_KEYS = ['joinToken', 'awsIid', 'gcpIit', 'azureMsi', 'k8sPsat', 'x509pop'] as const;

/**
 * Merges file, environment and flags (later wins) into an `AgentConfig`, applying defaults.
 * @example parseAgentConfig(readAgentConfigFile('/etc/wisp/agent.json'), process.env, { joinToken })
 */
export function parseAgentConfig(
  file: AgentConfigFile | undefined,
  env: Readonly<Record<string, string | undefined>>,
  flags: AgentConfigInput,
): AgentConfig {
  const merged = mergeConfigSources(LAYOUT, file, env, flags);
  const attestors = NODE_ATTESTOR_KEYS.filter((k) => merged.has(k));
  if (attestors.length > 1) {
    const [first, second] = attestors.map((k) => `${k} (from ${merged.get(k)!.source})`);
    throw new WispError('ERR_CONFIG_INVALID', `${first} and ${second}: configure one node attestor only`);
  }
  const c = parseMergedConfig(LAYOUT, merged, AGENT_SCHEMA);
  return {
    serverUrl: c.serverUrl,
    trustDomain: c.trustDomain,
    dataDir: c.dataDir,
    socketPath: c.socketPath,
    ...(c.joinToken !== undefined ? { joinToken: c.joinToken } : {}),
    ...(c.awsIid ? { awsIid: c.awsIid } : {}),
    ...(c.gcpIit ? { gcpIit: c.gcpIit } : {}),
    ...(c.azureMsi ? { azureMsi: c.azureMsi } : {}),
    ...(c.k8sPsat ? { k8sPsat: c.k8sPsat } : {}),
    ...(c.x509pop ? { x509pop: c.x509pop } : {}),
    logLevel: c.logLevel,
    syncIntervalSeconds: c.syncIntervalSeconds,
    ...(c.notifications !== undefined ? { notifications: c.notifications } : {}),
    requestTimeoutSeconds: c.requestTimeoutSeconds,
    ...(c.sds ? { sds: c.sds } : {}),
    ...(c.disableSdsApi !== undefined ? { disableSdsApi: c.disableSdsApi } : {}),
    ...(c.rateLimit ? { rateLimit: c.rateLimit } : {}),
    ...(c.workloadAttestors ? { workloadAttestors: resolveWorkloadAttestors(c.workloadAttestors, env) } : {}),
    ...(c.telemetry?.prometheus ? { telemetry: { prometheus: c.telemetry.prometheus } } : {}),
    ...(c.healthChecks ? { healthChecks: c.healthChecks } : {}),
  };
}
