// aws_iid through the agent routes: SPIRE agent ID and selectors, each tampering refused with nothing
// issued, trust on first use (and re-attestation after eviction), account allow-list, node aliases through
// node selectors, config errors, and the shipped AWS region certificates.
import 'reflect-metadata';
import { env } from 'cloudflare:workers';
import { X509Certificate } from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SyncResponse } from '../../../src/shared/agent-api.js';
import { AWS_IID_RSA2048_CERTIFICATES } from '../../../src/shared/attestation/aws-iid-certificates.js';
import { serverId } from '../../../src/shared/spiffe/id.js';
import { parseWorkerConfig } from '../../../src/worker/config.js';
import { createAgentStore } from '../../../src/worker/db/agents.js';
import { createRegionSigner, instanceIdentityDocument, type RegionSigner } from '../../helpers/shared/cloud-attestation.js';
import { TD } from '../../helpers/workerd/agent-client.js';
import { createCloudHarness, type CloudHarness } from '../../helpers/workerd/attestation-harness.js';

const ACCOUNT = '123456789012';
let east: RegionSigner;
let west: RegionSigner;
let c: CloudHarness;

const instance = () => `i-${crypto.randomUUID().replace(/-/g, '').slice(0, 17)}`;

async function signed(fields: { accountId?: string; region?: string; instanceId?: string } = {}, signer?: RegionSigner) {
  const region = fields.region ?? 'test-east-1';
  const document = instanceIdentityDocument({ accountId: fields.accountId ?? ACCOUNT, region, instanceId: fields.instanceId ?? instance() });
  return { document, signature: await (signer ?? (region === 'test-west-1' ? west : east)).sign(document) };
}

beforeAll(async () => {
  [east, west] = await Promise.all([createRegionSigner('test-east-1'), createRegionSigner('test-west-1')]);
  c = await createCloudHarness({
    AWS_IID: JSON.stringify({ accountIds: [ACCOUNT, '210987654321'], certificates: { 'test-east-1': east.certPem, 'test-west-1': west.certPem } }),
  });
});

describe('aws_iid attestation', () => {
  it('issues spiffe://<td>/spire/agent/aws_iid/<account>/<region>/<instance> with SPIRE selectors stored as node selectors', async () => {
    const id = instance();
    const agent = await c.attest('aws_iid', await signed({ instanceId: id }));
    expect(agent.agentId).toBe(`spiffe://${TD}/spire/agent/aws_iid/${ACCOUNT}/test-east-1/${id}`);
    expect(agent.selectors.sort()).toEqual(
      [`aws_iid:account:${ACCOUNT}`, 'aws_iid:az:test-east-1a', 'aws_iid:image:id:ami-0123456789abcdef0', `aws_iid:instance:id:${id}`, 'aws_iid:region:test-east-1'].sort(),
    );
  });

  it('refuses a document changed after signing', async () => {
    const { document, signature } = await signed();
    const changed = document.replace(`"accountId" : "${ACCOUNT}"`, '"accountId" : "210987654321"');
    expect(changed).not.toBe(document);
    await c.expectRefused('aws_iid', { document: changed, signature }, 401, 'ERR_ATTESTATION_FAILED', /aws_iid: .*message digest does not match/);
  });

  it('refuses a wrong signature', async () => {
    const { document, signature } = await signed();
    const other = await signed();
    await c.expectRefused('aws_iid', { document, signature: other.signature }, 401, 'ERR_ATTESTATION_FAILED', /signature is invalid/);
    const bytes = Uint8Array.from(atob(signature), (ch) => ch.charCodeAt(0));
    bytes[bytes.length - 5]! ^= 0x01; // inside the RSA signature value
    await c.expectRefused('aws_iid', { document, signature: btoa(String.fromCharCode(...bytes)) }, 401, 'ERR_ATTESTATION_FAILED', /does not verify/);
    await c.expectRefused('aws_iid', { document, signature: 'bm90IGEgUEtDUzc=' }, 401, 'ERR_ATTESTATION_FAILED', /not a valid PKCS#7/);
  });

  it('refuses a document signed with the key of another region', async () => {
    const forged = await signed({ region: 'test-west-1' }, east);
    await c.expectRefused('aws_iid', forged, 401, 'ERR_ATTESTATION_FAILED', /invalid for region test-west-1: signature does not verify/);
  });

  it('refuses a region with no certificate', async () => {
    await c.expectRefused('aws_iid', await signed({ region: 'test-north-9' }, east), 401, 'ERR_ATTESTATION_FAILED', /no AWS certificate for region test-north-9/);
  });

  it('refuses an account outside the allow-list', async () => {
    await c.expectRefused('aws_iid', await signed({ accountId: '999999999999' }), 401, 'ERR_ATTESTATION_FAILED', /account 999999999999 is not in the allowed accounts/);
  });

  it('trusts on first use: a replayed document is refused until the agent is evicted', async () => {
    const payload = await signed();
    const first = await c.attest('aws_iid', payload);
    await c.expectRefused('aws_iid', payload, 409, 'ERR_AGENT_ALREADY_ATTESTED', /already attested/);
    expect(await createAgentStore(env.DB).evict(first.agentId)).toBe(true);
    const again = await c.attest('aws_iid', payload);
    expect(again.agentId).toBe(first.agentId);
  });

  it('refuses malformed payloads as bad requests', async () => {
    await c.expectRefused('aws_iid', { document: 1 }, 400, 'ERR_BAD_REQUEST', /document and signature/);
    const { signature } = await signed();
    await c.expectRefused('aws_iid', { document: '{"accountId":"1"}', signature }, 401, 'ERR_ATTESTATION_FAILED', /no valid accountId/);
  });

  it('hands the children of a node-alias entry (aws_iid:account) to every agent of that account', async () => {
    const alias = await c.h.createEntry({ spiffeId: `spiffe://${TD}/node-alias/account-${ACCOUNT}` as never, parentId: serverId(TD), selectors: [{ type: 'aws_iid', value: `account:${ACCOUNT}` }] });
    const child = await c.h.createEntry({ spiffeId: `spiffe://${TD}/workload/on-any-${ACCOUNT}` as never, parentId: alias.spiffeId });
    const inAccount = await c.attest('aws_iid', await signed());
    const otherAccount = await c.attest('aws_iid', await signed({ accountId: '210987654321' }));
    const sync = async (agent: typeof inAccount) => ((await (await c.h.call(agent, 'POST', '/agent/v1/sync', {})).json()) as SyncResponse).entries?.map((e) => e.id) ?? [];
    expect(await sync(inAccount)).toContain(child.id);
    expect(await sync(otherAccount)).not.toContain(child.id);
  });
});

describe('AWS_IID config', () => {
  const parse = (AWS_IID: string) => () => parseWorkerConfig({ ...env, TRUST_DOMAIN: TD, AWS_IID });
  it('names the bad key', () => {
    expect(parse('{"accountIds":["12"]}')).toThrow(/^AWS_IID\.accountIds\[0\]: must be a 12-digit AWS account ID/);
    expect(parse('{"agentPathTemplate":"{{ .Tags }}"}')).toThrow(/^AWS_IID\.agentPathTemplate: unknown field \.Tags/);
    expect(parse('{"certificates":{"x-1":"nope"}}')).toThrow(/^AWS_IID\.certificates: /);
    expect(parse('{"acountIds":[]}')).toThrow(/^AWS_IID\.acountIds: unknown key/);
    expect(parse('[1]')).toThrow(/^AWS_IID: must be a JSON object/);
  });
  it('renders a custom agent path template', async () => {
    const t = await createCloudHarness({ AWS_IID: JSON.stringify({ agentPathTemplate: 'aws/{{ .Region }}/{{ .InstanceID }}', certificates: { 'test-east-1': east.certPem } }) });
    const id = instance();
    expect((await t.attest('aws_iid', await signed({ instanceId: id }))).agentId).toBe(`spiffe://${TD}/spire/agent/aws/test-east-1/${id}`);
  });
});

describe('shipped AWS certificates', () => {
  it('has an RSA-2048 certificate per region that parses and verifies its own signature', async () => {
    const regions = Object.keys(AWS_IID_RSA2048_CERTIFICATES);
    expect(regions.length).toBeGreaterThanOrEqual(39);
    for (const region of ['us-east-1', 'us-west-2', 'eu-central-1', 'ap-southeast-2', 'us-gov-west-1', 'cn-north-1']) expect(regions).toContain(region);
    for (const [region, b64] of Object.entries(AWS_IID_RSA2048_CERTIFICATES)) {
      const cert = new X509Certificate(b64.replace(/\s+/g, ''));
      expect(cert.subject, region).toContain('O=Amazon Web Services LLC');
      expect((cert.publicKey.algorithm as { modulusLength?: number }).modulusLength, region).toBe(2048);
      expect(await cert.verify({ signatureOnly: true }), region).toBe(true);
    }
  });
});
