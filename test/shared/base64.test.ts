// The table base64 encoders of x509.ts against btoa, for every length remainder. Node and workerd.
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64, toBase64Url } from '../../src/shared/spiffe/x509.js';

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
