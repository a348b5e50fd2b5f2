/**
 * The AgentNotifier Durable Object: one per trust domain (idFromName(trustDomain)), holding the agents'
 * notification WebSockets with the hibernation API, so an idle channel costs nothing: the object is evicted
 * from memory while its sockets stay open, the keepalive ping is answered by the runtime without waking it,
 * and a notice wakes it only to send `SYNC_NOTICE` on the sockets tagged with the agents concerned.
 *
 * It has no address of its own: only the Worker reaches it, through its binding, after authenticating the
 * agent (routes/agent-notifications.ts), and names that agent in NOTIFIER_AGENT_HEADER. Two internal
 * endpoints (notifier-api.ts): `connect` (the upgrade) and `notify` (JSON NoticeTarget).
 * @module
 */
import { KEEPALIVE_PING, KEEPALIVE_PONG, notificationTag, parseNoticeTarget, SYNC_NOTICE } from '../../shared/agent-notifications.js';
import type { SpiffeId } from '../../shared/spiffe/id.js';
import { logEvent } from '../log.js';
import { NOTIFIER_AGENT_HEADER } from './notifier-api.js';

/** Sockets one agent may hold; a new one beyond closes others (an agent holds one; more are leftovers of reconnections). */
export const MAX_SOCKETS_PER_AGENT = 4;
/** Close code sent when the issuer ends a channel (ban, evict, too many sockets): the agent reconnects later. */
export const CLOSE_CODE_ENDED = 4000;

export class AgentNotifier implements DurableObject {
  constructor(private readonly ctx: DurableObjectState) {
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(KEEPALIVE_PING, KEEPALIVE_PONG));
  }

  async fetch(request: Request): Promise<Response> {
    const path = new URL(request.url).pathname;
    if (path === '/connect') return this.#connect(request);
    if (path === '/notify' && request.method === 'POST') return this.#notify(request);
    return new Response(null, { status: 404 });
  }

  async #connect(request: Request): Promise<Response> {
    // set by the Worker after agentAuth (a Durable Object is reachable only through its binding)
    const agentId = request.headers.get(NOTIFIER_AGENT_HEADER) as SpiffeId | null;
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket' || !agentId) return new Response(null, { status: 400 });
    const tag = await notificationTag(agentId);
    const held = this.ctx.getWebSockets(tag);
    for (const old of held.slice(0, Math.max(0, held.length - MAX_SOCKETS_PER_AGENT + 1))) closeQuietly(old, 'replaced by a newer channel');
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server, [tag]);
    return new Response(null, { status: 101, webSocket: client });
  }

  async #notify(request: Request): Promise<Response> {
    const target = parseNoticeTarget(await request.json().catch(() => undefined));
    if (!target) return new Response(null, { status: 400 });
    const sockets = 'all' in target ? this.ctx.getWebSockets() : (await Promise.all(target.agents.map(async (a) => this.ctx.getWebSockets(await notificationTag(a))))).flat();
    let sent = 0;
    for (const ws of sockets) {
      try {
        ws.send(SYNC_NOTICE);
        sent++;
      } catch {
        // closing meanwhile: its agent reconnects and syncs
      }
      if ('agents' in target && target.close) closeQuietly(ws, 'agent removed');
    }
    return Response.json({ sent });
  }

  /** Agents send only the keepalive (answered by the runtime); anything else is ignored. */
  webSocketMessage(): void {}

  webSocketClose(ws: WebSocket, code: number): void {
    // completes the closing handshake the agent started (1005/1006 are not codes one may send)
    closeQuietly(ws, 'closed', code === 1005 || code === 1006 ? 1000 : code);
  }

  webSocketError(_ws: WebSocket, error: unknown): void {
    logEvent('warn', 'agent notification socket failed', { cause: error instanceof Error ? error.message : String(error) });
  }
}

function closeQuietly(ws: WebSocket, reason: string, code = CLOSE_CODE_ENDED): void {
  try {
    ws.close(code, reason);
  } catch {
    // already closed
  }
}
