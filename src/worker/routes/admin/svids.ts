/**
 * Admin minting of SVIDs for any SPIFFE ID of the trust domain (SPIRE's svid.v1 MintX509SVID / MintJWTSVID)
 * and the trust domain's bundle. The Worker checks the request (CSR proof of possession, bounds); the CA
 * Durable Object only signs (ca-api.ts).
 * @module
 */
import { Hono } from 'hono';
import { WispError } from '../../../shared/errors.js';
import { dnsNameProblem } from '../../../shared/spiffe/dns-name.js';
import { ENTRY_DNS_NAMES_MAX, ENTRY_JWT_SVID_TTL_MAX_SECONDS, ENTRY_X509_SVID_TTL_MAX_SECONDS } from '../../../shared/registry/entry-validation.js';
import { unwrap } from '../../../shared/result.js';
import { buildBundleJson } from '../../../shared/spiffe/bundle.js';
import { parseCsr } from '../../../shared/spiffe/csr.js';
import { parseSpiffeIdInTrustDomain } from '../../../shared/spiffe/id.js';
import { fromBase64 } from '../../../shared/encoding/base64.js';
import type { AppDeps } from '../../deps.js';
import { noteAudit } from '../../middleware/audit.js';
import { asObject, readJsonBody } from '../../http-json.js';
import { onlyFields } from './params.js';
import { readPublishedKeys } from '../../ca/published-keys.js';

export const MINT_AUDIENCE_MAX = 32;
export const MINT_AUDIENCE_MAX_BYTES = 1024;
/** Characters of a minted JWT-SVID's audience list kept in its audit row. */
const AUDIT_AUDIENCE_MAX_CHARS = 512;

function bad(message: string): WispError {
  return new WispError('ERR_BAD_REQUEST', message);
}

/** undefined or 0 → `fallback`; otherwise whole seconds in 1..max. */
function ttlOf(value: unknown, fallback: number, max: number): number {
  if (value === undefined || value === 0) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max) {
    throw bad(`ttlSeconds must be whole seconds from 1 to ${max} (0 or absent: the issuer default)`);
  }
  return value;
}

function dnsNamesOf(value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) throw bad('dnsNames must be an array of strings');
  if (value.length > ENTRY_DNS_NAMES_MAX) throw bad(`dnsNames has more than ${ENTRY_DNS_NAMES_MAX} items`);
  for (const name of value as string[]) {
    const problem = dnsNameProblem(name);
    if (problem) throw bad(problem);
  }
  return value as string[];
}

function audienceOf(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MINT_AUDIENCE_MAX) {
    throw bad(`audience must be an array of 1 to ${MINT_AUDIENCE_MAX} strings`);
  }
  for (const aud of value) {
    if (typeof aud !== 'string' || aud.length === 0 || aud.length > MINT_AUDIENCE_MAX_BYTES) {
      throw bad(`each audience must be a non-empty string of at most ${MINT_AUDIENCE_MAX_BYTES} characters`);
    }
  }
  return value as string[];
}

export function svidRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const { config } = deps;

  app.post('/x509-svids/mint', async (c) => {
    const body = asObject(await readJsonBody(c));
    onlyFields(body, ['spiffeId', 'csr', 'ttlSeconds', 'dnsNames']);
    const spiffeId = parseSpiffeIdInTrustDomain(body.spiffeId, config.trustDomain, 'spiffeId');
    noteAudit(c, { objectIds: [spiffeId] });
    if (typeof body.csr !== 'string') throw new WispError('ERR_CSR_INVALID', 'csr must be a base64 DER PKCS#10 request');
    const csr = await parseCsr(fromBase64(body.csr, 'ERR_CSR_INVALID', 'csr'));
    const ttlSeconds = ttlOf(body.ttlSeconds, config.x509SvidTtlSeconds, ENTRY_X509_SVID_TTL_MAX_SECONDS);
    const dnsNames = dnsNamesOf(body.dnsNames);
    noteAudit(c, { detail: { ttlSeconds, dnsNames: dnsNames.length } });
    const ca = deps.ca();
    // counted in the signing bucket of the admin principal, as an agent's signing is in its own
    const [result] = await ca.signX509Svids([{ spiffeId, publicKeySpki: csr.publicKeySpki, dnsNames, ttlSeconds }], c.get('adminPrincipal'));
    if (!result) throw new WispError('ERR_INTERNAL', 'internal error');
    const signed = unwrap(result);
    const bundle = await buildBundleJson(await readPublishedKeys(ca));
    return c.json({ svid: { spiffeId: signed.spiffeId, certChain: signed.certChain, expiresAt: signed.expiresAt }, bundle });
  });

  app.post('/jwt-svids/mint', async (c) => {
    const body = asObject(await readJsonBody(c));
    onlyFields(body, ['spiffeId', 'audience', 'ttlSeconds']);
    const spiffeId = parseSpiffeIdInTrustDomain(body.spiffeId, config.trustDomain, 'spiffeId');
    noteAudit(c, { objectIds: [spiffeId] });
    const audience = audienceOf(body.audience);
    const ttlSeconds = ttlOf(body.ttlSeconds, config.jwtSvidTtlSeconds, ENTRY_JWT_SVID_TTL_MAX_SECONDS);
    noteAudit(c, { detail: { ttlSeconds, audience: audience.join(' ').slice(0, AUDIT_AUDIENCE_MAX_CHARS) } });
    const signed = unwrap(await deps.ca().signJwtSvid({ spiffeId, audience, ttlSeconds }, c.get('adminPrincipal')));
    return c.json({ token: signed.token, expiresAt: signed.expiresAt });
  });

  app.get('/bundle', async (c) => c.json(await buildBundleJson(await readPublishedKeys(deps.ca()))));

  return app;
}
