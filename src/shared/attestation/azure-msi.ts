/**
 * azure_msi node attestation, runtime-agnostic part (SPIRE's azuremsi without the Azure API): the agent
 * sends a managed identity access token for the configured resource; the issuer verifies it against
 * Microsoft's published signing keys (RS256), `aud` = the resource, expiry with SPIRE's 5-minute leeway,
 * and derives `spiffe://<td>/spire/agent/azure_msi/<tenant_id>/<principal_id>` from `tid` and `sub`.
 *
 * Selectors: SPIRE resolves them through the Azure API (subscription-id, vm-name, network-security-group,
 * virtual-network, virtual-network-subnet). Without API credentials Wisp derives the first two from the
 * signed `xms_mirid` claim when it names a virtual machine (system-assigned identity); others need the API.
 * @module
 */
import { WispError } from '../errors.js';
import type { Selector } from '../registry/selectors.js';
import { verifyJwtWithKeySet, type RemoteKeySet } from './remote-key-set.js';

export const AZURE_MSI_TYPE = 'azure_msi';
/** SPIRE's default resource (azure.DefaultMSIResourceID). */
export const AZURE_MSI_DEFAULT_RESOURCE = 'https://management.azure.com/';
export const AZURE_MSI_DEFAULT_KEYS_URL = 'https://login.microsoftonline.com/common/discovery/keys';
/** SPIRE's tokenLeeway. */
export const AZURE_MSI_LEEWAY_SECONDS = 300;
export const AZURE_MSI_TOKEN_MAX_BYTES = 16 * 1024;

export interface AzureMsiIdentity {
  tenantId: string;
  principalId: string;
  /** from xms_mirid when it names a VM */
  subscriptionId?: string;
  resourceGroup?: string;
  vmName?: string;
}

function refused(message: string): WispError {
  return new WispError('ERR_ATTESTATION_FAILED', `azure_msi: ${message}`);
}

const ID = /^[A-Za-z0-9._-]{1,128}$/;
const VM_RESOURCE_ID = /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\/providers\/microsoft\.compute\/virtualmachines\/([^/]+)$/i;

export interface AzureMsiVerifyOptions {
  keys: RemoteKeySet;
  resource: string;
  /** ms since the epoch */
  now: number;
}

export async function verifyAzureMsiToken(token: string, options: AzureMsiVerifyOptions): Promise<AzureMsiIdentity> {
  if (token.length === 0 || token.length > AZURE_MSI_TOKEN_MAX_BYTES) throw refused(`token must be 1..${AZURE_MSI_TOKEN_MAX_BYTES} bytes`);
  const { payload } = await verifyJwtWithKeySet(token, options.keys, {
    now: options.now,
    prefix: AZURE_MSI_TYPE,
    algorithms: ['RS256'],
    audience: options.resource,
    clockTolerance: AZURE_MSI_LEEWAY_SECONDS,
    requiredClaims: ['exp'],
  });
  const { tid, sub } = payload as { tid?: unknown; sub?: unknown };
  if (typeof tid !== 'string' || !ID.test(tid)) throw refused('token has no valid tenant ID (tid)');
  if (typeof sub !== 'string' || !ID.test(sub)) throw refused('token has no valid subject (sub)');
  const mirid = (payload as { xms_mirid?: unknown }).xms_mirid;
  const vm = typeof mirid === 'string' ? VM_RESOURCE_ID.exec(mirid) : null;
  return {
    tenantId: tid,
    principalId: sub,
    ...(vm ? { subscriptionId: vm[1]!, resourceGroup: vm[2]!, vmName: vm[3]! } : {}),
  };
}

/** SPIRE's selector names: `subscription-id:<id>`, `vm-name:<resource group>:<name>`. */
export function azureMsiSelectors(id: AzureMsiIdentity): Selector[] {
  const values: string[] = [];
  if (id.subscriptionId) values.push(`subscription-id:${id.subscriptionId}`);
  if (id.resourceGroup && id.vmName) values.push(`vm-name:${id.resourceGroup}:${id.vmName}`);
  return values.map((value) => ({ type: AZURE_MSI_TYPE, value }));
}
