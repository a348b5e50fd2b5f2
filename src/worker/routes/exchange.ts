/**
 * Token exchange (RFC 8693), mounted at /exchange/v1: `POST /token` turns a platform-signed token (GitHub
 * Actions, GitLab CI, Kubernetes, cloud workload tokens) from a TOKEN_EXCHANGE issuer into a JWT-SVID, or,
 * with a `csr`, an X509-SVID for the CSR's key (verified by parseCsr, as on the agent API).
 *
 * Authorization is the registry's, as for agents: the entries parented by `spiffe://<td>/spire/exchange/<alias>`
 * whose selectors are a subset of the token's `oidc:<alias>:<claim>:<value>` selectors (SPIRE's node-alias
 * match, the registry's `subset` filter). None: nothing is signed. Several: `scope` must name the SPIFFE ID.
 * The SVID's SPIFFE ID, TTL and DNS names come from the entry, a JWT-SVID's audience from the request, never
 * anything from the token or the CSR's subject or SANs. Signing is counted per client address in the CA's
 * signing buckets. Every exchange is logged (alias,
 * sub, the SPIFFE ID or the refusal), never the token. Documented in docs/token-exchange.md.
 * @module
 */
import { Hono, type Context } from 'hono';
import type { Clock } from '../../shared/clock.js';
import { WispError } from '../../shared/errors.js';
import type { TrustedTokenIssuer } from '../../shared/exchange/config.js';
import { ExchangeError, EXCHANGE_LIMITS, exchangeResponse, parseExchangeRequest, TOKEN_TYPE_X509_SVID, x509ExchangeResponse, type ExchangeRequest } from '../../shared/exchange/request.js';
import { exchangeParentId, selectorsOfToken, trustedIssuerOf, verifySubjectToken } from '../../shared/exchange/subject-token.js';
import type { Entry } from '../../shared/registry/entry.js';
import { parseCsr, type ParsedCsr } from '../../shared/spiffe/csr.js';
import { isEntryExpired } from '../../shared/registry/entry-validation.js';
import type { EntryStore } from '../../shared/registry/ports.js';
import { unwrap } from '../../shared/result.js';
import type { TrustDomainCaApi } from '../ca/ca-api.js';
import { clientAddress } from '../client-address.js';
import type { WorkerConfig } from '../config.js';
import type { ExchangeJtiStore } from '../db/exchange-jtis.js';
import { readPublishedKeys } from '../ca/published-keys.js';
import type { IssuerKeys } from '../exchange/issuer-keys.js';
import { readBodyBytes } from '../http-json.js';
import { logEvent } from '../log.js';
import { NO_STORE } from '../middleware/no-store.js';

export const EXCHANGE_API_PREFIX = '/exchange/v1';
/** Entries one token may match; more is a registry mistake, refused rather than guessed. */
const MAX_MATCHING_ENTRIES = 64;

export interface ExchangeDeps {
  config: WorkerConfig;
  clock: Clock;
  ca: () => TrustDomainCaApi;
  entries: Pick<EntryStore, 'list'>;
  exchangeJtis: ExchangeJtiStore;
  issuerKeys: Map<string, IssuerKeys>;
}

const utf8 = new TextDecoder();

/** The entries authorizing this token, the one asked for by `scope` when several do. */
async function authorizedEntry(deps: ExchangeDeps, issuer: TrustedTokenIssuer, selectors: ReturnType<typeof selectorsOfToken>, req: ExchangeRequest, now: number): Promise<Entry> {
  const parentId = exchangeParentId(deps.config.trustDomain, issuer.alias);
  const page = await deps.entries.list({ parentId, selectors: { selectors, match: 'subset' } }, { pageSize: MAX_MATCHING_ENTRIES });
  if (page.nextPageToken !== undefined) throw new ExchangeError('unauthorized_client', `more than ${MAX_MATCHING_ENTRIES} entries match this token`);
  const live = page.entries.filter((e) => !isEntryExpired(e, now));
  const wanted = req.spiffeId === undefined ? live : live.filter((e) => e.spiffeId === req.spiffeId);
  if (live.length === 0) throw new ExchangeError('unauthorized_client', 'no registration entry authorizes this token');
  if (wanted.length === 0) throw new ExchangeError('invalid_scope', `no registration entry authorizes ${req.spiffeId} for this token`);
  const ids = [...new Set(wanted.map((e) => e.spiffeId))].sort();
  if (ids.length > 1) throw new ExchangeError('invalid_scope', `several identities are authorized for this token; name one in scope: ${ids.join(' ')}`);
  return wanted[0]!;
}

/** A CA or key-server error as the RFC's error (they are not the client's fault). */
function asExchangeError(e: unknown): ExchangeError | undefined {
  if (e instanceof ExchangeError) return e;
  if (!(e instanceof WispError)) return undefined;
  if (e.code === 'ERR_CSR_INVALID') return new ExchangeError('invalid_request', `csr: ${e.message}`);
  if (e.code === 'ERR_REQUEST_TOO_LARGE') return new ExchangeError('invalid_request', e.message, 413);
  if (e.code === 'ERR_RATE_LIMITED') return new ExchangeError('temporarily_unavailable', e.message, 429);
  if (e.code === 'ERR_UNAVAILABLE' || e.code === 'ERR_CA_NOT_READY') return new ExchangeError('temporarily_unavailable', e.message);
  return undefined;
}

export function exchangeRoutes(deps: ExchangeDeps): Hono {
  const app = new Hono();
  const nowSeconds = () => Math.floor(deps.clock() / 1000);

  async function exchange(c: Context, log: Record<string, unknown>): Promise<Response> {
    const exchangeConfig = deps.config.tokenExchange;
    if (!exchangeConfig) throw new ExchangeError('unsupported_grant_type', 'token exchange is not configured on this issuer (TOKEN_EXCHANGE)');
    const body = utf8.decode(await readBodyBytes(c.req.raw, EXCHANGE_LIMITS.MAX_BODY_BYTES));
    const req = parseExchangeRequest(c.req.header('content-type'), body);
    const issuer = trustedIssuerOf(req.subjectToken, exchangeConfig);
    log.alias = issuer.alias;
    const { payload } = await verifySubjectToken(req.subjectToken, issuer, deps.issuerKeys.get(issuer.alias)!, deps.clock());
    log.sub = typeof payload.sub === 'string' ? payload.sub.slice(0, 256) : undefined;
    const now = nowSeconds();
    // the CSR's signature is checked (CPU) while the registry is read; both settle before a jti is spent
    const verifying: Promise<ParsedCsr> | undefined = req.csr && parseCsr(req.csr);
    verifying?.catch(() => undefined); // awaited below; a refused authorization must not leave an unhandled rejection
    const entry = await authorizedEntry(deps, issuer, selectorsOfToken(issuer, payload), req, now);
    const csr = await verifying;
    if (issuer.replay === 'refuse') {
      if (typeof payload.jti !== 'string' || payload.jti === '' || payload.jti.length > 256) throw new ExchangeError('invalid_grant', 'subject_token has no jti, and this issuer refuses replays');
      // kept until the token can no longer pass verification (exp + the clock skew)
      const fresh = await deps.exchangeJtis.use(`${issuer.alias}\n${payload.jti}`, payload.exp! + issuer.clockSkewSeconds, now);
      if (!fresh) throw new ExchangeError('invalid_grant', 'subject_token was already exchanged (replay)');
    }
    const caller = `exchange:${clientAddress(c.req.raw.headers) ?? 'unknown'}`;
    if (req.requestedTokenType === TOKEN_TYPE_X509_SVID) {
      const ca = deps.ca();
      const [[signed], keys] = await Promise.all([
        ca.signX509Svids([{ spiffeId: entry.spiffeId, publicKeySpki: csr!.publicKeySpki, dnsNames: entry.dnsNames, ttlSeconds: entry.x509SvidTtl || deps.config.x509SvidTtlSeconds }], caller),
        readPublishedKeys(ca),
      ]);
      const svid = unwrap(signed!);
      Object.assign(log, { spiffe_id: svid.spiffeId, entry_id: entry.id, token_type: 'x509-svid', serial_number: svid.serialNumber });
      return c.json(x509ExchangeResponse(svid.certChain, keys.x509Authorities, svid.expiresAt, now));
    }
    const [result] = await deps.ca().signJwtSvids([{ spiffeId: entry.spiffeId, audience: req.audience, ttlSeconds: entry.jwtSvidTtl || deps.config.jwtSvidTtlSeconds, extraClaims: entry.jwtSvidClaims }], caller);
    const svid = unwrap(result!);
    Object.assign(log, { spiffe_id: svid.spiffeId, entry_id: entry.id, audience: req.audience });
    return c.json(exchangeResponse(svid.token, svid.expiresAt, now));
  }

  app.post('/token', async (c) => {
    c.header('Cache-Control', NO_STORE);
    c.header('Pragma', 'no-cache');
    const log: Record<string, unknown> = { source: clientAddress(c.req.raw.headers) };
    try {
      const res = await exchange(c, log);
      logEvent('info', 'token exchanged', log);
      return res;
    } catch (e) {
      const refusal = asExchangeError(e);
      if (!refusal) throw e;
      logEvent('warn', 'token exchange refused', { ...log, error: refusal.error, reason: refusal.message });
      if (refusal.status === 429 && e instanceof WispError && e.retryAfterSeconds !== undefined) c.header('Retry-After', String(e.retryAfterSeconds));
      return c.json(refusal.body(), refusal.status as 400);
    }
  });
  return app;
}
