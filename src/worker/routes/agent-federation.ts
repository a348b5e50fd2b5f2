/**
 * The agent side of https_spiffe refresh, mounted at /agent/v1/federation (docs/federation.md): an agent
 * named as a relationship's `refreshAgentId` lists its tasks (endpoint, endpoint SPIFFE ID and the stored
 * bundle that authenticates it), fetches over SPIFFE-authenticated TLS, and submits the bundle or the error.
 * Authenticated by agent proofs like the rest of the agent API; an agent may only submit for relationships
 * assigned to it.
 * @module
 */
import { Hono } from 'hono';
import type { FederationRefreshTasksResponse, SubmitFederatedBundleResponse } from '../../shared/agent-api.js';
import { WispError } from '../../shared/errors.js';
import type { FederationStore } from '../../shared/federation/federation-store.js';
import { MAX_BUNDLE_BYTES } from '../../shared/spiffe/bundle.js';
import { parseTrustDomain } from '../../shared/spiffe/id.js';
import { parseSubmission, submitRefresh } from '../federation/submit.js';
import { asObject } from '../http-json.js';
import { logEvent } from '../log.js';
import { agentAuth, signedJsonBody, type AgentAuthDeps, type AgentAuthEnv } from '../middleware/agent-auth.js';
import { noStore } from '../middleware/no-store.js';
import { countedSubmit, waitUntilOf, type TelemetryRecorder } from '../telemetry.js';

export interface AgentFederationDeps extends AgentAuthDeps {
  federation: FederationStore;
  /** counts submitted refreshes (telemetry.ts); absent: not counted */
  telemetry?: TelemetryRecorder;
}

/** Body limit of a submission: one bundle plus a little. */
const SUBMIT_MAX_BYTES = MAX_BUNDLE_BYTES + 16 * 1024;

export function agentFederationRoutes(deps: AgentFederationDeps): Hono<AgentAuthEnv> {
  const auth = (maxBodyBytes: number) => agentAuth(deps, { maxBodyBytes });
  const app = new Hono<AgentAuthEnv>();
  app.use('*', noStore);

  app.get('/refresh-tasks', auth(1024), async (c) => {
    const tasks = await deps.federation.refreshTasksFor(c.var.agent.agentId);
    const response: FederationRefreshTasksResponse = {
      tasks: tasks.map(({ relationship: r, bundle }) => ({
        trustDomain: r.trustDomain,
        bundleEndpointUrl: r.bundleEndpointUrl,
        endpointSpiffeId: r.endpointSpiffeId ?? '',
        ...(bundle ? { bundle: bundle.bundle } : {}),
      })),
    };
    return c.json(response);
  });

  app.post('/bundles', auth(SUBMIT_MAX_BYTES), async (c) => {
    const body = asObject(signedJsonBody(c));
    const { trustDomain, ...rest } = body;
    let td;
    try {
      td = parseTrustDomain(trustDomain);
    } catch {
      throw new WispError('ERR_BAD_REQUEST', 'trustDomain must be a trust domain name');
    }
    const relationship = await deps.federation.getRelationship(td);
    const agentId = c.var.agent.agentId;
    if (!relationship || relationship.bundleEndpointProfile !== 'https_spiffe' || relationship.refreshAgentId !== agentId) {
      logEvent('warn', 'agent submitted a bundle it is not assigned to refresh', { agent_id: agentId, trust_domain: td });
      throw new WispError('ERR_PERMISSION_DENIED', `this agent does not refresh the bundle of "${td}"`);
    }
    const submitted = submitRefresh(deps.federation, relationship, parseSubmission(rest), Math.floor(deps.clock() / 1000));
    const outcome = deps.telemetry ? await countedSubmit(deps.telemetry, td, submitted, waitUntilOf(c)) : await submitted;
    const response: SubmitFederatedBundleResponse = { status: outcome.status };
    return c.json(response);
  });

  return app;
}
