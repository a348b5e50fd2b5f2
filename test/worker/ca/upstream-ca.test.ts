// UPSTREAM_CA_*: the CA certificate becomes an intermediate under the upstream CA; SVID chains carry it and
// the bundle holds only the upstream root.
import 'reflect-metadata';
import { unwrap } from '../../../src/shared/result.js';
import { PemConverter, X509Certificate } from '@peculiar/x509';
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { createCaCertificate } from '../../../src/shared/spiffe/ca-cert.js';
import { parseTrustDomain } from '../../../src/shared/spiffe/id.js';
import { validateX509Svid } from '../../../src/shared/spiffe/x509-svid.js';
import { fromBase64, toBase64 } from '../../../src/shared/encoding/base64.js';
import type { TrustDomainCa } from '../../../src/worker/ca/trust-domain-ca.js';
import { generateKeys, spkiOf, type KeyPair } from '../../helpers/shared/pki.js';
import { freshCa, subjectSpki } from '../../helpers/workerd/ca.js';

const ES256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
const ID = `spiffe://${env.TRUST_DOMAIN}/ns/prod/sa/web`;
const UPSTREAM_TD = parseTrustDomain('upstream.example');
const pem = (der: Uint8Array, tag: string) => PemConverter.encode(der.slice().buffer as ArrayBuffer, tag);

async function upstreamPki(withIntermediate: boolean) {
  const now = Date.now() - 60_000;
  const rootKeys = await generateKeys('P-256');
  const root = await createCaCertificate({ trustDomain: UPSTREAM_TD, subject: 'O=Upstream,CN=Root', publicKeySpki: await spkiOf(rootKeys), now, notAfter: now + 30 * 86400_000 }, { selfKey: rootKeys.privateKey, signAlgorithm: ES256 });
  let signerKeys: KeyPair = rootKeys;
  const chain = [root];
  if (withIntermediate) {
    signerKeys = await generateKeys('P-256');
    const inter = await createCaCertificate(
      { trustDomain: UPSTREAM_TD, subject: 'O=Upstream,CN=Issuing', publicKeySpki: await spkiOf(signerKeys), now, notAfter: now + 20 * 86400_000 },
      { upstream: { cert: new X509Certificate(root), privateKey: rootKeys.privateKey, signAlgorithm: ES256 } },
    );
    chain.unshift(inter);
  }
  const pkcs8 = new Uint8Array((await crypto.subtle.exportKey('pkcs8', signerKeys.privateKey)) as ArrayBuffer);
  return { root, chain, certChainPem: chain.map((c) => pem(c, 'CERTIFICATE')).join('\n'), keyPem: pem(pkcs8, 'PRIVATE KEY') };
}

describe('TrustDomainCa with an upstream CA', () => {
  it.each([false, true])('chains SVIDs to the upstream root (upstream intermediate: %s)', async (withIntermediate) => {
    const upstream = await upstreamPki(withIntermediate);
    const { stub, api } = freshCa();
    await runInDurableObject(stub, (instance: TrustDomainCa) => {
      // Configuration is parsed on first use; give this instance the upstream secrets before that.
      (instance as unknown as { env: Record<string, unknown> }).env = { ...env, UPSTREAM_CA_CERT_CHAIN: upstream.certChainPem, UPSTREAM_CA_KEY: upstream.keyPem };
    });
    const keys = unwrap(await api.getPublishedKeys());
    expect(keys.x509Authorities).toEqual([toBase64(upstream.root)]);
    const [svid] = await api.signX509Svids([{ spiffeId: ID, publicKeySpki: await subjectSpki(), dnsNames: [], ttlSeconds: 3600 }]);
    if (!svid!.ok) throw new Error(JSON.stringify(svid));
    const chain = svid!.value.certChain.map((c) => fromBase64(c));
    expect(chain).toHaveLength(withIntermediate ? 3 : 2);
    const intermediate = new X509Certificate(chain[1]!);
    expect(intermediate.issuer).toBe(new X509Certificate(upstream.chain[0]!).subject);
    expect((await validateX509Svid(chain, { now: Date.now(), expectedId: ID, roots: [upstream.root] })).ok).toBe(true);
    // Without the upstream root the chain is not trusted.
    expect((await validateX509Svid(chain, { now: Date.now(), roots: [] })).ok).toBe(false);
  });

  it('is not ready when the upstream key does not parse', async () => {
    const upstream = await upstreamPki(false);
    const { stub, api } = freshCa();
    await runInDurableObject(stub, (instance: TrustDomainCa) => {
      (instance as unknown as { env: Record<string, unknown> }).env = { ...env, UPSTREAM_CA_CERT_CHAIN: upstream.certChainPem, UPSTREAM_CA_KEY: 'not a key' };
    });
    expect(await api.status()).toEqual({ ready: false });
    const [r] = await api.signX509Svids([{ spiffeId: ID, publicKeySpki: await subjectSpki(), dnsNames: [], ttlSeconds: 60 }]);
    expect(r).toMatchObject({ ok: false, error: { code: 'ERR_CA_NOT_READY' } });
  });
});
