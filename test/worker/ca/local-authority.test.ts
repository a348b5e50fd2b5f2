// Authority management on the CA core (SPIRE's LocalAuthority API): show / prepare / activate / taint /
// revoke order rules and errors for both kinds, state that survives a core re-created over the same storage
// (memory and DO SQLite), and automatic rotation afterwards that neither re-publishes a revoked key nor
// signs with a tainted one.
import { runInDurableObject } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { HOUR_MS } from '../../../src/shared/clock.js';
import { x509AuthorityIdOf } from '../../../src/shared/ca/authority-id.js';
import type { AuthorityResult, AuthorityStates } from '../../../src/shared/ca/local-authority.js';
import { unwrap, type Result } from '../../../src/shared/result.js';
import { validateJwtSvid } from '../../../src/shared/spiffe/jwt-svid.js';
import { validateX509Svid } from '../../../src/shared/spiffe/x509-svid.js';
import { fromBase64 } from '../../../src/shared/encoding/base64.js';
import type { AuthorityRequest } from '../../../src/worker/ca/ca-api.js';
import { createCaCore, type CaCore } from '../../../src/worker/ca/ca-core.js';
import { createMemoryCaStorage, type CaStorage } from '../../../src/worker/ca/ca-storage.js';
import { createDoCaStorage } from '../../../src/worker/ca/do-ca-storage.js';
import type { TrustDomainCa } from '../../../src/worker/ca/trust-domain-ca.js';
import { parseCaConfig } from '../../../src/worker/config.js';
import { freshCa, subjectSpki } from '../../helpers/workerd/ca.js';

const config = parseCaConfig(env);
const ID = `spiffe://${config.trustDomain}/ns/prod/sa/web`;
const CA_TTL_MS = config.caTtlSeconds * 1000;
const der = (b64: string) => fromBase64(b64);

async function call(core: CaCore, request: AuthorityRequest): Promise<AuthorityResult> {
  return unwrap(await core.manageAuthority(request));
}
async function show(core: CaCore, kind: 'x509' | 'jwt'): Promise<AuthorityStates> {
  const r = await call(core, { kind, op: 'show' });
  if (r.op !== 'show') throw new Error('not a show result');
  return r.states;
}
async function act(core: CaCore, kind: 'x509' | 'jwt', op: 'prepare' | 'activate' | 'taint' | 'revoke', authorityId?: string) {
  const r = await call(core, { kind, op, ...(authorityId !== undefined ? { authorityId } : {}) });
  if (r.op === 'show') throw new Error('a show result');
  return r.authority;
}
function errorOf(r: Result<unknown>): { code: string; message: string } {
  if (r.ok) throw new Error('expected an error');
  return r.error;
}

/** prepare → activate → taint, for `kind`; returns the IDs (old = the first active one). */
async function toTainted(core: CaCore, kind: 'x509' | 'jwt') {
  const first = (await show(core, kind)).active!.authorityId;
  const next = (await act(core, kind, 'prepare')).authorityId;
  await act(core, kind, 'activate', next);
  const tainted = await act(core, kind, 'taint', first);
  return { first, next, tainted };
}

describe('authority management on the CA core', () => {
  it('shows the active X.509 authority by its subject key ID and the JWT one by its kid', async () => {
    const storage = createMemoryCaStorage();
    const core = createCaCore({ storage, config, clock: Date.now });
    const x509 = await show(core, 'x509');
    const keys = unwrap(await core.getPublishedKeys());
    expect(x509.active?.authorityId).toBe(x509AuthorityIdOf(der(keys.x509Authorities[0]!)));
    expect(x509.active?.authorityId).toMatch(/^[0-9a-f]{40}$/);
    expect(x509.active?.tainted).toBe(false);
    expect(x509.prepared).toBeUndefined();
    expect(x509.old).toBeUndefined();
    const jwt = await show(core, 'jwt');
    expect(jwt.active?.authorityId).toBe(keys.jwtAuthorities[0]!.kid);
    expect(jwt.active?.expiresAt).toBe(Math.floor(storage.load().slots.find((s) => s.kind === 'jwt')!.notAfter / 1000));
  });

  for (const kind of ['x509', 'jwt'] as const) {
    it(`${kind}: prepare publishes a new key, activate swaps it in, taint then revoke the old one`, async () => {
      const storage = createMemoryCaStorage();
      const now = Date.now();
      const core = createCaCore({ storage, config, clock: () => now });
      const seq0 = unwrap(await core.getPublishedKeys()).sequence;
      const first = (await show(core, kind)).active!.authorityId;
      const prepared = await act(core, kind, 'prepare');
      expect(prepared.authorityId).not.toBe(first);
      const pub = () => core.getPublishedKeys().then(unwrap);
      const count = async () => ((p) => (kind === 'x509' ? p.x509Authorities.length : p.jwtAuthorities.length))(await pub());
      expect(await count()).toBe(2);
      expect((await pub()).sequence).toBeGreaterThan(seq0);
      expect(await show(core, kind)).toMatchObject({ active: { authorityId: first }, prepared: { authorityId: prepared.authorityId } });

      // activating anything but the prepared key is refused
      expect(errorOf(await core.manageAuthority({ kind, op: 'activate', authorityId: first }))).toEqual({ code: 'ERR_AUTHORITY_STATE', message: 'only Prepared authorities can be activated' });
      expect(errorOf(await core.manageAuthority({ kind, op: 'activate', authorityId: 'abc123' })).code).toBe('ERR_AUTHORITY_NOT_FOUND');
      expect(errorOf(await core.manageAuthority({ kind, op: 'activate' }))).toEqual({ code: 'ERR_BAD_REQUEST', message: 'no authority ID provided' });
      // nothing to taint or revoke before there is an old key
      expect(errorOf(await core.manageAuthority({ kind, op: 'taint', authorityId: first }))).toEqual({ code: 'ERR_AUTHORITY_STATE', message: 'unable to taint current local authority' });
      expect(errorOf(await core.manageAuthority({ kind, op: 'taint', authorityId: prepared.authorityId })).message).toBe('only Old local authorities can be tainted');

      expect(await act(core, kind, 'activate', prepared.authorityId)).toMatchObject({ authorityId: prepared.authorityId, tainted: false });
      expect(await show(core, kind)).toEqual({ active: expect.objectContaining({ authorityId: prepared.authorityId }), old: expect.objectContaining({ authorityId: first, tainted: false }) });
      // the new key signs now
      if (kind === 'jwt') {
        const token = unwrap(await core.signJwtSvid({ spiffeId: ID, audience: ['a'], ttlSeconds: 60 })).token;
        expect(JSON.parse(atob(token.split('.')[0]!.replace(/-/g, '+').replace(/_/g, '/'))).kid).toBe(prepared.authorityId);
      }

      // revoke needs a tainted key
      expect(errorOf(await core.manageAuthority({ kind, op: 'revoke', authorityId: first }))).toEqual({ code: 'ERR_AUTHORITY_STATE', message: 'it is not possible to revoke an untainted authority' });
      expect(errorOf(await core.manageAuthority({ kind, op: 'revoke', authorityId: prepared.authorityId })).message).toBe('unable to use current authority');
      const seqBeforeTaint = (await pub()).sequence;
      expect(await act(core, kind, 'taint', first)).toMatchObject({ authorityId: first, tainted: true });
      expect(errorOf(await core.manageAuthority({ kind, op: 'taint', authorityId: first })).message).toBe('authority is already tainted');
      const afterTaint = await pub();
      expect(afterTaint.sequence).toBeGreaterThan(seqBeforeTaint); // agents hear of it on their next sync
      expect(afterTaint.tainted?.[kind]).toEqual([first]);
      expect(await count()).toBe(2); // still published until revoked

      expect(await act(core, kind, 'revoke', first)).toMatchObject({ authorityId: first });
      const afterRevoke = await pub();
      expect(await count()).toBe(1);
      expect(afterRevoke.sequence).toBeGreaterThan(afterTaint.sequence);
      expect(afterRevoke.tainted).toBeUndefined();
      expect(await show(core, kind)).toEqual({ active: expect.objectContaining({ authorityId: prepared.authorityId }) });
      expect(errorOf(await core.manageAuthority({ kind, op: 'revoke', authorityId: first })).code).toBe('ERR_AUTHORITY_NOT_FOUND');
      expect(storage.load().slots.some((s) => s.kid === first || s.kind === kind && x509IdOrKid(s) === first)).toBe(false);
    });
  }

  it('a second prepare replaces the first prepared key (SPIRE replaces its next slot)', async () => {
    const core = createCaCore({ storage: createMemoryCaStorage(), config, clock: Date.now });
    const a = await act(core, 'x509', 'prepare');
    const b = await act(core, 'x509', 'prepare');
    expect(b.authorityId).not.toBe(a.authorityId);
    expect((await show(core, 'x509')).prepared?.authorityId).toBe(b.authorityId);
    expect(unwrap(await core.getPublishedKeys()).x509Authorities).toHaveLength(2);
    expect(errorOf(await core.manageAuthority({ kind: 'x509', op: 'activate', authorityId: a.authorityId })).code).toBe('ERR_AUTHORITY_NOT_FOUND');
  });

  it('refuses malformed requests', async () => {
    const core = createCaCore({ storage: createMemoryCaStorage(), config, clock: Date.now });
    expect(errorOf(await core.manageAuthority({ kind: 'wit' as never, op: 'show' })).code).toBe('ERR_BAD_REQUEST');
    expect(errorOf(await core.manageAuthority({ kind: 'x509', op: 'destroy' as never })).code).toBe('ERR_BAD_REQUEST');
    expect(errorOf(await core.manageAuthority({ kind: 'x509', op: 'taint', authorityId: 'a b' })).code).toBe('ERR_BAD_REQUEST');
    expect(errorOf(await core.manageAuthority({ kind: 'x509', op: 'taint', authorityId: 'a'.repeat(129) })).code).toBe('ERR_BAD_REQUEST');
    expect(errorOf(await core.manageAuthority(null as never)).code).toBe('ERR_BAD_REQUEST');
  });

  it('keeps taint durable across a core re-created over the same storage, and revoke too', async () => {
    const storage = createMemoryCaStorage();
    const now = Date.now();
    const core = createCaCore({ storage, config, clock: () => now });
    const x = await toTainted(core, 'x509');
    const again = createCaCore({ storage, config, clock: () => now });
    expect((await show(again, 'x509')).old).toMatchObject({ authorityId: x.first, tainted: true });
    expect(unwrap(await again.getPublishedKeys()).tainted).toEqual({ x509: [x.first], jwt: [] });
    await act(again, 'x509', 'revoke', x.first);
    const third = createCaCore({ storage, config, clock: () => now });
    expect(await show(third, 'x509')).toEqual({ active: expect.objectContaining({ authorityId: x.next }) });
    expect(unwrap(await third.getPublishedKeys()).x509Authorities).toHaveLength(1);
  });

  it('on the DO SQLite storage: taint is stored (schema 2) and read back by a new core', async () => {
    const { stub } = freshCa();
    const now = Date.now();
    const result = await runInDurableObject(stub, async (_i: TrustDomainCa, state) => {
      const storage: CaStorage = createDoCaStorage(state.storage);
      const core = createCaCore({ storage, config, clock: () => now });
      const ids = await toTainted(core, 'jwt');
      const again = createCaCore({ storage: createDoCaStorage(state.storage), config, clock: () => now });
      const states = await show(again, 'jwt');
      await act(again, 'jwt', 'revoke', ids.first);
      const after = createCaCore({ storage: createDoCaStorage(state.storage), config, clock: () => now });
      return { ids, states, afterRevoke: unwrap(await after.getPublishedKeys()).jwtAuthorities.map((k) => k.kid) };
    });
    expect(result.states.old).toMatchObject({ authorityId: result.ids.first, tainted: true });
    expect(result.afterRevoke).toEqual([result.ids.next]);
  });

  it('automatic rotation afterwards keeps working: a revoked key never comes back, a tainted one never signs', async () => {
    const storage = createMemoryCaStorage();
    const t0 = Date.now();
    let now = t0;
    const core = createCaCore({ storage, config, clock: () => now });
    const x = await toTainted(core, 'x509');
    const j = await toTainted(core, 'jwt');
    await act(core, 'x509', 'revoke', x.first);
    const spki = await subjectSpki();
    const seen = new Set<string>();
    for (; now <= t0 + 2 * CA_TTL_MS; now += 3 * HOUR_MS) {
      await core.alarm();
      const published = unwrap(await core.getPublishedKeys());
      const x509Ids = published.x509Authorities.map((a) => x509AuthorityIdOf(der(a)));
      x509Ids.forEach((id) => seen.add(id!));
      expect(x509Ids).not.toContain(x.first);
      const [svid] = await core.signX509Svids([{ spiffeId: ID, publicKeySpki: spki, dnsNames: [], ttlSeconds: 3600 }]);
      const chain = unwrap(svid!).certChain.map(der);
      expect((await validateX509Svid(chain, { now, expectedId: ID, roots: published.x509Authorities.map(der) })).ok).toBe(true);
      const token = unwrap(await core.signJwtSvid({ spiffeId: ID, audience: ['a'], ttlSeconds: 60 })).token;
      expect(JSON.parse(atob(token.split('.')[0]!.replace(/-/g, '+').replace(/_/g, '/'))).kid).not.toBe(j.first);
      expect((await validateJwtSvid(token, published.jwtAuthorities, { audience: 'a', now, trustDomain: config.trustDomain, issuer: config.jwtIssuer })).ok).toBe(true);
    }
    expect(seen.size).toBeGreaterThanOrEqual(3); // it rotated past the keys set by hand
    // the tainted JWT key expired on its own: no longer told to agents
    expect(unwrap(await core.getPublishedKeys()).tainted).toBeUndefined();
  });

  it('what a revoked X.509 authority signed no longer validates against the published bundle', async () => {
    const now = Date.now();
    const core = createCaCore({ storage: createMemoryCaStorage(), config, clock: () => now });
    const [svid] = await core.signX509Svids([{ spiffeId: ID, publicKeySpki: await subjectSpki(), dnsNames: [], ttlSeconds: 3600 }]);
    const chain = unwrap(svid!).certChain.map(der);
    const x = await toTainted(core, 'x509');
    const roots = () => core.getPublishedKeys().then((k) => unwrap(k).x509Authorities.map(der));
    expect((await validateX509Svid(chain, { now, expectedId: ID, roots: await roots() })).ok).toBe(true);
    await act(core, 'x509', 'revoke', x.first);
    expect((await validateX509Svid(chain, { now, expectedId: ID, roots: await roots() })).ok).toBe(false);
  });
});

function x509IdOrKid(s: { kind: string; kid: string; certDer?: Uint8Array }): string {
  return s.kind === 'x509' && s.certDer ? x509AuthorityIdOf(s.certDer)! : s.kid;
}
