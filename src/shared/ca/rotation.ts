/**
 * The rotation state machine shared by the X.509 CA and the JWT signing key (STYLE G8): a pure plan from
 * the current slots and `now`, applied by the Durable Object, which only generates keys and persists.
 *
 * Lifecycle of a key: prepared (published in the bundle / JWKS before it signs anything) → active (signs)
 * → old (still published, signs nothing; everything it signed expires by its notAfter, because SVIDs and
 * tokens are capped to their signer's notAfter) → removed at its notAfter.
 *
 * `planRotation` answers for one snapshot; apply its actions (e.g. with `applyRotationAction`) and plan
 * again until it returns nothing: a fresh domain needs `prepare` then `activate`.
 * @module
 */
import { activateAt, isLive, prepareAt, type KeySlot } from './key-slot.js';

export type RotationAction =
  /** generate a key valid until `notAfter` and publish it as prepared */
  | { kind: 'prepare'; notAfter: number }
  /** make `kid` the active key; the current active one (if any) becomes old */
  | { kind: 'activate'; kid: string }
  /** remove an expired key from storage and from what is published */
  | { kind: 'retire'; kid: string };

/**
 * What an operator may do besides the plan (local-authority.ts checks when): mark an old key tainted, or
 * revoke a tainted one (removed at once, like an expired key). The plan never returns these.
 */
export type AuthorityAction = RotationAction | { kind: 'taint'; kid: string } | { kind: 'revoke'; kid: string };

/**
 * What to do at `now`. `lifetimeMs` is the validity of a key prepared now.
 * @example planRotation([], t0, DAY_MS) // → [{ kind: 'prepare', notAfter: t0 + DAY_MS }]
 */
export function planRotation(slots: readonly KeySlot[], now: number, lifetimeMs: number): RotationAction[] {
  if (!(lifetimeMs > 0)) throw new TypeError('lifetimeMs must be positive');
  const actions: RotationAction[] = slots.filter((s) => !isLive(s, now)).map((s) => ({ kind: 'retire', kid: s.kid }));
  const live = slots.filter((s) => isLive(s, now));
  const active = newest(live.filter((s) => s.status === 'active'));
  const prepared = newest(live.filter((s) => s.status === 'prepared'));
  if (!active) {
    // First use, or every active key expired (e.g. the alarm did not run): recover at once.
    actions.push(prepared ? { kind: 'activate', kid: prepared.kid } : { kind: 'prepare', notAfter: now + lifetimeMs });
  } else if (prepared) {
    if (now >= activateAt(active)) actions.push({ kind: 'activate', kid: prepared.kid });
  } else if (now >= prepareAt(active)) {
    actions.push({ kind: 'prepare', notAfter: now + lifetimeMs });
  }
  return actions;
}

/**
 * The slots after `action` (pure). `created` describes the key a `prepare` produced (its kid and issuedAt,
 * chosen by the caller, who generates it).
 */
export function applyRotationAction<S extends KeySlot>(slots: readonly S[], action: AuthorityAction, created?: S): S[] {
  switch (action.kind) {
    case 'prepare':
      if (!created) throw new TypeError('prepare needs the created slot');
      return [...slots, { ...created, status: 'prepared' }];
    case 'activate':
      return slots.map((s) =>
        s.kid === action.kid ? { ...s, status: 'active' } : s.status === 'active' ? { ...s, status: 'old' } : s,
      );
    case 'retire':
    case 'revoke':
      return slots.filter((s) => s.kid !== action.kid);
    case 'taint':
      return slots.map((s) => (s.kid === action.kid ? { ...s, tainted: true } : s));
  }
}

/**
 * True when `action` changes the published set (prepare adds a key, retire and revoke remove one) or what
 * agents are told about it (taint), so the bundle sequence moves on.
 */
export function changesPublishedSet(action: AuthorityAction): boolean {
  return action.kind !== 'activate';
}

/**
 * When the plan can next change: the earliest future threshold or expiry among the slots, or undefined
 * when there are no slots (plan now). Use it as the alarm time.
 */
export function nextRotationCheck(slots: readonly KeySlot[], now: number): number | undefined {
  if (slots.length === 0) return undefined;
  const times: number[] = slots.map((s) => s.notAfter);
  const live = slots.filter((s) => isLive(s, now));
  const active = newest(live.filter((s) => s.status === 'active'));
  const hasPrepared = live.some((s) => s.status === 'prepared');
  if (active) times.push(hasPrepared ? activateAt(active) : prepareAt(active));
  const future = times.filter((t) => t > now);
  return future.length === 0 ? now : Math.ceil(Math.min(...future));
}

function newest<S extends KeySlot>(slots: S[]): S | undefined {
  return slots.reduce<S | undefined>((best, s) => (!best || s.issuedAt > best.issuedAt ? s : best), undefined);
}
