/**
 * The gcp_iit node attestor (issuer side): payload `{ token }`, a full-format Compute Engine instance
 * identity token. Trust on first use, like aws_iid.
 * @module
 */
import { renderAgentId } from '../../shared/attestation/agent-path-template.js';
import { GCP_IIT_TYPE, gcpIitSelectors, gcpIitTemplateValues, verifyGcpIdentityToken } from '../../shared/attestation/gcp-iit.js';
import { RemoteKeySet } from '../../shared/attestation/remote-key-set.js';
import { WispError } from '../../shared/errors.js';
import type { GcpIitConfig } from './cloud-config.js';
import type { NodeAttestor } from './types.js';

export function createGcpIitAttestor(config: GcpIitConfig, fetchImpl?: typeof fetch): NodeAttestor {
  // made once per app (createAppDeps), so the key cache lives as long as the app: one per isolate
  const keys = new RemoteKeySet({ url: config.keysUrl, fetch: fetchImpl });
  return {
    type: GCP_IIT_TYPE,
    async attest(payload, ctx) {
      const { token } = payload;
      if (typeof token !== 'string') throw new WispError('ERR_BAD_REQUEST', 'gcp_iit payload must have a string field token');
      const id = await verifyGcpIdentityToken(token, { keys, audience: config.audience, issuer: config.issuer, now: ctx.now * 1000 });
      if (config.projectIds.length > 0 && !config.projectIds.includes(id.projectId)) {
        throw new WispError('ERR_ATTESTATION_FAILED', `gcp_iit: project ${id.projectId} is not in the allowed projects`);
      }
      return {
        agentId: renderAgentId(ctx.trustDomain, config.agentPathTemplate, gcpIitTemplateValues(id)),
        selectors: gcpIitSelectors(id),
        allowReattestation: config.allowReattestation,
      };
    },
  };
}
