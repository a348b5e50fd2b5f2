// The pure federation rules, on both runtimes: bundle endpoint URLs (https, http only on loopback),
// relationship input, refresh interval bounds, foreign bundles from PEM or SPIFFE JSON, sequence ordering.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { parseForeignBundle, planBundleUpdate } from '../../../src/shared/federation/foreign-bundle.js';
import {
  FEDERATION_REFRESH_DEFAULT_SECONDS,
  parseBundleEndpointUrl,
  parseRelationshipInput,
  refreshIntervalSeconds,
} from '../../../src/shared/federation/relationship.js';
import { isLoopbackHost } from '../../../src/shared/net/loopback.js';
import { parseTrustDomain } from '../../../src/shared/spiffe/id.js';
import { toBase64 } from '../../../src/shared/encoding/base64.js';
import { generateKeys } from '../../helpers/shared/pki.js';

const OWN = parseTrustDomain('example.org');
const TD = parseTrustDomain('partner.example');

async function caPem(): Promise<{ pem: string; b64: string }> {
  const keys = await generateKeys('P-256');
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'O=Partner,CN=Partner CA',
    keys,
    notBefore: new Date(Date.UTC(2026, 0, 1)),
    notAfter: new Date(Date.UTC(2027, 0, 1)),
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return { pem: cert.toString('pem'), b64: toBase64(new Uint8Array(cert.rawData)) };
}

describe('bundle endpoint URLs', () => {
  it('takes https anywhere and http on loopback hosts only', () => {
    expect(parseBundleEndpointUrl('https://partner.example/bundle')).toBe('https://partner.example/bundle');
    for (const ok of ['http://localhost:8787/bundle', 'http://127.0.0.1/b', 'http://127.10.0.1:1/b', 'http://[::1]:9/b']) expect(parseBundleEndpointUrl(ok)).toBe(ok);
    for (const bad of ['http://partner.example/b', 'http://10.0.0.1/b', 'http://127.0.0.1.nip.io/b', 'ftp://p.example/b', 'https://u:p@p.example/b', 'https://p.example/b#x', 'nope', '', 42]) {
      expect(() => parseBundleEndpointUrl(bad), String(bad)).toThrow(expect.objectContaining({ code: 'ERR_BAD_REQUEST' }));
    }
    expect(isLoopbackHost('localhost')).toBe(true);
    expect(isLoopbackHost('localhost.example')).toBe(false);
  });
});

describe('relationship input', () => {
  it('defaults to https_web and checks the https_spiffe endpoint ID', () => {
    expect(parseRelationshipInput({ trustDomain: 'partner.example', bundleEndpointUrl: 'https://p.example/b' }, OWN)).toEqual({
      trustDomain: TD,
      bundleEndpointUrl: 'https://p.example/b',
      bundleEndpointProfile: 'https_web',
    });
    const spiffe = parseRelationshipInput(
      { bundleEndpointUrl: 'https://p.example/b', bundleEndpointProfile: 'https_spiffe', endpointSpiffeId: 'spiffe://partner.example/bundle', trustDomainBundle: '{}' },
      OWN,
      'partner.example',
    );
    expect(spiffe).toMatchObject({ trustDomain: TD, endpointSpiffeId: 'spiffe://partner.example/bundle', trustDomainBundle: '{}' });
    const refuse = (input: unknown, path?: string) => expect(() => parseRelationshipInput(input, OWN, path)).toThrow();
    refuse({ trustDomain: 'example.org', bundleEndpointUrl: 'https://p.example/b' });
    refuse({ trustDomain: 'other.example', bundleEndpointUrl: 'https://p.example/b' }, 'partner.example');
    refuse({ trustDomain: 'partner.example', bundleEndpointUrl: 'https://p.example/b', bundleEndpointProfile: 'https_spiffe' });
    refuse({ trustDomain: 'partner.example', bundleEndpointUrl: 'https://p.example/b', bundleEndpointProfile: 'https_spiffe', endpointSpiffeId: 'not-an-id' });
    refuse({ trustDomain: 'partner.example', bundleEndpointUrl: 'https://p.example/b', endpointSpiffeId: 'spiffe://partner.example/x' });
    refuse([]);
  });
});

describe('refresh interval', () => {
  it('bounds the refresh hint to one minute .. one day', () => {
    expect(refreshIntervalSeconds(undefined)).toBe(FEDERATION_REFRESH_DEFAULT_SECONDS);
    expect(refreshIntervalSeconds(0)).toBe(FEDERATION_REFRESH_DEFAULT_SECONDS);
    expect(refreshIntervalSeconds(1)).toBe(60);
    expect(refreshIntervalSeconds(900)).toBe(900);
    expect(refreshIntervalSeconds(10 * 86_400)).toBe(86_400);
  });
});

describe('foreign bundles', () => {
  it('reads PEM certificates as x509-svid keys and SPIFFE JSON as it is', async () => {
    const { pem, b64 } = await caPem();
    const fromPem = await parseForeignBundle(pem, TD);
    expect(fromPem.bundle.keys).toEqual([expect.objectContaining({ use: 'x509-svid', kty: 'EC', crv: 'P-256', x5c: [b64] })]);
    expect(fromPem.parsed.x509Authorities).toHaveLength(1);
    const doc = { ...fromPem.bundle, spiffe_sequence: 4, spiffe_refresh_hint: 600 };
    const fromJson = await parseForeignBundle(JSON.stringify(doc), TD);
    expect(fromJson.bundle).toEqual(doc);
    expect(fromJson.parsed).toMatchObject({ sequence: 4, refreshHintSeconds: 600 });
    expect((await parseForeignBundle(doc, TD)).bundle).toEqual(doc);
  });

  it('refuses malformed input and bundles without authorities', async () => {
    for (const bad of ['hello', '{"keys": 1}', '{"keys": []}', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----', 7, null]) {
      await expect(parseForeignBundle(bad, TD), String(bad)).rejects.toMatchObject({ code: 'ERR_BAD_REQUEST' });
    }
  });

  it('never lets spiffe_sequence go backwards; the same document is unchanged', async () => {
    const { pem } = await caPem();
    const base = (await parseForeignBundle(pem, TD)).bundle;
    const v = async (seq?: number) => parseForeignBundle(seq === undefined ? base : { ...base, spiffe_sequence: seq }, TD);
    expect(planBundleUpdate(undefined, await v(3))).toBe('store');
    expect(planBundleUpdate({ bundle: { ...base, spiffe_sequence: 3 }, sequence: 3 }, await v(3))).toBe('unchanged');
    expect(planBundleUpdate({ bundle: base, sequence: 3 }, await v(4))).toBe('store');
    const older = await v(2);
    expect(() => planBundleUpdate({ bundle: base, sequence: 3 }, older)).toThrow(expect.objectContaining({ code: 'ERR_BUNDLE_SEQUENCE_BACKWARDS' }));
    // without a sequence on either side, content decides
    expect(planBundleUpdate({ bundle: base }, await v())).toBe('unchanged');
  });
});
