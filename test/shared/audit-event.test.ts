import { describe, expect, it } from 'vitest';
import { parseRfc3339Ms } from '../../src/shared/audit-event.js';

describe('parseRfc3339Ms (the audit filters of the admin API and wisp audit list)', () => {
  it.each([
    ['2026-01-02T15:04:05Z', Date.UTC(2026, 0, 2, 15, 4, 5)],
    ['2026-01-02t15:04:05z', Date.UTC(2026, 0, 2, 15, 4, 5)],
    ['2026-01-02T15:04:05.250Z', Date.UTC(2026, 0, 2, 15, 4, 5, 250)],
    ['2026-01-02T17:04:05+02:00', Date.UTC(2026, 0, 2, 15, 4, 5)],
  ])('%s', (value, ms) => expect(parseRfc3339Ms(value)).toBe(ms));

  it.each(['2026-01-02', '2026-01-02 15:04:05Z', '2026-01-02T15:04:05', '1767366245', '2026-13-02T15:04:05Z', '24h', ''])('refuses %j', (value) =>
    expect(parseRfc3339Ms(value)).toBeUndefined(),
  );
});
