/**
 * The join-token node attestor: the operator creates a single-use token on the issuer and hands it to
 * the agent once. The token is a secret: it is sent only to `/agent/v1/attest` and logged only as a
 * SHA-256 prefix.
 * @module
 */
import { tokenHashPrefix } from '../log.js';
import type { NodeAttestor } from './types.js';

export function createJoinTokenAttestor(token: string): NodeAttestor {
  return {
    type: 'join_token',
    singleUse: true,
    payload: async () => ({ token }),
    describe: () => ({ attestor: 'join_token', token_hash: tokenHashPrefix(token) }),
  };
}
