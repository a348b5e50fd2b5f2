/**
 * Configuration of the cloud node attestors, from JSON [vars] (one per attestor; unset = disabled):
 *
 *   AWS_IID   = {"accountIds":["123456789012"], "agentPathTemplate":"...", "certificates":{"<region>":"<PEM>"}, "allowReattestation":false}
 *   GCP_IIT   = {"projectIds":["my-project"], "audience":"spire-gcp-node-attestor", "keysUrl":"https://...", "issuer":"https://accounts.google.com", "agentPathTemplate":"..."}
 *   AZURE_MSI = {"tenants":["<tenant id>"], "resource":"https://management.azure.com/", "keysUrl":"https://..."}
 *   K8S_PSAT  = {"clusters":{"<name>":{"serviceAccountAllowList":["ns:sa"], "issuer":"https://...", "jwks":{...} | "jwksUrl":"https://..."}}}
 *               or per cluster {"apiServer":"https://...", "token":"<reviewer token>"} (TokenReview; then set K8S_PSAT as a secret)
 *   X509POP   = {"caBundles":["<PEM of one or more CA certificates>"], "agentPathTemplate":"...", "maxIntermediates":4, "maxRsaKeySize":8192}
 *               (SPIRE's ca_bundle_path(s) name files; a Worker has none, so the PEM is inline)
 *
 * Allow-lists are optional (empty = any account/project/tenant, as SPIRE's aws_iid); errors name the key
 * (valibot schemas, src/shared/config/schema.ts).
 * @module
 */
import * as v from 'valibot';
import { httpsUrl, jsonText, jwkSet, knownKeys, nonEmptyString, parseConfig, parsedBy, plainObject, urlString } from '../../shared/config/schema.js';
import { parseAgentPathTemplate, type AgentPathTemplate } from '../../shared/attestation/agent-path-template.js';
import { AWS_IID_DEFAULT_PATH_TEMPLATE, AWS_IID_TEMPLATE_FIELDS, buildAwsRegionKeys } from '../../shared/attestation/aws-iid.js';
import {
  GCP_IIT_DEFAULT_AUDIENCE,
  GCP_IIT_DEFAULT_ISSUER,
  GCP_IIT_DEFAULT_KEYS_URL,
  GCP_IIT_DEFAULT_PATH_TEMPLATE,
  GCP_IIT_TEMPLATE_FIELDS,
} from '../../shared/attestation/gcp-iit.js';
import { AZURE_MSI_DEFAULT_KEYS_URL, AZURE_MSI_DEFAULT_RESOURCE } from '../../shared/attestation/azure-msi.js';
import { CLUSTER_NAME, K8S_PSAT_DEFAULT_AUDIENCE, type PsatClusterPolicy } from '../../shared/attestation/k8s-psat.js';
import {
  X509POP_DEFAULT_MAX_INTERMEDIATES,
  X509POP_DEFAULT_MAX_RSA_KEY_BITS,
  X509POP_DEFAULT_PATH_TEMPLATE,
  X509POP_MIN_RSA_KEY_BITS,
  X509POP_TEMPLATE_FIELDS,
} from '../../shared/attestation/x509pop.js';
import { certificatesFromPem } from '../../shared/encoding/pem.js';
import type { JSONWebKeySet } from 'jose';
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';

export interface AwsIidConfig {
  accountIds: string[];
  agentPathTemplate: AgentPathTemplate;
  /** extra or replacement region certificates (PEM or base64 DER) */
  certificates: Record<string, string>;
  allowReattestation: boolean;
}

export interface GcpIitConfig {
  projectIds: string[];
  audience: string;
  issuer: string;
  keysUrl: string;
  agentPathTemplate: AgentPathTemplate;
  allowReattestation: boolean;
}

export interface AzureMsiConfig {
  tenants: string[];
  resource: string;
  keysUrl: string;
  allowReattestation: boolean;
}

/** How a k8s_psat cluster's tokens are validated: offline by its issuer's keys, or by its API server. */
export type K8sPsatValidation =
  | { mode: 'keys'; issuer: string; jwks?: JSONWebKeySet; jwksUrl?: string }
  | { mode: 'tokenReview'; apiServer: string; token: string };

export interface K8sPsatClusterConfig extends PsatClusterPolicy {
  /** empty: the API server's own audience (TokenReview mode only) */
  audience: string[];
  validation: K8sPsatValidation;
}

export interface K8sPsatConfig {
  clusters: Record<string, K8sPsatClusterConfig>;
}

/** x509pop (SPIRE's external_pki mode): the CAs device certificates must chain to. */
export interface X509popConfig {
  caBundles: X509Certificate[];
  agentPathTemplate: AgentPathTemplate;
  maxIntermediates: number;
  maxRsaKeySize: number;
}

export interface CloudAttestorsConfig {
  awsIid?: AwsIidConfig;
  gcpIit?: GcpIitConfig;
  azureMsi?: AzureMsiConfig;
  k8sPsat?: K8sPsatConfig;
  x509pop?: X509popConfig;
}

export interface CloudAttestorsEnv {
  AWS_IID?: string;
  GCP_IIT?: string;
  AZURE_MSI?: string;
  K8S_PSAT?: string;
  X509POP?: string;
}

const strings = (pattern: RegExp, what: string) =>
  v.optional(v.array(v.pipe(v.string(`must be ${what}`), v.regex(pattern, `must be ${what}`)), 'must be an array of strings'), []);

const str = (fallback: string) => v.optional(nonEmptyString(), fallback);

const bool = v.optional(v.boolean('must be true or false'), false);

const keysUrl = (fallback: string) => v.optional(v.pipe(nonEmptyString(), urlString(), httpsUrl()), fallback);

const template = (fallback: string, fields: readonly string[]) =>
  v.optional(v.pipe(nonEmptyString(), parsedBy((source: string): AgentPathTemplate => parseAgentPathTemplate(source, fields))), fallback);

const REGION_PEM = 'must be a region name mapped to a PEM certificate';

const certificates = v.optional(
  v.pipe(
    plainObject('must map regions to PEM certificates'),
    v.record(v.pipe(v.string(), v.regex(/^[a-z0-9-]{1,64}$/, REGION_PEM)), v.string(REGION_PEM)),
    parsedBy(
      (c: Record<string, string>) => (buildAwsRegionKeys(c), c),
      (m) => `a certificate does not parse (${m})`,
    ),
  ),
  {},
);

/** A JSON var: unset or empty leaves the attestor disabled. */
const jsonVar = <O>(schema: v.GenericSchema<Record<string, unknown>, O>) =>
  v.pipe(
    v.optional(v.string()),
    v.transform((s) => (s === '' ? undefined : s)),
    v.optional(v.pipe(v.string(), jsonText('must be a JSON object'), plainObject('must be a JSON object'), schema)),
  );

const AWS_IID_SCHEMA = knownKeys({
  accountIds: strings(/^\d{12}$/, 'a 12-digit AWS account ID'),
  agentPathTemplate: template(AWS_IID_DEFAULT_PATH_TEMPLATE, AWS_IID_TEMPLATE_FIELDS),
  certificates,
  allowReattestation: bool,
});

const GCP_IIT_SCHEMA = knownKeys({
  projectIds: strings(/^[a-z][a-z0-9.:-]{0,127}$/, 'a GCP project ID'),
  audience: str(GCP_IIT_DEFAULT_AUDIENCE),
  issuer: str(GCP_IIT_DEFAULT_ISSUER),
  keysUrl: keysUrl(GCP_IIT_DEFAULT_KEYS_URL),
  agentPathTemplate: template(GCP_IIT_DEFAULT_PATH_TEMPLATE, GCP_IIT_TEMPLATE_FIELDS),
  allowReattestation: bool,
});

const AZURE_MSI_SCHEMA = knownKeys({
  tenants: strings(/^[A-Za-z0-9._-]{1,128}$/, 'a tenant ID'),
  resource: str(AZURE_MSI_DEFAULT_RESOURCE),
  keysUrl: keysUrl(AZURE_MSI_DEFAULT_KEYS_URL),
  allowReattestation: bool,
});

const jwks = jwkSet('must be a JWK Set {"keys":[...]} of RSA or EC public keys (kubectl get --raw /openid/v1/jwks)');

const K8S_PSAT_CLUSTER = v.pipe(
  knownKeys({
    serviceAccountAllowList: v.pipe(strings(/^[a-z0-9.-]{1,253}:[a-z0-9.-]{1,253}$/, 'a "namespace:name" service account'), v.minLength(1, 'must allow at least one service account')),
    audience: v.optional(v.array(nonEmptyString(), 'must be an array of strings'), [...K8S_PSAT_DEFAULT_AUDIENCE]),
    allowedNodeLabelKeys: strings(/^\S{1,317}$/, 'a label key'),
    allowedPodLabelKeys: strings(/^\S{1,317}$/, 'a label key'),
    usePodUidForAgentId: bool,
    issuer: v.optional(nonEmptyString()),
    jwks: v.optional(jwks),
    jwksUrl: v.optional(v.pipe(nonEmptyString(), urlString(), httpsUrl())),
    apiServer: v.optional(v.pipe(nonEmptyString(), urlString(), httpsUrl(), v.transform((s) => s.replace(/\/+$/, '')))),
    token: v.optional(nonEmptyString()),
  }),
  v.rawTransform(({ dataset, addIssue, NEVER }): K8sPsatClusterConfig => {
    const { issuer, jwks: keys, jwksUrl, apiServer, token, ...policy } = dataset.value;
    const fail = (message: string) => (addIssue({ message }), NEVER);
    const offline = keys !== undefined || jwksUrl !== undefined;
    if (offline && (apiServer !== undefined || token !== undefined)) return fail('give either jwks/jwksUrl (offline keys) or apiServer/token (TokenReview), not both');
    if (offline) {
      if (keys !== undefined && jwksUrl !== undefined) return fail('give jwks or jwksUrl, not both');
      if (issuer === undefined) return fail('issuer is required with jwks/jwksUrl (the cluster\'s --service-account-issuer)');
      if (policy.audience.length === 0) return fail('audience must name at least one audience with jwks/jwksUrl');
      return { ...policy, validation: { mode: 'keys', issuer, ...(keys ? { jwks: keys } : { jwksUrl: jwksUrl! }) } };
    }
    if (apiServer === undefined || token === undefined) return fail('needs jwks or jwksUrl (offline keys), or apiServer and token (TokenReview)');
    if (issuer !== undefined) return fail('issuer is used only with jwks/jwksUrl');
    return { ...policy, validation: { mode: 'tokenReview', apiServer, token } };
  }),
);

const K8S_PSAT_SCHEMA = knownKeys({
  clusters: v.pipe(
    plainObject('must map cluster names to their configuration'),
    v.check((o) => Object.keys(o).length > 0, 'must configure at least one cluster'),
    v.record(v.pipe(v.string(), v.regex(CLUSTER_NAME, 'must be a cluster name (letters, digits, ".", "_", "-")')), K8S_PSAT_CLUSTER),
  ),
});

const CA_BUNDLE = 'must be a PEM document of CA certificates (BEGIN CERTIFICATE blocks)';

const X509POP_SCHEMA = knownKeys({
  caBundles: v.pipe(
    v.union([v.string(CA_BUNDLE), v.array(v.string(CA_BUNDLE), CA_BUNDLE)], 'must be a PEM string or an array of them'),
    v.transform((b) => (typeof b === 'string' ? [b] : b)),
    v.check((b) => b.length > 0, 'must hold at least one CA certificate'),
    parsedBy((bundles: string[]) => bundles.flatMap((pem, i) => certificatesFromPem(pem, `caBundles[${i}]`).map((der) => new X509Certificate(der.slice())))),
  ),
  agentPathTemplate: template(X509POP_DEFAULT_PATH_TEMPLATE, X509POP_TEMPLATE_FIELDS),
  maxIntermediates: v.optional(v.pipe(v.number('must be a whole number'), v.integer('must be a whole number'), v.minValue(1, 'must be greater than 0'), v.maxValue(16, 'must be at most 16')), X509POP_DEFAULT_MAX_INTERMEDIATES),
  maxRsaKeySize: v.optional(
    v.pipe(v.number('must be a whole number'), v.integer('must be a whole number'), v.minValue(X509POP_MIN_RSA_KEY_BITS, `must be at least ${X509POP_MIN_RSA_KEY_BITS}`), v.maxValue(16384, 'must be at most 16384')),
    X509POP_DEFAULT_MAX_RSA_KEY_BITS,
  ),
});

/** The vars' schemas, for parseCloudAttestorsConfig and the Worker's whole config (src/worker/config.ts). */
export const CLOUD_ATTESTORS_ENTRIES = {
  AWS_IID: jsonVar(AWS_IID_SCHEMA),
  GCP_IIT: jsonVar(GCP_IIT_SCHEMA),
  AZURE_MSI: jsonVar(AZURE_MSI_SCHEMA),
  K8S_PSAT: jsonVar(K8S_PSAT_SCHEMA),
  X509POP: jsonVar(X509POP_SCHEMA),
};

type ParsedVars = { [K in keyof typeof CLOUD_ATTESTORS_ENTRIES]?: v.InferOutput<(typeof CLOUD_ATTESTORS_ENTRIES)[K]> };

/** The parsed vars as a CloudAttestorsConfig (an empty var: that attestor absent). */
export function cloudAttestorsFromEnv(vars: ParsedVars): CloudAttestorsConfig {
  return {
    ...(vars.AWS_IID ? { awsIid: vars.AWS_IID } : {}),
    ...(vars.GCP_IIT ? { gcpIit: vars.GCP_IIT } : {}),
    ...(vars.AZURE_MSI ? { azureMsi: vars.AZURE_MSI } : {}),
    ...(vars.K8S_PSAT ? { k8sPsat: vars.K8S_PSAT } : {}),
    ...(vars.X509POP ? { x509pop: vars.X509POP } : {}),
  };
}

const CLOUD_ATTESTORS_SCHEMA = v.pipe(v.object(CLOUD_ATTESTORS_ENTRIES), v.transform(cloudAttestorsFromEnv));

/** Parses the cloud attestor vars; an unset or empty var leaves that attestor disabled. */
export function parseCloudAttestorsConfig(env: CloudAttestorsEnv): CloudAttestorsConfig {
  return parseConfig(CLOUD_ATTESTORS_SCHEMA, env);
}
