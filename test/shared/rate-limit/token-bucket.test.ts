import { describe, expect, it } from 'vitest';
import { KeyedBuckets, retryAfterSeconds, takeTokens, type BucketState } from '../../../src/shared/rate-limit/token-bucket.js';

describe('takeTokens', () => {
  const limit = { ratePerSecond: 2, burst: 4 };

  it('lets a full bucket pass up to its burst, then refuses with the wait for one token', () => {
    let state: BucketState | undefined;
    for (let i = 0; i < 4; i++) {
      const r = takeTokens(limit, state, 1000);
      expect(r.ok).toBe(true);
      state = r.state;
    }
    const refused = takeTokens(limit, state, 1000);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.retryAfterMs).toBe(500);
  });

  it('refills at the rate and never above the burst', () => {
    const empty: BucketState = { tokens: 0, updatedAt: 0 };
    expect(takeTokens(limit, empty, 499).ok).toBe(false);
    expect(takeTokens(limit, empty, 500).ok).toBe(true);
    const later = takeTokens(limit, empty, 60_000, 4);
    expect(later.ok).toBe(true);
    if (later.ok) expect(later.state.tokens).toBe(0);
    expect(takeTokens(limit, empty, 60_000, 5).ok).toBe(false);
  });

  it('charges a cost of n as n requests', () => {
    const r = takeTokens(limit, undefined, 0, 3);
    expect(r.ok && r.state.tokens).toBe(1);
    const refused = takeTokens(limit, r.state, 0, 2);
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.retryAfterMs).toBe(500);
  });

  it('refuses a cost above the burst with a wait longer than a full refill', () => {
    const r = takeTokens(limit, undefined, 0, 10);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.retryAfterMs).toBe(3000);
  });

  it('treats rate 0 as unlimited', () => {
    let state: BucketState | undefined;
    for (let i = 0; i < 1000; i++) {
      const r = takeTokens({ ratePerSecond: 0 }, state, 0);
      expect(r.ok).toBe(true);
      state = r.state;
    }
  });

  it('refills nothing when the clock goes backwards', () => {
    const empty: BucketState = { tokens: 0, updatedAt: 10_000 };
    expect(takeTokens(limit, empty, 5_000).ok).toBe(false);
    expect(takeTokens(limit, empty, 10_499).ok).toBe(false);
  });

  it('defaults the burst to the rate, at least 1', () => {
    expect(takeTokens({ ratePerSecond: 500 }, undefined, 0, 500).ok).toBe(true);
    expect(takeTokens({ ratePerSecond: 500 }, undefined, 0, 501).ok).toBe(false);
    expect(takeTokens({ ratePerSecond: 0.5 }, undefined, 0, 1).ok).toBe(true);
  });
});

describe('retryAfterSeconds', () => {
  it.each([
    [0, 1],
    [1, 1],
    [1000, 1],
    [1001, 2],
    [59_500, 60],
  ])('%d ms -> %d s', (ms, s) => expect(retryAfterSeconds(ms)).toBe(s));
});

describe('KeyedBuckets', () => {
  it('keeps one bucket per key, so one key running dry does not touch another', () => {
    const buckets = new KeyedBuckets({ ratePerSecond: 1, burst: 1 });
    expect(buckets.take('a', 0).ok).toBe(true);
    expect(buckets.take('a', 0).ok).toBe(false);
    expect(buckets.take('b', 0).ok).toBe(true);
  });

  it('holds at most maxKeys buckets, dropping the least recently used', () => {
    const buckets = new KeyedBuckets({ ratePerSecond: 1, burst: 1 }, 2);
    buckets.take('a', 0);
    buckets.take('b', 0);
    buckets.take('a', 0);
    buckets.take('c', 0);
    expect(buckets.size).toBe(2);
    expect(buckets.take('a', 0).ok).toBe(false);
    expect(buckets.take('b', 0).ok).toBe(true);
  });

  it('stores nothing when unlimited', () => {
    const buckets = new KeyedBuckets({ ratePerSecond: 0 });
    buckets.take('a', 0);
    expect(buckets.size).toBe(0);
  });
});
