/**
 * Where the agent's and the CLI's settings come from, written once for both: a JSON config file, then the
 * environment, then command-line flags, later sources winning (SPIRE's order). Each value keeps the
 * source it came from, so an error can say `serverUrl (from env WISP_SERVER_URL): ...`; the values are
 * then checked by the caller's valibot schema (src/shared/config/schema.ts `parseConfig`).
 * Node-only: it reads the file.
 * @module
 */
import { readFileSync } from 'node:fs';
import type * as v from 'valibot';
import { configError, parseConfig } from '../shared/config/schema.js';

/** A parsed JSON config file and where it came from (for error messages). */
export interface ConfigFile {
  path: string;
  content: unknown;
}

/** A value and where it came from: `file /etc/wisp/agent.json`, `env WISP_SERVER_URL`, `flag --serverURL`. */
export interface Sourced {
  value: unknown;
  source: string;
}

/** Reads and JSON-parses a config file; a one-line `WispError` if it cannot. */
export function readConfigFile(path: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw configError(`config file ${path}`, `cannot read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return { path, content: JSON.parse(text) as unknown };
  } catch (e) {
    throw configError(`config file ${path}`, `not valid JSON (${(e as Error).message})`);
  }
}

export interface ConfigLayout<K extends string> {
  /** the keys of the file (anything else there is an error), in the order errors list them */
  keys: readonly K[];
  /** each key's environment variables, lowest precedence first (the agent's socketPath has two) */
  env: (key: K) => readonly string[];
  /** the flag a key's value came from, as error messages name it */
  flag: (key: K) => string;
}

/**
 * File, then environment, then flags (later wins); an empty environment variable and an undefined flag
 * count as unset, a null in the file too.
 */
export function mergeConfigSources<K extends string>(
  layout: ConfigLayout<K>,
  file: ConfigFile | undefined,
  env: Readonly<Record<string, string | undefined>>,
  flags: Partial<Record<K, unknown>>,
): Map<K, Sourced> {
  const known = layout.keys as readonly string[];
  const merged = new Map<K, Sourced>();
  if (file) {
    const c = file.content;
    if (typeof c !== 'object' || c === null || Array.isArray(c)) throw configError(`config file ${file.path}`, 'must be a JSON object');
    for (const [key, value] of Object.entries(c)) {
      if (!known.includes(key)) throw configError(key, `unknown key; known keys: ${layout.keys.join(', ')}`, `file ${file.path}`);
      if (value !== undefined && value !== null) merged.set(key as K, { value, source: `file ${file.path}` });
    }
  }
  for (const key of layout.keys) {
    for (const name of layout.env(key)) {
      const value = env[name];
      if (value !== undefined && value !== '') merged.set(key, { value, source: `env ${name}` });
    }
  }
  for (const key of Object.keys(flags) as K[]) {
    if (!known.includes(key)) throw new TypeError(`unknown config flag key ${key}`);
    const value = flags[key];
    if (value !== undefined) merged.set(key, { value, source: `flag ${layout.flag(key)}` });
  }
  return merged;
}

/**
 * Checks merged values with `schema` (an object schema over every key of the layout; a key that no source
 * set is passed as undefined); an error names the key and the source of its value.
 */
export function parseMergedConfig<K extends string, S extends v.GenericSchema>(layout: ConfigLayout<K>, merged: Map<K, Sourced>, schema: S): v.InferOutput<S> {
  const input = Object.fromEntries(layout.keys.map((key) => [key, merged.get(key)?.value]));
  return parseConfig(schema, input, (key) => merged.get(key as K)?.source);
}
