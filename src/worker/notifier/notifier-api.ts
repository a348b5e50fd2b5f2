/**
 * What the app sees of the agent notification channel (shared/agent-notifications.ts): `connect` answers an
 * authenticated agent's WebSocket upgrade, `notify` tells agents to sync. In workerd both go to the
 * AgentNotifier Durable Object (agent-notifier.ts) over its internal fetch; where no notifier is wired (the
 * app in plain Node), upgrades are refused with 503 and notices dropped: agents then rely on their poll.
 * @module
 */
import type { NoticeTarget } from '../../shared/agent-notifications.js';
import { WispError } from '../../shared/errors.js';
import type { SpiffeId } from '../../shared/spiffe/id.js';

/** The notifier's internal endpoints and the header naming the agent the Worker authenticated. */
export const NOTIFIER_CONNECT_URL = 'https://notifier.internal/connect';
export const NOTIFIER_NOTIFY_URL = 'https://notifier.internal/notify';
export const NOTIFIER_AGENT_HEADER = 'x-wisp-agent-id';

export interface AgentNotifierApi {
  /** the 101 answer to an upgrade request of `agentId`, already authenticated by the caller */
  connect(request: Request, agentId: SpiffeId): Promise<Response>;
  /** best effort: resolves with the number of sockets told, rejects when the notifier is unreachable */
  notify(target: NoticeTarget): Promise<number>;
}

/** The notifier's Durable Object, as `index.ts` makes a stub of it (idFromName(trustDomain)). */
export interface NotifierStub {
  fetch(request: Request): Promise<Response>;
}

export function createDoNotifier(stub: () => NotifierStub): AgentNotifierApi {
  return {
    async connect(request, agentId) {
      const headers = new Headers({ upgrade: 'websocket', [NOTIFIER_AGENT_HEADER]: agentId });
      const res = (await stub().fetch(new Request(NOTIFIER_CONNECT_URL, { headers }))) as Response & { webSocket?: unknown };
      if (res.status !== 101 || !res.webSocket) throw new WispError('ERR_UNAVAILABLE', 'agent notifications are unavailable');
      // a fetched response's headers are immutable; the app's middleware sets its own on the answer
      // (`webSocket` is workerd's ResponseInit member; this app is also typed for Node)
      return new Response(null, { status: 101, webSocket: res.webSocket } as ResponseInit);
    },
    async notify(target) {
      const res = await stub().fetch(new Request(NOTIFIER_NOTIFY_URL, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(target) }));
      const text = await res.text();
      if (res.status !== 200) throw new Error(`notifier answered ${res.status}`);
      return Number(JSON.parse(text).sent) || 0;
    },
  };
}

/** No channel: upgrades refused (503), notices dropped. */
export const NO_NOTIFIER: AgentNotifierApi = {
  connect: async () => {
    throw new WispError('ERR_UNAVAILABLE', 'agent notifications are not available on this issuer; agents poll');
  },
  notify: async () => 0,
};
