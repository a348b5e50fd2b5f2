// A fake issuer for agent tests: a real HTTP server on 127.0.0.1 implementing the agent-API contract
// (src/shared/agent-api.ts) with real crypto: a test CA made with @peculiar/x509 signs agent and workload
// X509-SVIDs, jose signs JWT-SVIDs, every signed call's agent proof is verified with verifyAgentProof,
// join tokens are single-use. Time comes from the test's clock. `down` makes every request fail at the
// socket, as an unreachable issuer would.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { webcrypto } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT, type JWK } from 'jose';
import type { AttestRequest, JwtSvidsRequest, SpiffeBundleJson, SyncRequest, X509SvidsRequest, X509SvidWire } from '../../../src/shared/agent-api.js';
import { verifyAgentProof } from '../../../src/shared/agent-proof.js';
import type { Entry } from '../../../src/shared/registry/entry.js';
import type { Selector } from '../../../src/shared/registry/selectors.js';
import type { SpiffeId, TrustDomain } from '../../../src/shared/spiffe/id.js';
import { makeEntry } from '../../shared/fixtures/entry.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const subtle = webcrypto.subtle;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIG = { name: 'ECDSA', hash: 'SHA-256' } as const;
type Keys = webcrypto.CryptoKeyPair;

export interface FakeIssuerOptions {
  trustDomain: string;
  clock: () => number;
  agentSvidTtlSeconds?: number;
  x509SvidTtlSeconds?: number;
  jwtSvidTtlSeconds?: number;
}

interface Authority {
  keys: Keys;
  cert: x509.X509Certificate;
}

export class FakeIssuer {
  readonly trustDomain: string;
  readonly clock: () => number;
  agentSvidTtlSeconds: number;
  x509SvidTtlSeconds: number;
  jwtSvidTtlSeconds: number;
  /** true: every request is cut at the socket */
  down = false;
  /** /jwt-svids answers after this many real ms (a slow issuer) */
  jwtDelayMs = 0;
  readonly joinTokens = new Set<string>();
  /** agents the issuer no longer accepts (→ 401) */
  readonly evicted = new Set<string>();
  /** every request: route and parsed body */
  readonly calls: Array<{ route: string; body: unknown; agentId?: string }> = [];
  federatedBundles: Record<string, SpiffeBundleJson> | undefined;

  #server: Server | undefined;
  #entries = new Map<string, Entry>();
  #revision = 1;
  #authorities: Authority[] = [];
  #jwtKey!: Keys;
  #jwtKid = 'jwt-1';
  #bundleSequence = 1;
  #serial = 1;
  url = '';

  constructor(opts: FakeIssuerOptions) {
    this.trustDomain = opts.trustDomain;
    this.clock = opts.clock;
    this.agentSvidTtlSeconds = opts.agentSvidTtlSeconds ?? 3600;
    this.x509SvidTtlSeconds = opts.x509SvidTtlSeconds ?? 600;
    this.jwtSvidTtlSeconds = opts.jwtSvidTtlSeconds ?? 300;
  }

  async start(): Promise<this> {
    this.#authorities = [await this.#makeCa('Fake CA 1')];
    this.#jwtKey = await subtle.generateKey(EC, true, ['sign', 'verify']);
    this.#server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  // ---- test controls ----

  get revision(): string {
    return `rev-${this.#revision}`;
  }

  get caDer(): Uint8Array {
    return new Uint8Array(this.#authorities[0]!.cert.rawData);
  }

  addEntry(id: string, spiffePath: string, selectors: Selector[], extra: Partial<Entry> = {}): Entry {
    const entry = makeEntry({
      id,
      spiffeId: `spiffe://${this.trustDomain}${spiffePath}` as SpiffeId,
      parentId: `spiffe://${this.trustDomain}/spire/agent/join_token/any` as SpiffeId,
      selectors,
      revisionNumber: 1,
      createdAt: Math.floor(this.clock() / 1000),
      ...extra,
    });
    this.#entries.set(id, entry);
    this.#revision++;
    return entry;
  }

  deleteEntry(id: string): void {
    this.#entries.delete(id);
    this.#revision++;
  }

  /** adds a second CA to the bundle (a CA rotation publishing its next key) */
  async addAuthority(): Promise<void> {
    this.#authorities.push(await this.#makeCa(`Fake CA ${this.#authorities.length + 1}`));
    this.#bundleSequence++;
  }

  callsTo(route: string): Array<{ route: string; body: unknown; agentId?: string }> {
    return this.calls.filter((c) => c.route === route);
  }

  async bundle(): Promise<SpiffeBundleJson> {
    const keys: Array<Record<string, unknown>> = [];
    for (const a of this.#authorities) {
      const jwk = await exportJWK(await a.cert.publicKey.export(EC, ['verify']) as unknown as webcrypto.CryptoKey);
      keys.push({ ...jwk, use: 'x509-svid', x5c: [Buffer.from(a.cert.rawData).toString('base64')] });
    }
    const jwtJwk: JWK = await exportJWK(this.#jwtKey.publicKey);
    keys.push({ ...jwtJwk, use: 'jwt-svid', kid: this.#jwtKid });
    return { keys, spiffe_sequence: this.#bundleSequence, spiffe_refresh_hint: 300 };
  }

  // ---- HTTP ----

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.down) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = new Uint8Array(Buffer.concat(chunks));
    const url = new URL(req.url ?? '/', 'http://x');
    const route = url.pathname.replace(/^\/agent\/v1/, '');
    const body = raw.length ? (JSON.parse(Buffer.from(raw).toString('utf8')) as unknown) : undefined;
    const send = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    const fail = (status: number, code: string, message: string) => send(status, { error: { code, message } });
    try {
      if (route === '/attest' && req.method === 'POST') {
        this.calls.push({ route, body });
        const r = body as AttestRequest;
        const token = (r.payload as { token?: string }).token ?? '';
        if (r.attestationType !== 'join_token' || !this.joinTokens.delete(token)) return fail(401, 'ERR_JOIN_TOKEN_INVALID', 'join token is invalid');
        const agentId = `spiffe://${this.trustDomain}/spire/agent/join_token/${token}`;
        this.evicted.delete(agentId);
        return send(200, { svid: await this.#sign(r.csr, agentId, this.agentSvidTtlSeconds), bundle: await this.bundle() });
      }
      const proof = await verifyAgentProof({
        authorization: req.headers.authorization,
        method: req.method ?? 'GET',
        pathAndQuery: url.pathname + url.search,
        body: raw,
        x509Authorities: this.#authorities.map((a) => new Uint8Array(a.cert.rawData)),
        trustDomain: this.trustDomain as TrustDomain,
        now: Math.floor(this.clock() / 1000),
        maxSkewSeconds: 60,
      });
      if (!proof.ok) return fail(401, 'ERR_AGENT_AUTH_FAILED', 'agent authentication failed');
      const agentId = proof.value.agentId;
      if (this.evicted.has(agentId)) return fail(401, 'ERR_AGENT_AUTH_FAILED', 'agent authentication failed');
      this.calls.push({ route, body, agentId });
      switch (route) {
        case '/renew':
          return send(200, { svid: await this.#sign((body as { csr: string }).csr, agentId, this.agentSvidTtlSeconds) });
        case '/sync': {
          const r = body as SyncRequest;
          return send(200, {
            revision: this.revision,
            ...(r.revision !== this.revision ? { entries: [...this.#entries.values()] } : {}),
            ...(r.bundleSequence !== this.#bundleSequence ? { bundle: await this.bundle() } : {}),
            ...(this.federatedBundles ? { federatedBundles: this.federatedBundles } : {}),
          });
        }
        case '/x509-svids': {
          const svids = [];
          for (const { entryId, csr } of (body as X509SvidsRequest).requests) {
            const entry = this.#entries.get(entryId);
            if (entry) svids.push({ entryId, svid: await this.#sign(csr, entry.spiffeId, this.x509SvidTtlSeconds) });
          }
          return send(200, { svids });
        }
        case '/jwt-svids': {
          const svids = [];
          const now = Math.floor(this.clock() / 1000);
          const requests = (body as JwtSvidsRequest).requests;
          // like the issuer: one entry it does not know refuses the whole batch
          const unknown = requests.find((r) => !this.#entries.has(r.entryId));
          if (unknown) return fail(403, 'ERR_NO_IDENTITY', `no identity issued: entry "${unknown.entryId}" is not authorized for this agent`);
          if (this.jwtDelayMs > 0) await new Promise((r) => setTimeout(r, this.jwtDelayMs));
          for (const { entryId, audience } of requests) {
            const entry = this.#entries.get(entryId)!;
            const exp = now + this.jwtSvidTtlSeconds;
            const token = await new SignJWT({})
              .setProtectedHeader({ alg: 'ES256', kid: this.#jwtKid, typ: 'JWT' })
              .setSubject(entry.spiffeId)
              .setAudience(audience)
              .setIssuedAt(now)
              .setExpirationTime(exp)
              .sign(this.#jwtKey.privateKey);
            svids.push({ entryId, spiffeId: entry.spiffeId, token, expiresAt: exp });
          }
          return send(200, { svids });
        }
        case '/bundle':
          return send(200, { bundle: await this.bundle() });
        default:
          return fail(404, 'ERR_NOT_FOUND', 'not found');
      }
    } catch (e) {
      return fail(500, 'ERR_INTERNAL', `fake issuer: ${(e as Error).message}`);
    }
  }

  async #makeCa(name: string): Promise<Authority> {
    const keys = await subtle.generateKey(EC, true, ['sign', 'verify']);
    const now = this.clock();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: `0${this.#serial++}`,
      name: `CN=${name},O=Wisp Test`,
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + 365 * 86400_000),
      keys: keys as never,
      signingAlgorithm: SIG,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${this.trustDomain}` }]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as never),
      ],
    });
    return { keys, cert };
  }

  async #sign(csrB64: string, spiffeId: string, ttlSeconds: number): Promise<X509SvidWire> {
    const csr = new x509.Pkcs10CertificateRequest(Buffer.from(csrB64, 'base64'));
    if (!(await csr.verify())) throw new Error('CSR signature invalid');
    const ca = this.#authorities[0]!;
    const now = this.clock();
    const notAfter = new Date(now + ttlSeconds * 1000);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: (this.#serial++).toString(16).padStart(4, '0'),
      subject: 'O=SPIRE',
      issuer: ca.cert.subject,
      notBefore: new Date(now),
      notAfter,
      signingKey: ca.keys.privateKey as never,
      publicKey: csr.publicKey,
      signingAlgorithm: SIG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }]),
        await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey as never),
      ],
    });
    return { spiffeId, certChain: [Buffer.from(cert.rawData).toString('base64')], expiresAt: Math.floor(notAfter.getTime() / 1000) };
  }
}
