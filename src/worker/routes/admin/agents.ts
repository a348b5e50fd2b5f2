/**
 * Admin API for attested agents: list (paged) and count with SPIRE's filters (`selector` + `match`,
 * `attestationType`, `banned`, `expiresBefore`), get, ban, evict, and purge of agents expired for a while
 * (SPIRE's `agent purge`). The agent's SPIFFE ID is one URL-encoded path segment
 * (`/agents/spiffe%3A%2F%2Fexample.org%2Fspire%2Fagent%2F...`).
 * @module
 */
import { Hono, type Context } from 'hono';
import { MAX_NOTICE_AGENTS } from '../../../shared/agent-notifications.js';
import { WispError } from '../../../shared/errors.js';
import type { AgentFilter, AgentStore } from '../../../shared/registry/ports.js';
import { parseSpiffeIdInTrustDomain, type SpiffeId } from '../../../shared/spiffe/id.js';
import type { AppDeps } from '../../deps.js';
import { asObject, readJsonBody } from '../../http-json.js';
import { noteAudit } from '../../middleware/audit.js';
import { noteAgents } from '../../notifier/notices.js';
import { nowSeconds, onlyFields, parseBooleanParam, parsePage, parseSelectorsParam, parseTimeParam } from './params.js';

/** Longest attestation type accepted as a filter (names are short: join_token, x509pop, k8s_psat). */
const ATTESTATION_TYPE_MAX_CHARS = 64;
/** Longest purge age: ten years, in seconds. */
const PURGE_EXPIRED_FOR_MAX = 10 * 366 * 86_400;

function parseAgentFilter(c: Context): AgentFilter {
  const filter: AgentFilter = {};
  const selectors = parseSelectorsParam(c);
  if (selectors) filter.selectors = selectors;
  const type = c.req.query('attestationType');
  if (type !== undefined) {
    if (!/^[a-z0-9_-]{1,64}$/i.test(type)) throw new WispError('ERR_BAD_REQUEST', `attestationType must be 1 to ${ATTESTATION_TYPE_MAX_CHARS} letters, digits, _ or -`);
    filter.attestationType = type;
  }
  const banned = c.req.query('banned');
  if (banned !== undefined) filter.banned = parseBooleanParam('banned', banned);
  const expiresBefore = parseTimeParam(c, 'expiresBefore');
  if (expiresBefore !== undefined) filter.expiresBefore = expiresBefore;
  return filter;
}

/** `{ expiredFor: seconds, dryRun?: boolean }`. */
async function parsePurge(c: Context): Promise<{ expiredFor: number; dryRun: boolean }> {
  const body = asObject(await readJsonBody(c));
  onlyFields(body, ['expiredFor', 'dryRun']);
  const { expiredFor, dryRun = false } = body;
  if (typeof expiredFor !== 'number' || !Number.isInteger(expiredFor) || expiredFor < 0 || expiredFor > PURGE_EXPIRED_FOR_MAX) {
    throw new WispError('ERR_BAD_REQUEST', `expiredFor must be whole seconds from 0 to ${PURGE_EXPIRED_FOR_MAX}`);
  }
  if (typeof dryRun !== 'boolean') throw new WispError('ERR_BAD_REQUEST', 'dryRun must be a boolean');
  return { expiredFor, dryRun };
}

function notFound(): WispError {
  return new WispError('ERR_AGENT_NOT_FOUND', 'no attested agent with this SPIFFE ID');
}

export function agentRoutes(deps: AppDeps, store: AgentStore): Hono {
  const app = new Hono();

  /** hono has already percent-decoded the segment once; a SPIFFE ID never contains '%' after that. */
  const agentIdOf = (c: Context): SpiffeId => parseSpiffeIdInTrustDomain(c.req.param('spiffeId'), deps.config.trustDomain, 'agent ID');

  app.get('/', async (c) => {
    const filter = parseAgentFilter(c);
    return c.json(await store.list(parsePage(c), filter));
  });

  app.get('/count', async (c) => c.json({ count: await store.count(parseAgentFilter(c)) }));

  app.post('/purge', async (c) => {
    const { expiredFor, dryRun } = await parsePurge(c);
    const now = nowSeconds(deps);
    const agents = await store.purgeExpired(now - expiredFor, now, dryRun);
    noteAudit(c, { objectIds: dryRun ? [] : agents.map((a) => a.spiffeId), detail: { dryRun, expiredFor, purged: dryRun ? 0 : agents.length } });
    if (!dryRun && agents.length > 0) noteAgents(c, agents.length > MAX_NOTICE_AGENTS ? { all: true } : { agents: agents.map((a) => a.spiffeId), close: true });
    return c.json({ agents, dryRun });
  });

  app.get('/:spiffeId', async (c) => {
    const agent = await store.get(agentIdOf(c));
    if (!agent) throw notFound();
    return c.json({ agent });
  });

  app.post('/:spiffeId/ban', async (c) => {
    const id = agentIdOf(c);
    if (!(await store.ban(id, nowSeconds(deps)))) throw notFound();
    noteAgents(c, { agents: [id], close: true });
    return c.json({ agent: await store.get(id) });
  });

  app.delete('/:spiffeId', async (c) => {
    const id = agentIdOf(c);
    if (!(await store.evict(id))) throw notFound();
    noteAgents(c, { agents: [id], close: true });
    return c.body(null, 204);
  });

  return app;
}
