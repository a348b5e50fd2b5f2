/**
 * The limits of the benchmark, measured in workerd next to the issuer: ECDSA P-256 signatures, CSR signature
 * verifications (import of the subject key + ECDSA verify), and the trust-domain CA Durable Object signing
 * X509-SVID and JWT-SVID batches (its throughput ceilings); also the issuance pieces for the profile lines. Loops run inside one request; the caller times the request from
 * outside and subtracts an empty request (workerd's clock does not advance during pure computation).
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { parseCsr } from '../src/shared/spiffe/csr.js';
import { parseSpiffeId } from '../src/shared/spiffe/id.js';
import { createJwtSvidMinter } from '../src/shared/spiffe/jwt-svid-minter.js';
import { createX509SvidTemplate, issueFromTemplate, type X509SvidTemplate } from '../src/shared/spiffe/x509-svid-template.js';
import { createCaCertificate } from '../src/shared/spiffe/ca-cert.js';
import { parseTrustDomain } from '../src/shared/spiffe/id.js';

interface CaStub {
  signX509Svids(requests: unknown[]): Promise<{ ok: boolean }[]>;
  signJwtSvids(requests: unknown[]): Promise<{ ok: boolean }[]>;
}
interface LimitsEnv {
  CA: { idFromName(name: string): unknown; get(id: unknown): CaStub };
  TRUST_DOMAIN: string;
}

type Key = Parameters<typeof crypto.subtle.sign>[1];
type KeyPair = { publicKey: Key; privateKey: Key };

const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;

let jwtMinter: ReturnType<typeof createJwtSvidMinter> | undefined;
let state: Promise<{ priv: Key; pub: Key; spki: ArrayBuffer; sig: ArrayBuffer; data: Uint8Array; spkis: Uint8Array[] }> | undefined;
/** the issuance path's own pieces, for the profile lines of the report (not limits) */
let parts: Promise<{ template: X509SvidTemplate; csr: Uint8Array; spki: Uint8Array }> | undefined;

async function initParts() {
  const now = Date.now();
  const ca = (await crypto.subtle.generateKey(P256, true, ['sign', 'verify'])) as KeyPair;
  const caSpki = new Uint8Array((await crypto.subtle.exportKey('spki', ca.publicKey)) as ArrayBuffer);
  const der = await createCaCertificate({ trustDomain: parseTrustDomain('example.org'), subject: 'O=Wisp,CN=Bench CA', publicKeySpki: caSpki, now: now - 60_000, notAfter: now + 86_400_000 }, { selfKey: ca.privateKey as never, signAlgorithm: SIGN });
  const template = await createX509SvidTemplate({ cert: new x509.X509Certificate(der), privateKey: ca.privateKey as never, signAlgorithm: SIGN }, now);
  const subject = (await crypto.subtle.generateKey(P256, false, ['sign', 'verify'])) as KeyPair;
  const csr = new Uint8Array((await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=bench', keys: subject as never, signingAlgorithm: SIGN })).rawData);
  return { template, csr, spki: (await parseCsr(csr)).publicKeySpki };
}

async function init() {
  const pair = (await crypto.subtle.generateKey(P256, true, ['sign', 'verify'])) as KeyPair;
  // about the size of a CSR's / certificate's to-be-signed part
  const data = crypto.getRandomValues(new Uint8Array(400));
  const sig = await crypto.subtle.sign(SIGN, pair.privateKey, data);
  const spki = (await crypto.subtle.exportKey('spki', pair.publicKey)) as ArrayBuffer;
  const spkis: Uint8Array[] = [];
  for (let i = 0; i < 100; i++) {
    const k = (await crypto.subtle.generateKey(P256, true, ['sign', 'verify'])) as KeyPair;
    // DER bytes, as the agent API passes them to the DO (SignX509SvidRequest)
    spkis.push(new Uint8Array((await crypto.subtle.exportKey('spki', k.publicKey)) as ArrayBuffer));
  }
  return { priv: pair.privateKey, pub: pair.publicKey, spki, sig, data, spkis };
}

export default {
  async fetch(req: Request, env: LimitsEnv): Promise<Response> {
    const url = new URL(req.url);
    const n = Number(url.searchParams.get('n') ?? '0');
    state ??= init();
    const s = await state;
    if (url.pathname === '/sign') {
      for (let i = 0; i < n; i++) await crypto.subtle.sign(SIGN, s.priv, s.data);
    } else if (url.pathname === '/verify') {
      for (let i = 0; i < n; i++) {
        const key = await crypto.subtle.importKey('spki', s.spki, P256, false, ['verify']);
        if (!(await crypto.subtle.verify(SIGN, key, s.sig, s.data))) throw new Error('verify failed');
      }
    } else if (url.pathname === '/jwt-verify') {
      // a subject token's check at token exchange: the issuer's key is imported once and cached (issuer-keys.ts)
      for (let i = 0; i < n; i++) if (!(await crypto.subtle.verify(SIGN, s.pub, s.sig, s.data))) throw new Error('verify failed');
    } else if (url.pathname === '/ca-batch') {
      const ca = env.CA.get(env.CA.idFromName(env.TRUST_DOMAIN));
      for (let i = 0; i < n; i++) {
        const reqs = s.spkis.map((spki, j) => ({ spiffeId: `spiffe://${env.TRUST_DOMAIN}/bench/do/${j}`, publicKeySpki: spki, dnsNames: [], ttlSeconds: 3600 }));
        const res = await ca.signX509Svids(reqs);
        if (!res.every((r) => r.ok)) throw new Error('CA refused a batch');
      }
    } else if (url.pathname === '/ca-rpc-empty' || url.pathname === '/ca-rpc-refused') {
      // the RPC alone: an empty batch, or 100 requests the CA refuses at its first check (serialization both ways)
      const ca = env.CA.get(env.CA.idFromName(env.TRUST_DOMAIN));
      for (let i = 0; i < n; i++) {
        const reqs = url.pathname === '/ca-rpc-empty' ? [] : s.spkis.map((spki, j) => ({ spiffeId: `spiffe://elsewhere.test/bench/do/${j}`, publicKeySpki: spki, dnsNames: [], ttlSeconds: 3600 }));
        await ca.signX509Svids(reqs);
      }
    } else if (url.pathname === '/ca-jwt-batch') {
      const ca = env.CA.get(env.CA.idFromName(env.TRUST_DOMAIN));
      const reqs = s.spkis.map((_, j) => ({ spiffeId: `spiffe://${env.TRUST_DOMAIN}/bench/do/${j}`, audience: [`aud-${j}`], ttlSeconds: 300 }));
      for (let i = 0; i < n; i++) {
        const res = await ca.signJwtSvids(reqs);
        if (!res.every((r) => r.ok)) throw new Error('CA refused a batch');
      }
    } else if (url.pathname === '/mint') {
      jwtMinter ??= createJwtSvidMinter({ issuer: 'https://example.org', kid: 'k1', alg: 'ES256', key: s.priv as never });
      const spiffeId = parseSpiffeId('spiffe://example.org/bench/profile');
      const now = Date.now();
      for (let i = 0; i < n; i++) await jwtMinter.mint({ spiffeId, audience: ['aud-1'], now, expiresAt: now + 300_000 });
    } else if (url.pathname === '/issue' || url.pathname === '/parse-csr' || url.pathname === '/sha1') {
      parts ??= initParts();
      const p = await parts;
      const spiffeId = parseSpiffeId('spiffe://example.org/bench/profile');
      for (let i = 0; i < n; i++) {
        if (url.pathname === '/issue') await issueFromTemplate(p.template, { spiffeId, publicKeySpki: p.spki, dnsNames: [], ttlSeconds: 3600, now: Date.now() });
        else if (url.pathname === '/parse-csr') await parseCsr(p.csr);
        else await crypto.subtle.digest('SHA-1', p.spki);
      }
    } else if (url.pathname !== '/noop') {
      return new Response('not found', { status: 404 });
    }
    return new Response('ok');
  },
};
