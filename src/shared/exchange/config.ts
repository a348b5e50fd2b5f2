/**
 * The TOKEN_EXCHANGE configuration (a JSON var of the issuer; unset or empty: token exchange is off):
 *
 *   {"issuers": [{"alias": "github", "issuer": "https://token.actions.githubusercontent.com",
 *                 "audiences": ["https://wisp.example.com"], "claims": ["repository", "ref"],
 *                 "jwksUrl": "https://..." | "jwks": {"keys": [...]} | neither (OIDC discovery),
 *                 "clockSkewSeconds": 60, "maxTokenAgeSeconds": 3600, "replay": "allow" | "refuse"}],
 *    "allowLoopbackHttp": false}
 *
 * Issuer and key URLs are https; plain http is accepted only on a loopback host and only when
 * `allowLoopbackHttp` is true (tests and local development). Documented in docs/token-exchange.md.
 * @module
 */
import type { JSONWebKeySet } from 'jose';
import * as v from 'valibot';
import { jsonText, jwkSet, knownKeys, nonEmptyString, plainObject, urlString } from '../config/schema.js';
import { isHttpsOrLoopbackHttp } from '../net/loopback.js';

export const TOKEN_EXCHANGE_DEFAULTS = {
  clockSkewSeconds: 60,
  maxTokenAgeSeconds: 3600,
  claims: ['sub'],
  replay: 'allow',
} as const;

/** Limits: enough for any CI fleet, small enough that one request's work stays bounded. */
export const TOKEN_EXCHANGE_LIMITS = { MAX_ISSUERS: 32, MAX_CLAIMS: 32, MAX_AUDIENCES: 16, MAX_SKEW_SECONDS: 600, MAX_TOKEN_AGE_SECONDS: 86400 } as const;

/** An alias and a claim name go into selectors `oidc:<alias>:<claim>:<value>`: no colon in either. */
export const EXCHANGE_ALIAS = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const EXCHANGE_CLAIM_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export type ReplayPolicy = 'allow' | 'refuse';

/** Where an issuer's signing keys come from. */
export type IssuerKeySource = { kind: 'inline'; jwks: JSONWebKeySet } | { kind: 'url'; jwksUrl: string } | { kind: 'discovery' };

export interface TrustedTokenIssuer {
  alias: string;
  /** compared exactly with the token's `iss` */
  issuer: string;
  keys: IssuerKeySource;
  /** the token's `aud` must hold at least one of these */
  audiences: string[];
  clockSkewSeconds: number;
  maxTokenAgeSeconds: number;
  /** claims that become `oidc:<alias>:<claim>:<value>` selectors */
  claims: string[];
  replay: ReplayPolicy;
}

export interface TokenExchangeConfig {
  issuers: TrustedTokenIssuer[];
  allowLoopbackHttp: boolean;
}

/** The URL rule of this config: https; http only on loopback and only when the config allows it. */
export function exchangeUrlAllowed(url: string, allowLoopbackHttp: boolean): boolean {
  if (!URL.canParse(url)) return false;
  const u = new URL(url);
  if (u.username || u.password || u.hash) return false;
  return u.protocol === 'https:' || (allowLoopbackHttp && isHttpsOrLoopbackHttp(u));
}

const seconds = (fallback: number, max: number) =>
  v.optional(v.pipe(v.number('must be a whole number of seconds'), v.integer('must be a whole number of seconds'), v.minValue(0, 'must be at least 0'), v.maxValue(max, `must be at most ${max}`)), fallback);

const URL_RULE = 'must be https (http only on a loopback host with allowLoopbackHttp)';

const ISSUER = knownKeys({
  alias: v.pipe(v.string('must be a string'), v.regex(EXCHANGE_ALIAS, 'must be lower-case letters, digits, "_" or "-" (at most 64)')),
  issuer: v.pipe(nonEmptyString(), urlString()),
  jwks: v.optional(jwkSet('must be a JWK Set {"keys":[...]} of RSA or EC public keys')),
  jwksUrl: v.optional(v.pipe(nonEmptyString(), urlString())),
  audiences: v.pipe(
    v.array(v.pipe(nonEmptyString(), v.maxLength(512, 'must be at most 512 characters')), 'must be an array of strings'),
    v.minLength(1, 'must name at least one audience (a token for anyone is not accepted)'),
    v.maxLength(TOKEN_EXCHANGE_LIMITS.MAX_AUDIENCES, `must have at most ${TOKEN_EXCHANGE_LIMITS.MAX_AUDIENCES} audiences`),
  ),
  clockSkewSeconds: seconds(TOKEN_EXCHANGE_DEFAULTS.clockSkewSeconds, TOKEN_EXCHANGE_LIMITS.MAX_SKEW_SECONDS),
  maxTokenAgeSeconds: v.pipe(seconds(TOKEN_EXCHANGE_DEFAULTS.maxTokenAgeSeconds, TOKEN_EXCHANGE_LIMITS.MAX_TOKEN_AGE_SECONDS), v.minValue(1, 'must be at least 1')),
  claims: v.optional(
    v.pipe(
      v.array(v.pipe(v.string('must be a claim name'), v.regex(EXCHANGE_CLAIM_NAME, 'must be a claim name (letters, digits, "_", ".", "-")')), 'must be an array of claim names'),
      v.minLength(1, 'must name at least one claim'),
      v.maxLength(TOKEN_EXCHANGE_LIMITS.MAX_CLAIMS, `must have at most ${TOKEN_EXCHANGE_LIMITS.MAX_CLAIMS} claims`),
    ),
    [...TOKEN_EXCHANGE_DEFAULTS.claims],
  ),
  replay: v.optional(v.picklist(['allow', 'refuse'], 'must be "allow" or "refuse"'), TOKEN_EXCHANGE_DEFAULTS.replay),
});

const SCHEMA = v.pipe(
  knownKeys({
    issuers: v.pipe(
      v.array(ISSUER, 'must be an array of trusted token issuers'),
      v.minLength(1, 'must configure at least one issuer'),
      v.maxLength(TOKEN_EXCHANGE_LIMITS.MAX_ISSUERS, `must have at most ${TOKEN_EXCHANGE_LIMITS.MAX_ISSUERS} issuers`),
    ),
    allowLoopbackHttp: v.optional(v.boolean('must be true or false'), false),
  }),
  v.rawTransform(({ dataset, addIssue, NEVER }): TokenExchangeConfig => {
    const { issuers, allowLoopbackHttp } = dataset.value;
    const fail = (message: string) => (addIssue({ message }), NEVER);
    const aliases = new Set<string>();
    const issuerUrls = new Set<string>();
    const out: TrustedTokenIssuer[] = [];
    for (const { jwks, jwksUrl, ...i } of issuers) {
      if (aliases.has(i.alias)) return fail(`issuer alias "${i.alias}" is configured twice`);
      aliases.add(i.alias);
      if (!exchangeUrlAllowed(i.issuer, allowLoopbackHttp)) return fail(`issuer "${i.issuer}" ${URL_RULE}`);
      // a token names its issuer by `iss`: two aliases for one issuer would make the alias a guess
      if (issuerUrls.has(i.issuer)) return fail(`issuer "${i.issuer}" is configured twice`);
      issuerUrls.add(i.issuer);
      if (jwks && jwksUrl) return fail(`issuer "${i.alias}": give jwks or jwksUrl, not both`);
      if (jwksUrl !== undefined && !exchangeUrlAllowed(jwksUrl, allowLoopbackHttp)) return fail(`issuer "${i.alias}": jwksUrl ${URL_RULE}`);
      const keys: IssuerKeySource = jwks ? { kind: 'inline', jwks } : jwksUrl ? { kind: 'url', jwksUrl } : { kind: 'discovery' };
      out.push({ ...i, keys });
    }
    return { issuers: out, allowLoopbackHttp };
  }),
);

/** The TOKEN_EXCHANGE var's schema (src/worker/config.ts): unset or empty → undefined (exchange off). */
export const TOKEN_EXCHANGE_ENTRY = v.pipe(
  v.optional(v.string()),
  v.transform((s) => (s === '' ? undefined : s)),
  v.optional(v.pipe(v.string(), jsonText('must be a JSON object'), plainObject('must be a JSON object'), SCHEMA)),
);
