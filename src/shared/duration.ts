/**
 * Durations as operators write them in config and on the CLI: `90`, `90s`, `5m`, `1h`, `24h`, `7d`
 * (a bare number is seconds, SPIRE's convention for TTL flags).
 * @module
 */
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** Parses a duration into whole seconds; returns undefined when `input` is not one. */
export function parseDurationSeconds(input: string | number): number | undefined {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input >= 0 ? input : undefined;
  const m = /^\s*(\d{1,12})\s*([smhd]?)\s*$/.exec(input);
  if (!m) return undefined;
  const seconds = Number(m[1]) * (UNIT_SECONDS[m[2] || 's'] ?? 1);
  return Number.isSafeInteger(seconds) ? seconds : undefined;
}
