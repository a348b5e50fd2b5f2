/**
 * The azure_msi node attestor (issuer side): payload `{ token }`, a managed identity access token for
 * AZURE_MSI.resource. Agent ID `spiffe://<td>/spire/agent/azure_msi/<tenant_id>/<principal_id>` (SPIRE's).
 * Trust on first use, like aws_iid.
 * @module
 */
import { AZURE_MSI_TYPE, azureMsiSelectors, verifyAzureMsiToken } from '../../shared/attestation/azure-msi.js';
import { RemoteKeySet } from '../../shared/attestation/remote-key-set.js';
import { WispError } from '../../shared/errors.js';
import { spiffeIdFromSegments } from '../../shared/spiffe/id.js';
import type { AzureMsiConfig } from './cloud-config.js';
import type { NodeAttestor } from './types.js';

export function createAzureMsiAttestor(config: AzureMsiConfig, fetchImpl?: typeof fetch): NodeAttestor {
  // made once per app (createAppDeps), so the key cache lives as long as the app: one per isolate
  const keys = new RemoteKeySet({ url: config.keysUrl, fetch: fetchImpl });
  return {
    type: AZURE_MSI_TYPE,
    async attest(payload, ctx) {
      const { token } = payload;
      if (typeof token !== 'string') throw new WispError('ERR_BAD_REQUEST', 'azure_msi payload must have a string field token');
      const id = await verifyAzureMsiToken(token, { keys, resource: config.resource, now: ctx.now * 1000 });
      if (config.tenants.length > 0 && !config.tenants.includes(id.tenantId)) {
        throw new WispError('ERR_ATTESTATION_FAILED', `azure_msi: tenant ${id.tenantId} is not in the allowed tenants`);
      }
      return {
        agentId: spiffeIdFromSegments(ctx.trustDomain, 'spire', 'agent', AZURE_MSI_TYPE, id.tenantId, id.principalId),
        selectors: azureMsiSelectors(id),
        allowReattestation: config.allowReattestation,
      };
    },
  };
}
