// The one X.509 path validator (src/shared/spiffe/x509-path.ts), used by X509-SVID validation and agent
// request proofs. Node and workerd.
import type * as x509 from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { validateX509Path } from '../../src/shared/spiffe/x509-path.js';
import { makeIntermediateCa, makeRootCa, makeSvid, type TestCert } from '../helpers/shared/agent-svid.js';

const NOW = 1_800_000_000;
const ID = 'spiffe://example.org/ns/prod/sa/web';

describe('validateX509Path', async () => {
  const root = await makeRootCa('example.org', NOW);
  const otherRoot = await makeRootCa('example.org', NOW);
  const expiredRoot = await makeRootCa('example.org', NOW - 7200, { ttl: 3600 });
  const inter = await makeIntermediateCa(root, 'example.org', NOW);
  const leaf = await makeSvid(root, ID, NOW);
  const viaInter = await makeSvid(inter, ID, NOW);
  const expired = await makeSvid(root, ID, NOW - 7200, { ttl: 3600 });
  const forged = await makeSvid(root, ID, NOW, { signingKey: otherRoot.keys.privateKey });
  const notCa = await makeSvid(root, 'spiffe://example.org/mid', NOW);
  const underNotCa = await makeSvid(notCa, ID, NOW);
  const underExpiredRoot = await makeSvid(expiredRoot, ID, NOW);
  const certs = (...c: TestCert[]) => c.map((t) => t.cert);

  const cases: [string, x509.X509Certificate[], TestCert[] | undefined, TestCert | undefined | RegExp][] = [
    ['a leaf signed by a root', certs(leaf), [otherRoot, root], root],
    ['a leaf, an intermediate, a root', certs(viaInter, inter), [root], root],
    ['a chain that ends with the root itself', certs(viaInter, inter, root), [root], root],
    ['a chain without roots to check (signatures only)', certs(viaInter, inter), undefined, undefined],
    ['an empty chain', [], [root], /^empty chain$/],
    ['an expired leaf', certs(expired), [root], /^certificate 0 is not valid at this time$/],
    ['an intermediate that is not a CA', certs(underNotCa, notCa), [root], /^certificate 1 is not a CA \(signing certificate\): basicConstraints cA is not true$/],
    ['certificates out of order', certs(inter, viaInter), [root], /^certificate 0 is not signed by certificate 1$/],
    ['a leaf with the right issuer name signed by another key', certs(forged), [root], /^chain does not lead to a trusted X.509 authority$/],
    ['a leaf of another root', certs(leaf), [otherRoot], /does not lead/],
    ['a leaf of an expired root', certs(underExpiredRoot), [expiredRoot], /does not lead/],
    ['a root that is not a signing certificate', certs(underNotCa), [notCa], /does not lead/],
  ];

  it.each(cases)('%s', async (_name, chain, roots, expected) => {
    const r = await validateX509Path(chain, { now: NOW * 1000, roots: roots?.map((t) => t.der) });
    if (expected instanceof RegExp) {
      expect(r.ok ? 'ok' : r.error).toMatch(expected);
    } else {
      expect(r.ok).toBe(true);
      expect(r.ok && r.value?.rawData).toEqual(expected?.cert.rawData);
    }
  });

  it('skips roots that are not DER certificates', async () => {
    const r = await validateX509Path(certs(leaf), { now: NOW * 1000, roots: [new Uint8Array([1, 2, 3]), root.cert] });
    expect(r.ok).toBe(true);
  });
});
