// End to end, x509pop node attestation with a device PKI Wisp did not make: the `openssl` CLI makes a root
// CA, an intermediate, device leaves (EC P-256 and RSA-2048), a foreign CA with its own leaf and an expired
// leaf (`openssl ca -startdate/-enddate` in the past). The real issuer (wrangler dev) trusts the root through
// its X509POP var; real wisp-agent processes attest with the device certificate and key files. Checked: the
// agent ID is SPIRE's `x509pop/<SHA-1 of the leaf DER>` as openssl computes it, the node selectors, a
// workload's X509-SVID through the Workload API that `openssl verify` accepts against the served bundle,
// re-attestation after eviction; a wrong key, an expired and a foreign leaf end the agent with the issuer's
// reason, and the issuer records no agent for them.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCall, startIssuer, type RunningIssuer } from '../../scripts/local-stack.js';
import { splitDer, toPem } from '../helpers/node/der.js';
import { openssl } from '../helpers/node/agent/openssl-kit.js';
import { agentRecord, agentRunner, expectReattestationAfterEviction, workloadSvid } from '../helpers/node/node-attestation-e2e.js';

const TD = 'example.org';
const uid = process.getuid?.() ?? 0;

// One config for every openssl call: RFC 5280 CA and device-leaf extensions, and `openssl ca` for the
// expired leaf (the only 3.0 command that takes an explicit notBefore/notAfter).
const CNF = (dir: string) => `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
default_ca = pki
[pki]
database = ${dir}/index.txt
new_certs_dir = ${dir}/issued
serial = ${dir}/serial
default_md = sha256
policy = any
unique_subject = no
[any]
commonName = supplied
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_device]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
const RSA = ['-newkey', 'rsa:2048'];

interface Made {
  cert: string;
  key: string;
}

let root: string;
let cnf: string;
let issuer: RunningIssuer;
let serial = 0x1000;
const agents = agentRunner(() => issuer, TD, () => root);

const path = (name: string) => join(root, name);
const nextSerial = () => `0x${(++serial).toString(16)}`;

function selfSignedCa(name: string, cn: string): Made {
  const made = { cert: path(`${name}.pem`), key: path(`${name}.key`) };
  openssl('req', '-x509', '-config', cnf, '-extensions', 'v3_ca', ...EC, '-nodes', '-keyout', made.key, '-out', made.cert, '-days', '2', '-subj', `/O=Acme Devices/CN=${cn}`, '-set_serial', nextSerial());
  return made;
}

function csr(name: string, keyArgs: string[], cn: string): { csr: string; key: string } {
  const out = { csr: path(`${name}.csr`), key: path(`${name}.key`) };
  openssl('req', '-new', '-config', cnf, ...keyArgs, '-nodes', '-keyout', out.key, '-out', out.csr, '-subj', `/O=Acme Devices/CN=${cn}`);
  return out;
}

function signed(name: string, issuerCa: Made, keyArgs: string[], cn: string, extensions: 'v3_ca' | 'v3_device'): Made {
  const req = csr(name, keyArgs, cn);
  const cert = path(`${name}.pem`);
  openssl('x509', '-req', '-in', req.csr, '-CA', issuerCa.cert, '-CAkey', issuerCa.key, '-set_serial', nextSerial(), '-days', '2', '-sha256', '-extfile', cnf, '-extensions', extensions, '-out', cert);
  return { cert, key: req.key };
}

/** `openssl ca` with notBefore/notAfter both in the past. */
function expiredDevice(name: string, issuerCa: Made, cn: string): Made {
  const req = csr(name, EC, cn);
  const cert = path(`${name}.pem`);
  const stamp = (msAgo: number) => new Date(Date.now() - msAgo).toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  openssl('ca', '-batch', '-config', cnf, '-cert', issuerCa.cert, '-keyfile', issuerCa.key, '-in', req.csr, '-out', cert, '-notext', '-preserveDN',
    '-startdate', stamp(3 * 86400_000), '-enddate', stamp(86400_000), '-extfile', cnf, '-extensions', 'v3_device');
  return { cert, key: req.key };
}

/** openssl's SHA-1 fingerprint of a PEM certificate, as SPIRE prints it in agent IDs: lowercase hex. */
const fingerprint = (pem: string) => openssl('x509', '-in', pem, '-noout', '-fingerprint', '-sha1').trim().replace(/^.*=/, '').replace(/:/g, '').toLowerCase();
const agentIdOf = (leaf: Made) => `spiffe://${TD}/spire/agent/x509pop/${fingerprint(leaf.cert)}`;
const agentConfig = (leaf: Made, intermediates?: string) => ({ x509pop: { certificatePath: leaf.cert, privateKeyPath: leaf.key, ...(intermediates ? { intermediatesPath: intermediates } : {}) } });

let ca: Made;
let intermediate: Made;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-x509pop-e2e-'));
  cnf = path('openssl.cnf');
  writeFileSync(cnf, CNF(root));
  mkdirSync(path('issued'));
  writeFileSync(path('index.txt'), '');
  writeFileSync(path('serial'), '4000\n');
  ca = selfSignedCa('root', 'Acme Device Root CA');
  intermediate = signed('intermediate', ca, EC, 'Acme Device Issuing CA', 'v3_ca');
  issuer = await startIssuer({
    stateDir: path('issuer'),
    trustDomain: TD,
    vars: { X509_SVID_TTL: '10m', X509POP: JSON.stringify({ caBundles: [readFileSync(ca.cert, 'utf8')] }) },
  });
}, 180_000);

afterAll(async () => {
  await agents.stopAll();
  await issuer?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

async function attestedAgentIds(): Promise<string[]> {
  const { agents: list } = await adminCall<{ agents: Array<{ spiffeId: string }> }>(issuer, 'GET', '/agents?pageSize=1000');
  return list.map((a) => a.spiffeId);
}

/** `openssl verify` of the SVID leaf (with its intermediates) against the trust domain bundle served with it. */
function opensslVerify(name: string, svid: { x509Svid: Uint8Array; bundle: Uint8Array }): string {
  const [leaf, ...rest] = splitDer(svid.x509Svid);
  writeFileSync(path(`${name}-svid.pem`), toPem('CERTIFICATE', leaf!));
  writeFileSync(path(`${name}-bundle.pem`), splitDer(svid.bundle).map((c) => toPem('CERTIFICATE', c)).join(''));
  const untrusted = rest.length ? ['-untrusted', path(`${name}-chain.pem`)] : [];
  if (rest.length) writeFileSync(path(`${name}-chain.pem`), rest.map((c) => toPem('CERTIFICATE', c)).join(''));
  return openssl('verify', '-CAfile', path(`${name}-bundle.pem`), ...untrusted, path(`${name}-svid.pem`));
}

describe('x509pop end to end (openssl PKI)', () => {
  it('an EC P-256 device attests through an intermediate, serves a workload entry parented to its agent ID, and attests again after eviction', async () => {
    const device = signed('device-ec', intermediate, EC, 'device-ec-01', 'v3_device');
    const agentId = agentIdOf(device);
    const workload = `spiffe://${TD}/workload/x509pop-ec`;
    await adminCall(issuer, 'POST', '/entries', { spiffeId: workload, parentId: agentId, selectors: [{ type: 'unix', value: `uid:${uid}` }] });

    const agent = await agents.run('ec', agentConfig(device, intermediate.cert));
    const svid = await workloadSvid(agent, workload);
    expect(opensslVerify('ec', svid)).toMatch(/: OK\n$/);

    const record = await agentRecord(issuer, agentId);
    expect(record?.attestationType).toBe('x509pop');
    expect(record?.nodeSelectors.map((s) => `${s.type}:${s.value}`)).toEqual(expect.arrayContaining([
      'x509pop:subject:cn:device-ec-01',
      `x509pop:ca:fingerprint:${fingerprint(intermediate.cert)}`,
      `x509pop:ca:fingerprint:${fingerprint(ca.cert)}`,
    ]));
    expect(agent.output()).not.toContain(readFileSync(device.key, 'utf8').split('\n')[1]);

    await expectReattestationAfterEviction(issuer, agentId);
    await workloadSvid(agent, workload);
  });

  it('an RSA-2048 device attests, and a node alias on its subject CN hands it a workload', async () => {
    const device = signed('device-rsa', intermediate, RSA, 'device-rsa-01', 'v3_device');
    const alias = `spiffe://${TD}/node-alias/device-rsa-01`;
    const workload = `spiffe://${TD}/workload/x509pop-rsa`;
    await adminCall(issuer, 'POST', '/entries', { spiffeId: alias, parentId: `spiffe://${TD}/spire/server`, selectors: [{ type: 'x509pop', value: 'subject:cn:device-rsa-01' }] });
    await adminCall(issuer, 'POST', '/entries', { spiffeId: workload, parentId: alias, selectors: [{ type: 'unix', value: `uid:${uid}` }] });

    const agent = await agents.run('rsa', agentConfig(device, intermediate.cert));
    expect(opensslVerify('rsa', await workloadSvid(agent, workload))).toMatch(/: OK\n$/);
    expect((await agentRecord(issuer, agentIdOf(device)))?.attestationType).toBe('x509pop');
  });

  it('refuses a key that is not the certificate\'s, an expired certificate and a foreign CA\'s, with the issuer\'s reason, recording no agent', async () => {
    const device = signed('device-wrongkey', intermediate, EC, 'device-wrongkey', 'v3_device');
    const otherKey = path('unrelated.key');
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', otherKey);
    const expired = expiredDevice('device-expired', intermediate, 'device-expired');
    const notAfter = openssl('x509', '-in', expired.cert, '-noout', '-enddate').trim().replace(/^notAfter=/, '');
    expect(Date.parse(notAfter)).toBeLessThan(Date.now());
    const foreignCa = selfSignedCa('foreign-root', 'Other Corp Root CA');
    const foreign = signed('device-foreign', foreignCa, EC, 'device-foreign', 'v3_device');

    const refused = /node attestation \(x509pop\) refused \(ERR_ATTESTATION_FAILED\): issuer POST \/attest: x509pop: /;
    const outputs = await Promise.all([
      agents.expectRefused('wrongkey', agentConfig({ cert: device.cert, key: otherKey }, intermediate.cert), /challenge response verification failed/),
      agents.expectRefused('expired', agentConfig(expired, intermediate.cert), /certificate verification failed: certificate 0 is not valid at this time/),
      agents.expectRefused('foreign', agentConfig(foreign), /certificate verification failed: chain does not lead to a trusted X\.509 authority/),
    ]);
    for (const output of outputs) expect(output).toMatch(refused);

    const known = await attestedAgentIds();
    for (const leaf of [device, expired, foreign]) expect(known).not.toContain(agentIdOf(leaf));
  });
});
