/**
 * The CA's alarm rotates keys on its own (prepare, activate, drop an old one): each such step changes the
 * published bundle, so every agent is told to sync (docs/agent-api.md "Notifications"). Best effort, after
 * the rotation committed; agents' polls cover a lost notice.
 * @module
 */
import type { PublishedKeys } from '../ca/ca-api.js';
import type { Result } from '../../shared/result.js';
import { createDoNotifier } from './notifier-api.js';
import { sendNotice } from './notices.js';
import { parseCaConfig } from '../config.js';

interface PublishingCa {
  getPublishedKeys(): Promise<Result<PublishedKeys>>;
}

/** Runs `step` and, when the published keys' sequence moved, notifies every agent of `env`'s trust domain. */
export async function notifyIfPublishedChanged(ca: PublishingCa, step: () => Promise<void>, env: Env): Promise<void> {
  const sequence = async () => {
    const keys = await ca.getPublishedKeys();
    return keys.ok ? keys.value.sequence : undefined;
  };
  const before = await sequence();
  await step();
  const after = await sequence();
  if (after === undefined || after === before) return;
  // the same object index.ts wires the app to: idFromName of the parsed trust domain
  const trustDomain = parseCaConfig(env).trustDomain;
  await sendNotice(createDoNotifier(() => env.NOTIFIER.get(env.NOTIFIER.idFromName(trustDomain))), { all: true });
}
