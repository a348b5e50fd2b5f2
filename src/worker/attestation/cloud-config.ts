/**
 * Configuration of the cloud node attestors, from JSON [vars] (one per attestor; unset = disabled):
 *
 *   AWS_IID   = {"accountIds":["123456789012"], "agentPathTemplate":"...", "certificates":{"<region>":"<PEM>"}, "allowReattestation":false}
 *   GCP_IIT   = {"projectIds":["my-project"], "audience":"spire-gcp-node-attestor", "keysUrl":"https://...", "issuer":"https://accounts.google.com", "agentPathTemplate":"..."}
 *   AZURE_MSI = {"tenants":["<tenant id>"], "resource":"https://management.azure.com/", "keysUrl":"https://..."}
 *
 * Allow-lists are optional (empty = any account/project/tenant, as SPIRE's aws_iid); errors name the key
 * (valibot schemas, src/shared/config/schema.ts).
 * @module
 */
import * as v from 'valibot';
import { httpsUrl, jsonText, knownKeys, nonEmptyString, parseConfig, parsedBy, plainObject, urlString } from '../../shared/config/schema.js';
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

export interface CloudAttestorsConfig {
  awsIid?: AwsIidConfig;
  gcpIit?: GcpIitConfig;
  azureMsi?: AzureMsiConfig;
}

export interface CloudAttestorsEnv {
  AWS_IID?: string;
  GCP_IIT?: string;
  AZURE_MSI?: string;
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

/** The vars' schemas, for parseCloudAttestorsConfig and the Worker's whole config (src/worker/config.ts). */
export const CLOUD_ATTESTORS_ENTRIES = {
  AWS_IID: jsonVar(AWS_IID_SCHEMA),
  GCP_IIT: jsonVar(GCP_IIT_SCHEMA),
  AZURE_MSI: jsonVar(AZURE_MSI_SCHEMA),
};

type ParsedVars = { [K in keyof typeof CLOUD_ATTESTORS_ENTRIES]?: v.InferOutput<(typeof CLOUD_ATTESTORS_ENTRIES)[K]> };

/** The parsed vars as a CloudAttestorsConfig (an empty var: that attestor absent). */
export function cloudAttestorsFromEnv(vars: ParsedVars): CloudAttestorsConfig {
  return {
    ...(vars.AWS_IID ? { awsIid: vars.AWS_IID } : {}),
    ...(vars.GCP_IIT ? { gcpIit: vars.GCP_IIT } : {}),
    ...(vars.AZURE_MSI ? { azureMsi: vars.AZURE_MSI } : {}),
  };
}

const CLOUD_ATTESTORS_SCHEMA = v.pipe(v.object(CLOUD_ATTESTORS_ENTRIES), v.transform(cloudAttestorsFromEnv));

/** Parses the cloud attestor vars; an unset or empty var leaves that attestor disabled. */
export function parseCloudAttestorsConfig(env: CloudAttestorsEnv): CloudAttestorsConfig {
  return parseConfig(CLOUD_ATTESTORS_SCHEMA, env);
}
