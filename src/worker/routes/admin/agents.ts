/**
 * Admin API for attested agents: list (paged), count, get, ban, evict. The agent's SPIFFE ID is one
 * URL-encoded path segment (`/agents/spiffe%3A%2F%2Fexample.org%2Fspire%2Fagent%2F...`).
 * @module
 */
import { Hono, type Context } from 'hono';
import { WispError } from '../../../shared/errors.js';
import type { AgentStore } from '../../../shared/registry/ports.js';
import { parseSpiffeIdInTrustDomain, type SpiffeId } from '../../../shared/spiffe/id.js';
import type { AppDeps } from '../../deps.js';
import { nowSeconds, parsePage } from './params.js';

function notFound(): WispError {
  return new WispError('ERR_AGENT_NOT_FOUND', 'no attested agent with this SPIFFE ID');
}

export function agentRoutes(deps: AppDeps, store: AgentStore): Hono {
  const app = new Hono();

  /** hono has already percent-decoded the segment once; a SPIFFE ID never contains '%' after that. */
  const agentIdOf = (c: Context): SpiffeId => parseSpiffeIdInTrustDomain(c.req.param('spiffeId'), deps.config.trustDomain, 'agent ID');

  app.get('/', async (c) => c.json(await store.list(parsePage(c))));

  app.get('/count', async (c) => c.json({ count: await store.count() }));

  app.get('/:spiffeId', async (c) => {
    const agent = await store.get(agentIdOf(c));
    if (!agent) throw notFound();
    return c.json({ agent });
  });

  app.post('/:spiffeId/ban', async (c) => {
    const id = agentIdOf(c);
    if (!(await store.ban(id, nowSeconds(deps)))) throw notFound();
    return c.json({ agent: await store.get(id) });
  });

  app.delete('/:spiffeId', async (c) => {
    if (!(await store.evict(agentIdOf(c)))) throw notFound();
    return c.body(null, 204);
  });

  return app;
}
