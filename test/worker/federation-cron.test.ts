// The Cron Trigger reaches the federation refresh: the real scheduled handler (src/worker/index.ts) with the
// real D1 and CA object refreshes a due https_web relationship; an unreachable endpoint is recorded as the
// relationship's last error and retried at the next poll, while the CA nudge still runs.
import { createScheduledController } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { expect, it } from 'vitest';
import worker from '../../src/worker/index.js';
import { createFederationStore } from '../../src/worker/db/federation.js';

it('the scheduled handler refreshes due https_web relationships and records failures', async () => {
  const store = createFederationStore(env.DB);
  const td = `cron-${Date.now().toString(36)}.example`;
  const now = Math.floor(Date.now() / 1000);
  // loopback port 1: nothing listens, so the fetch fails at once
  await store.createRelationship({ trustDomain: td as never, bundleEndpointUrl: 'http://127.0.0.1:1/bundle', bundleEndpointProfile: 'https_web' }, undefined, now - 10);
  await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: '*/5 * * * *' }), env as never);
  const rel = await store.getRelationship(td as never);
  expect(rel?.lastRefreshError).toMatch(/^ERR_UNAVAILABLE: /);
  expect(rel?.lastRefreshAt).toBe(0);
  expect(rel?.nextRefreshAt).toBeGreaterThanOrEqual(now + 300);
  expect(await store.getBundle(td as never)).toBeUndefined();
});
