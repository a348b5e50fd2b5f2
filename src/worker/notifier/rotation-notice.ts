/**
 * The CA rotates keys on its own (its alarm, or lazily on a call once a step is due): each step changes the
 * published bundle, so every agent is told to sync (docs/agent-api.md "Notifications"). Called by the CA
 * Durable Object after the rotation is stored; best effort, agents' polls cover a lost notice.
 * @module
 */
import { createDoNotifier } from './notifier-api.js';
import { sendNotice } from './notices.js';

/** Notifies every agent of `trustDomain` through the AgentNotifier object index.ts wires the app to. */
export function notifyEveryAgent(env: Pick<Env, 'NOTIFIER'>, trustDomain: string): Promise<void> {
  return sendNotice(createDoNotifier(() => env.NOTIFIER.get(env.NOTIFIER.idFromName(trustDomain))), { all: true });
}
