/**
 * gcp_iit node attestation, runtime-agnostic part (SPIRE's gcpiit without the Compute API): the agent
 * sends a Compute Engine instance identity token (format=full); the issuer verifies it against Google's
 * signing keys (RS256 only, as Google documents), the configured audience and expiry, then derives the
 * agent ID and SPIRE's selectors from the signed `google.compute_engine` claims.
 * @module
 */
import { WispError } from '../errors.js';
import type { Selector } from '../registry/selectors.js';
import { verifyJwtWithKeySet, type RemoteKeySet } from './remote-key-set.js';

export const GCP_IIT_TYPE = 'gcp_iit';
/** SPIRE's default token audience. */
export const GCP_IIT_DEFAULT_AUDIENCE = 'spire-gcp-node-attestor';
export const GCP_IIT_DEFAULT_ISSUER = 'https://accounts.google.com';
export const GCP_IIT_DEFAULT_KEYS_URL = 'https://www.googleapis.com/oauth2/v3/certs';
/** SPIRE's default: `spiffe://<td>/spire/agent/gcp_iit/<project_id>/<instance_id>`. */
export const GCP_IIT_DEFAULT_PATH_TEMPLATE = '{{ .PluginName }}/{{ .ProjectID }}/{{ .InstanceID }}';
export const GCP_IIT_TEMPLATE_FIELDS = ['PluginName', 'ProjectID', 'ProjectNumber', 'InstanceID', 'InstanceName', 'Zone'] as const;
export const GCP_IIT_TOKEN_MAX_BYTES = 8 * 1024;

/** `google.compute_engine` of a full-format identity token. */
export interface ComputeEngineIdentity {
  projectId: string;
  projectNumber: string;
  zone: string;
  instanceId: string;
  instanceName: string;
}

function refused(message: string): WispError {
  return new WispError('ERR_ATTESTATION_FAILED', `gcp_iit: ${message}`);
}

const VALUE = /^[A-Za-z0-9._:-]{1,128}$/;

export interface GcpIitVerifyOptions {
  keys: RemoteKeySet;
  audience: string;
  issuer: string;
  /** ms since the epoch */
  now: number;
}

/** Verifies the token and returns the Compute Engine identity it carries. */
export async function verifyGcpIdentityToken(token: string, options: GcpIitVerifyOptions): Promise<ComputeEngineIdentity> {
  if (token.length === 0 || token.length > GCP_IIT_TOKEN_MAX_BYTES) throw refused(`token must be 1..${GCP_IIT_TOKEN_MAX_BYTES} bytes`);
  const { payload } = await verifyJwtWithKeySet(token, options.keys, {
    now: options.now,
    prefix: GCP_IIT_TYPE,
    algorithms: ['RS256'],
    audience: options.audience,
    issuer: options.issuer,
    requiredClaims: ['exp', 'iat'],
  });
  const google = (payload as { google?: { compute_engine?: Record<string, unknown> } }).google;
  const ce = google?.compute_engine;
  if (!ce || typeof ce !== 'object') throw refused('token has no google.compute_engine claims (request it with format=full)');
  const field = (name: string): string => {
    const v = ce[name];
    const s = typeof v === 'number' ? String(v) : v;
    if (typeof s !== 'string' || !VALUE.test(s)) throw refused(`token has no valid google.compute_engine.${name}`);
    return s;
  };
  return {
    projectId: field('project_id'),
    projectNumber: field('project_number'),
    zone: field('zone'),
    instanceId: field('instance_id'),
    instanceName: field('instance_name'),
  };
}

/** SPIRE's gcp_iit selectors from the token (tag/sa/label/metadata need the Compute API: not produced). */
export function gcpIitSelectors(id: ComputeEngineIdentity): Selector[] {
  return [`project-id:${id.projectId}`, `zone:${id.zone}`, `instance-name:${id.instanceName}`].map((value) => ({ type: GCP_IIT_TYPE, value }));
}

export function gcpIitTemplateValues(id: ComputeEngineIdentity): Record<string, string> {
  return {
    PluginName: GCP_IIT_TYPE,
    ProjectID: id.projectId,
    ProjectNumber: id.projectNumber,
    InstanceID: id.instanceId,
    InstanceName: id.instanceName,
    Zone: id.zone,
  };
}
