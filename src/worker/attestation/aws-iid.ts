/**
 * The aws_iid node attestor (issuer side): payload `{ document, signature }`, the instance identity
 * document and its base64 PKCS#7 RSA-2048 signature (`instance-identity/rsa2048`). Trust on first use:
 * the route refuses a second attestation of the same instance unless AWS_IID.allowReattestation.
 * @module
 */
import { renderAgentId } from '../../shared/attestation/agent-path-template.js';
import { AWS_IID_TYPE, awsIidSelectors, awsIidTemplateValues, buildAwsRegionKeys, verifyInstanceIdentity } from '../../shared/attestation/aws-iid.js';
import { WispError } from '../../shared/errors.js';
import type { AwsIidConfig } from './cloud-config.js';
import type { NodeAttestor } from './types.js';

export function createAwsIidAttestor(config: AwsIidConfig): NodeAttestor {
  // parsed on first use, once per attestor (one per app, so per isolate)
  let regionKeys: Map<string, Uint8Array> | undefined;
  return {
    type: AWS_IID_TYPE,
    async attest(payload, ctx) {
      const { document, signature } = payload;
      if (typeof document !== 'string' || typeof signature !== 'string') {
        throw new WispError('ERR_BAD_REQUEST', 'aws_iid payload must have string fields document and signature');
      }
      const doc = await verifyInstanceIdentity(document, signature, (regionKeys ??= buildAwsRegionKeys(config.certificates)));
      if (config.accountIds.length > 0 && !config.accountIds.includes(doc.accountId)) {
        throw new WispError('ERR_ATTESTATION_FAILED', `aws_iid: account ${doc.accountId} is not in the allowed accounts`);
      }
      return {
        agentId: renderAgentId(ctx.trustDomain, config.agentPathTemplate, awsIidTemplateValues(doc)),
        selectors: awsIidSelectors(doc),
        allowReattestation: config.allowReattestation,
      };
    },
  };
}
