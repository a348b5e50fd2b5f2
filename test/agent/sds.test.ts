// Envoy SDS v3 on the agent socket, end to end in one process: the real server on a Unix socket, the real
// unix attestor (SO_PEERCRED of this test process), an in-memory IdentitySource with real certificates, and
// a grpc-js client speaking SDS with the generated messages (the way Envoy does: no security header).
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { anyUnpack } from '@bufbuild/protobuf/wkt';
import { credentials, makeGenericClientConstructor, status, type Client, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSds } from '../../src/agent/sds/handler.js';
import { SPIFFE_VALIDATOR_NAME, type SdsConfig } from '../../src/agent/sds/resources.js';
import { DiscoveryRequestSchema, type DiscoveryResponse } from '../../src/agent/sds/gen/envoy/service/discovery/v3/discovery_pb.js';
import { SecretDiscoveryService } from '../../src/agent/sds/gen/envoy/service/secret/v3/sds_pb.js';
import { SecretSchema, type Secret } from '../../src/agent/sds/gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import { SPIFFECertValidatorConfigSchema } from '../../src/agent/sds/gen/envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config_pb.js';
import { createWorkloadApi } from '../../src/agent/workload-api/handler.js';
import { SDS_METHOD_PATHS, startWorkloadApiServer, type WorkloadApiServer } from '../../src/agent/workload-api/server.js';
import { createUnixAttestor } from '../../src/agent/workload-api/unix-attestor.js';
import { grpcServiceDefinition } from '../../src/node/workload-api/service.js';
import { createTrustDomain, issueX509Svid, type TestTrustDomain } from '../helpers/node/agent/identity-fixtures.js';
import { MemoryIdentitySource } from '../helpers/node/agent/memory-identity-source.js';

const UID = process.getuid!();
const OWN = 'example.org';
const PARTNER = 'partner.example';
const WEB = `spiffe://${OWN}/web`;
const DB = `spiffe://${OWN}/db`;
const SECRET_TYPE = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';

type Request = MessageInitShape<typeof DiscoveryRequestSchema>;
interface SdsClient extends Client {
  fetchSecrets(req: unknown, cb: (err: ServiceError | null, res?: DiscoveryResponse) => void): void;
  streamSecrets(): ClientDuplexStream<unknown, DiscoveryResponse>;
}

let own: TestTrustDomain;
let partner: TestTrustDomain;
let dir: string;
let socketPath: string;
let source: MemoryIdentitySource;
let server: WorkloadApiServer;
let client: SdsClient;

beforeAll(async () => {
  own = await createTrustDomain(OWN);
  partner = await createTrustDomain(PARTNER);
  dir = mkdtempSync(join(tmpdir(), 'wisp-sds-'));
  chmodSync(dir, 0o755);
  socketPath = join(dir, 'agent.sock');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(config: Partial<SdsConfig> = {}) {
  source = new MemoryIdentitySource(own, [partner]);
  const attest = createUnixAttestor();
  server = await startWorkloadApiServer({
    socketPath,
    impl: createWorkloadApi({ attest, source, updateDelayMs: 50 }),
    sds: createSds({ attest, source, config, updateDelayMs: 50 }),
  });
  const Ctor = makeGenericClientConstructor(grpcServiceDefinition(SecretDiscoveryService), 'SecretDiscoveryService');
  client = new Ctor(`unix://${socketPath}`, credentials.createInsecure()) as unknown as SdsClient;
}

afterEach(async () => {
  client?.close();
  await server?.close(200);
});

async function putEntry(entryId: string, spiffeId: string, federatesWith: string[] = []) {
  const svid = await issueX509Svid(own, { entryId, spiffeId, federatesWith });
  source.put({ entryId, spiffeId, selectors: [{ type: 'unix', value: `uid:${UID}` }], hint: '', federatesWith, svid });
  return svid;
}

function fetchSecrets(req: Request): Promise<DiscoveryResponse> {
  return new Promise((resolve, reject) =>
    client.fetchSecrets(create(DiscoveryRequestSchema, { typeUrl: SECRET_TYPE, ...req }), (err, res) => (err ? reject(err) : resolve(res!))),
  );
}

function secretsOf(res: DiscoveryResponse): Secret[] {
  return res.resources.map((a) => {
    expect(a.typeUrl).toBe(SECRET_TYPE);
    return anyUnpack(a, SecretSchema)!;
  });
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);
function inlineBytes(ds: { specifier: { case: string | undefined; value?: unknown } } | undefined): string {
  expect(ds?.specifier.case).toBe('inlineBytes');
  return text(ds!.specifier.value as Uint8Array);
}

/** A validation context's SPIFFE validator config as { trust domain name: PEM }. */
function spiffeTrustDomains(secret: Secret): Record<string, string> {
  expect(secret.type.case).toBe('validationContext');
  const ctx = secret.type.value as Extract<Secret['type'], { case: 'validationContext' }>['value'];
  expect(ctx.customValidatorConfig?.name).toBe(SPIFFE_VALIDATOR_NAME);
  const config = anyUnpack(ctx.customValidatorConfig!.typedConfig!, SPIFFECertValidatorConfigSchema)!;
  return Object.fromEntries(config.trustDomains.map((td) => [td.name, inlineBytes(td.trustBundle)]));
}

function tlsCertificate(secret: Secret) {
  expect(secret.type.case).toBe('tlsCertificate');
  const tls = secret.type.value as Extract<Secret['type'], { case: 'tlsCertificate' }>['value'];
  return { chain: inlineBytes(tls.certificateChain), key: inlineBytes(tls.privateKey) };
}

const pemOf = (der: Uint8Array) => new X509Certificate(der).toString();

async function grpcCode(promise: Promise<unknown>): Promise<string> {
  const err = (await promise.then(() => undefined, (e: unknown) => e)) as ServiceError | undefined;
  return err ? status[err.code] : 'OK';
}

/** A bidi stream with a queue of responses. */
function openStream() {
  const call = client.streamSecrets();
  const queue: DiscoveryResponse[] = [];
  const waiters: Array<() => void> = [];
  let error: ServiceError | undefined;
  call.on('data', (res: DiscoveryResponse) => {
    queue.push(res);
    waiters.splice(0).forEach((w) => w());
  });
  call.on('error', (err: ServiceError) => {
    error = err;
    waiters.splice(0).forEach((w) => w());
  });
  return {
    send: (req: Request) => call.write(create(DiscoveryRequestSchema, { typeUrl: SECRET_TYPE, ...req })),
    async next(timeoutMs = 2000): Promise<DiscoveryResponse> {
      const end = Date.now() + timeoutMs;
      while (queue.length === 0) {
        if (error) throw error;
        if (Date.now() > end) throw new Error('no response in time');
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 50);
        });
      }
      return queue.shift()!;
    },
    pending: () => queue.length,
    error: () => error,
    close: () => call.cancel(),
  };
}

describe('SDS registration', () => {
  it('registers the paths of the SecretDiscoveryService descriptor (the server registers them before loading it)', () => {
    const def = grpcServiceDefinition(SecretDiscoveryService);
    expect(def['fetchSecrets']!.path).toBe(SDS_METHOD_PATHS.fetchSecrets);
    expect(def['streamSecrets']!.path).toBe(SDS_METHOD_PATHS.streamSecrets);
  });
});

describe('FetchSecrets', () => {
  it('serves "default" as the caller\'s first X509-SVID (chain + PKCS#8 key, PEM), without the Workload API header', async () => {
    await start();
    const web = await putEntry('e-web', WEB);
    await putEntry('e-db', DB);
    const res = await fetchSecrets({ resourceNames: ['default'] });
    expect(res.versionInfo).toBe('');
    expect(res.nonce).toBe('');
    expect(res.typeUrl).toBe(SECRET_TYPE);
    const [secret] = secretsOf(res);
    expect(secret!.name).toBe('default');
    const { chain, key } = tlsCertificate(secret!);
    expect(chain).toBe(web.certChain.map(pemOf).join(''));
    expect(new X509Certificate(chain).subjectAltName).toBe(`URI:${WEB}`);
    expect(createPrivateKey(key).asymmetricKeyType).toBe('ec');
    expect(key).toContain('-----BEGIN PRIVATE KEY-----');
  });

  it('serves a SPIFFE ID the caller holds under that name, and refuses one it does not hold (InvalidArgument)', async () => {
    await start();
    await putEntry('e-web', WEB);
    const db = await putEntry('e-db', DB);
    const [secret] = secretsOf(await fetchSecrets({ resourceNames: [DB] }));
    expect(secret!.name).toBe(DB);
    expect(tlsCertificate(secret!).chain).toBe(db.certChain.map(pemOf).join(''));
    const err = await fetchSecrets({ resourceNames: [`spiffe://${OWN}/other`, DB] }).catch((e: ServiceError) => e);
    expect(status[(err as ServiceError).code]).toBe('INVALID_ARGUMENT');
    expect((err as ServiceError).details).toContain(`spiffe://${OWN}/other`);
  });

  it('serves ROOTCA and the own trust domain ID as SPIFFE validator contexts of the own bundle', async () => {
    await start();
    await putEntry('e-web', WEB);
    const secrets = secretsOf(await fetchSecrets({ resourceNames: ['ROOTCA', `spiffe://${OWN}`] }));
    expect(secrets.map((s) => s.name).sort()).toEqual(['ROOTCA', `spiffe://${OWN}`]);
    for (const s of secrets) expect(spiffeTrustDomains(s)).toEqual({ [OWN]: own.bundle.x509Authorities.map(pemOf).join('') });
  });

  it('serves ALL (own + federated) and a federated trust domain by ID, only when an entry federates with it', async () => {
    await start();
    await putEntry('e-web', WEB);
    expect(await grpcCode(fetchSecrets({ resourceNames: [`spiffe://${PARTNER}`] }))).toBe('INVALID_ARGUMENT');
    expect(spiffeTrustDomains(secretsOf(await fetchSecrets({ resourceNames: ['ALL'] }))[0]!)).toEqual({ [OWN]: own.bundle.x509Authorities.map(pemOf).join('') });
    await putEntry('e-web', WEB, [PARTNER]);
    const [all] = secretsOf(await fetchSecrets({ resourceNames: ['ALL'] }));
    expect(all!.name).toBe('ALL');
    expect(spiffeTrustDomains(all!)).toEqual({
      [OWN]: own.bundle.x509Authorities.map(pemOf).join(''),
      [PARTNER]: partner.bundle.x509Authorities.map(pemOf).join(''),
    });
    const [fed] = secretsOf(await fetchSecrets({ resourceNames: [`spiffe://${PARTNER}`] }));
    expect(spiffeTrustDomains(fed!)).toEqual({ [PARTNER]: partner.bundle.x509Authorities.map(pemOf).join('') });
  });

  it('with no names, serves every bundle and SVID under its own ID (bundles first)', async () => {
    await start();
    await putEntry('e-web', WEB, [PARTNER]);
    const names = secretsOf(await fetchSecrets({})).map((s) => s.name);
    expect(names).toEqual([`spiffe://${OWN}`, `spiffe://${PARTNER}`, WEB]);
  });

  it('uses configured names, and plain trusted_ca when the SPIFFE validator is disabled (ALL then refused)', async () => {
    await start({ defaultSvidName: 'mine', defaultBundleName: 'roots', defaultAllBundlesName: 'everything', disableSpiffeCertValidation: true });
    await putEntry('e-web', WEB);
    const secrets = secretsOf(await fetchSecrets({ resourceNames: ['mine', 'roots'] }));
    expect(secrets.map((s) => s.name)).toEqual(['roots', 'mine']);
    const ctx = secrets[0]!.type.value as Extract<Secret['type'], { case: 'validationContext' }>['value'];
    expect(ctx.customValidatorConfig).toBeUndefined();
    expect(inlineBytes(ctx.trustedCa)).toBe(own.bundle.x509Authorities.map(pemOf).join(''));
    expect(await grpcCode(fetchSecrets({ resourceNames: ['default'] }))).toBe('INVALID_ARGUMENT');
    expect(await grpcCode(fetchSecrets({ resourceNames: ['everything'] }))).toBe('INTERNAL');
  });

  it("follows Envoy's node metadata disable_spiffe_cert_validation and an Envoy older than 1.18", async () => {
    await start();
    await putEntry('e-web', WEB);
    const kind = async (node: Request['node']) => secretsOf(await fetchSecrets({ resourceNames: ['ROOTCA'], node }))[0]!.type.value as { trustedCa?: unknown };
    expect((await kind({ metadata: { disable_spiffe_cert_validation: true } })).trustedCa).toBeDefined();
    expect((await kind({ metadata: { disable_spiffe_cert_validation: 'false' } })).trustedCa).toBeUndefined();
    const old = { userAgentVersionType: { case: 'userAgentBuildVersion' as const, value: { version: { majorNumber: 1, minorNumber: 17 } } } };
    expect((await kind(old)).trustedCa).toBeDefined();
  });
});

describe('StreamSecrets', () => {
  it('versions and nonces responses, ignores ACKs and stale nonces, logs NACKs, and pushes a rotated SVID', async () => {
    await start();
    const first = await putEntry('e-web', WEB);
    const stream = openStream();
    stream.send({ resourceNames: ['default', 'ROOTCA'] });
    const r1 = await stream.next();
    expect(r1.versionInfo).toBe('1');
    expect(r1.nonce).toMatch(/^[0-9a-f]{8}$/);
    expect(secretsOf(r1).map((s) => s.name)).toEqual(['ROOTCA', 'default']);
    expect(tlsCertificate(secretsOf(r1)[1]!).chain).toBe(first.certChain.map(pemOf).join(''));

    // ACK: same names, the sent version and nonce → nothing is resent; a stale nonce is ignored
    stream.send({ resourceNames: ['default', 'ROOTCA'], versionInfo: '1', responseNonce: r1.nonce });
    stream.send({ resourceNames: ['ALL'], versionInfo: '1', responseNonce: 'deadbeef' });
    // NACK: the last nonce, an older version and error_detail → nothing resent either
    stream.send({ resourceNames: ['default', 'ROOTCA'], versionInfo: '', responseNonce: r1.nonce, errorDetail: { code: 3, message: 'bad key' } });
    await new Promise((r) => setTimeout(r, 300));
    expect(stream.pending()).toBe(0);

    // rotation: a new SVID for the entry is pushed with a new version and nonce
    const rotated = await putEntry('e-web', WEB);
    const r2 = await stream.next();
    expect(r2.versionInfo).toBe('2');
    expect(r2.nonce).not.toBe(r1.nonce);
    expect(tlsCertificate(secretsOf(r2)[1]!).chain).toBe(rotated.certChain.map(pemOf).join(''));

    // a change that does not touch this caller's view pushes nothing
    source.notify();
    await new Promise((r) => setTimeout(r, 300));
    expect(stream.pending()).toBe(0);

    // a new name set (answering the last nonce) is answered at once
    stream.send({ resourceNames: [WEB], versionInfo: '2', responseNonce: r2.nonce });
    const r3 = await stream.next();
    expect(r3.versionInfo).toBe('2');
    expect(secretsOf(r3).map((s) => s.name)).toEqual([WEB]);
    stream.close();
  });

  it('pushes a bundle change, waits for an SVID not minted yet, and ends with InvalidArgument for a name the caller lacks', async () => {
    await start();
    source.put({ entryId: 'e-web', spiffeId: WEB, selectors: [{ type: 'unix', value: `uid:${UID}` }], hint: '', federatesWith: [] });
    const stream = openStream();
    stream.send({ resourceNames: ['default'] });
    await new Promise((r) => setTimeout(r, 200));
    expect(stream.pending()).toBe(0); // entitled, not minted yet: wait
    const svid = await putEntry('e-web', WEB);
    const r1 = await stream.next();
    expect(tlsCertificate(secretsOf(r1)[0]!).chain).toBe(svid.certChain.map(pemOf).join(''));

    stream.send({ resourceNames: ['ROOTCA'], versionInfo: r1.versionInfo, responseNonce: r1.nonce });
    const r2 = await stream.next();
    const other = await createTrustDomain(OWN);
    source.own.bundle.x509Authorities = [...source.own.bundle.x509Authorities, ...other.bundle.x509Authorities];
    source.notify();
    const r3 = await stream.next();
    expect(Number(r3.versionInfo)).toBe(Number(r2.versionInfo) + 1);
    expect(spiffeTrustDomains(secretsOf(r3)[0]!)[OWN]).toBe(source.own.bundle.x509Authorities.map(pemOf).join(''));

    stream.send({ resourceNames: [DB], versionInfo: r3.versionInfo, responseNonce: r3.nonce });
    await expect(stream.next()).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });
});

