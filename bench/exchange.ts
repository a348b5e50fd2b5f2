/**
 * Token exchange (issue 19): exchanges per second at one issuer (`POST /exchange/v1/token`, a few in flight,
 * replays allowed so one subject token serves every request), beside its limit in the same workerd: one
 * ES256 verification of the subject token plus one ES256 signature (the JWT-SVID), and for an X509-SVID also
 * a CSR verification (key import + ECDSA verify); and GET /healthz at the same concurrency, since each exchange
 * is one HTTP request (on a small machine that, not the crypto, is the ceiling). The token issuer is the tests' (its key inline in
 * TOKEN_EXCHANGE, set by stack.ts's startIssuer through `exchangeBenchVars`).
 */
import { createTokenSigner, type TokenSigner } from '../test/helpers/node/oidc-token-issuer.js';
import { record } from './report.js';
import { b64, fetchRetry, makeCsr, TD, type Issuer } from './stack.js';
import { median, pool, QUICK, round } from './stats.js';

const ALIAS = 'bench';
const TOKEN_ISSUER = 'https://token.bench.example';
const AUD = 'https://wisp.bench.example';
const ROUNDS = QUICK ? 2 : 3;
const EXCHANGES = QUICK ? 300 : 1000;
const IN_FLIGHT = 8;
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

let signer: Promise<TokenSigner> | undefined;
/** the bench's token issuer (one key for the process: startIssuer's config and the tokens signed here) */
export const benchTokenSigner = (): Promise<TokenSigner> => (signer ??= createTokenSigner('bench-oidc-1'));

/** The issuer's TOKEN_EXCHANGE var trusting the bench's token issuer (inline JWKS, no discovery). */
export async function exchangeBenchVars(): Promise<{ TOKEN_EXCHANGE: string }> {
  const { jwks } = await benchTokenSigner();
  return { TOKEN_EXCHANGE: JSON.stringify({ issuers: [{ alias: ALIAS, issuer: TOKEN_ISSUER, jwks, audiences: [AUD], claims: ['sub'], maxTokenAgeSeconds: 3600 }] }) };
}

async function perOpMs(issuer: Issuer, path: string, n: number): Promise<number> {
  const empty = await issuer.limits(path, 0);
  return Math.max(1e-6, ((await issuer.limits(path, n)) - empty) / n);
}

/** requests/s, IN_FLIGHT at a time; `forms` cycled as exchange bodies, or none: GET /healthz (the HTTP floor) */
async function requestRate(issuer: Issuer, forms: string[], n: number): Promise<number> {
  const t0 = performance.now();
  await pool(n, IN_FLIGHT, async (i) => {
    const res = forms.length === 0
      ? await fetchRetry(`${issuer.url}/healthz`)
      : await fetchRetry(`${issuer.url}/exchange/v1/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: forms[i % forms.length] });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`exchange: ${res.status} ${text.slice(0, 300)}`);
  });
  return n / ((performance.now() - t0) / 1000);
}

export async function benchExchange(issuer: Issuer): Promise<void> {
  console.log(`\n== Token exchange: ${EXCHANGES} exchanges per round, ${IN_FLIGHT} in flight, one subject token (replays allowed)`);
  const s = await benchTokenSigner();
  await issuer.admin('POST', '/entries', { spiffeId: `spiffe://${TD}/bench/exchange/ci`, parentId: `spiffe://${TD}/spire/exchange/${ALIAS}`, selectors: [{ type: 'oidc', value: `${ALIAS}:sub:bench-ci` }] });
  const token = await s.sign({ iss: TOKEN_ISSUER, aud: AUD, sub: 'bench-ci', exp: Math.floor(Date.now() / 1000) + 3000 });
  const base = { grant_type: GRANT, subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token' };
  const jwtForm = [new URLSearchParams({ ...base, audience: 'https://relying.bench.example' }).toString()];
  const csrs = await Promise.all(Array.from({ length: 8 }, () => makeCsr()));
  const x509Forms = csrs.map((c) => new URLSearchParams({ ...base, requested_token_type: 'urn:spiffe:token-type:x509-svid', csr: b64(c.der).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '') }).toString());
  await requestRate(issuer, jwtForm, 50);
  await requestRate(issuer, x509Forms, 50);
  const r = { jwt: [] as number[], x509: [] as number[], jwtLimit: [] as number[], x509Limit: [] as number[], floor: [] as number[] };
  for (let i = 0; i < ROUNDS; i++) {
    const signMs = await perOpMs(issuer, '/sign', 4000);
    const jwtVerifyMs = await perOpMs(issuer, '/jwt-verify', 4000);
    const csrVerifyMs = await perOpMs(issuer, '/verify', 2000);
    r.jwtLimit.push(1000 / (signMs + jwtVerifyMs));
    r.x509Limit.push(1000 / (signMs + jwtVerifyMs + csrVerifyMs));
    r.floor.push(await requestRate(issuer, [], EXCHANGES));
    r.jwt.push(await requestRate(issuer, jwtForm, EXCHANGES));
    r.x509.push(await requestRate(issuer, x509Forms, EXCHANGES));
    console.log(`  round ${i + 1}: jwt ${Math.round(r.jwt.at(-1)!)}/s (crypto limit ${Math.round(r.jwtLimit.at(-1)!)}/s), x509 ${Math.round(r.x509.at(-1)!)}/s (crypto limit ${Math.round(r.x509Limit.at(-1)!)}/s), GET /healthz ${Math.round(r.floor.at(-1)!)}/s`);
  }
  // one HTTP request per exchange: the loopback request rate of the same client is the other ceiling
  record('exchange_http_floor_per_s', Math.round(median(r.floor)), { limit: `GET /healthz, ${IN_FLIGHT} in flight` });
  record('exchange_jwt_per_s', Math.round(median(r.jwt)), { limit: `${Math.round(median(r.jwtLimit))}/s one ES256 verify (subject token) + one ES256 sign` });
  record('exchange_jwt_ratio', round(median(r.jwt.map((v, i) => v / r.jwtLimit[i]!))));
  record('exchange_x509_per_s', Math.round(median(r.x509)), { limit: `${Math.round(median(r.x509Limit))}/s ES256 verify + CSR verify + ECDSA sign` });
  record('exchange_x509_ratio', round(median(r.x509.map((v, i) => v / r.x509Limit[i]!))));
}
