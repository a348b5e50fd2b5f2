/**
 * The gcp_iit node attestor (agent side): asks the GCP metadata server (header `Metadata-Flavor: Google`)
 * for a full-format instance identity token with the configured audience. Not single-use.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import type { GcpIitAgentConfig } from '../config.js';
import { metadataRequest } from './metadata-client.js';
import type { NodeAttestor } from './types.js';

export function createGcpIitAttestor(config: GcpIitAgentConfig): NodeAttestor {
  const path = `/computeMetadata/v1/instance/service-accounts/${encodeURIComponent(config.serviceAccount)}/identity`;
  return {
    type: 'gcp_iit',
    singleUse: false,
    async payload() {
      const url = `${config.metadataUrl}${path}?${new URLSearchParams({ audience: config.audience, format: 'full' })}`;
      const token = (
        await metadataRequest({ attestor: 'gcp_iit', service: 'the GCP metadata server', url, headers: { 'Metadata-Flavor': 'Google' }, timeoutMs: config.timeoutSeconds * 1000 })
      ).trim();
      if (token.split('.').length !== 3) throw new WispError('ERR_UNAVAILABLE', 'gcp_iit: the metadata server did not return a JWT');
      return { token };
    },
    describe: () => ({ attestor: 'gcp_iit', metadata_url: config.metadataUrl, audience: config.audience }),
  };
}
