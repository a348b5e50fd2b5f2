// azure_msi through the agent routes with Microsoft's keys served by a fake fetch: agent ID, selectors
// from xms_mirid, tampering (changed claim, unknown key, expired beyond the leeway, wrong resource,
// disallowed tenant) and trust on first use.
import 'reflect-metadata';
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseWorkerConfig } from '../../../src/worker/config.js';
import { createAgentStore } from '../../../src/worker/db/agents.js';
import { azureMsiClaims, createJwtSigner, type JwtSigner } from '../../helpers/shared/cloud-attestation.js';
import { TD } from '../../helpers/workerd/agent-client.js';
import { createCloudHarness, jwksServer, type CloudHarness } from '../../helpers/workerd/attestation-harness.js';

const KEYS_URL = 'http://127.0.0.1:9/azure/keys';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
let microsoft: JwtSigner;
let stranger: JwtSigner;
let c: CloudHarness;

const principal = () => crypto.randomUUID();
const iat = () => Math.floor(c.clock.nowMs / 1000);

beforeAll(async () => {
  [microsoft, stranger] = await Promise.all([createJwtSigner('ms-1'), createJwtSigner('other-1')]);
  c = await createCloudHarness({ AZURE_MSI: JSON.stringify({ tenants: [TENANT], keysUrl: KEYS_URL }) }, jwksServer({ [KEYS_URL]: () => microsoft.jwks }).fetch);
});

describe('azure_msi attestation', () => {
  it('issues spiffe://<td>/spire/agent/azure_msi/<tenant>/<principal> with subscription-id and vm-name selectors', async () => {
    const p = principal();
    const token = await microsoft.sign(azureMsiClaims({ tenantId: TENANT, principalId: p, subscriptionId: 'sub-1', resourceGroup: 'rg-1', vmName: 'vm-1' }), { issuedAt: iat() });
    const agent = await c.attest('azure_msi', { token });
    expect(agent.agentId).toBe(`spiffe://${TD}/spire/agent/azure_msi/${TENANT}/${p}`);
    expect(agent.selectors.sort()).toEqual(['azure_msi:subscription-id:sub-1', 'azure_msi:vm-name:rg-1:vm-1']);
  });

  it('refuses a token whose claims were changed after signing', async () => {
    const token = await microsoft.sign(azureMsiClaims({ tenantId: TENANT, principalId: principal() }), { issuedAt: iat() });
    const [h, p, s] = token.split('.');
    const claims = JSON.parse(atob(p!.replace(/-/g, '+').replace(/_/g, '/')));
    claims.sub = principal();
    const forged = `${h}.${btoa(JSON.stringify(claims)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')}.${s}`;
    await c.expectRefused('azure_msi', { token: forged }, 401, 'ERR_ATTESTATION_FAILED', /azure_msi: token signature is invalid/);
  });

  it('refuses a token signed by an unknown key', async () => {
    const token = await stranger.sign(azureMsiClaims({ tenantId: TENANT, principalId: principal() }), { issuedAt: iat() });
    await c.expectRefused('azure_msi', { token }, 401, 'ERR_ATTESTATION_FAILED', /signed by an unknown key/);
  });

  it('refuses a token expired beyond the 5-minute leeway, and accepts one inside it', async () => {
    const expired = await microsoft.sign(azureMsiClaims({ tenantId: TENANT, principalId: principal() }), { issuedAt: iat() - 3600 - 301, expiresInSeconds: 3600 });
    await c.expectRefused('azure_msi', { token: expired }, 401, 'ERR_ATTESTATION_FAILED', /token has expired/);
    const late = await microsoft.sign(azureMsiClaims({ tenantId: TENANT, principalId: principal() }), { issuedAt: iat() - 3600 - 120, expiresInSeconds: 3600 });
    await c.attest('azure_msi', { token: late });
  });

  it('refuses a token for another resource', async () => {
    const token = await microsoft.sign(azureMsiClaims({ tenantId: TENANT, principalId: principal(), resource: 'https://vault.azure.net' }), { issuedAt: iat() });
    await c.expectRefused('azure_msi', { token }, 401, 'ERR_ATTESTATION_FAILED', /token claim aud is invalid/);
  });

  it('refuses a tenant outside the allow-list', async () => {
    const token = await microsoft.sign(azureMsiClaims({ tenantId: 'another-tenant', principalId: principal() }), { issuedAt: iat() });
    await c.expectRefused('azure_msi', { token }, 401, 'ERR_ATTESTATION_FAILED', /tenant another-tenant is not in the allowed tenants/);
  });

  it('trusts on first use: a replayed token is refused until the agent is evicted', async () => {
    const token = await microsoft.sign(azureMsiClaims({ tenantId: TENANT, principalId: principal() }), { issuedAt: iat() });
    const first = await c.attest('azure_msi', { token });
    await c.expectRefused('azure_msi', { token }, 409, 'ERR_AGENT_ALREADY_ATTESTED', /already attested/);
    await createAgentStore(env.DB).evict(first.agentId);
    expect((await c.attest('azure_msi', { token })).agentId).toBe(first.agentId);
  });
});

describe('AZURE_MSI config', () => {
  it('names the bad key', () => {
    const parse = (AZURE_MSI: string) => () => parseWorkerConfig({ ...env, TRUST_DOMAIN: TD, AZURE_MSI });
    expect(parse('{"tenants":[""]}')).toThrow(/^AZURE_MSI\.tenants\[0\]: must be a tenant ID/);
    expect(parse('{"resource":5}')).toThrow(/^AZURE_MSI\.resource: must be a non-empty string/);
  });
});
