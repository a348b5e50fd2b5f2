/**
 * The aws_iid node attestor (agent side): reads the instance identity document and its RSA-2048 PKCS#7
 * signature from the EC2 instance metadata service. IMDSv2 first (PUT /latest/api/token, then the token
 * in X-aws-ec2-metadata-token); IMDSv1 only when `imdsV1Fallback` is configured and the token request fails.
 * Not single-use: after an eviction the agent attests again with a fresh read.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import type { AwsIidAgentConfig } from '../config.js';
import { MetadataHttpError, metadataRequest } from './metadata-client.js';
import type { NodeAttestor } from './types.js';

/** IMDSv2 session token lifetime requested, seconds (only used for the two reads that follow). */
const IMDS_TOKEN_TTL_SECONDS = 60;
const SERVICE = 'the EC2 instance metadata service';

export function createAwsIidAttestor(config: AwsIidAgentConfig): NodeAttestor {
  const timeoutMs = config.timeoutSeconds * 1000;
  const base = config.metadataUrl;
  const request = (path: string, init: { method?: 'GET' | 'PUT'; headers?: Record<string, string> } = {}) =>
    metadataRequest({ attestor: 'aws_iid', service: SERVICE, url: `${base}${path}`, timeoutMs, ...init });

  async function sessionHeaders(): Promise<Record<string, string>> {
    try {
      const token = await request('/latest/api/token', { method: 'PUT', headers: { 'X-aws-ec2-metadata-token-ttl-seconds': String(IMDS_TOKEN_TTL_SECONDS) } });
      return { 'X-aws-ec2-metadata-token': token.trim() };
    } catch (e) {
      if (config.imdsV1Fallback && e instanceof MetadataHttpError) return {};
      if (e instanceof MetadataHttpError) {
        throw new WispError('ERR_UNAVAILABLE', `${e.message} (IMDSv2 session token); set awsIid.imdsV1Fallback to allow IMDSv1`);
      }
      throw e;
    }
  }

  return {
    type: 'aws_iid',
    singleUse: false,
    async payload() {
      const headers = await sessionHeaders();
      const [document, signature] = await Promise.all([
        request('/latest/dynamic/instance-identity/document', { headers }),
        request('/latest/dynamic/instance-identity/rsa2048', { headers }),
      ]);
      return { document, signature: signature.trim() };
    },
    describe: () => ({ attestor: 'aws_iid', metadata_url: base }),
  };
}
