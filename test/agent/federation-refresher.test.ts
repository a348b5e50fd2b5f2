// The agent's https_spiffe refresher with a fake issuer and a fake endpoint: the fetched bundle is
// submitted and the next refresh follows its (bounded) hint; a failed fetch is reported to the issuer and
// retried after the default interval; tasks are re-read every poll and a removed task is forgotten.
import { describe, expect, it } from 'vitest';
import type { FederationRefreshTask, SubmitFederatedBundleRequest } from '../../src/shared/agent-api.js';
import { WispError } from '../../src/shared/errors.js';
import { refreshTask, runBundleRefresher, type BundleRefresherDeps } from '../../src/agent/federation/bundle-refresher.js';
import { makeRootCa, toBase64 } from '../helpers/shared/agent-svid.js';

const quiet = { info: () => undefined, warn: () => undefined, debug: () => undefined };

async function bundleDoc(hint: number) {
  const root = await makeRootCa('partner.example', Math.floor(Date.now() / 1000));
  return { keys: [{ use: 'x509-svid', kty: 'EC', x5c: [toBase64(root.der)] }], spiffe_sequence: 3, spiffe_refresh_hint: hint };
}

function harness(tasks: () => FederationRefreshTask[], fetchBundle: BundleRefresherDeps['fetchBundle']) {
  const submitted: SubmitFederatedBundleRequest[] = [];
  let now = 1_000_000;
  let polls = 0;
  const deps: BundleRefresherDeps = {
    client: {
      federationRefreshTasks: async () => {
        polls++;
        return { tasks: tasks() };
      },
      submitFederatedBundle: async (req) => {
        submitted.push(req);
        return { status: req.bundle ? 'updated' : 'failed' };
      },
    },
    fetchBundle,
    clock: () => now,
    log: quiet,
    sleep: async (ms) => {
      now += ms;
    },
    pollMs: 60_000,
  };
  return { deps, submitted, advance: (ms: number) => (now += ms), now: () => now, polls: () => polls };
}

describe('federation bundle refresher', () => {
  it('submits the fetched bundle and schedules the next refresh at the bounded hint', async () => {
    const doc = await bundleDoc(30);
    const task: FederationRefreshTask = { trustDomain: 'partner.example', bundleEndpointUrl: 'https://p.example/b', endpointSpiffeId: 'spiffe://partner.example/s', bundle: doc };
    const h = harness(() => [task], async (o) => {
      expect(o).toMatchObject({ url: task.bundleEndpointUrl, endpointSpiffeId: task.endpointSpiffeId, trustBundle: doc, trustDomain: 'partner.example' });
      return JSON.stringify(doc);
    });
    const next = await refreshTask(h.deps, task);
    expect(h.submitted).toEqual([{ trustDomain: 'partner.example', bundle: doc }]);
    expect(next).toBe(h.now() + 60_000); // hint 30 s → at least a minute
  });

  it('reports a failed fetch (and a missing stored bundle) to the issuer and retries after 5 minutes', async () => {
    const task: FederationRefreshTask = { trustDomain: 'partner.example', bundleEndpointUrl: 'https://p.example/b', endpointSpiffeId: 'spiffe://partner.example/s', bundle: await bundleDoc(300) };
    const h = harness(() => [task], async () => {
      throw new WispError('ERR_UNAVAILABLE', 'the endpoint presented spiffe://partner.example/other');
    });
    expect(await refreshTask(h.deps, task)).toBe(h.now() + 300_000);
    expect(h.submitted).toEqual([{ trustDomain: 'partner.example', error: 'ERR_UNAVAILABLE: the endpoint presented spiffe://partner.example/other' }]);
    const { bundle: _b, ...noBundle } = task;
    await refreshTask(h.deps, noBundle);
    expect(h.submitted[1]?.error).toMatch(/^ERR_BUNDLE_NOT_FOUND: /);
  });

  it('polls the task list, refreshes only when due, and stops on abort', async () => {
    const doc = await bundleDoc(600);
    let list: FederationRefreshTask[] = [{ trustDomain: 'partner.example', bundleEndpointUrl: 'https://p.example/b', endpointSpiffeId: 'spiffe://partner.example/s', bundle: doc }];
    let fetches = 0;
    const h = harness(() => list, async () => {
      fetches++;
      return JSON.stringify(doc);
    });
    const controller = new AbortController();
    const sleep = h.deps.sleep;
    h.deps.sleep = async (ms, signal) => {
      await sleep(ms, signal);
      if (h.polls() === 12) list = [];
      if (h.polls() >= 15) controller.abort();
    };
    await runBundleRefresher(h.deps, controller.signal);
    // polls every minute, refreshes every 10 minutes (the hint): at polls 1 and 11, then the task is gone
    expect(fetches).toBe(2);
    expect(h.polls()).toBe(15);
  });
});
