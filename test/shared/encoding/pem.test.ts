// The one PEM armour (src/shared/encoding/pem.ts). Node and workerd.
import { describe, expect, it } from 'vitest';
import { toBase64 } from '../../../src/shared/encoding/base64.js';
import { certificatesFromPem, derFromPem, derFromPemOrBase64, looksLikePem, pemBlocks, pemDerOf, toPem } from '../../../src/shared/encoding/pem.js';

const der = (n: number, fill = 0x30) => new Uint8Array(n).fill(fill);

describe('toPem', () => {
  it('wraps base64 at 64 characters and ends with a newline', () => {
    const pem = toPem('CERTIFICATE', der(100));
    const lines = pem.split('\n');
    expect(lines[0]).toBe('-----BEGIN CERTIFICATE-----');
    expect(lines.slice(1, -2).join('')).toBe(toBase64(der(100)));
    expect(lines.slice(1, -2).every((l) => l.length <= 64)).toBe(true);
    expect(lines[1]).toHaveLength(64);
    expect(lines.at(-2)).toBe('-----END CERTIFICATE-----');
    expect(pem.endsWith('-----\n')).toBe(true);
    expect(toPem('PRIVATE KEY', der(48))).toBe(`-----BEGIN PRIVATE KEY-----\n${toBase64(der(48))}\n-----END PRIVATE KEY-----\n`);
  });
});

describe('pemBlocks', () => {
  it('reads every block in order with its label, ignoring text between blocks and CRLF', () => {
    const text = `# a comment\n${toPem('PRIVATE KEY', der(5, 1))}junk\r\n${toPem('CERTIFICATE', der(70, 2)).replace(/\n/g, '\r\n')}${toPem('CERTIFICATE', der(3, 3))}`;
    expect(pemBlocks(text)).toEqual([
      { label: 'PRIVATE KEY', der: der(5, 1) },
      { label: 'CERTIFICATE', der: der(70, 2) },
      { label: 'CERTIFICATE', der: der(3, 3) },
    ]);
    expect(pemDerOf(text, 'CERTIFICATE')).toEqual([der(70, 2), der(3, 3)]);
    expect(pemDerOf(text, 'PRIVATE KEY')).toEqual([der(5, 1)]);
  });

  it('reads nothing from text without a whole block (mismatched END, no END)', () => {
    expect(pemBlocks('hello')).toEqual([]);
    expect(pemBlocks('-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n')).toEqual([]);
    expect(pemBlocks('-----BEGIN CERTIFICATE-----\nAAAA\n')).toEqual([]);
  });

  it('throws ERR_CONFIG_INVALID naming the block when a body is not base64 (e.g. RFC 1421 headers)', () => {
    const encrypted = '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END RSA PRIVATE KEY-----\n';
    expect(() => pemBlocks(encrypted, 'key')).toThrow('key: PEM block RSA PRIVATE KEY is not base64');
  });
});

describe('certificatesFromPem and derFromPem', () => {
  it('returns the certificates of a chain, and refuses an empty one or another block', () => {
    expect(certificatesFromPem(toPem('CERTIFICATE', der(4)) + toPem('CERTIFICATE', der(5)))).toEqual([der(4), der(5)]);
    expect(() => certificatesFromPem('nothing', 'UPSTREAM_CA_CERT_CHAIN')).toThrow('UPSTREAM_CA_CERT_CHAIN: no PEM CERTIFICATE block');
    expect(() => certificatesFromPem(toPem('PRIVATE KEY', der(4)))).toThrow('certificate chain: unexpected PEM block PRIVATE KEY');
  });

  it('returns exactly one block of a label', () => {
    expect(derFromPem(toPem('CERTIFICATE', der(2)) + toPem('PRIVATE KEY', der(4)), 'PRIVATE KEY', 'KEY')).toEqual(der(4));
    expect(() => derFromPem(toPem('CERTIFICATE', der(2)), 'PRIVATE KEY', 'KEY')).toThrow('KEY: expected exactly one PEM PRIVATE KEY block');
    expect(() => derFromPem(toPem('PRIVATE KEY', der(2)).repeat(2), 'PRIVATE KEY', 'KEY')).toThrow(/exactly one/);
  });
});

describe('looksLikePem and derFromPemOrBase64', () => {
  it.each([
    ['-----BEGIN CERTIFICATE-----', true],
    ['  \n-----BEGIN PKCS7-----', true],
    ['{"keys":[]}', false],
    ['MIIB', false],
  ])('%j looks like PEM: %s', (text, expected) => {
    expect(looksLikePem(text)).toBe(expected);
  });

  it('reads PEM of the label or bare base64 with whitespace, and nothing else', () => {
    expect(derFromPemOrBase64(toPem('PKCS7', der(7)), 'PKCS7')).toEqual(der(7));
    expect(derFromPemOrBase64(toBase64(der(70)).replace(/(.{20})/g, '$1\n '), 'PKCS7')).toEqual(der(70));
    expect(derFromPemOrBase64(toPem('CERTIFICATE', der(7)), 'PKCS7')).toBeUndefined();
    expect(derFromPemOrBase64('not base64!', 'PKCS7')).toBeUndefined();
    expect(derFromPemOrBase64('-----BEGIN PKCS7-----\n!!\n-----END PKCS7-----', 'PKCS7')).toBeUndefined();
  });
});
