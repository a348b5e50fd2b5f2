/**
 * The join_token node attestor (SPIRE's): an operator creates a single-use, expiring token; an agent that
 * presents it gets the token's preset agent ID, or `spiffe://<td>/spire/agent/join_token/<token>`.
 * The token is consumed atomically (JoinTokenStore.consume is one statement), so of two concurrent
 * attestations exactly one wins, and re-attestation with the same token is impossible by design.
 * Like SPIRE, a join-token node has no node selectors: entries are parented to its agent ID directly.
 * Unknown, expired and used tokens fail alike: ERR_JOIN_TOKEN_INVALID with one message.
 * @module
 */
import { WispError } from '../../shared/errors.js';
import type { JoinTokenStore } from '../../shared/registry/ports.js';
import { isAgentId, spiffeIdFromSegments, trustDomainOf, type SpiffeId } from '../../shared/spiffe/id.js';
import type { NodeAttestor } from './types.js';

export const JOIN_TOKEN_ATTESTATION_TYPE = 'join_token';
/** Longest token accepted (SPIRE's are UUIDs, 36 characters). */
export const JOIN_TOKEN_MAX_CHARS = 256;
/** A token becomes a path segment of the agent ID, so it uses the SPIFFE ID path characters. */
const TOKEN_CHARS = /^[A-Za-z0-9._-]+$/;
const INVALID_MESSAGE = 'join token is invalid, expired or already used';

function invalid(): WispError {
  return new WispError('ERR_JOIN_TOKEN_INVALID', INVALID_MESSAGE);
}

export function createJoinTokenAttestor(store: JoinTokenStore): NodeAttestor {
  return {
    type: JOIN_TOKEN_ATTESTATION_TYPE,
    async attest(payload, ctx) {
      const token = payload.token;
      if (typeof token !== 'string' || token.length === 0 || token.length > JOIN_TOKEN_MAX_CHARS || !TOKEN_CHARS.test(token) || token === '.' || token === '..') {
        throw invalid();
      }
      const consumed = await store.consume(token, ctx.now);
      if (!consumed) throw invalid();
      const agentId: SpiffeId = consumed.spiffeId ?? spiffeIdFromSegments(ctx.trustDomain, 'spire', 'agent', JOIN_TOKEN_ATTESTATION_TYPE, token);
      if (trustDomainOf(agentId) !== ctx.trustDomain || !isAgentId(agentId)) {
        // a preset ID the admin API should have refused; the token is spent either way
        throw new WispError('ERR_ATTESTATION_FAILED', 'join token names an agent ID outside this trust domain');
      }
      return { agentId, selectors: [], allowReattestation: false };
    },
  };
}
