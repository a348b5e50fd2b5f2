import { describe, expect, it } from 'vitest';
import { BACKOFF_CAP_MS, backoffDelayMs, isJwtSvidFresh, shouldRotate } from '../../src/agent/rotation-policy.js';

describe('shouldRotate', () => {
  it.each([
    { now: 0, jitter: 0, want: false },
    { now: 1799, jitter: 0, want: false },
    { now: 1800, jitter: 0, want: true },
    { now: 3600, jitter: 0, want: true },
    { now: 1440, jitter: 0.999, want: false }, // jitter pulls renewal to at most 40% of the lifetime
    { now: 1441, jitter: 0.999, want: true },
    { now: 1620, jitter: 0.5, want: true },
  ])('renews at half-life minus jitter (now=$now, jitter=$jitter)', ({ now, jitter, want }) => {
    expect(shouldRotate(0, 3600, now, jitter)).toBe(want);
  });

  it('treats an empty or inverted lifetime as due', () => {
    expect(shouldRotate(10, 10, 0)).toBe(true);
  });
});

describe('isJwtSvidFresh', () => {
  it('reuses while more than half of the lifetime remains', () => {
    expect(isJwtSvidFresh(0, 300, 149)).toBe(true);
    expect(isJwtSvidFresh(0, 300, 150)).toBe(false);
  });
});

describe('backoffDelayMs', () => {
  it('doubles per attempt within [d/2, d] and is capped', () => {
    expect(backoffDelayMs(1, 0)).toBe(500);
    expect(backoffDelayMs(1, 0.999999)).toBe(1000);
    expect(backoffDelayMs(3, 0)).toBe(2000);
    expect(backoffDelayMs(4, 0.999999)).toBe(8000);
    expect(backoffDelayMs(50, 0.999999)).toBe(BACKOFF_CAP_MS);
    expect(backoffDelayMs(50, 0)).toBe(BACKOFF_CAP_MS / 2);
  });
});
