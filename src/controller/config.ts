/**
 * wisp-controller-manager's configuration: upstream spire-controller-manager's ControllerManagerConfig file
 * (YAML, `apiVersion: spire.spiffe.io/v1alpha1`, `kind: ControllerManagerConfig`) where it applies, plus
 * Wisp's keys (the issuer URL and the admin credential). Keys upstream has but Wisp does not act on are
 * accepted with one warning each (a manifest written for upstream loads unchanged); a key neither knows is an
 * error. Values are checked with the shared schema kinds, errors in its one-line shape
 * (src/shared/config/schema.ts).
 * @module
 */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import * as v from 'valibot';
import { parse as parseYaml } from 'yaml';
import { configError, issuerBaseUrl, nonEmptyString, oneOf, parseConfig, parsedBy, plainObject } from '../shared/config/schema.js';
import { ENTRY_ID_PATTERN } from '../shared/registry/entry-validation.js';
import { unwrap } from '../shared/result.js';
import { parseTrustDomain, type TrustDomain } from '../shared/spiffe/id.js';
import { parseGoDurationSeconds } from './go-duration.js';
import { compileParentIdTemplate } from './render.js';
import type { Template } from './template.js';

export const CONFIG_API_VERSION = 'spire.spiffe.io/v1alpha1';
export const CONFIG_KIND = 'ControllerManagerConfig';
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** Upstream keys Wisp reads but does not act on: each is warned about once, never an error. */
export const IGNORED_UPSTREAM_KEYS = [
  'validatingWebhookConfigurationName', 'spireServerSocketPath', 'logEncoding', 'grpc', 'syncPeriod', 'cacheNamespace',
  'cacheNamespaces', 'gracefulShutDown', 'controller', 'metrics', 'health', 'webhook',
  'entryIDPrefixCleanup', 'staticManifestPath', 'expandEnvStaticManifests', 'enableEntryRenderCache', 'entryRenderCacheSize',
] as const;

/** What one replica needs to take part in leader election (controller-runtime's defaults). */
export interface LeaderElectionConfig {
  enabled: boolean;
  leaseName: string;
  leaseNamespace: string;
  leaseDurationSeconds: number;
  renewDeadlineSeconds: number;
  retryPeriodSeconds: number;
}

export type AdminCredentialConfig =
  | { kind: 'token-file'; path: string }
  | { kind: 'workload-api'; socket: string; audience: string };

export interface ControllerConfig {
  clusterName: string;
  trustDomain: TrustDomain;
  clusterDomain: string;
  /** regular expressions, unanchored as upstream's: a namespace matching any is ignored */
  ignoreNamespaces: RegExp[];
  className?: string;
  watchClassless: boolean;
  /** upstream's parentIDTemplate (node data only); default: the node's k8s_psat agent ID */
  parentIdTemplate?: Template;
  /** every entry this controller creates gets an ID starting so; it owns exactly those entries */
  entryIDPrefix: string;
  gcIntervalSeconds: number;
  reconcile: { clusterSPIFFEIDs: boolean; clusterFederatedTrustDomains: boolean; clusterStaticEntries: boolean };
  leaderElection: LeaderElectionConfig;
  serverUrl: string;
  credential: AdminCredentialConfig;
  timeoutSeconds: number;
  logLevel: (typeof LOG_LEVELS)[number];
}

const DEFAULT_IGNORE_NAMESPACES = ['kube-system', 'kube-public', 'spire-system'];
/** The entry ID is the prefix and a UUID (36 characters); IDs are at most 255. */
const ENTRY_ID_PREFIX_MAX = 200;

const regex = parsedBy((s: string) => new RegExp(s), (m) => `not a regular expression (${m})`);
/** A Go duration (`10s`, `1m30s`, upstream's metav1.Duration) → whole seconds, at least `min`. */
const seconds = (min: number) =>
  v.optional(
    v.pipe(
      v.string('must be a duration string (e.g. "10s", "1m30s")'),
      v.rawTransform<string, number>(({ dataset, addIssue, NEVER }) => {
        const s = parseGoDurationSeconds(dataset.value);
        if (s === undefined) addIssue({ message: `"${dataset.value}" is not a Go duration (e.g. "10s", "1m30s")` });
        else if (s < min) addIssue({ message: `must be at least ${min}s` });
        else return s;
        return NEVER;
      }),
    ),
  );

const leaderElectionSchema = v.strictObject(
  {
    leaderElect: v.optional(v.boolean('must be true or false')),
    resourceName: v.optional(nonEmptyString()),
    resourceNamespace: v.optional(nonEmptyString()),
    resourceLock: v.optional(v.literal('leases', 'only "leases" is supported')),
    leaseDuration: seconds(2),
    renewDeadline: seconds(1),
    retryPeriod: seconds(1),
  },
  'unknown key; known keys: leaderElect, resourceName, resourceNamespace, resourceLock, leaseDuration, renewDeadline, retryPeriod',
);

const reconcileSchema = v.strictObject(
  {
    clusterSPIFFEIDs: v.optional(v.boolean('must be true or false')),
    clusterFederatedTrustDomains: v.optional(v.boolean('must be true or false')),
    clusterStaticEntries: v.optional(v.boolean('must be true or false')),
  },
  'unknown key; known keys: clusterSPIFFEIDs, clusterFederatedTrustDomains, clusterStaticEntries',
);

const absolutePath = v.pipe(nonEmptyString(), v.check((p) => isAbsolute(p), 'must be an absolute path'));

const fileSchema = v.object({
  apiVersion: v.optional(v.literal(CONFIG_API_VERSION, `must be ${CONFIG_API_VERSION}`)),
  kind: v.optional(v.literal(CONFIG_KIND, `must be ${CONFIG_KIND}`)),
  clusterName: v.pipe(v.any(), v.check((x) => x !== undefined, 'is required'), nonEmptyString()),
  trustDomain: v.pipe(v.any(), v.check((x) => x !== undefined, 'is required'), parsedBy(parseTrustDomain)),
  clusterDomain: v.optional(nonEmptyString()),
  ignoreNamespaces: v.optional(v.array(v.pipe(v.string('must be a list of regular expressions'), regex), 'must be a list of regular expressions')),
  className: v.optional(nonEmptyString()),
  watchClassless: v.optional(v.boolean('must be true or false')),
  parentIDTemplate: v.optional(v.pipe(nonEmptyString(), parsedBy((t: string) => unwrap(compileParentIdTemplate(t))))),
  entryIDPrefix: v.optional(v.pipe(
    v.string(),
    v.check((s) => s.length <= ENTRY_ID_PREFIX_MAX, `must be at most ${ENTRY_ID_PREFIX_MAX} characters`),
    v.check((s) => s === '' || ENTRY_ID_PATTERN.test(s), 'must be letters, digits, ".", "_" or "-"'),
  )),
  gcInterval: seconds(1),
  reconcile: v.optional(reconcileSchema),
  leaderElection: v.optional(leaderElectionSchema),
  logLevel: v.optional(oneOf(LOG_LEVELS)),
  // Wisp's own
  serverURL: v.pipe(v.any(), v.check((x) => x !== undefined, 'is required (the issuer\'s URL)'), issuerBaseUrl()),
  adminTokenFile: v.optional(absolutePath),
  workloadAPISocket: v.optional(absolutePath),
  adminAudience: v.optional(nonEmptyString()),
  timeout: seconds(1),
});

const KNOWN_KEYS = new Set<string>([...Object.keys(fileSchema.entries), ...IGNORED_UPSTREAM_KEYS]);

/** Where the controller's own namespace is written in a pod (the service account mount). */
export const POD_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** `.` appended unless empty or already there, as upstream does with its entryIDPrefix. */
function dotted(prefix: string): string {
  return prefix === '' || prefix.endsWith('.') ? prefix : `${prefix}.`;
}

export interface ParsedConfig {
  config: ControllerConfig;
  /** one line per upstream key present that Wisp does not act on */
  warnings: string[];
}

/**
 * Checks a parsed config document (the YAML's value). `podNamespace`: the default lease namespace.
 * @example parseControllerConfig({ clusterName: 'c', trustDomain: 'example.org', serverURL: 'https://wisp.example', adminTokenFile: '/t' }, 'spire')
 */
export function parseControllerConfig(doc: unknown, podNamespace: string | undefined, source = 'config'): ParsedConfig {
  const obj = parseConfig(plainObject('must be a YAML mapping'), doc, () => source);
  for (const key of Object.keys(obj)) {
    if (!KNOWN_KEYS.has(key)) throw configError(key, `unknown key; known keys: ${[...Object.keys(fileSchema.entries)].join(', ')}`, source);
  }
  const warnings = IGNORED_UPSTREAM_KEYS.filter((k) => obj[k] !== undefined).map((k) => `${k}: an upstream spire-controller-manager setting Wisp does not use; ignored`);
  const c = parseConfig(fileSchema, obj, () => source);
  if (c.adminTokenFile && c.workloadAPISocket) throw configError('adminTokenFile', 'give adminTokenFile or workloadAPISocket, not both', source);
  if (!c.adminTokenFile && !c.workloadAPISocket) throw configError('adminTokenFile', 'an admin credential is required: adminTokenFile, or workloadAPISocket for an admin JWT-SVID', source);
  if (c.adminAudience && !c.workloadAPISocket) throw configError('adminAudience', 'applies only with workloadAPISocket', source);
  const le = c.leaderElection ?? {};
  const enabled = le.leaderElect ?? true;
  const leaseNamespace = le.resourceNamespace ?? podNamespace;
  if (enabled && !leaseNamespace) throw configError('leaderElection.resourceNamespace', 'is required outside a pod (no service account namespace to default to)', source);
  const leaseDurationSeconds = le.leaseDuration ?? 15;
  const renewDeadlineSeconds = le.renewDeadline ?? 10;
  const retryPeriodSeconds = le.retryPeriod ?? 2;
  if (!(leaseDurationSeconds > renewDeadlineSeconds && renewDeadlineSeconds > retryPeriodSeconds)) {
    throw configError('leaderElection', 'needs leaseDuration > renewDeadline > retryPeriod', source);
  }
  const className = c.className;
  const prefix = c.entryIDPrefix ?? `${c.clusterName}${className ? `.${className}` : ''}`;
  if (prefix === '') throw configError('entryIDPrefix', 'must not be empty: Wisp owns only the entries whose ID starts with it', source);
  const entryIDPrefix = dotted(prefix);
  if (!ENTRY_ID_PATTERN.test(entryIDPrefix)) throw configError('entryIDPrefix', `"${entryIDPrefix}" (from clusterName) is not usable in entry IDs: set entryIDPrefix`, source);
  const rc = c.reconcile;
  return {
    warnings,
    config: {
      clusterName: c.clusterName,
      trustDomain: c.trustDomain,
      clusterDomain: c.clusterDomain ?? 'cluster.local',
      ignoreNamespaces: c.ignoreNamespaces ?? DEFAULT_IGNORE_NAMESPACES.map((n) => new RegExp(n)),
      ...(className ? { className } : {}),
      watchClassless: className ? (c.watchClassless ?? false) : true,
      ...(c.parentIDTemplate ? { parentIdTemplate: c.parentIDTemplate } : {}),
      entryIDPrefix,
      gcIntervalSeconds: c.gcInterval ?? 10,
      reconcile: { clusterSPIFFEIDs: rc?.clusterSPIFFEIDs ?? true, clusterFederatedTrustDomains: rc?.clusterFederatedTrustDomains ?? true, clusterStaticEntries: rc?.clusterStaticEntries ?? true },
      leaderElection: {
        enabled,
        leaseName: le.resourceName ?? 'wisp-controller-manager-leader-election',
        leaseNamespace: leaseNamespace ?? '',
        leaseDurationSeconds,
        renewDeadlineSeconds,
        retryPeriodSeconds,
      },
      serverUrl: c.serverURL,
      credential: c.adminTokenFile
        ? { kind: 'token-file', path: c.adminTokenFile }
        : { kind: 'workload-api', socket: c.workloadAPISocket!, audience: c.adminAudience ?? c.serverURL },
      timeoutSeconds: c.timeout ?? 30,
      logLevel: c.logLevel ?? 'info',
    },
  };
}

/** Reads and checks the YAML config file. */
export function readControllerConfig(path: string, podNamespace: string | undefined): ParsedConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw configError(`config file ${path}`, `cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw configError(`config file ${path}`, `not valid YAML (${(e as Error).message.split('\n')[0]})`);
  }
  return parseControllerConfig(doc, podNamespace, `file ${path}`);
}

/** The pod's own namespace from the service account mount, if running in a pod. */
export function podNamespace(file = POD_NAMESPACE_FILE): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

