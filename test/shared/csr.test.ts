import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { concatBytes } from '../../src/shared/encoding/bytes.js';
import { WispError } from '../../src/shared/errors.js';
import { MAX_CSR_BYTES, parseCsr } from '../../src/shared/spiffe/csr.js';
import { contentsOf, derTlv, readWhole } from '../../src/shared/spiffe/der.js';
import { generateKeys, makeCsr, spkiOf, type KeyKind } from '../helpers/shared/pki.js';

async function rejection(p: Promise<unknown>): Promise<WispError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(WispError);
    expect((e as WispError).code).toBe('ERR_CSR_INVALID');
    return e as WispError;
  }
  throw new Error('expected a rejection');
}

describe('parseCsr', () => {
  it.each<[KeyKind, string]>([
    ['P-256', 'EC P-256'],
    ['P-384', 'EC P-384'],
    ['RSA-2048', 'RSA'],
  ])('accepts a %s CSR and returns only its public key', async (kind, keyAlgorithm) => {
    const keys = await generateKeys(kind);
    const parsed = await parseCsr(await makeCsr(kind, keys));
    expect(parsed.keyAlgorithm).toBe(keyAlgorithm);
    expect(parsed.publicKeySpki).toEqual(await spkiOf(keys));
    expect(Object.keys(parsed).sort()).toEqual(['keyAlgorithm', 'publicKeySpki']);
  });

  it.each<[string, Uint8Array, RegExp]>([
    ['empty input', new Uint8Array(), /empty/],
    ['garbage', new TextEncoder().encode('definitely not a CSR'), /not a DER PKCS#10/],
    ['oversized input', new Uint8Array(MAX_CSR_BYTES + 1), /larger than 8192 bytes/],
  ])('rejects %s', async (_name, der, message) => {
    expect((await rejection(parseCsr(der))).message).toMatch(message);
  });

  it('rejects a truncated CSR', async () => {
    const der = await makeCsr('P-256');
    expect((await rejection(parseCsr(der.slice(0, der.length - 10)))).message).toMatch(/not a DER PKCS#10/);
  });

  it('rejects a CSR signed by a key other than the one it carries (no proof of possession)', async () => {
    const a = await generateKeys('P-256');
    const b = await generateKeys('P-256');
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=x',
      keys: { publicKey: b.publicKey, privateKey: a.privateKey },
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    });
    expect((await rejection(parseCsr(new Uint8Array(csr.rawData)))).message).toMatch(/signature/);
  });

  it('rejects a CSR whose signature was tampered with', async () => {
    const der = await makeCsr('RSA-2048');
    der[der.length - 5]! ^= 0xff;
    expect((await rejection(parseCsr(der))).message).toMatch(/signature/);
  });

  it.each<[KeyKind, RegExp]>([
    ['RSA-1024', /1024 bits is too small/],
    ['Ed25519', /unsupported public key algorithm Ed25519/],
  ])('rejects an unsupported %s key', async (kind, message) => {
    expect((await rejection(parseCsr(await makeCsr(kind)))).message).toMatch(message);
  });

  describe('refuses bytes after the CSR (one DER element, nothing else)', () => {
    const cat = (...parts: Uint8Array[]) => concatBytes(parts);
    it.each<[KeyKind | 'P-256-SHA512', string, (csr: Uint8Array) => Promise<Uint8Array> | Uint8Array]>([
      ['P-256', '00 00 00', (csr) => cat(csr, new Uint8Array(3))],
      ['P-256', 'a second CSR', async (csr) => cat(csr, await makeCsr('P-256'))],
      ['P-256', '2 KB of junk', (csr) => cat(csr, crypto.getRandomValues(new Uint8Array(2048)))],
      ['RSA-2048', 'a single 00', (csr) => cat(csr, new Uint8Array(1))],
      // an uncommon shape (ECDSA with SHA-512) takes the general path: it must refuse trailing bytes too
      ['P-256-SHA512', '00 00 00', (csr) => cat(csr, new Uint8Array(3))],
    ])('%s CSR followed by %s', async (kind, _what, append) => {
      const csr = kind === 'P-256-SHA512' ? await p256Sha512Csr() : await makeCsr(kind);
      await parseCsr(csr); // accepted alone
      expect((await rejection(parseCsr(await append(csr)))).message).toMatch(/after its DER encoding/);
    });

    it.each(['P-256', 'P-256-SHA512'])('%s CSR with an extra element inside its outer SEQUENCE', async (kind) => {
      const csr = kind === 'P-256-SHA512' ? await p256Sha512Csr() : await makeCsr('P-256');
      const outer = readWhole(csr, 0x30);
      const padded = derTlv(0x30, contentsOf(csr, outer), Uint8Array.of(0x05, 0x00));
      await rejection(parseCsr(padded));
    });
  });
});

/** A P-256 CSR signed with ecdsa-with-SHA512: valid, but not one of the shapes the fast reader knows. */
async function p256Sha512Csr(): Promise<Uint8Array> {
  const keys = await generateKeys('P-256');
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=x', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-512' } });
  return new Uint8Array(csr.rawData);
}
