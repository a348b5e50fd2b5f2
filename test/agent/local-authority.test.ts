// Agents follow the operator's authority management within one sync (against the real issuer in process):
// after an X.509 taint the next rotator round re-signs every workload SVID and the agent's own SVID that the
// tainted authority signed, and subscribers (Workload API streams) are told; a JWT taint drops the cached
// JWT-SVIDs of that kid; after revoke the bundle the agent serves no longer has the key.
import { decodeProtectedHeader } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { x509AuthorityIdOf, signerAuthorityIdsOf } from '../../src/shared/ca/authority-id.js';
import { toBase64 } from '../../src/shared/encoding/base64.js';
import { rotatorRound, useAgentHarness, type Harness } from '../helpers/node/agent/agent-harness.js';

const UID = { type: 'unix', value: 'uid:1000' };
const createHarness = useAgentHarness();

let h: Harness;
beforeEach(async () => {
  h = await createHarness();
  await h.addEntry('e-web', '/web', [UID]);
  await h.addEntry('e-db', '/db', [UID]);
  await h.identity.start();
});
afterEach(() => h.close());

const round = () => rotatorRound(h);

interface State {
  authorityId: string;
}
const la = <T>(path: string, body?: unknown) => h.issuer.admin<T>(body === undefined && !path.endsWith('prepare') ? 'GET' : 'POST', `/localauthority${path}`, body);

describe('agents and authority management', () => {
  it('X.509 taint: the next round replaces every SVID the tainted authority signed (workloads and the agent), streams are told; revoke removes it', async () => {
    await round();
    const before = h.cache.x509SvidsFor([UID]);
    expect(before).toHaveLength(2);
    const first = (await la<{ active: State }>('/x509')).active.authorityId;
    expect(before.every((s) => signerAuthorityIdsOf(s.certChain).includes(first))).toBe(true);
    expect(signerAuthorityIdsOf(h.identity.current()!.certChain)).toContain(first);
    const agentSerialBefore = toBase64(h.identity.current()!.certChain[0]!);

    const next = (await la<{ preparedAuthority: State }>('/x509/prepare')).preparedAuthority.authorityId;
    await la('/x509/activate', { authorityId: next });
    // activation alone changes nothing for held SVIDs (they are not due yet)
    await round();
    expect(h.cache.x509SvidsFor([UID]).map((s) => toBase64(s.certChain[0]!))).toEqual(before.map((s) => toBase64(s.certChain[0]!)));

    await la('/x509/taint', { authorityId: first });
    let notified = 0;
    h.cache.subscribe(() => notified++);
    await round(); // one sync
    const after = h.cache.x509SvidsFor([UID]);
    expect(after).toHaveLength(2);
    for (const s of after) {
      expect(signerAuthorityIdsOf(s.certChain)).toContain(next);
      expect(signerAuthorityIdsOf(s.certChain)).not.toContain(first);
    }
    expect(notified).toBeGreaterThan(0);
    expect(toBase64(h.identity.current()!.certChain[0]!)).not.toBe(agentSerialBefore);
    expect(signerAuthorityIdsOf(h.identity.current()!.certChain)).toEqual([next]);
    // the tainted authority is still in the bundle until revoked
    expect(h.cache.bundles().own.x509Authorities.map((d) => x509AuthorityIdOf(d))).toContain(first);
    // a second round does not re-sign again
    const signedSoFar = h.issuer.callsTo('/x509-svids').length;
    await round();
    expect(h.issuer.callsTo('/x509-svids').length).toBe(signedSoFar);

    await la('/x509/revoke', { authorityId: first });
    await round();
    expect(h.cache.bundles().own.x509Authorities.map((d) => x509AuthorityIdOf(d))).toEqual([next]);
    expect((await h.issuer.x509Authorities()).map((d) => x509AuthorityIdOf(d))).toEqual([next]);
    // the agent still works (its proofs are signed by an SVID of the new authority)
    expect(h.cache.x509SvidsFor([UID])).toHaveLength(2);
  });

  it('JWT taint: cached JWT-SVIDs of the tainted kid are minted again; revoke drops the key from the bundle', async () => {
    await round();
    const first = (await la<{ active: State }>('/jwt')).active.authorityId;
    const a = await h.cache.fetchJwtSvid('e-web', ['api']);
    expect(decodeProtectedHeader(a.token).kid).toBe(first);
    expect((await h.cache.fetchJwtSvid('e-web', ['api'])).token).toBe(a.token); // cached
    const next = (await la<{ preparedAuthority: State }>('/jwt/prepare')).preparedAuthority.authorityId;
    await la('/jwt/activate', { authorityId: next });
    expect((await h.cache.fetchJwtSvid('e-web', ['api'])).token).toBe(a.token); // still cached: not tainted
    await la('/jwt/taint', { authorityId: first });
    await round();
    const b = await h.cache.fetchJwtSvid('e-web', ['api']);
    expect(b.token).not.toBe(a.token);
    expect(decodeProtectedHeader(b.token).kid).toBe(next);
    await la('/jwt/revoke', { authorityId: first });
    await round();
    expect(h.cache.bundles().own.jwtAuthorities.map((k) => k.kid)).toEqual([next]);
  });
});
