/**
 * The admin API's hook into the notification channel: a handler names the agents its write concerns with
 * one `noteAgents(c, target)` call; `agentNotices` sends the notice after the handler answered 2xx (the
 * write has committed by then), without holding the answer back (waitUntil where the runtime has it). A
 * failed notice never fails the write: it is logged, and the agents' poll picks the change up.
 * @module
 */
import type { Context, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import { mergeNotices, type NoticeTarget } from '../../shared/agent-notifications.js';
import { logEvent } from '../log.js';
import { waitUntilOf } from '../telemetry.js';
import type { AgentNotifierApi } from './notifier-api.js';
import { PUBLISHED_AUTHORITIES_CACHE_MS } from '../middleware/agent-auth.js';

declare module 'hono' {
  interface ContextVariableMap {
    /** the agents this request's write concerns (noteAgents) */
    agentNotice: NoticeTarget;
  }
}

/** Names the agents whose view this request changes (merged over several calls); undefined: none. */
export function noteAgents(c: Context, target: NoticeTarget | undefined): void {
  const merged = mergeNotices(c.get('agentNotice'), target);
  if (merged) c.set('agentNotice', merged);
}

/** Sends `target` a notice; never rejects. */
export function sendNotice(notifier: AgentNotifierApi, target: NoticeTarget, waitUntil?: (p: Promise<unknown>) => void): Promise<void> {
  const sending = notifier.notify(target).then(
    () => undefined,
    (e: unknown) => logEvent('warn', 'agent notification failed; agents pick the change up at their next poll', { cause: e instanceof Error ? e.message : String(e), all: 'all' in target }),
  );
  waitUntil?.(sending);
  return sending;
}

/**
 * After a change of the CA's published keys made through this isolate: every agent is told once more when
 * no other isolate can still answer a sync from keys read before the change (PUBLISHED_AUTHORITIES_CACHE_MS,
 * docs/agent-api.md "How fresh the bundle is"). Only where the runtime keeps the work alive (waitUntil);
 * a single app in plain Node has no other isolate.
 */
export function noteKeysChangedAgain(notifier: AgentNotifierApi, waitUntil: ((p: Promise<unknown>) => void) | undefined): void {
  if (!waitUntil) return;
  waitUntil(new Promise((resolve) => setTimeout(resolve, PUBLISHED_AUTHORITIES_CACHE_MS)).then(() => sendNotice(notifier, { all: true })));
}

export function agentNotices(notifier: AgentNotifierApi): MiddlewareHandler {
  return createMiddleware(async (c, next) => {
    await next();
    const target = c.get('agentNotice');
    if (target && c.res.status >= 200 && c.res.status < 300) void sendNotice(notifier, target, waitUntilOf(c));
  });
}
