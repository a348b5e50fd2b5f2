/**
 * The CA's checks of what it is asked to sign (plain data from RPC, so every field is checked): SPIFFE IDs
 * of the trust domain (memoized: the same entries are signed for over and over), TTLs, DNS names, keys.
 * @module
 */
import 'reflect-metadata';
import { PublicKey } from '@peculiar/x509';
import { err, ok, type Result } from '../../shared/result.js';
import { parseSpiffeId, pathOf, trustDomainOf, type SpiffeId, type TrustDomain } from '../../shared/spiffe/id.js';
import { dnsNameProblem } from '../../shared/spiffe/dns-name.js';
import { readSubjectKey } from '../../shared/spiffe/x509-svid-template.js';
import { fromBase64 } from '../../shared/encoding/base64.js';
import { classifyKeyAlgorithm, type KeyAlgorithmInfo } from '../../shared/spiffe/x509.js';
import { jwtSvidClaimsProblem, type JwtSvidExtraClaims } from '../../shared/registry/jwt-svid-claims.js';
import type { SignJwtSvidRequest, SignX509SvidRequest } from './ca-api.js';

/** Longest TTL a caller may ask for (the CA's notAfter caps it anyway). */
const MAX_TTL_SECONDS = 10 * 365 * 86400;
/** Checked SPIFFE IDs remembered by the CA (about 100 bytes each); the memo starts over when full. */
const CHECKED_IDS_MAX = 100_000;

export interface SignRequestChecks {
  x509(req: SignX509SvidRequest): Result<{ spiffeId: SpiffeId; spki: Uint8Array }>;
  jwt(req: SignJwtSvidRequest): Result<{ spiffeId: SpiffeId; audience: string[]; ttlSeconds: number; extraClaims?: JwtSvidExtraClaims }>;
  /** the SPIFFE ID and TTL of a WIT-SVID request (its `cnf` key is checked by shared/spiffe/wit-svid.ts) */
  wit(req: { spiffeId: unknown; ttlSeconds: unknown }): Result<{ spiffeId: SpiffeId; ttlSeconds: number }>;
}

export function createSignRequestChecks(trustDomain: TrustDomain): SignRequestChecks {
  /** SPIFFE IDs already checked as members of the trust domain (input string → parsed ID) */
  const checkedIds = new Map<string, SpiffeId>();

  function parseMemberId(input: unknown): Result<SpiffeId> {
    let id: SpiffeId;
    try {
      id = parseSpiffeId(input);
    } catch (e) {
      return err({ code: 'ERR_SPIFFE_ID_INVALID', message: e instanceof Error ? e.message : 'invalid SPIFFE ID' });
    }
    if (trustDomainOf(id) !== trustDomain) return err({ code: 'ERR_TRUST_DOMAIN_MISMATCH', message: `"${id}" is not a member of trust domain "${trustDomain}"` });
    if (pathOf(id) === '') return err({ code: 'ERR_SPIFFE_ID_INVALID', message: 'an SVID needs a SPIFFE ID with a path' });
    return ok(id);
  }

  function checkSpiffeId(input: unknown): Result<SpiffeId> {
    if (typeof input === 'string') {
      const known = checkedIds.get(input);
      if (known) return ok(known);
    }
    const checked = parseMemberId(input);
    if (checked.ok && typeof input === 'string') {
      if (checkedIds.size >= CHECKED_IDS_MAX) checkedIds.clear();
      checkedIds.set(input, checked.value);
    }
    return checked;
  }

  return {
    x509(req) {
      if (typeof req !== 'object' || req === null) return err({ code: 'ERR_BAD_REQUEST', message: 'request must be an object' });
      const id = checkSpiffeId(req.spiffeId);
      if (!id.ok) return id;
      const ttl = checkTtl(req.ttlSeconds);
      if (!ttl.ok) return ttl;
      if (!Array.isArray(req.dnsNames)) return err({ code: 'ERR_BAD_REQUEST', message: 'dnsNames must be an array' });
      for (const d of req.dnsNames) {
        const problem = dnsNameProblem(d);
        if (problem) return err({ code: 'ERR_BAD_REQUEST', message: problem });
      }
      let spki: Uint8Array;
      try {
        const input: unknown = req.publicKeySpki;
        spki = input instanceof Uint8Array ? input : fromBase64(String(input), 'ERR_CSR_INVALID', 'publicKeySpki');
        // lean DER read first; anything it does not accept gets the general parser's verdict and message
        if (typeof readSubjectKey(spki) !== 'string') return ok({ spiffeId: id.value, spki });
        const kind = classifyKeyAlgorithm(new PublicKey(spki.slice()).algorithm as KeyAlgorithmInfo);
        if (kind !== 'EC P-256' && kind !== 'EC P-384' && kind !== 'RSA') return err({ code: 'ERR_CSR_INVALID', message: kind });
      } catch {
        return err({ code: 'ERR_CSR_INVALID', message: 'publicKeySpki is not a DER SubjectPublicKeyInfo' });
      }
      return ok({ spiffeId: id.value, spki });
    },
    jwt(req) {
      const id = checkSpiffeId(req?.spiffeId);
      if (!id.ok) return id;
      const { audience, ttlSeconds } = req;
      if (!Array.isArray(audience) || audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) {
        return err({ code: 'ERR_BAD_REQUEST', message: 'audience must be a non-empty list of non-empty strings' });
      }
      const ttl = checkTtl(ttlSeconds);
      if (!ttl.ok) return ttl;
      const { extraClaims } = req;
      if (extraClaims === undefined) return ok({ spiffeId: id.value, audience, ttlSeconds: ttl.value });
      const problem = jwtSvidClaimsProblem(extraClaims);
      if (problem) return err({ code: 'ERR_BAD_REQUEST', message: problem });
      return ok({ spiffeId: id.value, audience, ttlSeconds: ttl.value, extraClaims });
    },
    wit(req) {
      const id = checkSpiffeId(req?.spiffeId);
      if (!id.ok) return id;
      const ttl = checkTtl(req.ttlSeconds);
      return ttl.ok ? ok({ spiffeId: id.value, ttlSeconds: ttl.value }) : ttl;
    },
  };
}

function checkTtl(ttlSeconds: unknown): Result<number> {
  if (typeof ttlSeconds !== 'number' || !Number.isSafeInteger(ttlSeconds) || ttlSeconds <= 0 || ttlSeconds > MAX_TTL_SECONDS) {
    return err({ code: 'ERR_BAD_REQUEST', message: `ttlSeconds must be an integer between 1 and ${MAX_TTL_SECONDS}` });
  }
  return ok(ttlSeconds);
}
