/**
 * The rules of authority management (SPIRE's LocalAuthority API, pkg/server/api/localauthority/v1): which
 * key an operator may activate, taint or revoke, and the messages when not. Pure, over one kind's slots
 * with their authority IDs (X.509: the CA certificate's subject key ID, hex; JWT: the kid).
 *
 *   activate: only the prepared authority (it becomes active; the active one becomes old)
 *   taint:    only the old authority (the previously active one), once
 *   revoke:   only a tainted old authority; it leaves the bundle and the JWKS at once
 * @module
 */
import { err, ok, type Result } from '../result.js';
import type { WispErrorData } from '../errors.js';
import { isLive, type KeySlot } from './key-slot.js';

export type AuthorityOp = 'show' | 'prepare' | 'activate' | 'taint' | 'revoke';
export const AUTHORITY_OPS: readonly AuthorityOp[] = ['show', 'prepare', 'activate', 'taint', 'revoke'];

/** One authority as the admin API shows it (SPIRE's AuthorityState, plus the tainted flag). */
export interface AuthorityState {
  authorityId: string;
  /** seconds since the epoch */
  expiresAt: number;
  tainted: boolean;
  /** x509 under an upstream CA: the subject key ID of the upstream certificate that signed it */
  upstreamAuthoritySubjectKeyId?: string;
}

/** `show`: each slot role at most once, as SPIRE's GetX509AuthorityState / GetJWTAuthorityState. */
export interface AuthorityStates {
  active?: AuthorityState;
  prepared?: AuthorityState;
  old?: AuthorityState;
}

/** What an operation answered: `show` the states, the others the authority they acted on. */
export type AuthorityResult = { op: 'show'; states: AuthorityStates } | { op: Exclude<AuthorityOp, 'show'>; authority: AuthorityState };

export interface IdentifiedSlot extends KeySlot {
  authorityId: string;
}

/** Longest authority ID accepted (a hex SHA-1 key ID is 40, a base64url SHA-256 thumbprint 43). */
export const MAX_AUTHORITY_ID_CHARS = 128;
const AUTHORITY_ID_PATTERN = /^[A-Za-z0-9_:-]+$/;

const state = (code: 'ERR_AUTHORITY_STATE' | 'ERR_AUTHORITY_NOT_FOUND' | 'ERR_BAD_REQUEST', message: string): Result<never> => err<WispErrorData>({ code, message });

/** The roles of the live slots: the active one, the prepared one and the old one (newest of each). */
export function authorityRoles<S extends IdentifiedSlot>(slots: readonly S[], now: number): { active?: S; prepared?: S; old?: S } {
  const live = slots.filter((s) => isLive(s, now));
  return { active: newest(live, 'active'), prepared: newest(live, 'prepared'), old: newest(live, 'old') };
}

/** An authority ID from untrusted input: a non-empty string of key ID characters. */
export function parseAuthorityId(value: unknown): Result<string> {
  if (value === undefined || value === null || value === '') return state('ERR_BAD_REQUEST', 'no authority ID provided');
  if (typeof value !== 'string' || value.length > MAX_AUTHORITY_ID_CHARS || !AUTHORITY_ID_PATTERN.test(value)) {
    return state('ERR_BAD_REQUEST', `authorityId must be a key ID of at most ${MAX_AUTHORITY_ID_CHARS} characters (hex or base64url)`);
  }
  return ok(value);
}

/** The slot `op` may act on, or why not. The ID is compared exactly (X.509 IDs are lowercase hex). */
export function checkAuthorityTarget<S extends IdentifiedSlot>(op: 'activate' | 'taint' | 'revoke', slots: readonly S[], authorityId: string, now: number): Result<S> {
  const roles = authorityRoles(slots, now);
  const target = slots.find((s) => s.authorityId === authorityId && isLive(s, now));
  if (!target) return state('ERR_AUTHORITY_NOT_FOUND', `no authority found with ID "${authorityId}"`);
  switch (op) {
    case 'activate':
      if (target !== roles.prepared) return state('ERR_AUTHORITY_STATE', 'only Prepared authorities can be activated');
      return ok(target);
    case 'taint':
      if (target === roles.active) return state('ERR_AUTHORITY_STATE', 'unable to taint current local authority');
      if (target !== roles.old) return state('ERR_AUTHORITY_STATE', 'only Old local authorities can be tainted');
      if (target.tainted) return state('ERR_AUTHORITY_STATE', 'authority is already tainted');
      return ok(target);
    case 'revoke':
      if (target === roles.active) return state('ERR_AUTHORITY_STATE', 'unable to use current authority');
      if (target.status === 'prepared') return state('ERR_AUTHORITY_STATE', 'unable to use a prepared key');
      if (!target.tainted) return state('ERR_AUTHORITY_STATE', 'it is not possible to revoke an untainted authority');
      return ok(target);
  }
}

function newest<S extends KeySlot>(slots: readonly S[], status: KeySlot['status']): S | undefined {
  return slots.filter((s) => s.status === status).reduce<S | undefined>((best, s) => (!best || s.issuedAt > best.issuedAt ? s : best), undefined);
}
