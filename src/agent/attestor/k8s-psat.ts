/**
 * The k8s_psat node attestor (agent side): sends `{ cluster, token }`, the projected service account token
 * the kubelet writes into the agent's pod (SPIRE's k8s_psat agent plugin). The file is read again for every
 * (re-)attestation: the kubelet rotates the token before it expires. Not single-use.
 * @module
 */
import { readFile } from 'node:fs/promises';
import { K8S_PSAT_TOKEN_MAX_BYTES, K8S_PSAT_TYPE } from '../../shared/attestation/k8s-psat.js';
import { WispError } from '../../shared/errors.js';
import type { K8sPsatAgentConfig } from '../config.js';
import type { NodeAttestor } from './types.js';

export function createK8sPsatAttestor(config: K8sPsatAgentConfig): NodeAttestor {
  return {
    type: K8S_PSAT_TYPE,
    singleUse: false,
    async payload() {
      let token: string;
      try {
        token = (await readFile(config.tokenPath, 'utf8')).trim();
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? 'error';
        throw new WispError('ERR_UNAVAILABLE', `k8s_psat: cannot read the service account token at ${config.tokenPath} (${code}); mount a projected serviceAccountToken volume there`);
      }
      if (token.length > K8S_PSAT_TOKEN_MAX_BYTES || token.split('.').length !== 3) {
        throw new WispError('ERR_UNAVAILABLE', `k8s_psat: ${config.tokenPath} does not hold a JWT of at most ${K8S_PSAT_TOKEN_MAX_BYTES} bytes`);
      }
      return { cluster: config.cluster, token };
    },
    describe: () => ({ attestor: K8S_PSAT_TYPE, cluster: config.cluster, token_path: config.tokenPath }),
  };
}
