/**
 * Authority management on the CA core (SPIRE's LocalAuthority API): show, prepare, activate, taint and
 * revoke, for the X.509 CA key and the JWT key alike. The rules (which key, which message) are in
 * shared/ca/local-authority.ts; this module applies them to the core's slots through `AuthorityHost`, the
 * few core internals it needs, so every write goes through the same persist-then-publish path as rotation.
 * @module
 */
import type { KeyKind } from '../../shared/ca/key-slot.js';
import { x509AuthorityIdOf, signerAuthorityIdsOf } from '../../shared/ca/authority-id.js';
import { authorityRoles, checkAuthorityTarget, parseAuthorityId, AUTHORITY_OPS, type AuthorityResult, type AuthorityState, type IdentifiedSlot } from '../../shared/ca/local-authority.js';
import type { AuthorityAction } from '../../shared/ca/rotation.js';
import { err, ok, type Result } from '../../shared/result.js';
import type { WispErrorData } from '../../shared/errors.js';
import { logEvent } from '../log.js';
import type { AuthorityRequest } from './ca-api.js';
import type { StoredSlot } from './ca-storage.js';

/** What the core lends: its slots, its clock, one write path, and a way to run with nothing interleaved. */
export interface AuthorityHost {
  now(): number;
  slotsOf(kind: KeyKind): StoredSlot[];
  /** rotation due at `now`, done first so the roles are current */
  ensureCurrent(now: number): Promise<Result<true>>;
  /** persists and applies one step (the core's rotation path); `prepare` generates the key */
  apply(kind: KeyKind, action: AuthorityAction, now: number): Promise<void>;
  /** runs `fn` with no other call or rotation interleaved (the DO: blockConcurrencyWhile) */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  /** X.509 CA signed by an upstream CA: local taint and revoke are refused, as SPIRE */
  hasUpstream(): Promise<boolean>;
  lifetimeMs: number;
}

const bad = (code: WispErrorData['code'], message: string): Result<never> => err<WispErrorData>({ code, message });

/** The authority IDs of a kind's slots (X.509: the CA certificate's subject key ID; JWT: the kid). */
export function identify(slots: readonly StoredSlot[]): Array<StoredSlot & IdentifiedSlot> {
  return slots.map((s) => ({ ...s, authorityId: s.kind === 'x509' && s.certDer ? (x509AuthorityIdOf(s.certDer) ?? s.kid) : s.kid }));
}

/** The tainted authorities still published, for the agents' sync. */
export function taintedAuthorities(slots: readonly StoredSlot[], now: number): { x509: string[]; jwt: string[] } {
  const tainted = identify(slots.filter((s) => s.tainted && now < s.notAfter));
  return { x509: tainted.filter((s) => s.kind === 'x509').map((s) => s.authorityId), jwt: tainted.filter((s) => s.kind === 'jwt').map((s) => s.authorityId) };
}

/** Runs one request; every refusal is a Result error (400, 404 or 409 at the admin API). */
export async function manageAuthority(host: AuthorityHost, request: AuthorityRequest): Promise<Result<AuthorityResult>> {
  if (typeof request !== 'object' || request === null) return bad('ERR_BAD_REQUEST', 'request must be an object');
  const { kind, op } = request;
  if (kind !== 'x509' && kind !== 'jwt') return bad('ERR_BAD_REQUEST', 'kind must be x509 or jwt');
  if (!AUTHORITY_OPS.includes(op)) return bad('ERR_BAD_REQUEST', `op must be one of ${AUTHORITY_OPS.join(', ')}`);
  const ready = await host.ensureCurrent(host.now());
  if (!ready.ok) return ready;
  // A throw inside blockConcurrencyWhile would reset the object: failures come out as values.
  return host.exclusive(() => run(host, request).catch((e: unknown) => {
    logEvent('error', 'authority management failed', { kind, op, cause: e instanceof Error ? e.message : String(e) });
    return bad('ERR_INTERNAL', `failed to ${op} ${kind === 'x509' ? 'X.509' : 'JWT'} authority`);
  }));
}

async function run(host: AuthorityHost, request: AuthorityRequest): Promise<Result<AuthorityResult>> {
  const { kind, op } = request;
  const now = host.now();
  const upstream = kind === 'x509' && (await host.hasUpstream());
  if (op === 'show') {
    const roles = authorityRoles(identify(host.slotsOf(kind)), now);
    const states = Object.fromEntries(Object.entries(roles).filter(([, s]) => s).map(([role, s]) => [role, stateOf(s!, upstream)]));
    return ok({ op, states });
  }
  if (op === 'prepare') {
    // SPIRE replaces the next slot: a key already prepared (never signed anything) is dropped for the new one
    const before = authorityRoles(identify(host.slotsOf(kind)), now).prepared;
    await host.apply(kind, { kind: 'prepare', notAfter: now + host.lifetimeMs }, now);
    if (before) await host.apply(kind, { kind: 'retire', kid: before.kid }, now);
    const made = authorityRoles(identify(host.slotsOf(kind)), now).prepared!;
    return ok({ op, authority: stateOf(made, upstream) });
  }
  if (upstream && op !== 'activate') return bad('ERR_AUTHORITY_STATE', `local authority can't be ${op === 'taint' ? 'tainted' : 'revoked'} if there is an upstream authority`);
  const id = parseAuthorityId(request.authorityId);
  if (!id.ok) return id;
  const target = checkAuthorityTarget(op, identify(host.slotsOf(kind)), id.value, now);
  if (!target.ok) return target;
  const action: AuthorityAction = op === 'activate' ? { kind: 'activate', kid: target.value.kid } : { kind: op, kid: target.value.kid };
  await host.apply(kind, action, now);
  logEvent('warn', `${kind === 'x509' ? 'X.509' : 'JWT'} authority ${op === 'activate' ? 'activated' : op === 'taint' ? 'tainted' : 'revoked'}`, { kind, authority_id: id.value });
  return ok({ op, authority: stateOf({ ...target.value, tainted: op === 'taint' || target.value.tainted }, upstream) });
}

function stateOf(slot: StoredSlot & IdentifiedSlot, upstream: boolean): AuthorityState {
  const upstreamId = upstream && slot.certDer ? signerAuthorityIdsOf([slot.certDer])[0] : undefined;
  return { authorityId: slot.authorityId, expiresAt: Math.floor(slot.notAfter / 1000), tainted: slot.tainted === true, ...(upstreamId ? { upstreamAuthoritySubjectKeyId: upstreamId } : {}) };
}
