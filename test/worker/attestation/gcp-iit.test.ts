// gcp_iit through the agent routes with Google's keys served by a fake fetch: agent ID and selectors,
// tampering (changed claim, wrong signature, unknown key, expired, wrong audience, disallowed project),
// trust on first use, and the key cache honouring Cache-Control.
import 'reflect-metadata';
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseWorkerConfig } from '../../../src/worker/config.js';
import { createAgentStore } from '../../../src/worker/db/agents.js';
import { createJwtSigner, gcpIdentityClaims, type JwtSigner } from '../../helpers/shared/cloud-attestation.js';
import { TD } from '../../helpers/workerd/agent-client.js';
import { createCloudHarness, jwksServer, type CloudHarness } from '../../helpers/workerd/attestation-harness.js';

const KEYS_URL = 'http://127.0.0.1:9/gcp/certs';
let google: JwtSigner;
let stranger: JwtSigner;
let c: CloudHarness;
let server: ReturnType<typeof jwksServer>;

const instance = () => String(Math.floor(Math.random() * 1e15));

beforeAll(async () => {
  [google, stranger] = await Promise.all([createJwtSigner('google-1'), createJwtSigner('other-1')]);
  server = jwksServer({ [KEYS_URL]: () => google.jwks });
  c = await createCloudHarness({ GCP_IIT: JSON.stringify({ projectIds: ['wisp-test', 'wisp-other'], keysUrl: KEYS_URL }) }, server.fetch);
});

describe('gcp_iit attestation', () => {
  it('issues spiffe://<td>/spire/agent/gcp_iit/<project>/<instance> with project-id, zone and instance-name selectors', async () => {
    const id = instance();
    const token = await google.sign(gcpIdentityClaims({ projectId: 'wisp-test', instanceId: id, instanceName: 'web-1', zone: 'europe-west1-b' }));
    const agent = await c.attest('gcp_iit', { token });
    expect(agent.agentId).toBe(`spiffe://${TD}/spire/agent/gcp_iit/wisp-test/${id}`);
    expect(agent.selectors.sort()).toEqual(['gcp_iit:instance-name:web-1', 'gcp_iit:project-id:wisp-test', 'gcp_iit:zone:europe-west1-b']);
  });

  it('refuses a token whose claims were changed after signing', async () => {
    const token = await google.sign(gcpIdentityClaims({ projectId: 'wisp-test', instanceId: instance() }));
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(atob(p!.replace(/-/g, '+').replace(/_/g, '/')));
    claims.google.compute_engine.project_id = 'wisp-other';
    const forged = `${h}.${btoa(JSON.stringify(claims)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}.${s}`;
    await c.expectRefused('gcp_iit', { token: forged }, 401, 'ERR_ATTESTATION_FAILED', /gcp_iit: token signature is invalid/);
  });

  it('refuses a token signed by another key under Google\'s kid', async () => {
    const token = await stranger.sign(gcpIdentityClaims({ projectId: 'wisp-test', instanceId: instance() }), { kid: 'google-1' });
    await c.expectRefused('gcp_iit', { token }, 401, 'ERR_ATTESTATION_FAILED', /token signature is invalid/);
  });

  it('refuses a token signed by an unknown key, after one refetch of the keys', async () => {
    const before = server.count.get(KEYS_URL) ?? 0;
    c.clock.nowMs += 60_000; // past the refetch cooldown
    const token = await stranger.sign(gcpIdentityClaims({ projectId: 'wisp-test', instanceId: instance() }), { issuedAt: Math.floor(c.clock.nowMs / 1000) });
    await c.expectRefused('gcp_iit', { token }, 401, 'ERR_ATTESTATION_FAILED', /signed by an unknown key \(kid other-1\)/);
    expect(server.count.get(KEYS_URL)).toBe(before + 1);
    await c.expectRefused('gcp_iit', { token }, 401, 'ERR_ATTESTATION_FAILED', /unknown key/);
    expect(server.count.get(KEYS_URL)).toBe(before + 1); // cooldown: no second refetch
  });

  it('refuses an expired token', async () => {
    const issuedAt = Math.floor(c.clock.nowMs / 1000) - 7200;
    const token = await google.sign(gcpIdentityClaims({ projectId: 'wisp-test', instanceId: instance() }), { issuedAt, expiresInSeconds: 3600 });
    await c.expectRefused('gcp_iit', { token }, 401, 'ERR_ATTESTATION_FAILED', /gcp_iit: token has expired/);
  });

  it('refuses a token for another audience', async () => {
    const token = await google.sign(gcpIdentityClaims({ projectId: 'wisp-test', instanceId: instance(), audience: 'https://other.example' }), { issuedAt: Math.floor(c.clock.nowMs / 1000) });
    await c.expectRefused('gcp_iit', { token }, 401, 'ERR_ATTESTATION_FAILED', /token claim aud is invalid/);
  });

  it('refuses a project outside the allow-list', async () => {
    const token = await google.sign(gcpIdentityClaims({ projectId: 'someone-else', instanceId: instance() }), { issuedAt: Math.floor(c.clock.nowMs / 1000) });
    await c.expectRefused('gcp_iit', { token }, 401, 'ERR_ATTESTATION_FAILED', /project someone-else is not in the allowed projects/);
  });

  it('trusts on first use: a replayed token is refused until the agent is evicted', async () => {
    const token = await google.sign(gcpIdentityClaims({ projectId: 'wisp-test', instanceId: instance() }), { issuedAt: Math.floor(c.clock.nowMs / 1000) });
    const first = await c.attest('gcp_iit', { token });
    await c.expectRefused('gcp_iit', { token }, 409, 'ERR_AGENT_ALREADY_ATTESTED', /already attested/);
    await createAgentStore(env.DB).evict(first.agentId);
    expect((await c.attest('gcp_iit', { token })).agentId).toBe(first.agentId);
  });

  it('caches the keys for their max-age', async () => {
    const fresh = jwksServer({ [KEYS_URL]: () => google.jwks }, 'public, max-age=600');
    const t = await createCloudHarness({ GCP_IIT: JSON.stringify({ keysUrl: KEYS_URL }) }, fresh.fetch);
    for (let i = 0; i < 3; i++) await t.attest('gcp_iit', { token: await google.sign(gcpIdentityClaims({ projectId: 'any-project', instanceId: instance() }), { issuedAt: Math.floor(t.clock.nowMs / 1000) }) });
    expect(fresh.count.get(KEYS_URL)).toBe(1);
    t.clock.nowMs += 601_000;
    await t.attest('gcp_iit', { token: await google.sign(gcpIdentityClaims({ projectId: 'any-project', instanceId: instance() }), { issuedAt: Math.floor(t.clock.nowMs / 1000) }) });
    expect(fresh.count.get(KEYS_URL)).toBe(2);
  });

  it('answers 503 when Google\'s keys cannot be fetched, issuing nothing', async () => {
    const t = await createCloudHarness({ GCP_IIT: JSON.stringify({ keysUrl: 'http://127.0.0.1:9/missing' }) }, jwksServer({}).fetch);
    const token = await google.sign(gcpIdentityClaims({ projectId: 'wisp-test', instanceId: instance() }));
    await t.expectRefused('gcp_iit', { token }, 503, 'ERR_UNAVAILABLE', /answered HTTP 404/);
  });
});

describe('GCP_IIT config', () => {
  const parse = (GCP_IIT: string) => () => parseWorkerConfig({ ...env, TRUST_DOMAIN: TD, GCP_IIT });
  it('names the bad key', () => {
    expect(parse('{"keysUrl":"http://keys.example/certs"}')).toThrow(/^GCP_IIT\.keysUrl: must be https/);
    expect(parse('{"projectIds":"p"}')).toThrow(/^GCP_IIT\.projectIds: must be an array/);
    expect(parse('{"audience":""}')).toThrow(/^GCP_IIT\.audience: must be a non-empty string/);
  });
});
