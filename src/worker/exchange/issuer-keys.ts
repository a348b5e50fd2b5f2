/**
 * The signing keys of each TOKEN_EXCHANGE issuer, one key set per alias per app (so per isolate): inline
 * keys as configured; `jwksUrl` through RemoteKeySet (fetch timeout, size limit, cache headers, at most one
 * refetch per cooldown for an unknown kid, redirects refused); neither: OIDC discovery
 * (`<issuer>/.well-known/openid-configuration`, its `issuer` must be the configured one and its `jwks_uri`
 * pass the config's URL rule), then the same RemoteKeySet.
 * @module
 */
import type { JSONWebKeySet } from 'jose';
import { KEY_SET_FETCH_TIMEOUT_MS, RemoteKeySet } from '../../shared/attestation/remote-key-set.js';
import { WispError } from '../../shared/errors.js';
import { exchangeUrlAllowed, type TokenExchangeConfig, type TrustedTokenIssuer } from '../../shared/exchange/config.js';

export interface IssuerKeys {
  get(now: number, refresh?: boolean): Promise<JSONWebKeySet>;
}

/** A discovery document is a few KB; anything much larger is not one. */
const DISCOVERY_MAX_BYTES = 64 * 1024;
/** After a failed discovery, the next attempt waits this long (a broken issuer is not hammered). */
const DISCOVERY_RETRY_MS = 30_000;

function discoveredKeys(issuer: TrustedTokenIssuer, allowLoopbackHttp: boolean, fetchImpl: typeof fetch): IssuerKeys {
  const url = `${issuer.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const unavailable = (why: string) => new WispError('ERR_UNAVAILABLE', `discovery of token issuer "${issuer.alias}" failed: ${why}`);
  let keys: RemoteKeySet | undefined;
  let failedAt = -Infinity;
  let pending: Promise<RemoteKeySet> | undefined;
  async function discover(): Promise<RemoteKeySet> {
    let res: Response;
    try {
      res = await fetchImpl(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(KEY_SET_FETCH_TIMEOUT_MS), redirect: 'manual' });
    } catch {
      throw unavailable('network error or timeout');
    }
    if (!res.ok) throw unavailable(`HTTP ${res.status}`);
    const text = await res.text();
    if (text.length > DISCOVERY_MAX_BYTES) throw unavailable(`document larger than ${DISCOVERY_MAX_BYTES} bytes`);
    let doc: { issuer?: unknown; jwks_uri?: unknown };
    try {
      doc = JSON.parse(text) as typeof doc;
    } catch {
      throw unavailable('document is not JSON');
    }
    // OpenID Connect Discovery §4.3: the document's issuer is exactly the one it was fetched for
    if (doc?.issuer !== issuer.issuer) throw unavailable('document names another issuer');
    if (typeof doc.jwks_uri !== 'string' || !exchangeUrlAllowed(doc.jwks_uri, allowLoopbackHttp)) throw unavailable('jwks_uri is missing or not https');
    return new RemoteKeySet({ url: doc.jwks_uri, fetch: fetchImpl });
  }
  return {
    async get(now, refresh = false) {
      if (!keys) {
        if (now - failedAt < DISCOVERY_RETRY_MS) throw unavailable('retrying later');
        pending ??= discover().finally(() => (pending = undefined));
        try {
          keys = await pending;
        } catch (e) {
          failedAt = now;
          throw e;
        }
      }
      return keys.get(now, refresh);
    },
  };
}

/** The key sets by alias (none when token exchange is off). */
export function createIssuerKeys(config: TokenExchangeConfig | undefined, fetchImpl: typeof fetch): Map<string, IssuerKeys> {
  const out = new Map<string, IssuerKeys>();
  for (const issuer of config?.issuers ?? []) {
    const k = issuer.keys;
    if (k.kind === 'inline') out.set(issuer.alias, { get: async () => k.jwks });
    else if (k.kind === 'url') out.set(issuer.alias, new RemoteKeySet({ url: k.jwksUrl, fetch: fetchImpl }));
    else out.set(issuer.alias, discoveredKeys(issuer, config!.allowLoopbackHttp, fetchImpl));
  }
  return out;
}
