/**
 * The configuration toolkit shared by the four parsers (src/agent/config.ts, src/cli/config.ts,
 * src/worker/config.ts, src/worker/attestation/cloud-config.ts): valibot schemas for the value kinds they
 * have in common, and `parseConfig`, which turns the first issue into the one-line error users see:
 * `WispError('ERR_CONFIG_INVALID', '<key> (from <source>): <message>')`, the source left out when the value
 * has none (the Worker's bindings; a required key that is missing).
 *
 * Runtime-agnostic (the Worker and the agent both load it); valibot is imported whole as `v` and
 * tree-shaken by the bundlers. Every message is one line and names no type the user did not write.
 * @module
 */
import type { JSONWebKeySet } from 'jose';
import * as v from 'valibot';
import { parseDurationSeconds } from '../duration.js';
import { WispError } from '../errors.js';
import { isHttpsOrLoopbackHttp } from '../net/loopback.js';

/** The one error shape of a bad configuration value. */
export function configError(key: string, message: string, source?: string): WispError {
  return new WispError('ERR_CONFIG_INVALID', `${key}${source ? ` (from ${source})` : ''}: ${message}`);
}

/** `AWS_IID.accountIds[0]`, `awsIid.timeoutSeconds`: where in the input an issue is. */
export function issueKey(issue: v.BaseIssue<unknown>): string {
  let key = '';
  for (const item of issue.path ?? []) {
    const k = item.key;
    key += typeof k === 'number' && item.type === 'array' ? `[${k}]` : `${key === '' ? '' : '.'}${String(k)}`;
  }
  return key;
}

/**
 * Parses `input` with `schema`; the first issue becomes `configError(<path>, <message>, sourceOf(<top key>))`.
 * @example parseConfig(v.object({ CA_TTL: durationSeconds(60) }), env) // throws "CA_TTL: must be at least 60s"
 */
export function parseConfig<S extends v.GenericSchema>(schema: S, input: unknown, sourceOf: (key: string) => string | undefined = () => undefined): v.InferOutput<S> {
  const result = v.safeParse(schema, input, { abortPipeEarly: true });
  if (result.success) return result.output;
  const issue = result.issues[0];
  const top = issue.path?.[0]?.key;
  throw configError(issueKey(issue), issue.message, top === undefined ? undefined : sourceOf(String(top)));
}

/** Runs a parser that throws (parseTrustDomain, parseAgentPathTemplate, ...); its message becomes the issue's. */
export function parsedBy<I, O>(parse: (input: I) => O, wrap: (message: string) => string = (m) => m) {
  return v.rawTransform<I, O>(({ dataset, addIssue, NEVER }) => {
    try {
      return parse(dataset.value);
    } catch (e) {
      addIssue({ message: wrap(e instanceof Error ? e.message : String(e)) });
      return NEVER;
    }
  });
}

export const NON_EMPTY = 'must be a non-empty string';

/** A string with something in it besides white space. */
export const nonEmptyString = (message: string = NON_EMPTY) =>
  v.pipe(
    v.string(message),
    v.check((s) => s.trim() !== '', message),
  );

/** A JSON object (not null, not an array). */
export const plainObject = (message: string) =>
  v.custom<Record<string, unknown>>((x) => typeof x === 'object' && x !== null && !Array.isArray(x), message);

const parseJson = (text: string, addIssue: () => void, never: never): unknown => {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    addIssue();
    return never;
  }
};

/** JSON text → its value; `message` when it is not JSON. */
export const jsonText = (message: string) =>
  v.rawTransform<string, unknown>(({ dataset, addIssue, NEVER }) => parseJson(dataset.value, () => addIssue({ message }), NEVER));

/** A JSON object as text (an environment variable) or already parsed (a config file). */
export const jsonObject = (message: string, notObject: string = message) =>
  v.pipe(
    v.unknown(),
    v.rawTransform<unknown, unknown>(({ dataset, addIssue, NEVER }) =>
      typeof dataset.value === 'string' ? parseJson(dataset.value, () => addIssue({ message }), NEVER) : dataset.value,
    ),
    plainObject(notObject),
  );

/** An object whose keys are exactly `entries`' (an unknown one is named, with the known ones). */
export const knownKeys = <E extends v.ObjectEntries>(entries: E) =>
  v.strictObject(entries, (issue) => {
    if (issue.expected === 'never') return `unknown key; known keys: ${Object.keys(entries).join(', ')}`;
    return issue.input === undefined && issue.path ? 'is required' : 'must be an object';
  });

/** A duration string (`90s`, `5m`, `1h`, `7d`) → whole seconds, at least `min`. */
export const durationSeconds = (min = 1) =>
  v.pipe(
    v.string(),
    v.rawTransform<string, number>(({ dataset, addIssue, NEVER }) => {
      const seconds = parseDurationSeconds(dataset.value);
      if (seconds === undefined) addIssue({ message: `"${dataset.value}" is not a duration (e.g. 90s, 5m, 1h, 7d)` });
      else if (seconds < min) addIssue({ message: `must be at least ${min}s` });
      else return seconds;
      return NEVER;
    }),
  );

/** A whole number from a file (a number) or the environment and flags (digits only), `min..max`. */
export const wholeNumber = (min: number, max: number, messages: { notWhole: (input: unknown) => string; outOfRange: string }) =>
  v.pipe(
    v.unknown(),
    v.transform((x) => (typeof x === 'string' && /^\d+$/.test(x) ? Number(x) : x)),
    v.number(({ input }) => messages.notWhole(input)),
    v.integer(({ input }) => messages.notWhole(input)),
    v.minValue(min, messages.outOfRange),
    v.maxValue(max, messages.outOfRange),
  );

/** A secret binding: set, and at least `minLength` characters. */
export const secret = (minLength: number) =>
  v.pipe(
    v.optional(v.string(), ''),
    v.check((s) => s !== '', 'secret is not set (wrangler secret put, or .dev.vars locally)'),
    v.minLength(minLength, `must be at least ${minLength} characters`),
  );

/** One of `options`. */
export const oneOf = <const T extends readonly string[]>(options: T, message = `must be one of ${options.join(', ')}`) => v.picklist(options, message);

/** A string the URL parser takes. */
export const urlString = (message: string = NON_EMPTY) =>
  v.pipe(
    v.string(message),
    v.check((s) => URL.canParse(s), ({ input }) => `"${String(input)}" is not a URL`),
  );

/**
 * A JWK Set of RSA or EC public keys (k8s_psat clusters, token exchange issuers): an HMAC ("oct") or
 * private key in the set would be a configuration mistake, so it is refused, never used.
 */
export const jwkSet = (message: string) =>
  v.pipe(
    plainObject(message),
    v.check((o) => Array.isArray(o.keys) && o.keys.length > 0, message),
    v.check((o) => (o.keys as unknown[]).every((k) => typeof k === 'object' && k !== null && ['RSA', 'EC'].includes((k as { kty?: unknown }).kty as string) && !('d' in k)), message),
    v.transform((o) => o as unknown as JSONWebKeySet),
  );

/** https, or http on a loopback host only (src/shared/net/loopback.ts), worded as the Worker's bindings are. */
export const httpsUrl = (message = 'must be https (http only for a loopback host)') =>
  v.check<string, string>((s) => isHttpsOrLoopbackHttp(new URL(s)), message);

/**
 * The issuer's base URL as the agent and the CLI take it: https, or http on a loopback host; no
 * credentials, query or fragment; normalised by the URL parser, without trailing slashes.
 */
export const issuerBaseUrl = () =>
  v.pipe(
    v.string('must be a URL string'),
    v.check((s) => s !== '', 'must be a URL string'),
    v.check((s) => URL.canParse(s), ({ input }) => `"${String(input)}" is not a URL`),
    v.transform((s) => new URL(s)),
    v.check(
      (u) => isHttpsOrLoopbackHttp(u),
      ({ input: u }) => (u.protocol === 'http:' ? `http is allowed only for loopback hosts (got ${u.hostname}); use https` : `scheme must be https (got ${u.protocol.replace(':', '')})`),
    ),
    v.check((u) => !u.username && !u.password, 'must not contain credentials'),
    v.check((u) => !u.search && !u.hash, 'must not contain a query or fragment'),
    v.transform((u) => u.toString().replace(/\/+$/, '')),
  );

/** A check between keys of a parsed object, reported on `key` (e.g. JWKS_MAX_AGE against CA_TTL). */
export const keyCheck = <T extends Record<string, unknown>>(key: keyof T & string, ok: (input: T) => boolean, message: (input: T) => string) =>
  v.rawCheck<T>(({ dataset, addIssue }) => {
    if (!dataset.typed || ok(dataset.value)) return;
    const input = dataset.value;
    addIssue({ message: message(input), path: [{ type: 'object', origin: 'value', input, key, value: input[key] }] });
  });

/** A key that must be set: `message` (saying where to set it) when no source has it. */
export const required = <S extends v.GenericSchema>(schema: S, message: string) =>
  v.pipe(
    v.any(),
    v.check((x) => x !== undefined, message),
    schema,
  );
