// Pure pieces of cloud node attestation, on both runtimes: agent path templates, cache lifetimes of key
// sets and the refetch cooldown, and PKCS#7 verification against keys and digests.
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { parseAgentPathTemplate, renderAgentId } from '../../src/shared/attestation/agent-path-template.js';
import { AWS_IID_TEMPLATE_FIELDS } from '../../src/shared/attestation/aws-iid.js';
import { verifyPkcs7Signature } from '../../src/shared/attestation/pkcs7.js';
import { cacheLifetimeMs, RemoteKeySet } from '../../src/shared/attestation/remote-key-set.js';
import { parseTrustDomain } from '../../src/shared/spiffe/id.js';
import { createRegionSigner } from '../helpers/shared/cloud-attestation.js';

const TD = parseTrustDomain('example.org');
const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

describe('agent path templates', () => {
  it('renders SPIRE-style templates and refuses values that would leave their segment', () => {
    const t = parseAgentPathTemplate('{{ .PluginName }}/{{.AccountID}}/x-{{ .Region }}', AWS_IID_TEMPLATE_FIELDS);
    expect(renderAgentId(TD, t, { PluginName: 'aws_iid', AccountID: '1', Region: 'r' })).toBe('spiffe://example.org/spire/agent/aws_iid/1/x-r');
    expect(() => renderAgentId(TD, t, { PluginName: 'aws_iid', AccountID: '../1', Region: 'r' })).toThrow(/AccountID cannot be used/);
    expect(() => renderAgentId(TD, t, { PluginName: 'aws_iid', AccountID: '..', Region: 'r' })).toThrow(/cannot be used/);
  });
  it('refuses unknown fields, pipelines and absolute paths when parsed', () => {
    expect(() => parseAgentPathTemplate('{{ .Tags.name }}', AWS_IID_TEMPLATE_FIELDS)).toThrow(/only \{\{ \.Field \}\}/);
    expect(() => parseAgentPathTemplate('{{ .Nope }}', AWS_IID_TEMPLATE_FIELDS)).toThrow(/unknown field \.Nope/);
    expect(() => parseAgentPathTemplate('/{{ .Region }}', AWS_IID_TEMPLATE_FIELDS)).toThrow(/must not start/);
  });
});

describe('remote key sets', () => {
  it('takes the cache lifetime from max-age, else Expires, else the default', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(cacheLifetimeMs(new Headers({ 'cache-control': 'public, max-age=21600, must-revalidate' }), now)).toBe(21_600_000);
    expect(cacheLifetimeMs(new Headers({ 'cache-control': 'no-store' }), now)).toBe(0);
    expect(cacheLifetimeMs(new Headers({ expires: 'Thu, 01 Jan 2026 00:10:00 GMT' }), now)).toBe(600_000);
    expect(cacheLifetimeMs(new Headers({ 'cache-control': 'max-age=9999999' }), now)).toBe(24 * 3600_000);
    expect(cacheLifetimeMs(new Headers(), now)).toBe(3600_000);
  });
  it('refetches for an unknown kid at most once per cooldown, and when the cache expires', async () => {
    let fetches = 0;
    const set = new RemoteKeySet({
      url: 'https://keys.test/jwks',
      cooldownMs: 30_000,
      fetch: (async () => {
        fetches++;
        return new Response('{"keys":[]}', { headers: { 'cache-control': 'max-age=600' } });
      }) as typeof fetch,
    });
    await set.get(0);
    await set.get(1000, true); // within the cooldown: cached
    expect(fetches).toBe(1);
    await set.get(31_000, true);
    expect(fetches).toBe(2);
    await set.get(100_000);
    expect(fetches).toBe(2);
    await set.get(632_000);
    expect(fetches).toBe(3);
  });
});

describe('PKCS#7 signatures', () => {
  it('verifies the signer key and the signed digest of the content', async () => {
    const [a, b] = await Promise.all([createRegionSigner('r-a'), createRegionSigner('r-b')]);
    const spki = (pem: string) => new Uint8Array(new X509Certificate(pem).publicKey.rawData);
    const doc = '{"accountId" : "123456789012"}';
    const sig = b64(await a.sign(doc));
    expect(await verifyPkcs7Signature(sig, new TextEncoder().encode(doc), spki(a.certPem))).toEqual({ ok: true, value: undefined });
    expect(await verifyPkcs7Signature(sig, new TextEncoder().encode(doc), spki(b.certPem))).toEqual({ ok: false, error: 'signature does not verify with the trusted key' });
    expect(await verifyPkcs7Signature(sig, new TextEncoder().encode(`${doc} `), spki(a.certPem))).toEqual({ ok: false, error: 'message digest does not match the document' });
    expect((await verifyPkcs7Signature(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x01]), new Uint8Array(), spki(a.certPem))).ok).toBe(false);
    expect((await verifyPkcs7Signature(new Uint8Array(20_000), new Uint8Array(), spki(a.certPem))).ok).toBe(false);
  });
});
