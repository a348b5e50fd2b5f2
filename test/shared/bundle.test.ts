import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { exportJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { WispError } from '../../src/shared/errors.js';
import { buildBundleJson, buildJwks, parseBundleJson, type PublishedJwk, type PublishedKeys } from '../../src/shared/spiffe/bundle.js';
import { toBase64 } from '../../src/shared/encoding/base64.js';
import { generateKeys } from '../helpers/shared/pki.js';

async function selfSignedCa(kind: 'P-256' | 'RSA-2048'): Promise<string> {
  const keys = await generateKeys(kind);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'O=Test,CN=Test CA',
    keys,
    notBefore: new Date(Date.UTC(2026, 0, 1)),
    notAfter: new Date(Date.UTC(2027, 0, 1)),
    signingAlgorithm: kind === 'P-256' ? ({ name: 'ECDSA', hash: 'SHA-256' }) : ({ name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }),
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  return toBase64(new Uint8Array(cert.rawData));
}

async function jwtKey(kind: 'P-256' | 'RSA-2048', kid: string): Promise<PublishedJwk> {
  const keys = await generateKeys(kind);
  return { ...(await exportJWK(keys.publicKey)), kid, alg: kind === 'P-256' ? 'ES256' : 'RS256', use: 'sig' } as PublishedJwk;
}

async function published(): Promise<PublishedKeys> {
  return {
    x509Authorities: [await selfSignedCa('P-256'), await selfSignedCa('RSA-2048')],
    jwtAuthorities: [await jwtKey('P-256', 'a'), await jwtKey('RSA-2048', 'b')],
    sequence: 7,
    refreshHintSeconds: 300,
  };
}

async function malformedMessage(doc: unknown): Promise<string> {
  try {
    await parseBundleJson(typeof doc === 'string' ? doc : JSON.stringify(doc), 'example.org');
  } catch (e) {
    expect(e).toBeInstanceOf(WispError);
    expect((e as WispError).code).toBe('ERR_BAD_REQUEST');
    return (e as WispError).message;
  }
  throw new Error('expected a rejection');
}

describe('SPIFFE bundle JSON', async () => {
  const keys = await published();
  const doc = await buildBundleJson(keys);

  it('builds x509-svid keys with exactly one x5c cert and public members, jwt-svid keys with kid', () => {
    expect(doc.spiffe_sequence).toBe(7);
    expect(doc.spiffe_refresh_hint).toBe(300);
    expect(doc.keys).toHaveLength(4);
    const [ec, rsa, jwtEc, jwtRsa] = doc.keys;
    expect(ec).toEqual({ use: 'x509-svid', kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), x5c: [keys.x509Authorities[0]] });
    expect(rsa).toEqual({ use: 'x509-svid', kty: 'RSA', n: expect.any(String), e: 'AQAB', x5c: [keys.x509Authorities[1]] });
    expect(ec).not.toHaveProperty('kid');
    expect(jwtEc).toEqual({ use: 'jwt-svid', kid: 'a', kty: 'EC', crv: 'P-256', x: keys.jwtAuthorities[0]!.x, y: keys.jwtAuthorities[0]!.y });
    expect(jwtRsa).toMatchObject({ use: 'jwt-svid', kid: 'b', kty: 'RSA' });
  });

  it('parses what it builds (round trip)', async () => {
    const parsed = await parseBundleJson(JSON.stringify(doc), 'example.org');
    expect(parsed.trustDomain).toBe('example.org');
    expect(parsed.sequence).toBe(7);
    expect(parsed.refreshHintSeconds).toBe(300);
    expect(parsed.x509Authorities.map((d) => toBase64(d))).toEqual(keys.x509Authorities);
    expect(parsed.jwtAuthorities.map((k) => k.kid)).toEqual(['a', 'b']);
    expect(parsed.jwtAuthorities[0]).not.toHaveProperty('use');
  });

  it('builds the OIDC JWKS from JWT keys only, with kid, alg and use sig', () => {
    const jwks = buildJwks(keys);
    expect(jwks.keys).toHaveLength(2);
    expect(jwks.keys[0]).toEqual({ kty: 'EC', crv: 'P-256', x: expect.any(String), y: expect.any(String), kid: 'a', alg: 'ES256', use: 'sig' });
    expect(jwks.keys[1]).toMatchObject({ kty: 'RSA', kid: 'b', alg: 'RS256', use: 'sig' });
  });

  it('ignores keys with a missing or unknown use and unknown jwt key types', async () => {
    const parsed = await parseBundleJson({ keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }, { kty: 'EC', use: 'enc' }, { kty: 'OKP', use: 'jwt-svid', kid: 'z', crv: 'Ed25519', x: 'x' }] }, 'example.org');
    expect(parsed).toEqual({ trustDomain: 'example.org', x509Authorities: [], jwtAuthorities: [], sequence: undefined, refreshHintSeconds: undefined });
  });

  const x509Key = doc.keys[0]!;
  const jwtKeyDoc = doc.keys[2]!;
  it.each<[string, unknown, RegExp]>([
    ['text that is not JSON', '{', /not JSON/],
    ['a non-object document', [], /not a JSON object/],
    ['a document without keys', { spiffe_sequence: 1 }, /"keys" must be an array/],
    ['a negative sequence', { keys: [], spiffe_sequence: -1 }, /spiffe_sequence/],
    ['a fractional refresh hint', { keys: [], spiffe_refresh_hint: 1.5 }, /spiffe_refresh_hint/],
    ['a key that is not an object', { keys: ['x'] }, /keys\[0\] is not an object/],
    ['a key without kty', { keys: [{ use: 'jwt-svid', kid: 'a' }] }, /no kty/],
    ['an x509-svid key without x5c', { keys: [{ ...x509Key, x5c: undefined }] }, /exactly one certificate in x5c/],
    ['an x509-svid key with two x5c certs', { keys: [{ ...x509Key, x5c: [keys.x509Authorities[0], keys.x509Authorities[1]] }] }, /exactly one certificate/],
    ['an x509-svid key with a kid', { keys: [{ ...x509Key, kid: 'x' }] }, /must not have a kid/],
    ['an x509-svid cert that is not base64', { keys: [{ ...x509Key, x5c: ['@@@'] }] }, /not base64/],
    ['an x509-svid cert that is not a certificate', { keys: [{ ...x509Key, x5c: [btoa('garbage!')] }] }, /not a DER X.509 certificate/],
    ['an x509-svid key whose members do not match its cert', { keys: [{ ...x509Key, x: (doc.keys[2] as { x: string }).x }] }, /x does not match/],
    ['a jwt-svid key without kid', { keys: [{ ...jwtKeyDoc, kid: undefined }] }, /must have a kid/],
    ['duplicate jwt-svid kids', { keys: [jwtKeyDoc, jwtKeyDoc] }, /duplicate kid a/],
    ['a jwt-svid EC key without coordinates', { keys: [{ ...jwtKeyDoc, y: undefined }] }, /lacks crv, x, y/],
    ['private key material', { keys: [{ ...jwtKeyDoc, d: 'secret' }] }, /private key material/],
  ])('rejects %s', async (_name, bad, message) => {
    expect(await malformedMessage(bad)).toMatch(message);
  });
});
