// Agent-side cloud node attestors against fake metadata services on loopback: the requests each cloud
// requires (IMDSv2 session token, Metadata-Flavor: Google, Metadata: true), IMDSv1 only when configured,
// clear errors off-cloud (connection refused, timeout), and the config keys that enable them.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsIidAttestor } from '../../src/agent/attestor/aws-iid.js';
import { createAzureMsiAttestor } from '../../src/agent/attestor/azure-msi.js';
import { createGcpIitAttestor } from '../../src/agent/attestor/gcp-iit.js';
import { selectNodeAttestor } from '../../src/agent/attestor/node-attestor.js';
import { CLOUD_ATTESTOR_DEFAULTS, parseAgentConfig } from '../../src/agent/config.js';

type Reply = { status: number; body: string } | 'hang';
let server: Server;
let base: string;
let handler: (req: IncomingMessage, url: URL) => Reply = () => ({ status: 404, body: '' });
const seen: Array<{ method: string; path: string; query: URLSearchParams; headers: IncomingMessage['headers'] }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({ method: req.method ?? '', path: url.pathname, query: url.searchParams, headers: req.headers });
    const reply = handler(req, url);
    if (reply === 'hang') return;
    res.writeHead(reply.status).end(reply.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const aws = (over: Partial<{ imdsV1Fallback: boolean; metadataUrl: string; timeoutSeconds: number }> = {}) =>
  createAwsIidAttestor({ ...CLOUD_ATTESTOR_DEFAULTS.awsIid, metadataUrl: base, ...over });

describe('aws_iid (agent)', () => {
  it('gets an IMDSv2 session token first and sends it with both reads', async () => {
    seen.length = 0;
    handler = (req, url) => {
      if (url.pathname === '/latest/api/token') return req.method === 'PUT' ? { status: 200, body: 'tok' } : { status: 405, body: '' };
      if (req.headers['x-aws-ec2-metadata-token'] !== 'tok') return { status: 401, body: '' };
      return { status: 200, body: url.pathname.endsWith('/document') ? '{"doc":1}' : 'U0lH\nTkFU\n' };
    };
    const attestor = aws();
    expect(attestor.singleUse).toBe(false);
    expect(await attestor.payload()).toEqual({ document: '{"doc":1}', signature: 'U0lH\nTkFU' });
    expect(seen[0]).toMatchObject({ method: 'PUT', path: '/latest/api/token' });
    expect(seen[0]!.headers['x-aws-ec2-metadata-token-ttl-seconds']).toBeDefined();
    expect(seen.slice(1).map((r) => r.path).sort()).toEqual(['/latest/dynamic/instance-identity/document', '/latest/dynamic/instance-identity/rsa2048']);
  });

  it('falls back to IMDSv1 only when configured', async () => {
    handler = (req, url) => (url.pathname === '/latest/api/token' ? { status: 403, body: '' } : { status: 200, body: req.headers['x-aws-ec2-metadata-token'] ? 'v2' : 'v1' });
    await expect(aws().payload()).rejects.toThrow(/HTTP 403 .*IMDSv2 session token.*imdsV1Fallback/);
    expect(await aws({ imdsV1Fallback: true }).payload()).toEqual({ document: 'v1', signature: 'v1' });
  });

  it('says so clearly when there is no metadata service (not on EC2)', async () => {
    await expect(aws({ metadataUrl: 'http://127.0.0.1:9' }).payload()).rejects.toThrow(/aws_iid: the EC2 instance metadata service at http:\/\/127\.0\.0\.1:9 is unreachable \(connection failed\); is this agent running on that cloud\?/);
    handler = () => 'hang';
    await expect(aws({ timeoutSeconds: 1 }).payload()).rejects.toThrow(/unreachable \(no answer within 1000 ms\)/);
  });
});

describe('gcp_iit (agent)', () => {
  it('asks for a full-format identity token with the audience and Metadata-Flavor: Google', async () => {
    seen.length = 0;
    handler = (req) => (req.headers['metadata-flavor'] === 'Google' ? { status: 200, body: 'a.b.c\n' } : { status: 403, body: '' });
    const attestor = createGcpIitAttestor({ ...CLOUD_ATTESTOR_DEFAULTS.gcpIit, metadataUrl: base, audience: 'my-aud' });
    expect(await attestor.payload()).toEqual({ token: 'a.b.c' });
    expect(seen[0]!.path).toBe('/computeMetadata/v1/instance/service-accounts/default/identity');
    expect(Object.fromEntries(seen[0]!.query)).toEqual({ audience: 'my-aud', format: 'full' });
  });
});

describe('azure_msi (agent)', () => {
  it('asks for a managed identity token for the resource with Metadata: true', async () => {
    seen.length = 0;
    handler = (req) => (req.headers['metadata'] === 'true' ? { status: 200, body: JSON.stringify({ access_token: 'x.y.z' }) } : { status: 400, body: '' });
    const attestor = createAzureMsiAttestor({ ...CLOUD_ATTESTOR_DEFAULTS.azureMsi, metadataUrl: base });
    expect(await attestor.payload()).toEqual({ token: 'x.y.z' });
    expect(seen[0]!.path).toBe('/metadata/identity/oauth2/token');
    expect(Object.fromEntries(seen[0]!.query)).toEqual({ 'api-version': '2018-02-01', resource: 'https://management.azure.com/' });
    handler = () => ({ status: 200, body: '{}' });
    await expect(attestor.payload()).rejects.toThrow(/azure_msi: .*no access_token/);
  });
});

describe('agent config for cloud attestors', () => {
  const file = (content: Record<string, unknown>) => ({ path: '/etc/wisp/agent.json', content: { serverUrl: 'https://wisp.example', trustDomain: 'example.org', ...content } });
  it('enables an attestor with {} and defaults, from the file or a JSON env var', () => {
    const c = parseAgentConfig(file({ awsIid: {} }), {}, {});
    expect(c.awsIid).toEqual(CLOUD_ATTESTOR_DEFAULTS.awsIid);
    expect(selectNodeAttestor(c)?.type).toBe('aws_iid');
    const g = parseAgentConfig(file({}), { WISP_GCP_IIT: '{"audience":"a"}' }, {});
    expect(g.gcpIit).toEqual({ ...CLOUD_ATTESTOR_DEFAULTS.gcpIit, audience: 'a' });
    expect(selectNodeAttestor(parseAgentConfig(file({ azureMsi: { resource: 'https://r/' } }), {}, {}))?.type).toBe('azure_msi');
  });
  it('names bad keys and refuses two node attestors', () => {
    expect(() => parseAgentConfig(file({ awsIid: { metadataURL: 'x' } }), {}, {})).toThrow(/^awsIid\.metadataURL \(from file \/etc\/wisp\/agent\.json\): unknown key/);
    expect(() => parseAgentConfig(file({ gcpIit: { metadataUrl: 'ftp://x' } }), {}, {})).toThrow(/^gcpIit\.metadataUrl .*must be http or https/);
    expect(() => parseAgentConfig(file({ azureMsi: 'yes' }), {}, {})).toThrow(/^azureMsi .*must be a JSON object/);
    expect(() => parseAgentConfig(file({ awsIid: {} }), {}, { joinToken: 't' })).toThrow(/joinToken \(from flag --joinToken\) and awsIid \(from file .*\): configure one node attestor only/);
  });
});
