// An entry's extra JWT-SVID claims: each refusal of jwt-svid-claims.ts, through the entry parser the admin
// API uses, and the minter's merge (the CA's claims always win). Pure; runs on Node and workerd.
import { describe, expect, it } from 'vitest';
import { WispError } from '../../../src/shared/errors.js';
import { parseEntryInput } from '../../../src/shared/registry/entry-validation.js';
import {
  JWT_SVID_CLAIMS_MAX,
  JWT_SVID_CLAIMS_MAX_BYTES,
  JWT_SVID_CLAIM_DEPTH_MAX,
  JWT_SVID_CLAIM_NAME_MAX_BYTES,
  JWT_SVID_RESERVED_CLAIMS,
  jwtSvidClaimsProblem,
} from '../../../src/shared/registry/jwt-svid-claims.js';
import { parseTrustDomain, type SpiffeId } from '../../../src/shared/spiffe/id.js';
import { createJwtSvidMinter } from '../../../src/shared/spiffe/jwt-svid-minter.js';
import { validateJwtSvid } from '../../../src/shared/spiffe/jwt-svid.js';
import { decodeJwt, exportJWK, generateKeyPair, type JWK } from 'jose';

const td = parseTrustDomain('example.org');
const base = { spiffeId: 'spiffe://example.org/web', parentId: 'spiffe://example.org/spire/agent/x', selectors: [{ type: 'unix', value: 'uid:1' }] };

function refusal(jwtSvidClaims: unknown): string {
  try {
    parseEntryInput({ ...base, jwtSvidClaims }, td);
    return 'OK';
  } catch (e) {
    if (!(e instanceof WispError)) throw e;
    expect(e.code).toBe('ERR_ENTRY_INVALID');
    return e.message;
  }
}

/** a value nested `levels` arrays deep around a scalar */
const nested = (levels: number): unknown => (levels === 0 ? 'x' : [nested(levels - 1)]);

describe('jwtSvidClaims on an entry', () => {
  it('keeps any JSON values and leaves the field out when empty or absent', () => {
    const claims = { tenant: 'acme', n: 3, ok: true, none: null, groups: ['a', 'b'], ctx: { region: 'eu', ids: [1, 2] } };
    expect(parseEntryInput({ ...base, jwtSvidClaims: claims }, td).jwtSvidClaims).toEqual(claims);
    expect('jwtSvidClaims' in parseEntryInput({ ...base, jwtSvidClaims: {} }, td)).toBe(false);
    expect('jwtSvidClaims' in parseEntryInput(base, td)).toBe(false);
  });

  it.each([...JWT_SVID_RESERVED_CLAIMS])('refuses the reserved claim %s', (name) => {
    expect(refusal({ tenant: 'acme', [name]: 'x' })).toBe(`jwtSvidClaims must not set the reserved claim "${name}"`);
  });

  it('reserves the registered claims and cnf', () => {
    expect([...JWT_SVID_RESERVED_CLAIMS].sort()).toEqual(['aud', 'cnf', 'exp', 'iat', 'iss', 'jti', 'nbf', 'sub']);
  });

  it.each([['an array', ['a']], ['a string', '{"a":1}'], ['null', null], ['a number', 1]])('refuses %s', (_, value) => {
    expect(refusal(value)).toBe('jwtSvidClaims must be a JSON object');
  });

  it('refuses an empty name and a name over the bound', () => {
    expect(refusal({ '': 1 })).toMatch(/must not be empty/);
    expect(refusal({ ['n'.repeat(JWT_SVID_CLAIM_NAME_MAX_BYTES)]: 1 })).toBe('OK');
    expect(refusal({ ['n'.repeat(JWT_SVID_CLAIM_NAME_MAX_BYTES + 1)]: 1 })).toMatch(/longer than 64 bytes/);
    // bytes, not characters: 33 two-byte characters are 66 bytes
    expect(refusal({ ['é'.repeat(33)]: 1 })).toMatch(/longer than 64 bytes/);
  });

  it('refuses more claims than the bound', () => {
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`c${i}`, i]));
    expect(refusal(many(JWT_SVID_CLAIMS_MAX))).toBe('OK');
    expect(refusal(many(JWT_SVID_CLAIMS_MAX + 1))).toMatch(/more than 32 claims/);
  });

  it('refuses values nested deeper than the bound, in arrays and objects', () => {
    expect(refusal({ deep: nested(JWT_SVID_CLAIM_DEPTH_MAX) })).toBe('OK');
    expect(refusal({ deep: nested(JWT_SVID_CLAIM_DEPTH_MAX + 1) })).toMatch(/nested more than 8 levels/);
    let obj: unknown = 1;
    for (let i = 0; i <= JWT_SVID_CLAIM_DEPTH_MAX; i++) obj = { k: obj };
    expect(refusal({ deep: obj })).toMatch(/^jwtSvidClaims\.deep\.k(\.k)* is nested more than 8 levels/);
  });

  it('refuses what is not JSON (direct callers; JSON.parse never makes these)', () => {
    expect(jwtSvidClaimsProblem({ n: Number.NaN })).toMatch(/finite number/);
    expect(jwtSvidClaimsProblem({ n: Infinity })).toMatch(/finite number/);
    expect(jwtSvidClaimsProblem({ u: undefined })).toMatch(/JSON value/);
    expect(jwtSvidClaimsProblem({ d: new Date(0) })).toMatch(/JSON value/);
    expect(jwtSvidClaimsProblem(new Map())).toBe('jwtSvidClaims must be a JSON object');
  });

  it('refuses more than 4096 bytes of JSON', () => {
    // {"a":"…"} is 8 bytes around the string
    expect(refusal({ a: 'x'.repeat(JWT_SVID_CLAIMS_MAX_BYTES - 8) })).toBe('OK');
    expect(refusal({ a: 'x'.repeat(JWT_SVID_CLAIMS_MAX_BYTES - 7) })).toBe('jwtSvidClaims is longer than 4096 bytes as JSON');
  });
});

describe('the minter merges extra claims', () => {
  const ISSUER = 'https://issuer.example.org';
  const ID = 'spiffe://example.org/web' as SpiffeId;

  it('adds them, and its own claims win over any that slipped past validation', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' };
    const minter = createJwtSvidMinter({ issuer: ISSUER, kid: 'k1', alg: 'ES256', key: privateKey });
    const now = Date.now();
    const token = await minter.mint({
      spiffeId: ID,
      audience: ['db'],
      now,
      expiresAt: now + 60_000,
      extraClaims: { tenant: 'acme', groups: ['a'], sub: 'spiffe://example.org/evil', aud: ['other'], iss: 'https://evil', exp: 1e12, iat: 0 },
    });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({ tenant: 'acme', groups: ['a'], sub: ID, aud: ['db'], iss: ISSUER, exp: Math.floor((now + 60_000) / 1000), iat: Math.floor(now / 1000) });
    const valid = await validateJwtSvid(token, [jwk], { audience: 'db', now });
    expect(valid.ok).toBe(true);
  });
});
