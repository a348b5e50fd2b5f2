/**
 * The azure_msi node attestor (agent side): asks the Azure instance metadata service (header
 * `Metadata: true`) for a managed identity access token for the configured resource. Not single-use.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import type { AzureMsiAgentConfig } from '../config.js';
import { metadataRequest } from './metadata-client.js';
import type { NodeAttestor } from './types.js';

/** The IMDS API version SPIRE's agent uses for managed identity tokens. */
const IMDS_API_VERSION = '2018-02-01';

export function createAzureMsiAttestor(config: AzureMsiAgentConfig): NodeAttestor {
  return {
    type: 'azure_msi',
    singleUse: false,
    async payload() {
      const url = `${config.metadataUrl}/metadata/identity/oauth2/token?${new URLSearchParams({ 'api-version': IMDS_API_VERSION, resource: config.resource })}`;
      const body = await metadataRequest({ attestor: 'azure_msi', service: 'the Azure instance metadata service', url, headers: { Metadata: 'true' }, timeoutMs: config.timeoutSeconds * 1000 });
      let token: unknown;
      try {
        token = (JSON.parse(body) as { access_token?: unknown }).access_token;
      } catch {
        token = undefined;
      }
      if (typeof token !== 'string' || token === '') throw new WispError('ERR_UNAVAILABLE', 'azure_msi: the metadata service answer has no access_token');
      return { token };
    },
    describe: () => ({ attestor: 'azure_msi', metadata_url: config.metadataUrl, resource: config.resource }),
  };
}
