// End to end, cloud node attestation: the real issuer (wrangler dev) trusting test keys through its
// AWS_IID / GCP_IIT / AZURE_MSI vars, fake metadata services and key servers on 127.0.0.1, and real
// wisp-agent processes attesting through their real code paths (no join token). For each attestor: the
// agent attests, a workload gets an X509-SVID through a node-alias entry matched by node selectors, and
// after an eviction the agent attests again by itself. The AWS signature is made by OpenSSL (`cms -sign`),
// an implementation independent of the verifier. Refusals end the agent with the issuer's reason.
import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, startIssuer, type RunningIssuer } from '../../scripts/local-stack.js';
import { agentRecord as issuerAgentRecord, agentRunner, expectReattestationAfterEviction, workloadSvid } from '../helpers/node/node-attestation-e2e.js';
import { azureMsiClaims, createJwtSigner, gcpIdentityClaims, instanceIdentityDocument, type JwtSigner } from '../helpers/shared/cloud-attestation.js';

const TD = 'example.org';
const ACCOUNT = '123456789012';
const PROJECT = 'wisp-e2e';
const TENANT = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
const uid = process.getuid?.() ?? 0;

type Handler = (req: IncomingMessage, url: URL) => { status: number; body: string; headers?: Record<string, string> };

interface FakeServer {
  url: string;
  log: Array<{ method: string; path: string; headers: IncomingMessage['headers'] }>;
  server: Server;
}

async function fakeServer(handler: Handler): Promise<FakeServer> {
  const log: FakeServer['log'] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    log.push({ method: req.method ?? '', path: url.pathname, headers: req.headers });
    const out = handler(req, url);
    res.writeHead(out.status, { 'content-type': 'text/plain', ...out.headers });
    res.end(out.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return { url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, log, server };
}

let root: string;
let issuer: RunningIssuer;
let keysServer: FakeServer;
let google: JwtSigner;
let microsoft: JwtSigner;

/** OpenSSL stands in for AWS: a self-signed RSA-2048 "region" certificate and `cms -sign` of the document. */
function opensslRegion(dir: string): { certPem: string; sign(document: string): string } {
  const key = join(dir, 'region.key');
  const cert = join(dir, 'region.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/C=US/O=Test AWS test-east-1'], { stdio: 'ignore' });
  return {
    certPem: readFileSync(cert, 'utf8'),
    sign(document) {
      const doc = join(dir, `doc-${Math.random().toString(36).slice(2)}.json`);
      writeFileSync(doc, document);
      const der = execFileSync('openssl', ['cms', '-sign', '-binary', '-nodetach', '-md', 'sha256', '-in', doc, '-signer', cert, '-inkey', key, '-outform', 'DER']);
      return der.toString('base64');
    },
  };
}

let aws: ReturnType<typeof opensslRegion>;

const agents = agentRunner(() => issuer, TD, () => root);
const runAgent = agents.run;
const expectAgentRefused = agents.expectRefused;

/** Node alias parented to the server with `selector`, and a workload entry (this uid) under it. */
async function aliasWithWorkload(name: string, selector: { type: string; value: string }): Promise<string> {
  const alias = `spiffe://${TD}/node-alias/${name}`;
  const workload = `spiffe://${TD}/workload/${name}`;
  await adminCall(issuer, 'POST', '/entries', { spiffeId: alias, parentId: `spiffe://${TD}/spire/server`, selectors: [selector] });
  await adminCall(issuer, 'POST', '/entries', { spiffeId: workload, parentId: alias, selectors: [{ type: 'unix', value: `uid:${uid}` }] });
  return workload;
}

const agentRecord = (agentId: string) => issuerAgentRecord(issuer, agentId);

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-cloud-e2e-'));
  aws = opensslRegion(root);
  [google, microsoft] = await Promise.all([createJwtSigner('google-e2e'), createJwtSigner('ms-e2e')]);
  keysServer = await fakeServer((_req, url) => {
    const headers = { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' };
    if (url.pathname === '/google/certs') return { status: 200, body: JSON.stringify(google.jwks), headers };
    if (url.pathname === '/azure/keys') return { status: 200, body: JSON.stringify(microsoft.jwks), headers };
    return { status: 404, body: 'not found' };
  });
  issuer = await startIssuer({
    stateDir: join(root, 'issuer'),
    trustDomain: TD,
    vars: {
      X509_SVID_TTL: '10m',
      AWS_IID: JSON.stringify({ accountIds: [ACCOUNT], certificates: { 'test-east-1': aws.certPem } }),
      GCP_IIT: JSON.stringify({ projectIds: [PROJECT], keysUrl: `${keysServer.url}/google/certs` }),
      AZURE_MSI: JSON.stringify({ tenants: [TENANT], keysUrl: `${keysServer.url}/azure/keys` }),
    },
  });
}, 180_000);

afterAll(async () => {
  await agents.stopAll();
  await issuer?.stop();
  keysServer?.server.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('aws_iid end to end', () => {
  const IMDS_TOKEN = 'imds-session-token-0123';
  const instanceId = 'i-0e2e0e2e0e2e0e2e0';
  const document = instanceIdentityDocument({ accountId: ACCOUNT, region: 'test-east-1', instanceId });
  let imds: FakeServer;
  let served = { document, signature: '' };

  beforeAll(async () => {
    served = { document, signature: aws.sign(document) };
    // IMDSv2 only: reads without the session token are refused, as on an instance with IMDSv1 disabled
    imds = await fakeServer((req, url) => {
      if (url.pathname === '/latest/api/token') {
        return req.method === 'PUT' && req.headers['x-aws-ec2-metadata-token-ttl-seconds'] ? { status: 200, body: IMDS_TOKEN } : { status: 400, body: 'bad token request' };
      }
      if (req.headers['x-aws-ec2-metadata-token'] !== IMDS_TOKEN) return { status: 401, body: 'unauthorized' };
      if (url.pathname === '/latest/dynamic/instance-identity/document') return { status: 200, body: served.document };
      if (url.pathname === '/latest/dynamic/instance-identity/rsa2048') return { status: 200, body: served.signature.replace(/(.{64})/g, '$1\n') };
      return { status: 404, body: 'not found' };
    });
  });
  afterAll(() => imds?.server.close());

  it('attests with the instance identity document (IMDSv2), serves a workload through an aws_iid:account node alias, and re-attests after eviction', async () => {
    const workload = await aliasWithWorkload('aws-account', { type: 'aws_iid', value: `account:${ACCOUNT}` });
    const agent = await runAgent('aws', { awsIid: { metadataUrl: imds.url } });
    await workloadSvid(agent, workload);

    const agentId = `spiffe://${TD}/spire/agent/aws_iid/${ACCOUNT}/test-east-1/${instanceId}`;
    const record = await agentRecord(agentId);
    expect(record?.attestationType).toBe('aws_iid');
    expect(record?.nodeSelectors.map((s) => `${s.type}:${s.value}`)).toEqual(
      expect.arrayContaining([`aws_iid:account:${ACCOUNT}`, 'aws_iid:region:test-east-1', 'aws_iid:az:test-east-1a', `aws_iid:instance:id:${instanceId}`, 'aws_iid:image:id:ami-0123456789abcdef0']),
    );
    expect(imds.log[0]).toMatchObject({ method: 'PUT', path: '/latest/api/token' });
    expect(imds.log.filter((r) => r.path.startsWith('/latest/dynamic/')).every((r) => r.headers['x-aws-ec2-metadata-token'] === IMDS_TOKEN)).toBe(true);

    await expectReattestationAfterEviction(issuer, agentId);
    await workloadSvid(agent, workload);
  });

  it('refuses a second agent presenting the same instance (trust on first use)', async () => {
    await expectAgentRefused('aws-copy', { awsIid: { metadataUrl: imds.url } }, /already attested/);
  });

  it('refuses a document changed after signing, with the reason', async () => {
    const tampered = instanceIdentityDocument({ accountId: ACCOUNT, region: 'test-east-1', instanceId: 'i-0bad0bad0bad0bad0' });
    served = { document: tampered, signature: aws.sign(document) };
    await expectAgentRefused('aws-tampered', { awsIid: { metadataUrl: imds.url } }, /message digest does not match the document/);
  });
});

describe('gcp_iit end to end', () => {
  const instanceId = '4815162342000001';
  let meta: FakeServer;

  beforeAll(async () => {
    meta = await fakeServer((req, url) => {
      if (req.headers['metadata-flavor'] !== 'Google') return { status: 403, body: 'missing Metadata-Flavor' };
      if (url.pathname !== '/computeMetadata/v1/instance/service-accounts/default/identity' || url.searchParams.get('format') !== 'full') return { status: 404, body: 'not found' };
      return { status: 200, body: tokens.get(url.searchParams.get('audience') ?? '') ?? '' };
    });
  });
  const tokens = new Map<string, string>();
  afterAll(() => meta?.server.close());

  it('attests with a full-format identity token (Metadata-Flavor: Google), serves a workload through a project-id node alias, and re-attests after eviction', async () => {
    tokens.set('spire-gcp-node-attestor', await google.sign(gcpIdentityClaims({ projectId: PROJECT, instanceId, instanceName: 'e2e-vm', zone: 'us-central1-a' })));
    const workload = await aliasWithWorkload('gcp-project', { type: 'gcp_iit', value: `project-id:${PROJECT}` });
    const agent = await runAgent('gcp', { gcpIit: { metadataUrl: meta.url } });
    await workloadSvid(agent, workload);
    const agentId = `spiffe://${TD}/spire/agent/gcp_iit/${PROJECT}/${instanceId}`;
    expect((await agentRecord(agentId))?.nodeSelectors.map((s) => `${s.type}:${s.value}`).sort()).toEqual(
      [`gcp_iit:instance-name:e2e-vm`, `gcp_iit:project-id:${PROJECT}`, 'gcp_iit:zone:us-central1-a'],
    );
    await expectReattestationAfterEviction(issuer, agentId);
  });

  it('refuses a token for another audience, with the reason', async () => {
    tokens.set('other-audience', await google.sign(gcpIdentityClaims({ projectId: PROJECT, instanceId: '4815162342000002', audience: 'spire-gcp-node-attestor-x' })));
    await expectAgentRefused('gcp-aud', { gcpIit: { metadataUrl: meta.url, audience: 'other-audience' } }, /token claim aud is invalid/);
  });
});

describe('azure_msi end to end', () => {
  const principalId = '9a8b7c6d-5e4f-3a2b-1c0d-e9f8a7b6c5d4';
  let imds: FakeServer;
  let token = '';

  beforeAll(async () => {
    imds = await fakeServer((req, url) => {
      if (req.headers['metadata'] !== 'true') return { status: 400, body: 'Required metadata header not specified' };
      if (url.pathname !== '/metadata/identity/oauth2/token' || url.searchParams.get('resource') !== 'https://management.azure.com/') return { status: 404, body: 'not found' };
      return { status: 200, body: JSON.stringify({ access_token: token, token_type: 'Bearer', resource: url.searchParams.get('resource') }), headers: { 'content-type': 'application/json' } };
    });
  });
  afterAll(() => imds?.server.close());

  it('attests with a managed identity token (Metadata: true), serves a workload through a vm-name node alias, and re-attests after eviction', async () => {
    token = await microsoft.sign(azureMsiClaims({ tenantId: TENANT, principalId, subscriptionId: 'sub-e2e', resourceGroup: 'rg-e2e', vmName: 'vm-e2e' }));
    const workload = await aliasWithWorkload('azure-vm', { type: 'azure_msi', value: 'vm-name:rg-e2e:vm-e2e' });
    const agent = await runAgent('azure', { azureMsi: { metadataUrl: imds.url } });
    await workloadSvid(agent, workload);
    const agentId = `spiffe://${TD}/spire/agent/azure_msi/${TENANT}/${principalId}`;
    expect((await agentRecord(agentId))?.attestationType).toBe('azure_msi');
    await expectReattestationAfterEviction(issuer, agentId);
  });

  it('refuses a tenant outside the allow-list, with the reason', async () => {
    token = await microsoft.sign(azureMsiClaims({ tenantId: 'not-our-tenant', principalId: '11111111-0000-0000-0000-000000000000' }));
    await expectAgentRefused('azure-tenant', { azureMsi: { metadataUrl: imds.url } }, /tenant not-our-tenant is not in the allowed tenants/);
  });
});
