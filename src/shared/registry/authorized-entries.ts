/**
 * Which registration entries an agent may fetch: SPIRE's authorized-entries algorithm, independent of storage.
 *
 * 1. Entries parented by the agent's own ID.
 * 2. Node-alias entries: parented by the server ID (`spiffe://<td>/spire/server`) with selectors that are a
 *    subset of the agent's node selectors. Their spiffeIds act as further parents of the agent; the alias
 *    entries themselves are part of the result, as in SPIRE.
 * 3. Descendants of everything found, recursively (an entry whose parentId is a found entry's spiffeId).
 * Expired entries are left out and their descendants are not reached through them. Cycles terminate.
 * @module
 */
import type { SpiffeId } from '../spiffe/id.js';
import type { Entry } from './entry.js';
import { isEntryExpired } from './entry-validation.js';
import { selectorsMatch, type Selector } from './selectors.js';

/** Fetches the unexpired entries whose parentId is one of `parentIds`. */
export type FetchChildren = (parentIds: SpiffeId[]) => Promise<Entry[]>;

/**
 * Walks from the agent ID and the node-alias entries through descendants, one `fetchChildren` call per level.
 * `aliases` are the node-alias entries that already matched the agent's node selectors.
 */
export async function walkAuthorizedEntries(agentId: SpiffeId, aliases: readonly Entry[], fetchChildren: FetchChildren): Promise<Entry[]> {
  const found = new Map<string, Entry>();
  const visitedParents = new Set<string>([agentId]);
  let frontier: SpiffeId[] = [agentId];
  for (const alias of aliases) {
    found.set(alias.id, alias);
    if (!visitedParents.has(alias.spiffeId)) {
      visitedParents.add(alias.spiffeId);
      frontier.push(alias.spiffeId);
    }
  }
  while (frontier.length > 0) {
    const children = await fetchChildren(frontier);
    frontier = [];
    for (const child of children) {
      if (found.has(child.id)) continue;
      found.set(child.id, child);
      if (!visitedParents.has(child.spiffeId)) {
        visitedParents.add(child.spiffeId);
        frontier.push(child.spiffeId);
      }
    }
  }
  return [...found.values()];
}

/** True for a node-alias entry of a trust domain whose server ID is `serverId`. */
export function isNodeAlias(entry: Pick<Entry, 'parentId'>, serverId: SpiffeId): boolean {
  return entry.parentId === serverId;
}

/** The whole algorithm over an in-memory list (reference implementation; memory stores and tests use it). */
export async function authorizedEntriesOf(
  all: readonly Entry[],
  agentId: SpiffeId,
  serverId: SpiffeId,
  nodeSelectors: readonly Selector[],
  now: number,
): Promise<Entry[]> {
  const live = all.filter((e) => !isEntryExpired(e, now));
  const aliases = live.filter((e) => isNodeAlias(e, serverId) && selectorsMatch(e.selectors, nodeSelectors, 'subset'));
  return walkAuthorizedEntries(agentId, aliases, async (parents) => {
    const set = new Set<string>(parents);
    return live.filter((e) => set.has(e.parentId));
  });
}
