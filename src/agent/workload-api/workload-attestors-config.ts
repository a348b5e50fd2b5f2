/**
 * The agent config's `workloadAttestors` block (SPIRE's `WorkloadAttestor "k8s"`, `"docker"`, `"systemd"`):
 * its schema, defaults and the resolution of the k8s node name and kubelet URL. Kept beside the attestors so src/agent/config.ts stays a
 * table of blocks.
 * @module
 */
import * as v from 'valibot';
import { jsonObject, knownKeys, nonEmptyString, urlString } from '../../shared/config/schema.js';
import { WispError } from '../../shared/errors.js';
import { LOOPBACK_IPV4 } from '../../shared/net/loopback.js';
import type { WorkloadAttestorsConfig } from './workload-attestors.js';

const BOOLEAN = 'must be true or false';

/** The `k8s` workload attestor's defaults (SPIRE's: its service account's CA and token, MY_NODE_NAME, 500 ms × 60). */
export const K8S_WORKLOAD_ATTESTOR_DEFAULTS = {
  kubeletPort: 10250,
  kubeletCa: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
  tokenPath: '/var/run/secrets/kubernetes.io/serviceaccount/token',
  nodeNameEnv: 'MY_NODE_NAME',
  podWatchIntervalSeconds: 0.5,
  maxPollAttempts: 60,
} as const;
const K8S = K8S_WORKLOAD_ATTESTOR_DEFAULTS;
/** The `docker` workload attestor's default Engine socket (SPIRE's `docker_socket_path`). */
export const DEFAULT_DOCKER_SOCKET_PATH = 'unix:///var/run/docker.sock';
const DOCKER_SOCKET = 'must be unix://<absolute path of the Docker Engine socket>, e.g. unix:///var/run/docker.sock';
const DOCKER_VERSION = 'must be an Engine API version such as "1.41"';
const absolutePath = () => v.pipe(nonEmptyString(), v.check((s) => s.startsWith('/'), 'must be an absolute path'));
const INTERVAL = 'must be a number of seconds from 0.05 to 60';
const ATTEMPTS = 'must be a whole number from 1 to 600';
/** `workloadAttestors`: `{ "k8s": {...} }`; the k8s block's node name and kubelet URL are resolved in parseAgentConfig */
export const workloadAttestorsObject = v.optional(
  v.pipe(
    jsonObject('must be a JSON object', 'must be an object, e.g. {"k8s": {"kubeletUrl": "https://node-1:10250"}}'),
    knownKeys({
      k8s: v.optional(
        v.pipe(
          knownKeys({
            kubeletUrl: v.optional(
              v.pipe(
                urlString('must be a URL string'),
                v.check((s) => new URL(s).protocol === 'https:', 'must be https (the kubelet\'s authenticated port, 10250)'),
                v.check((s) => { const u = new URL(s); return !u.search && !u.hash && !u.username && (u.pathname === '/' || u.pathname === ''); }, 'must be a base URL without path, credentials, query or fragment'),
                v.transform((s) => s.replace(/\/+$/, '')),
              ),
            ),
            kubeletCa: v.optional(absolutePath(), K8S.kubeletCa),
            skipKubeletVerification: v.optional(v.boolean(BOOLEAN), false),
            tokenPath: v.optional(absolutePath()),
            certificatePath: v.optional(absolutePath()),
            privateKeyPath: v.optional(absolutePath()),
            nodeName: v.optional(nonEmptyString()),
            nodeNameEnv: v.optional(nonEmptyString(), K8S.nodeNameEnv),
            podWatchIntervalSeconds: v.optional(v.pipe(v.number(INTERVAL), v.minValue(0.05, INTERVAL), v.maxValue(60, INTERVAL)), K8S.podWatchIntervalSeconds),
            maxPollAttempts: v.optional(v.pipe(v.number(ATTEMPTS), v.integer(ATTEMPTS), v.minValue(1, ATTEMPTS), v.maxValue(600, ATTEMPTS)), K8S.maxPollAttempts),
          }),
          v.check((k) => (k.certificatePath === undefined) === (k.privateKeyPath === undefined), 'certificatePath and privateKeyPath go together (client certificate authentication)'),
          v.check((k) => k.certificatePath === undefined || k.tokenPath === undefined, 'give tokenPath or certificatePath/privateKeyPath, not both'),
        ),
      ),
      docker: v.optional(
        knownKeys({
          dockerSocketPath: v.optional(v.pipe(v.string(DOCKER_SOCKET), v.regex(/^unix:\/\/\/[^\0]*[^/\0]$/, DOCKER_SOCKET)), DEFAULT_DOCKER_SOCKET_PATH),
          dockerVersion: v.optional(v.pipe(v.string(DOCKER_VERSION), v.regex(/^\d{1,2}\.\d{1,3}$/, DOCKER_VERSION))),
        }),
      ),
      systemd: v.optional(knownKeys({})),
    }),
  ),
);

type ParsedWorkloadAttestors = NonNullable<v.InferOutput<typeof workloadAttestorsObject>>;

/** The k8s block's node name (nodeName, else $nodeNameEnv) and kubelet URL (kubeletUrl, else https://<node or 127.0.0.1>:10250), as SPIRE. */
export function resolveWorkloadAttestors(c: ParsedWorkloadAttestors, env: Readonly<Record<string, string | undefined>>): WorkloadAttestorsConfig {
  const others: WorkloadAttestorsConfig = {
    ...(c.docker ? { docker: { dockerSocketPath: c.docker.dockerSocketPath, ...(c.docker.dockerVersion !== undefined ? { dockerVersion: c.docker.dockerVersion } : {}) } } : {}),
    ...(c.systemd ? { systemd: {} } : {}),
  };
  if (!c.k8s) return others;
  const { nodeNameEnv, kubeletUrl, tokenPath, certificatePath, privateKeyPath, ...k8s } = c.k8s;
  const nodeName = k8s.nodeName ?? (env[nodeNameEnv]?.trim() || undefined);
  // the node name becomes the kubelet URL's host: a DNS name or an IP address, nothing that changes the URL
  if (kubeletUrl === undefined && nodeName !== undefined && !/^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|[0-9A-Fa-f:]+)$/.test(nodeName)) {
    throw new WispError('ERR_CONFIG_INVALID', `workloadAttestors.k8s.nodeName (from ${k8s.nodeName === undefined ? `env ${nodeNameEnv}` : 'config'}): "${nodeName}" is not a host name; set kubeletUrl`);
  }
  const host = nodeName === undefined ? LOOPBACK_IPV4 : nodeName.includes(':') ? `[${nodeName}]` : nodeName;
  return {
    ...others,
    k8s: {
      ...k8s,
      kubeletUrl: kubeletUrl ?? `https://${host}:${K8S.kubeletPort}`,
      tokenPath: tokenPath ?? K8S.tokenPath,
      ...(certificatePath !== undefined && privateKeyPath !== undefined ? { certificatePath, privateKeyPath } : {}),
      ...(nodeName !== undefined ? { nodeName } : {}),
    },
  };
}
