/**
 * Configuration of the cloud node attestors, from JSON [vars] (one per attestor; unset = disabled):
 *
 *   AWS_IID   = {"accountIds":["123456789012"], "agentPathTemplate":"...", "certificates":{"<region>":"<PEM>"}, "allowReattestation":false}
 *   GCP_IIT   = {"projectIds":["my-project"], "audience":"spire-gcp-node-attestor", "keysUrl":"https://...", "issuer":"https://accounts.google.com", "agentPathTemplate":"..."}
 *   AZURE_MSI = {"tenants":["<tenant id>"], "resource":"https://management.azure.com/", "keysUrl":"https://..."}
 *
 * Allow-lists are optional (empty = any account/project/tenant, as SPIRE's aws_iid); errors name the key.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import { isHttpsOrLoopbackHttp } from '../../shared/net/loopback.js';
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

function bad(key: string, message: string): WispError {
  return new WispError('ERR_CONFIG_INVALID', `${key}: ${message}`);
}

type Obj = Record<string, unknown>;

function parseObject(key: string, raw: string): Obj {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw bad(key, 'must be a JSON object');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(key, 'must be a JSON object');
  return value as Obj;
}

function onlyKeys(key: string, obj: Obj, known: string[]): void {
  for (const k of Object.keys(obj)) if (!known.includes(k)) throw bad(`${key}.${k}`, `unknown key; known keys: ${known.join(', ')}`);
}

function strings(key: string, value: unknown, pattern: RegExp, what: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw bad(key, 'must be an array of strings');
  return value.map((v, i) => {
    if (typeof v !== 'string' || !pattern.test(v)) throw bad(`${key}[${i}]`, `must be ${what}`);
    return v;
  });
}

function str(key: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || value.trim() === '') throw bad(key, 'must be a non-empty string');
  return value;
}

function bool(key: string, value: unknown): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw bad(key, 'must be true or false');
  return value;
}

function keysUrl(key: string, value: unknown, fallback: string): string {
  const raw = str(key, value, fallback);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw bad(key, `"${raw}" is not a URL`);
  }
  if (!isHttpsOrLoopbackHttp(url)) throw bad(key, 'must be https (http only for a loopback host)');
  return raw;
}

function template(key: string, value: unknown, fallback: string, fields: readonly string[]): AgentPathTemplate {
  const source = str(key, value, fallback);
  try {
    return parseAgentPathTemplate(source, fields);
  } catch (e) {
    throw bad(key, (e as Error).message);
  }
}

function parseAwsIid(raw: string): AwsIidConfig {
  const o = parseObject('AWS_IID', raw);
  onlyKeys('AWS_IID', o, ['accountIds', 'agentPathTemplate', 'certificates', 'allowReattestation']);
  const certificates: Record<string, string> = {};
  if (o.certificates !== undefined) {
    if (typeof o.certificates !== 'object' || o.certificates === null || Array.isArray(o.certificates)) throw bad('AWS_IID.certificates', 'must map regions to PEM certificates');
    for (const [region, pem] of Object.entries(o.certificates)) {
      if (!/^[a-z0-9-]{1,64}$/.test(region) || typeof pem !== 'string') throw bad(`AWS_IID.certificates.${region}`, 'must be a region name mapped to a PEM certificate');
      certificates[region] = pem;
    }
    try {
      buildAwsRegionKeys(certificates);
    } catch (e) {
      throw bad('AWS_IID.certificates', `a certificate does not parse (${(e as Error).message})`);
    }
  }
  return {
    accountIds: strings('AWS_IID.accountIds', o.accountIds, /^\d{12}$/, 'a 12-digit AWS account ID'),
    agentPathTemplate: template('AWS_IID.agentPathTemplate', o.agentPathTemplate, AWS_IID_DEFAULT_PATH_TEMPLATE, AWS_IID_TEMPLATE_FIELDS),
    certificates,
    allowReattestation: bool('AWS_IID.allowReattestation', o.allowReattestation),
  };
}

function parseGcpIit(raw: string): GcpIitConfig {
  const o = parseObject('GCP_IIT', raw);
  onlyKeys('GCP_IIT', o, ['projectIds', 'audience', 'issuer', 'keysUrl', 'agentPathTemplate', 'allowReattestation']);
  return {
    projectIds: strings('GCP_IIT.projectIds', o.projectIds, /^[a-z][a-z0-9.:-]{0,127}$/, 'a GCP project ID'),
    audience: str('GCP_IIT.audience', o.audience, GCP_IIT_DEFAULT_AUDIENCE),
    issuer: str('GCP_IIT.issuer', o.issuer, GCP_IIT_DEFAULT_ISSUER),
    keysUrl: keysUrl('GCP_IIT.keysUrl', o.keysUrl, GCP_IIT_DEFAULT_KEYS_URL),
    agentPathTemplate: template('GCP_IIT.agentPathTemplate', o.agentPathTemplate, GCP_IIT_DEFAULT_PATH_TEMPLATE, GCP_IIT_TEMPLATE_FIELDS),
    allowReattestation: bool('GCP_IIT.allowReattestation', o.allowReattestation),
  };
}

function parseAzureMsi(raw: string): AzureMsiConfig {
  const o = parseObject('AZURE_MSI', raw);
  onlyKeys('AZURE_MSI', o, ['tenants', 'resource', 'keysUrl', 'allowReattestation']);
  return {
    tenants: strings('AZURE_MSI.tenants', o.tenants, /^[A-Za-z0-9._-]{1,128}$/, 'a tenant ID'),
    resource: str('AZURE_MSI.resource', o.resource, AZURE_MSI_DEFAULT_RESOURCE),
    keysUrl: keysUrl('AZURE_MSI.keysUrl', o.keysUrl, AZURE_MSI_DEFAULT_KEYS_URL),
    allowReattestation: bool('AZURE_MSI.allowReattestation', o.allowReattestation),
  };
}

/** Parses the cloud attestor vars; an unset or empty var leaves that attestor disabled. */
export function parseCloudAttestorsConfig(env: CloudAttestorsEnv): CloudAttestorsConfig {
  return {
    ...(env.AWS_IID ? { awsIid: parseAwsIid(env.AWS_IID) } : {}),
    ...(env.GCP_IIT ? { gcpIit: parseGcpIit(env.GCP_IIT) } : {}),
    ...(env.AZURE_MSI ? { azureMsi: parseAzureMsi(env.AZURE_MSI) } : {}),
  };
}
