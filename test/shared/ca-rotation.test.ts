import { describe, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS } from '../../src/shared/clock.js';
import { activeSlot, publishedSlots, type KeySlot } from '../../src/shared/ca/key-slot.js';
import { applyRotationAction, nextRotationCheck, planRotation, type RotationAction } from '../../src/shared/ca/rotation.js';

const T0 = Date.UTC(2026, 0, 1);

/** Plans and applies until the plan is empty, as the Durable Object does. Returns the actions taken. */
function settle(slots: KeySlot[], now: number, lifetime: number, nextKid: () => string): { slots: KeySlot[]; actions: RotationAction[] } {
  const actions: RotationAction[] = [];
  for (let i = 0; i < 5; i++) {
    const plan = planRotation(slots, now, lifetime);
    if (plan.length === 0) return { slots, actions };
    for (const a of plan) {
      const created = a.kind === 'prepare' ? { kid: nextKid(), status: 'prepared' as const, issuedAt: now, notAfter: a.notAfter } : undefined;
      slots = applyRotationAction(slots, a, created);
      actions.push(a);
    }
  }
  throw new Error('plan did not settle');
}

const summary = (slots: KeySlot[]) => slots.map((s) => `${s.kid}:${s.status}`).join(' ');

describe('planRotation', () => {
  it('prepares the first key on an empty domain, then activates it', () => {
    expect(planRotation([], T0, HOUR_MS)).toEqual([{ kind: 'prepare', notAfter: T0 + HOUR_MS }]);
    const prepared: KeySlot[] = [{ kid: 'k1', status: 'prepared', issuedAt: T0, notAfter: T0 + HOUR_MS }];
    expect(planRotation(prepared, T0, HOUR_MS)).toEqual([{ kind: 'activate', kid: 'k1' }]);
  });

  it('rejects a non-positive lifetime as a caller bug', () => {
    expect(() => planRotation([], T0, 0)).toThrow(TypeError);
  });

  const L = 6 * HOUR_MS; // thresholds: prepare at L/2 = 3h, activate at 5L/6 = 5h
  const k1: KeySlot = { kid: 'k1', status: 'active', issuedAt: T0, notAfter: T0 + L };
  const k2: KeySlot = { kid: 'k2', status: 'prepared', issuedAt: T0 + 3 * HOUR_MS, notAfter: T0 + 9 * HOUR_MS };
  it.each<[string, KeySlot[], number, RotationAction[]]>([
    ['does nothing while more than half the lifetime remains', [k1], T0 + 3 * HOUR_MS - 1, []],
    ['prepares the next key when half the lifetime has passed', [k1], T0 + 3 * HOUR_MS, [{ kind: 'prepare', notAfter: T0 + 9 * HOUR_MS }]],
    ['does not activate the prepared key early', [k1, k2], T0 + 5 * HOUR_MS - 1, []],
    ['activates the prepared key when a sixth of the lifetime remains', [k1, k2], T0 + 5 * HOUR_MS, [{ kind: 'activate', kid: 'k2' }]],
    ['keeps the old key until its notAfter', [{ ...k1, status: 'old' }, { ...k2, status: 'active' }], T0 + L - 1, []],
    ['retires the old key at its notAfter', [{ ...k1, status: 'old' }, { ...k2, status: 'active' }], T0 + L, [{ kind: 'retire', kid: 'k1' }, { kind: 'prepare', notAfter: T0 + 2 * L }]],
    ['recovers at once when the active key expired unattended', [k1], T0 + 2 * L, [{ kind: 'retire', kid: 'k1' }, { kind: 'prepare', notAfter: T0 + 3 * L }]],
    ['activates a live prepared key when the active one expired', [k1, k2], T0 + L, [{ kind: 'retire', kid: 'k1' }, { kind: 'activate', kid: 'k2' }]],
  ])('%s', (_name, slots, now, expected) => {
    expect(planRotation(slots, now, L)).toEqual(expected);
  });

  it('caps the lead times at 30 days (prepare) and 7 days (activate) for long lifetimes', () => {
    const year = 365 * DAY_MS;
    const a: KeySlot = { kid: 'a', status: 'active', issuedAt: T0, notAfter: T0 + year };
    expect(planRotation([a], T0 + year - 30 * DAY_MS - 1, year)).toEqual([]);
    expect(planRotation([a], T0 + year - 30 * DAY_MS, year)).toEqual([{ kind: 'prepare', notAfter: T0 + 2 * year - 30 * DAY_MS }]);
    const b: KeySlot = { kid: 'b', status: 'prepared', issuedAt: T0 + year - 30 * DAY_MS, notAfter: T0 + 2 * year - 30 * DAY_MS };
    expect(planRotation([a, b], T0 + year - 7 * DAY_MS - 1, year)).toEqual([]);
    expect(planRotation([a, b], T0 + year - 7 * DAY_MS, year)).toEqual([{ kind: 'activate', kid: 'b' }]);
  });
});

describe('a timeline over several lifetimes', () => {
  it.each([6 * HOUR_MS, 400 * DAY_MS])('always has exactly one live active key and publishes ahead (lifetime %d ms)', (L) => {
    let n = 0;
    const nextKid = () => `k${++n}`;
    let { slots } = settle([], T0, L, nextKid);
    expect(summary(slots)).toBe('k1:active');
    let now = T0;
    const seenActive = new Set<string>();
    let steps = 0;
    while (now < T0 + 4 * L) {
      const next = nextRotationCheck(slots, now);
      expect(next).toBeGreaterThan(now);
      now = next!;
      const before = publishedSlots(slots, now).map((s) => s.kid);
      const result = settle(slots, now, L, nextKid);
      slots = result.slots;
      steps++;
      const active = activeSlot(slots, now);
      expect(active, `at ${now - T0}`).toBeDefined();
      seenActive.add(active!.kid);
      // A key that becomes active was already published before this step (published ahead of use).
      for (const a of result.actions) if (a.kind === 'activate') expect(before).toContain(a.kid);
      // Never more than active + prepared + old.
      expect(slots.length).toBeLessThanOrEqual(3);
      // Every key ever active is either still published or past its notAfter (nothing it signed is alive).
      for (const s of slots) expect(s.notAfter).toBeGreaterThan(now);
    }
    expect(seenActive.size).toBeGreaterThanOrEqual(4);
    expect(steps).toBeLessThan(20);
  });

  it('walks one full cycle step by step', () => {
    const L = 6 * HOUR_MS;
    let n = 0;
    const nextKid = () => `k${++n}`;
    const walk: [number, string][] = [
      [T0, 'k1:active'],
      [T0 + 3 * HOUR_MS, 'k1:active k2:prepared'],
      [T0 + 5 * HOUR_MS, 'k1:old k2:active'],
      // k1 expires at +6h, and k2 (issued at +3h) is half-way: the next key is prepared the same moment.
      [T0 + 6 * HOUR_MS, 'k2:active k3:prepared'],
      [T0 + 8 * HOUR_MS, 'k2:old k3:active'],
      [T0 + 9 * HOUR_MS, 'k3:active k4:prepared'],
    ];
    let slots: KeySlot[] = [];
    for (const [now, expected] of walk) {
      slots = settle(slots, now, L, nextKid).slots;
      expect(summary(slots), `at +${(now - T0) / HOUR_MS}h`).toBe(expected);
    }
  });
});

describe('nextRotationCheck', () => {
  it('is undefined without slots and points at the next threshold otherwise', () => {
    expect(nextRotationCheck([], T0)).toBeUndefined();
    const a: KeySlot = { kid: 'a', status: 'active', issuedAt: T0, notAfter: T0 + 6 * HOUR_MS };
    expect(nextRotationCheck([a], T0)).toBe(T0 + 3 * HOUR_MS);
    const b: KeySlot = { kid: 'b', status: 'prepared', issuedAt: T0 + 3 * HOUR_MS, notAfter: T0 + 9 * HOUR_MS };
    expect(nextRotationCheck([a, b], T0 + 3 * HOUR_MS)).toBe(T0 + 5 * HOUR_MS);
  });
});
