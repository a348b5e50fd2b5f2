import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { NodeAttestor } from '../../src/agent/attestor/node-attestor.js';
import { selectNodeAttestor } from '../../src/agent/attestor/node-attestor.js';
import { createJoinTokenAttestor } from '../../src/agent/attestor/join-token.js';
import { syncOnce } from '../../src/agent/cache/sync.js';
import { DATA_FILES } from '../../src/agent/data-dir.js';
import { silentLogger } from '../../src/agent/log.js';
import { hasReusableAgentSvid } from '../../src/agent/node-attestation.js';
import { runRotator } from '../../src/agent/rotator.js';
import { TTL, useAgentHarness, type Harness } from '../helpers/node/agent/agent-harness.js';

const log = silentLogger();
const createHarness = useAgentHarness();
let h: Harness;
afterEach(() => h?.close());

/** An attestor that presents a different (fresh) join token each time: stands in for a reusable cloud attestor. */
function tokenSequenceAttestor(tokens: string[]): NodeAttestor {
  return { type: 'join_token', singleUse: false, payload: async () => ({ token: tokens.shift() }), describe: () => ({ attestor: 'test' }) };
}

describe('node attestation', () => {
  it('attests with the join token on first start and persists key, SVID and bundle (0600)', async () => {
    h = await createHarness();
    const { svid, bundle } = await h.identity.start();
    expect(svid.spiffeId).toBe(`spiffe://example.org/spire/agent/join_token/${h.joinToken}`);
    expect(bundle).toEqual(await h.issuer.bundle());
    expect(h.issuer.callsTo('/attest').length).toBe(1);
    for (const f of [DATA_FILES.AGENT_IDENTITY, DATA_FILES.BUNDLE]) expect(statSync(join(h.dataDirPath, f)).mode & 0o777).toBe(0o600);
  });

  it('a restart reuses the stored identity without a token and without re-attesting', async () => {
    h = await createHarness();
    const first = await h.identity.start();
    const again = await h.restart(undefined);
    const { svid } = await again.identity.start();
    expect(svid.certChain).toEqual(first.svid.certChain);
    expect(h.issuer.callsTo('/attest').length).toBe(1);
    // and the restored key signs requests the issuer accepts
    // the expected revision names the agent of the last /sync call: read it once this sync has arrived
    const synced = await again.client.sync({});
    expect(synced).toMatchObject({ revision: await h.issuer.revision() });
  });

  it('renews its own SVID at half-life with a new key, signed with the old one', async () => {
    h = await createHarness();
    const { svid } = await h.identity.start();
    h.clock.advance((TTL.agent * 1000) / 2 - 1000);
    expect(await h.identity.renewIfDue()).toBe(false);
    h.clock.advance(1000);
    expect(await h.identity.renewIfDue()).toBe(true);
    const renewed = h.identity.current()!;
    expect(renewed.certChain[0]).not.toEqual(svid.certChain[0]);
    expect(h.issuer.callsTo('/renew')[0]!).toMatchObject({ status: 200, agentId: svid.spiffeId });
    const restarted = await (await h.restart(undefined)).identity.start();
    expect(restarted.svid.certChain).toEqual(renewed.certChain);
  });

  it('renewal replaces key and SVID in one atomic write: a crash at any point leaves a matching pair', async () => {
    h = await createHarness();
    const { svid } = await h.identity.start();
    const file = join(h.dataDirPath, DATA_FILES.AGENT_IDENTITY);
    const before = readFileSync(file, 'utf8');
    h.clock.advance((TTL.agent * 1000) / 2);
    expect(await h.identity.renewIfDue()).toBe(true);
    const renewed = h.identity.current()!;
    const after = readFileSync(file, 'utf8');
    expect(readdirSync(h.dataDirPath).sort()).toEqual([DATA_FILES.AGENT_IDENTITY, DATA_FILES.BUNDLE].sort());
    // A crash can only leave the state before the rename (the old file, maybe a stray temp file holding the
    // new one) or after it. Either way the restarted agent holds a key matching its SVID and needs no token.
    for (const [content, chain] of [[before, svid.certChain], [after, renewed.certChain]] as const) {
      writeFileSync(file, content);
      writeFileSync(`${file}.0123456789ab.tmp`, after);
      const again = await h.restart(undefined);
      expect((await again.identity.start()).svid.certChain).toEqual(chain);
      // the expected revision names the agent of the last /sync call: read it once this sync has arrived
      const synced = await again.client.sync({});
      expect(synced).toMatchObject({ revision: await h.issuer.revision() });
    }
    expect(h.issuer.callsTo('/attest').length).toBe(1);
  });

  it('when the stored SVID expired while offline and no attestor is configured: a clear fatal error', async () => {
    h = await createHarness();
    await h.identity.start();
    h.clock.advance(TTL.agent * 1000);
    const again = await h.restart(undefined);
    await expect(again.identity.start()).rejects.toThrow(/must attest \(stored agent SVID expired\) but no node attestor is configured: set joinToken/);
  });

  it('a used join token is refused with a message that says what to do', async () => {
    h = await createHarness();
    await h.identity.start();
    h.clock.advance(TTL.agent * 1000);
    const again = await h.restart(selectNodeAttestor({ joinToken: h.joinToken }));
    await expect(again.identity.start()).rejects.toMatchObject({
      code: 'ERR_JOIN_TOKEN_INVALID',
      message: expect.stringMatching(/unknown, expired or already used; create a new one and restart with --joinToken/),
    });
  });

  it('evicted by the issuer (401): re-attests with an attestor that can, then syncs from scratch', async () => {
    const tokens: string[] = [];
    h = await createHarness({ attestor: () => tokenSequenceAttestor(tokens) });
    const second = await h.issuer.createJoinToken();
    tokens.push(h.joinToken, second);
    await h.addEntry('e1', '/w', [{ type: 'unix', value: 'uid:1' }]);
    await h.identity.start();
    await syncOnce({ client: h.client, cache: h.cache, clock: h.clock.fn, log });
    await h.issuer.evict(h.identity.current()!.spiffeId);
    const controller = new AbortController();
    await runRotator(
      { identity: h.identity, cache: h.cache, client: h.client, dataDir: h.dataDir, clock: h.clock.fn, random: () => 0, intervalMs: 5_000, log, sleep: async () => controller.abort() },
      controller.signal,
    );
    expect(h.identity.current()!.spiffeId).toBe(`spiffe://example.org/spire/agent/join_token/${second}`);
    // revision reset: full entry list
    expect(h.issuer.callsTo('/sync').at(-1)!.body).toEqual({ bundleSequence: (await h.issuer.bundle()).spiffe_sequence });
  });

  it('evicted with only a single-use join token already spent: the loop stops with a clear error', async () => {
    h = await createHarness();
    await h.identity.start();
    await h.issuer.evict(h.identity.current()!.spiffeId);
    const controller = new AbortController();
    await expect(
      runRotator(
        { identity: h.identity, cache: h.cache, client: h.client, dataDir: h.dataDir, clock: h.clock.fn, random: () => 0, intervalMs: 5_000, log, sleep: async () => undefined },
        controller.signal,
      ),
    ).rejects.toThrow(/already used by this process; create a new join token and restart with --joinToken/);
  });
});

// `npm start` (scripts/start-local.ts) mints a join token exactly when this says the agent must attest
describe("npm start's check of the stored identity (hasReusableAgentSvid)", () => {
  it('none, then valid, then expired (a .wisp-local of an earlier day): the agent attests again with a fresh token', async () => {
    h = await createHarness();
    expect(await hasReusableAgentSvid(h.dataDirPath, h.clock.now)).toBe(false);
    await h.identity.start();
    expect(await hasReusableAgentSvid(h.dataDirPath, h.clock.now)).toBe(true);
    h.clock.advance(TTL.agent * 1000);
    expect(await hasReusableAgentSvid(h.dataDirPath, h.clock.now)).toBe(false);
    const fresh = await h.issuer.createJoinToken();
    const { svid } = await (await h.restart(createJoinTokenAttestor(fresh))).identity.start();
    expect(svid.spiffeId).toBe(`spiffe://example.org/spire/agent/join_token/${fresh}`);
    expect(h.issuer.callsTo('/attest').length).toBe(2);
    expect(await hasReusableAgentSvid(h.dataDirPath, h.clock.now)).toBe(true);
  });

  it.each([
    ['a PEM body that is not base64', '-----BEGIN PRIVATE KEY-----\n%%%%\n-----END PRIVATE KEY-----\n'],
    ['a key and a certificate that are not DER', `-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n`],
  ])('an unreadable identity file (%s) is not reusable, and the agent attests instead of stopping', async (_, text) => {
    h = await createHarness();
    await h.identity.start();
    writeFileSync(join(h.dataDirPath, DATA_FILES.AGENT_IDENTITY), text);
    expect(await hasReusableAgentSvid(h.dataDirPath, h.clock.now)).toBe(false);
    await expect((await h.restart(undefined)).identity.start()).rejects.toThrow(/must attest \(first start\) but no node attestor is configured/);
    const fresh = await h.issuer.createJoinToken();
    const { svid } = await (await h.restart(createJoinTokenAttestor(fresh))).identity.start();
    expect(svid.spiffeId).toBe(`spiffe://example.org/spire/agent/join_token/${fresh}`);
    expect(await hasReusableAgentSvid(h.dataDirPath, h.clock.now)).toBe(true);
  });
});
