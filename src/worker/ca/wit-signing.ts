/**
 * The CA's WIT-SVID signing step (WIT-SVID.md), apart from ca-core.ts: per request, the SPIFFE ID and TTL
 * checked as for every SVID (sign-requests.ts), the workload key checked again here (the Worker checked it
 * first; the CA signs nothing it has not checked itself), the lifetime capped at the WIT key's notAfter.
 * @module
 */
import type { WispErrorData } from '../../shared/errors.js';
import { err, ok, type Result } from '../../shared/result.js';
import { parseWitPublicJwk, type WitSvidMinter } from '../../shared/spiffe/wit-svid.js';
import type { SignedWitSvid, SignWitSvidRequest } from './ca-api.js';
import type { StoredSlot } from './ca-storage.js';
import type { SignRequestChecks } from './sign-requests.js';

/** Every result of a WIT signing call while the profile is off (WIT_SVID_TTL unset). */
export const WIT_OFF: Result<never> = Object.freeze(err<WispErrorData>({ code: 'ERR_UNIMPLEMENTED', message: 'WIT-SVIDs are not enabled on this issuer (WIT_SVID_TTL)' }));

/** Signs one request at a time with `minter`, the active WIT key `active`'s, at `now` (ms). */
export function createWitSigner(checks: SignRequestChecks, minter: WitSvidMinter, active: StoredSlot, now: number): (request: SignWitSvidRequest) => Promise<Result<SignedWitSvid>> {
  return async (request) => {
    const checked = checks.wit(request);
    if (!checked.ok) return checked;
    const cnfJwk = await parseWitPublicJwk(request.publicJwk);
    if (!cnfJwk.ok) return cnfJwk;
    const { spiffeId, ttlSeconds } = checked.value;
    const expiresAt = Math.min(now + ttlSeconds * 1000, active.notAfter);
    const token = await minter.mint({ spiffeId, cnfJwk: cnfJwk.value, now, expiresAt });
    return ok({ spiffeId, token, expiresAt: Math.floor(expiresAt / 1000) });
  };
}
