/**
 * Selectors (`type:value`, SPIRE's form, e.g. `unix:uid:1000`): parsing, a canonical order, and the
 * match modes SPIRE offers (exact, subset, superset, any).
 * @module
 */
import { WispError } from '../errors.js';

export interface Selector {
  /** Attestor type, e.g. `unix`, `join_token`, `aws_iid`. */
  type: string;
  /** Attestor-specific value, e.g. `uid:1000`. May itself contain colons. */
  value: string;
}

export type SelectorMatch = 'exact' | 'subset' | 'superset' | 'any';

export const SELECTOR_TYPE_MAX_BYTES = 64;
export const SELECTOR_VALUE_MAX_BYTES = 1024;
export const SELECTORS_PER_ENTRY_MAX = 64;
const SELECTOR_TYPE_CHARS = /^[a-z0-9_-]+$/i;

function invalid(message: string): WispError {
  return new WispError('ERR_SELECTOR_INVALID', message);
}

/** Validates a selector given as an object `{type, value}`. */
export function parseSelector(input: unknown): Selector {
  if (typeof input === 'string') return parseSelectorString(input);
  if (typeof input !== 'object' || input === null) throw invalid('selector must be "type:value" or {type, value}');
  const { type, value } = input as Record<string, unknown>;
  if (typeof type !== 'string' || typeof value !== 'string') throw invalid('selector type and value must be strings');
  if (type.length === 0) throw invalid('selector type is empty');
  if (type.length > SELECTOR_TYPE_MAX_BYTES) throw invalid(`selector type is longer than ${SELECTOR_TYPE_MAX_BYTES}`);
  if (!SELECTOR_TYPE_CHARS.test(type)) throw invalid(`selector type "${type}" has characters outside [a-zA-Z0-9_-]`);
  if (value.length === 0) throw invalid(`selector "${type}" has an empty value`);
  if (value.length > SELECTOR_VALUE_MAX_BYTES) throw invalid(`selector value is longer than ${SELECTOR_VALUE_MAX_BYTES}`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value)) throw invalid('selector value contains control characters');
  return { type, value };
}

/** Parses `type:value`; the value keeps any further colons (`unix:uid:1000` → unix / uid:1000). */
export function parseSelectorString(input: string): Selector {
  const colon = input.indexOf(':');
  if (colon <= 0) throw invalid(`selector "${input}" must have the form type:value`);
  return parseSelector({ type: input.slice(0, colon), value: input.slice(colon + 1) });
}

/** Parses a non-empty list, rejecting duplicates; returns it in canonical order. */
export function parseSelectors(input: unknown, { allowEmpty = false } = {}): Selector[] {
  if (!Array.isArray(input)) throw invalid('selectors must be an array');
  if (!allowEmpty && input.length === 0) throw invalid('at least one selector is required');
  if (input.length > SELECTORS_PER_ENTRY_MAX) throw invalid(`at most ${SELECTORS_PER_ENTRY_MAX} selectors are allowed`);
  const selectors = input.map(parseSelector);
  const keys = new Set<string>();
  for (const s of selectors) {
    const key = formatSelector(s);
    if (keys.has(key)) throw invalid(`duplicate selector "${key}"`);
    keys.add(key);
  }
  return sortSelectors(selectors);
}

export function formatSelector(s: Selector): string {
  return `${s.type}:${s.value}`;
}

export function sortSelectors(selectors: readonly Selector[]): Selector[] {
  return [...selectors].sort((a, b) => compare(a.type, b.type) || compare(a.value, b.value));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A canonical string for a selector set: equal sets give equal keys (used for duplicate detection). */
export function selectorSetKey(selectors: readonly Selector[]): string {
  return JSON.stringify(sortSelectors(selectors).map(formatSelector));
}

/**
 * SPIRE's match modes, comparing an entry's selectors with a query set:
 * exact = same set; subset = entry ⊆ query; superset = entry ⊇ query; any = they share one.
 */
export function selectorsMatch(entrySelectors: readonly Selector[], query: readonly Selector[], mode: SelectorMatch): boolean {
  const have = new Set(entrySelectors.map(formatSelector));
  const want = new Set(query.map(formatSelector));
  switch (mode) {
    case 'exact':
      return have.size === want.size && [...want].every((k) => have.has(k));
    case 'subset':
      return [...have].every((k) => want.has(k));
    case 'superset':
      return [...want].every((k) => have.has(k));
    case 'any':
      return [...want].some((k) => have.has(k));
  }
}
