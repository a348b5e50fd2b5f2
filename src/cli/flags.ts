/**
 * Flag parsing shared by the commands: SPIRE's single-dash spelling (`-spiffeID`), repeatable flags, and
 * local validation of SPIFFE IDs, selectors and TTLs, so a bad value fails before anything is sent.
 * @module
 */
import { parseDurationSeconds } from '../shared/duration.js';
import { WispError } from '../shared/errors.js';
import { parseSelectorString, type Selector, type SelectorMatch } from '../shared/registry/selectors.js';
import { parseSpiffeId, type SpiffeId } from '../shared/spiffe/id.js';
import { CliUsageError } from './context.js';

export const SELECTOR_MATCH_MODES: readonly SelectorMatch[] = ['exact', 'subset', 'superset', 'any'];

/** SPIRE's single-dash spelling (`-spiffeID`): the one rewrite in src/node/go-flags.ts. */
export { normalizeGoFlags as normalizeSpireArgs } from '../node/go-flags.js';

/** A -matchSelectorsOn style flag (SPIRE's match modes); default superset. */
export function parseMatchFlag(flag: string, value: string | undefined): SelectorMatch {
  const match = value ?? 'superset';
  if (!(SELECTOR_MATCH_MODES as readonly string[]).includes(match)) throw new CliUsageError(`${flag} "${match}": must be one of ${SELECTOR_MATCH_MODES.join(', ')}`);
  return match as SelectorMatch;
}

/** Commander reducer for repeatable flags. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A SPIFFE ID flag, validated locally; the message names the flag. */
export function parseSpiffeIdFlag(flag: string, value: string): SpiffeId {
  try {
    return parseSpiffeId(value);
  } catch (e) {
    if (e instanceof WispError) throw new WispError(e.code, `${flag} "${value}": ${e.message}`);
    throw e;
  }
}

export function parseSelectorFlags(values: readonly string[] | undefined): Selector[] {
  return (values ?? []).map((v) => parseSelectorString(v));
}

/** A TTL flag: whole seconds (SPIRE) or a duration such as `1h`. */
export function parseTtlFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const seconds = parseDurationSeconds(value);
  if (seconds === undefined) throw new CliUsageError(`${flag} "${value}": must be whole seconds or a duration such as 90s, 5m, 1h`);
  return seconds;
}

/** A non-negative whole number (e.g. --entryExpiry, seconds since the epoch). */
export function parseIntegerFlag(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,15}$/.test(value)) throw new CliUsageError(`${flag} "${value}": must be a whole number`);
  return Number(value);
}

export function requireFlag<T>(flag: string, value: T | undefined): T {
  if (value === undefined || value === '' || (Array.isArray(value) && value.length === 0)) throw new CliUsageError(`${flag} is required`);
  return value;
}
