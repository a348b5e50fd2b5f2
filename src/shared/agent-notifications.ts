/**
 * The issuer → agent notification channel (docs/agent-api.md "Notifications"): which agents an admin change
 * concerns, the one message the issuer sends ("sync now"), and the keepalive. A notification carries no
 * entry, SVID or secret: the agent only syncs through the signed agent API on it, so a forged or replayed
 * message can at most cause a sync. Pure: used by the issuer (the AgentNotifier Durable Object, the admin
 * routes) and the agent.
 * @module
 */
import { toBase64Url } from './encoding/base64.js';
import { isAgentId, type SpiffeId } from './spiffe/id.js';

/** The WebSocket route under the agent API prefix. */
export const NOTIFICATIONS_ROUTE = '/notifications';

/** The only message the issuer sends: sync now. The agent reads nothing else out of any message. */
export const SYNC_NOTICE = '{"type":"sync"}';

/** The agent's keepalive and its answer (answered by the runtime without waking the notifier). */
export const KEEPALIVE_PING = 'ping';
export const KEEPALIVE_PONG = 'pong';

/** Past this many agents one notice goes to every agent (cheaper than the tag lookups, and bounded). */
export const MAX_NOTICE_AGENTS = 100;

/**
 * Who an admin change concerns: every agent (bundles, federation, authorities, entries parented by a node
 * alias or a workload) or the named agents; `close`: their channels end after the notice (ban, evict).
 */
export type NoticeTarget = { all: true } | { agents: SpiffeId[]; close?: boolean };

/**
 * The agents whose authorized entries may change when entries with these parent IDs are written: the agents
 * they name, or every agent when one parent is not an agent ID (a node alias or a workload whose
 * descendants any agent may hold; authorized-entries.ts). Undefined when there is nothing to notify.
 */
export function noticeForParents(parentIds: Iterable<SpiffeId>): NoticeTarget | undefined {
  const agents = new Set<SpiffeId>();
  for (const id of parentIds) {
    if (!isAgentId(id)) return { all: true };
    agents.add(id);
  }
  if (agents.size === 0) return undefined;
  return agents.size > MAX_NOTICE_AGENTS ? { all: true } : { agents: [...agents] };
}

/** One notice for two (the union; `all` wins; closing only when both close). */
export function mergeNotices(a: NoticeTarget | undefined, b: NoticeTarget | undefined): NoticeTarget | undefined {
  if (!a || !b) return a ?? b;
  if ('all' in a || 'all' in b) return { all: true };
  const agents = [...new Set([...a.agents, ...b.agents])];
  if (agents.length > MAX_NOTICE_AGENTS) return { all: true };
  return a.close && b.close ? { agents, close: true } : { agents };
}

/** Parses a notice target handed to the notifier (internal, still checked). */
export function parseNoticeTarget(value: unknown): NoticeTarget | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  if (v.all === true) return { all: true };
  if (!Array.isArray(v.agents) || v.agents.length === 0 || v.agents.length > MAX_NOTICE_AGENTS) return undefined;
  if (!v.agents.every((a): a is SpiffeId => typeof a === 'string' && a.length > 0 && a.length <= 2048)) return undefined;
  return v.close === true ? { agents: v.agents, close: true } : { agents: v.agents };
}

/**
 * The tag an agent's sockets carry in the notifier: SHA-256 of the agent ID (base64url, 43 chars), since a
 * hibernation tag is at most 256 characters and a SPIFFE ID may be 2048.
 */
export async function notificationTag(agentId: SpiffeId): Promise<string> {
  return toBase64Url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(agentId))));
}
