// Per-SVID revocation through the real app (createApp over real D1 and the real CA core on memory storage):
// the admin API (validation, no-store), agent-auth refusing a revoked agent SVID, /sync carrying the
// revocations and CRLs only when they changed, and the CRL served beside the bundle (signature and content).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { env } from 'cloudflare:workers';
import { beforeAll, describe, expect, it } from 'vitest';
import type { SyncResponse, X509SvidsResponse } from '../../src/shared/agent-api.js';
import { normalizeSerialNumber } from '../../src/shared/agent-proof.js';
import type { SvidRevocation } from '../../src/shared/registry/revocation.js';
import { makeCsr, toBase64, fromBase64 } from '../helpers/shared/agent-svid.js';
import { createRevocationStore } from '../../src/worker/db/revocations.js';
import { ADMIN_TOKEN } from '../helpers/workerd/admin.js';
import { createHarness, expectError, renew, TD, type Harness, type TestAgent } from '../helpers/workerd/agent-client.js';
import { createTestCa, type TestCa } from '../helpers/workerd/test-ca.js';

let ca: TestCa;
let h: Harness;

beforeAll(async () => {
  const clock = { nowMs: Date.now() };
  ca = createTestCa(TD, () => clock.nowMs);
  h = createHarness(() => ca, clock);
});

const admin = (method: string, path: string, body?: unknown) =>
  h.fetch(`/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

async function revoke(body: unknown): Promise<SvidRevocation[]> {
  const res = await admin('POST', '/revocations', body);
  expect(res.status, await res.clone().text()).toBe(200);
  expect(res.headers.get('cache-control')).toBe('no-store');
  return ((await res.json()) as { revocations: SvidRevocation[] }).revocations;
}

const serialOf = (der: Uint8Array) => normalizeSerialNumber(new x509.X509Certificate(der.slice()).serialNumber);

async function sync(agent: TestAgent, revision?: string): Promise<SyncResponse> {
  const res = await h.call(agent, 'POST', '/agent/v1/sync', revision === undefined ? {} : { revision, bundleSequence: (await ca.published()).sequence });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as SyncResponse;
}

/** An agent with one workload entry and an X509-SVID for it. */
async function agentWithWorkload(): Promise<{ agent: TestAgent; entryId: string; spiffeId: string; serial: string }> {
  const agent = await h.attestFresh();
  const spiffeId = `spiffe://${TD}/w/${crypto.randomUUID()}`;
  const entry = await h.createEntry({ spiffeId: spiffeId as never, parentId: agent.agentId });
  const csr = await makeCsr();
  const res = await h.call(agent, 'POST', '/agent/v1/x509-svids', { requests: [{ entryId: entry.id, csr: toBase64(csr.der) }] });
  const { svids } = (await res.json()) as X509SvidsResponse;
  return { agent, entryId: entry.id, spiffeId, serial: serialOf(fromBase64(svids[0]!.svid.certChain[0]!)) };
}

describe('admin API', () => {
  it('refuses malformed requests with clear 400s and an unknown entry with 404', async () => {
    for (const body of [{}, { serialNumber: 'xyz' }, { serialNumber: 'ab', entryId: 'e' }, { spiffeId: 'spiffe://elsewhere.test/x' }, { entryId: 'e', spiffeId: `spiffe://${TD}/x` }, { serialNumber: 'ab', extra: 1 }, { serialNumber: 'ab', reason: 'x'.repeat(300) }, { serialNumber: 'ab'.repeat(21) }]) {
      const res = await admin('POST', '/revocations', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
    await expectError(await admin('POST', '/revocations', { entryId: 'no-such-entry' }), 404, 'ERR_ENTRY_NOT_FOUND');
    expect((await h.fetch('/admin/v1/revocations', { method: 'POST', body: '{}' })).status).toBe(401);
  });

  it('revokes a serial (any hex form), by SPIFFE ID and by entry, and lists them', async () => {
    const serial = crypto.randomUUID().replaceAll('-', '').slice(0, 30);
    const [bySerial] = await revoke({ serialNumber: `00:${serial.toUpperCase().match(/../g)!.join(':')}`, reason: 'key leaked' });
    expect(bySerial).toMatchObject({ kind: 'serial', serialNumber: normalizeSerialNumber(serial), spiffeId: '', reason: 'key leaked', revokedAt: h.nowSeconds() });
    expect(bySerial!.expiresAt).toBeGreaterThanOrEqual(h.nowSeconds() + ca.config.caTtlSeconds);
    const id = `spiffe://${TD}/w/${crypto.randomUUID()}`;
    const [byId] = await revoke({ spiffeId: id });
    expect(byId).toMatchObject({ kind: 'spiffe_id', serialNumber: '', spiffeId: id, revokedAt: h.nowSeconds() + 1 });
    const { entryId, spiffeId } = await agentWithWorkload();
    const [byEntry] = await revoke({ entryId });
    expect(byEntry).toMatchObject({ kind: 'spiffe_id', spiffeId });
    const listed: SvidRevocation[] = [];
    let token: string | undefined;
    do {
      const res = await admin('GET', `/revocations?pageSize=2${token ? `&pageToken=${token}` : ''}`);
      const page = (await res.json()) as { revocations: SvidRevocation[]; nextPageToken?: string };
      listed.push(...page.revocations);
      token = page.nextPageToken;
    } while (token);
    expect(listed).toEqual(expect.arrayContaining([bySerial, byId, byEntry]));
  });

  it('revoking an agent by SPIFFE ID also revokes its recorded serials (they go into the CRL)', async () => {
    const agent = await h.attestFresh();
    const revocations = await revoke({ spiffeId: agent.agentId });
    expect(revocations.map((r) => r.kind).sort()).toEqual(['serial', 'spiffe_id']);
    expect(revocations.find((r) => r.kind === 'serial')).toMatchObject({ serialNumber: serialOf(agent.chain[0]!), spiffeId: agent.agentId });
  });
});

describe('agent-auth', () => {
  it('refuses requests signed by a revoked agent SVID (by serial) with 401 ERR_SVID_REVOKED; other agents keep working', async () => {
    const agent = await h.attestFresh();
    const other = await h.attestFresh();
    expect((await h.call(agent, 'POST', '/agent/v1/sync', {})).status).toBe(200);
    const [r] = await revoke({ serialNumber: serialOf(agent.chain[0]!) });
    expect(r).toMatchObject({ spiffeId: agent.agentId }); // known from the agents table
    const e = await expectError(await h.call(agent, 'POST', '/agent/v1/sync', {}), 401, 'ERR_SVID_REVOKED');
    expect(e.message).toMatch(/revoked/);
    await expectError(await h.call(agent, 'POST', '/agent/v1/renew', { csr: toBase64((await makeCsr()).der) }), 401, 'ERR_SVID_REVOKED');
    expect((await h.call(other, 'POST', '/agent/v1/sync', {})).status).toBe(200);
  });

  it('a SPIFFE ID cutoff refuses agent SVIDs issued before it and accepts the ones issued after', async () => {
    const store = createRevocationStore(env.DB);
    // past the CA key's first 10 s, where notBefore is clipped to the CA's (shared/registry/revocation.ts)
    h.clock.nowMs += 11_000;
    const agent = await h.attestFresh();
    h.clock.nowMs += 2000;
    const renewed = await renew(h, agent);
    // a cutoff between the two issuances (no serial rows: the cutoff rule alone)
    await store.revokeSpiffeId({ spiffeId: agent.agentId, revokedAt: h.nowSeconds() - 1, expiresAt: h.nowSeconds() + 3600 }, [], 'test', h.nowSeconds());
    await expectError(await h.call(agent, 'POST', '/agent/v1/sync', {}), 401, 'ERR_SVID_REVOKED');
    expect((await h.call(renewed, 'POST', '/agent/v1/sync', {})).status).toBe(200);
    // the admin API's cutoff is "now": the renewed SVID too
    await revoke({ spiffeId: agent.agentId });
    await expectError(await h.call(renewed, 'POST', '/agent/v1/sync', {}), 401, 'ERR_SVID_REVOKED');
  });
});

describe('sync and CRL', () => {
  it('carries the revocations and CRLs when they change, and nothing extra when unchanged', async () => {
    const { agent, spiffeId, serial } = await agentWithWorkload();
    const first = await sync(agent);
    expect(first.revocations).toBeDefined();
    const unchanged = await sync(agent, first.revision);
    expect(unchanged).toEqual({ revision: first.revision });

    await revoke({ serialNumber: serial });
    const afterSerial = await sync(agent, first.revision);
    expect(afterSerial.revision).not.toBe(first.revision);
    expect(afterSerial.entries).toBeUndefined();
    expect(afterSerial.revocations!.serials).toContain(serial);
    expect(afterSerial.revocations!.crls.length).toBeGreaterThan(0);

    const [cutoff] = await revoke({ spiffeId });
    const afterId = await sync(agent, afterSerial.revision);
    expect(afterId.revocations!.spiffeIds).toContainEqual({ spiffeId, revokedAt: cutoff!.revokedAt });
    // a cutoff of an ID none of this agent's entries has does not reach it
    const elsewhere = `spiffe://${TD}/w/${crypto.randomUUID()}`;
    await revoke({ spiffeId: elsewhere });
    const afterOther = await sync(agent, afterId.revision);
    expect(afterOther.revocations!.spiffeIds.map((c) => c.spiffeId)).not.toContain(elsewhere);

    // the CRL: signed by the active CA key (a published authority), listing the serial
    const crl = new x509.X509Crl(fromBase64(afterOther.revocations!.crls[0]!).slice());
    const authorities = (await ca.published()).x509Authorities.map((b) => new x509.X509Certificate(fromBase64(b).slice()));
    const verified = await Promise.all(authorities.map((a) => crl.verify({ publicKey: a.publicKey })));
    expect(verified).toContain(true);
    expect(crl.entries.map((e) => normalizeSerialNumber(e.serialNumber))).toContain(serial);
    expect(crl.nextUpdate!.getTime()).toBeGreaterThan(h.clock.nowMs);
  });

  it('serves the CRL beside the bundle (DER, application/pkix-crl) and re-signs it when revocations change', async () => {
    const res = await h.fetch('/bundle.crl');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pkix-crl');
    const before = new x509.X509Crl(new Uint8Array(await res.arrayBuffer()));
    const again = new x509.X509Crl(new Uint8Array(await (await h.fetch('/bundle.crl')).arrayBuffer()));
    expect(toBase64(new Uint8Array(again.rawData))).toBe(toBase64(new Uint8Array(before.rawData))); // cached, not re-signed
    const serial = crypto.randomUUID().replaceAll('-', '').replace(/^[0-9]/, '8');
    await revoke({ serialNumber: serial });
    const after = new x509.X509Crl(new Uint8Array(await (await h.fetch('/bundle.crl')).arrayBuffer()));
    expect(after.entries.map((e) => normalizeSerialNumber(e.serialNumber))).toContain(normalizeSerialNumber(serial));
    expect(before.entries.map((e) => normalizeSerialNumber(e.serialNumber))).not.toContain(normalizeSerialNumber(serial));
    const pem = new TextDecoder().decode(await (await h.fetch('/bundle.crl.pem')).arrayBuffer());
    expect(pem).toContain('-----BEGIN X509 CRL-----');
  });
});
