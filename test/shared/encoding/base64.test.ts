// The one base64 codec (src/shared/encoding/base64.ts) against btoa / atob, for every length remainder. Node and workerd.
import { describe, expect, it } from 'vitest';
import { decodeBase64, decodeBase64Url, fromBase64, toBase64, toBase64Url } from '../../../src/shared/encoding/base64.js';

const reference = (b: Uint8Array) => btoa(String.fromCharCode(...b));

describe('base64', () => {
  it('encodes like btoa, and base64url without padding, for lengths 0..64', () => {
    for (let len = 0; len <= 64; len++) {
      const bytes = crypto.getRandomValues(new Uint8Array(len));
      expect(toBase64(bytes)).toBe(reference(bytes));
      expect(toBase64Url(bytes)).toBe(reference(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''));
      expect(fromBase64(toBase64(bytes))).toEqual(bytes);
    }
    expect(toBase64(new Uint8Array([0xfb, 0xff, 0xbf]).buffer)).toBe('+/+/');
  });
});

describe('fromBase64', () => {
  /** the former decoder: a strict pattern and length check, then atob */
  const former = (s: string): Uint8Array | 'error' => {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return 'error';
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  };
  const decode = (s: string): Uint8Array | 'error' => {
    try {
      return fromBase64(s);
    } catch {
      return 'error';
    }
  };

  it('decodes what atob decodes, for lengths 0..64', () => {
    for (let len = 0; len <= 64; len++) {
      const bytes = crypto.getRandomValues(new Uint8Array(len));
      expect(fromBase64(reference(bytes))).toEqual(bytes);
    }
  });

  it('accepts and refuses exactly what the pattern + atob decoder did', () => {
    const cases = ['', 'AA==', 'AAA=', 'AAAA', 'AB==', 'AAB=', 'A===', '====', '==', '=', 'A', 'AA', 'AAA', 'AA=A', '=AAA', 'AAAA====', 'AAAAAA==', 'AA==AAAA',
      'AA A', 'AA\nA', 'AA-_', 'AAé=', 'AA\u0100A', '+/+/', 'zz==', 'zzz=', 'QUJD', 'QUI=', 'QQ==', 'Q===', 'QUJDRA==', 'QUJDRA=', 'QUJDRA'];
    const alphabet = 'AZaz09+/=-_ \u00ff';
    for (let i = 0; i < 3000; i++) {
      const len = 4 + Math.floor(Math.random() * 9);
      cases.push(Array.from({ length: len }, () => (Math.random() < 0.9 ? 'Q' : alphabet[Math.floor(Math.random() * alphabet.length)]!)).join(''));
    }
    for (const s of cases) expect(decode(s), JSON.stringify(s)).toEqual(former(s));
  });

  it('throws WispError with the caller\'s code and name', () => {
    expect(() => fromBase64('A===', 'ERR_CSR_INVALID', 'csr')).toThrow('csr is not base64');
  });
});

describe('decodeBase64Url', () => {
  it('decodes what toBase64Url encodes, for lengths 0..64', () => {
    for (let len = 0; len <= 64; len++) {
      const bytes = crypto.getRandomValues(new Uint8Array(len));
      expect(decodeBase64Url(toBase64Url(bytes))).toEqual(bytes);
    }
  });

  it.each(['A', 'AAAAA', 'AA==', 'AA+/', 'AA A', 'AAé'])('refuses %j', (s) => {
    expect(decodeBase64Url(s)).toBeUndefined();
  });

  it('accepts the url alphabet, and decodeBase64 does not', () => {
    expect(decodeBase64Url('-_-_')).toEqual(new Uint8Array([0xfb, 0xff, 0xbf]));
    expect(decodeBase64('-_-_')).toBeUndefined();
  });
});
