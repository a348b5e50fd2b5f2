// A hostile corpus against the real issuer under wrangler dev (issue 20, "Done when"): every endpoint hit
// with malformed and oversize input, wrong types, bad SPIFFE IDs, CSR tricks, forged and replayed agent
// proofs, bad admin credentials, join-token reuse, dot entry IDs, method confusion and huge headers; token
// exchange (TOKEN_EXCHANGE trusting a loopback OIDC issuer), the notification upgrade, WIT-SVIDs (WIT_SVID_TTL).
// Every answer must be < 500 (429 counts as an allowed refusal), every 4xx must carry
// {"error":{"code","message"}} (the token exchange's POST: RFC 6749's {"error","error_description"}), and every certificate or JWT in a 2xx answer must verify against the
// trust domain's published keys and name only a SPIFFE ID an entry authorizes for that caller (the table
// `allowed` per case). docs/hardening.md lists what the corpus covers.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { CompactSign, decodeJwt, decodeProtectedHeader, type CryptoKey, type JWK } from 'jose';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_PROOF_TYP } from '../../src/shared/agent-proof.js';
import { AGENT_API_LIMITS } from '../../src/shared/agent-api.js';
import { toBase64Url } from '../../src/shared/encoding/base64.js';
import { certificatesFromPem } from '../../src/shared/encoding/pem.js';
import { EXCHANGE_LIMITS, TOKEN_EXCHANGE_GRANT, TOKEN_TYPE_JWT, TOKEN_TYPE_X509_SVID } from '../../src/shared/exchange/request.js';
import { MAX_BUNDLE_BYTES, parseBundleJson } from '../../src/shared/spiffe/bundle.js';
import { validateJwtSvid } from '../../src/shared/spiffe/jwt-svid.js';
import { validateWitSvid, WIT_TYP } from '../../src/shared/spiffe/wit-svid.js';
import { validateX509Svid } from '../../src/shared/spiffe/x509-svid.js';
import { MAX_JSON_BODY_BYTES } from '../../src/worker/http-json.js';
import { ADMIN_BATCH_MAX_BODY_BYTES } from '../../src/worker/routes/admin/params.js';
import { AGENT_SMALL_BODY_MAX_BYTES } from '../../src/worker/routes/agent.js';
import { adminCall, startIssuer, type RunningIssuer } from '../../scripts/local-stack.js';
import { agentProof, attestWithJoinToken, rawRequest, type AgentCredential, type RawAnswer } from '../helpers/node/agent-api-client.js';
import { fromBase64, generateKeys, makeCsr, makeRootCa, makeSvid, toBase64, type KeyPair } from '../helpers/shared/agent-svid.js';
import { generateKeys as generateAnyKeys, signingAlgorithmOf, type KeyKind } from '../helpers/shared/pki.js';
import { createTokenSigner, startOidcTokenIssuer, type OidcTokenIssuer } from '../helpers/node/oidc-token-issuer.js';

const TD = 'hostile.test';
const ID = (path: string) => `spiffe://${TD}${path}`;
const MiB = 1024 * 1024;

let root: string;
let issuer: RunningIssuer;
/** the OIDC issuer TOKEN_EXCHANGE trusts (alias `ci`); its tokens with repository acme/app get EXCHANGED_ID */
let oidc: OidcTokenIssuer;
const EXCHANGE_AUD = 'https://wisp.hostile.test';
const EXCHANGED_ID = ID('/hostile/exchanged');
/** a public key a workload would hold for a WIT-SVID (cnf.jwk) */
let witKey: JWK;
/** agents A and B (own entries), C (for cases that may change its state) */
const agents: Record<'A' | 'B', AgentCredential> = {} as never;
/** entry IDs and their SPIFFE IDs */
const entries: Record<'a1' | 'a1child' | 'b1', { id: string; spiffeId: string }> = {} as never;
/** a workload X509-SVID (entry a1) with its key: must never pass as an agent */
let workloadSvid: AgentCredential;
let roots: Uint8Array[];
let jwks: { keys: Record<string, unknown>[] };
/** a JWT-SVID minted for a non-admin ID: must never pass as an admin credential */
let nonAdminJwt: string;
/** a valid CSR (base64) reused where a case needs one */
let goodCsr: string;

/** what every answer and signing of the run came to, for the summary case */
const ledger = { answers: 0, signed: 0, refusals429: 0, statuses: new Map<number, number>() };

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'wisp-hostile-'));
  oidc = await startOidcTokenIssuer();
  // as test/e2e/token-exchange.test.ts configures it, with replays refused (a row replays a token)
  const TOKEN_EXCHANGE = JSON.stringify({ allowLoopbackHttp: true, issuers: [{ alias: 'ci', issuer: oidc.url, audiences: [EXCHANGE_AUD], claims: ['repository'], replay: 'refuse' }] });
  issuer = await startIssuer({ stateDir: join(root, 'issuer'), trustDomain: TD, vars: { TOKEN_EXCHANGE, WIT_SVID_TTL: '1h' } });
  await adminCall(issuer, 'POST', '/entries', { spiffeId: EXCHANGED_ID, parentId: ID('/spire/exchange/ci'), selectors: [{ type: 'oidc', value: 'ci:repository:acme/app' }] });
  const witPair = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as unknown as KeyPair;
  const { kty, crv, x, y } = (await crypto.subtle.exportKey('jwk', witPair.publicKey)) as JWK;
  witKey = { kty, crv, x, y, alg: 'ES256' };
  for (const name of ['A', 'B'] as const) {
    const { token } = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', {});
    agents[name] = await attestWithJoinToken(issuer.url, token);
  }
  const make = async (path: string, parentId: string) => {
    const { entry } = await adminCall<{ entry: { id: string; spiffeId: string } }>(issuer, 'POST', '/entries', { spiffeId: ID(path), parentId, selectors: [{ type: 'unix', value: 'uid:1000' }] });
    return entry;
  };
  entries.a1 = await make('/hostile/a1', agents.A.agentId);
  entries.a1child = await make('/hostile/a1/child', entries.a1.spiffeId);
  entries.b1 = await make('/hostile/b1', agents.B.agentId);
  const bundle = JSON.parse((await rawRequest(issuer.url, { method: 'GET', path: '/bundle' })).text) as unknown;
  roots = (await parseBundleJson(bundle, TD)).x509Authorities;
  jwks = JSON.parse((await rawRequest(issuer.url, { method: 'GET', path: '/keys' })).text) as typeof jwks;
  const csr = await makeCsr();
  goodCsr = toBase64(csr.der);
  const ws = await send({ caller: 'A', method: 'POST', path: '/agent/v1/x509-svids', body: { requests: [{ entryId: entries.a1.id, csr: goodCsr }] } });
  const signed = JSON.parse(ws.text) as { svids: { svid: { certChain: string[] } }[] };
  workloadSvid = { agentId: entries.a1.spiffeId, chain: signed.svids[0]!.svid.certChain.map(fromBase64), keys: csr.keys };
  nonAdminJwt = (await adminCall<{ token: string }>(issuer, 'POST', '/jwt-svids/mint', { spiffeId: ID('/not-admin'), audience: ['wisp'] })).token;
}, 180_000);

afterAll(async () => {
  await issuer?.stop();
  await oidc?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

type Caller = 'none' | 'admin' | 'A' | 'B';

/** One request of the corpus: who sends it and what. `body` is JSON unless a string or bytes. */
interface Call {
  caller: Caller;
  method: string;
  path: string;
  body?: unknown;
  contentType?: string | null;
  /** replaces the Authorization header (a forged or wrong credential) */
  authorization?: string;
  headers?: Record<string, string>;
  chunked?: boolean;
  /** the endpoint refuses a POST in RFC 6749 §5.2's shape (token exchange), not Wisp's */
  oauthErrors?: boolean;
}

function rawBodyOf(body: unknown): string | Uint8Array | undefined {
  if (body === undefined) return undefined;
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  return JSON.stringify(body);
}

async function send(call: Call): Promise<RawAnswer> {
  const body = rawBodyOf(call.body);
  const headers: Record<string, string> = { ...call.headers };
  if (body !== undefined && call.contentType !== null) headers['content-type'] = call.contentType ?? 'application/json';
  if (call.authorization !== undefined) headers.authorization = call.authorization;
  else if (call.caller === 'admin') headers.authorization = `Bearer ${issuer.adminToken}`;
  else if (call.caller === 'A' || call.caller === 'B') headers.authorization = await agentProof(agents[call.caller], call.method, call.path, body ?? '');
  return rawRequest(issuer.url, { method: call.method, path: call.path, headers, body, chunked: call.chunked });
}

/** The SPIFFE IDs an entry authorizes for each caller (SPIRE: the agent's entries and their descendants). */
function authorizedFor(caller: Caller): string[] {
  if (caller === 'A') return [entries.a1.spiffeId, entries.a1child.spiffeId];
  if (caller === 'B') return [entries.b1.spiffeId];
  return [];
}

/** Every SPIFFE ID a 2xx answer carries in a certificate chain or a JWT-SVID, each verified against the published keys. */
async function signedIdentities(answer: RawAnswer): Promise<string[]> {
  if (answer.status < 200 || answer.status >= 300 || !answer.text) return [];
  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {
    return [];
  }
  const found: string[] = [];
  const walk = async (v: unknown): Promise<void> => {
    if (Array.isArray(v)) for (const x of v) await walk(x);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (Array.isArray(o.certChain)) {
        const checked = await validateX509Svid((o.certChain as string[]).map(fromBase64), { now: Date.now(), roots });
        if (!checked.ok) throw new Error(`a signed certificate does not validate as an X509-SVID of the bundle: ${checked.error.message}`);
        found.push(checked.value.spiffeId);
      }
      if (typeof o.token === 'string' && o.token.split('.').length === 3) found.push(await verifiedJwt(o.token));
      // a token exchange's answer: a JWT-SVID, or an X509-SVID chain in PEM
      if (typeof o.access_token === 'string') {
        if (o.access_token.split('.').length === 3) found.push(await verifiedJwt(o.access_token));
        else {
          const checked = await validateX509Svid(certificatesFromPem(o.access_token), { now: Date.now(), roots });
          if (!checked.ok) throw new Error(`an exchanged certificate does not validate as an X509-SVID of the bundle: ${checked.error.message}`);
          found.push(checked.value.spiffeId);
        }
      }
      for (const x of Object.values(o)) await walk(x);
    }
  };
  await walk(json);
  return found;
}

/** The SPIFFE ID of a JWT-SVID (verified against /keys) or a WIT-SVID (against the bundle's WIT authorities, read now: made on first use). */
async function verifiedJwt(token: string): Promise<string> {
  if (decodeProtectedHeader(token).typ === WIT_TYP) {
    const bundle = await parseBundleJson(JSON.parse((await rawRequest(issuer.url, { method: 'GET', path: '/bundle' })).text), TD);
    const checked = await validateWitSvid(token, bundle.witAuthorities ?? [], { now: Date.now(), trustDomain: TD });
    if (!checked.ok) throw new Error(`a signed WIT-SVID does not validate against the bundle: ${checked.error.message}`);
    return checked.value.spiffeId;
  }
  const aud = decodeJwt(token).aud;
  const checked = await validateJwtSvid(token, jwks as never, { audience: Array.isArray(aud) ? aud[0]! : String(aud), now: Date.now(), trustDomain: TD });
  if (!checked.ok) throw new Error(`a signed JWT does not validate against /keys: ${checked.error.message}`);
  return checked.value.spiffeId;
}

/** One row of a table: a request, the IDs it may sign, and the outcome wanted where it matters. */
interface Row {
  name: string;
  call: () => Promise<Call> | Call;
  /** SPIFFE IDs this request may be signed for (default: none) */
  allowed?: () => string[];
  /** statuses accepted (429 always is); default any < 500 */
  want?: number[];
}

async function runRow(row: Row): Promise<void> {
  const call = await row.call();
  const answer = await send(call);
  await checkAnswer(row, call, answer);
}

async function checkAnswer(row: Pick<Row, 'name' | 'allowed' | 'want'>, call: Pick<Call, 'method' | 'oauthErrors'>, answer: RawAnswer): Promise<string[]> {
  ledger.answers++;
  ledger.statuses.set(answer.status, (ledger.statuses.get(answer.status) ?? 0) + 1);
  const what = `${row.name}: ${answer.status} ${answer.text.slice(0, 300)}`;
  expect(answer.status, what).toBeGreaterThan(0);
  expect(answer.status, what).toBeLessThan(500);
  if (answer.status === 429) {
    ledger.refusals429++;
    return [];
  }
  if (answer.status >= 400 && call.method !== 'HEAD') {
    expect(String(answer.headers['content-type']), what).toMatch(/^application\/json/);
    if (call.oauthErrors && call.method === 'POST') {
      const body = JSON.parse(answer.text) as { error?: unknown; error_description?: unknown };
      expect(body.error, what).toMatch(/^(invalid_request|invalid_grant|unauthorized_client|invalid_target|invalid_scope|unsupported_grant_type|temporarily_unavailable)$/);
      expect(typeof body.error_description === 'string' && body.error_description.length > 0, what).toBe(true);
    } else {
      const body = JSON.parse(answer.text) as { error?: { code?: unknown; message?: unknown } };
      expect(body.error?.code, what).toMatch(/^ERR_[A-Z0-9_]+$/);
      expect(typeof body.error?.message === 'string' && body.error.message.length > 0, what).toBe(true);
    }
  }
  if (row.want) expect(row.want, what).toContain(answer.status);
  const ids = await signedIdentities(answer);
  ledger.signed += ids.length;
  const allowed = row.allowed?.() ?? [];
  for (const id of ids) expect(allowed, `${row.name} signed ${id}`).toContain(id);
  return ids;
}

// ---------------------------------------------------------------- the endpoints

interface Endpoint {
  name: string;
  caller: Caller;
  method: string;
  path: string;
  /** body limit, bytes (POST/PUT only) */
  limit?: number;
  oauthErrors?: boolean;
}

const GET_ENDPOINTS: Endpoint[] = [
  { name: 'bundle', caller: 'none', method: 'GET', path: '/bundle' },
  { name: 'keys', caller: 'none', method: 'GET', path: '/keys' },
  { name: 'oidc', caller: 'none', method: 'GET', path: '/.well-known/openid-configuration' },
  { name: 'healthz', caller: 'none', method: 'GET', path: '/healthz' },
  { name: 'agent bundle', caller: 'A', method: 'GET', path: '/agent/v1/bundle' },
  { name: 'agent refresh-tasks', caller: 'A', method: 'GET', path: '/agent/v1/federation/refresh-tasks' },
  { name: 'admin entries', caller: 'admin', method: 'GET', path: '/admin/v1/entries' },
  { name: 'admin entries count', caller: 'admin', method: 'GET', path: '/admin/v1/entries/count' },
  { name: 'admin agents', caller: 'admin', method: 'GET', path: '/admin/v1/agents' },
  { name: 'admin federation', caller: 'admin', method: 'GET', path: '/admin/v1/federation' },
  { name: 'admin bundles', caller: 'admin', method: 'GET', path: '/admin/v1/bundles' },
  { name: 'admin bundle', caller: 'admin', method: 'GET', path: '/admin/v1/bundle' },
];

const BODY_ENDPOINTS: Endpoint[] = [
  { name: 'attest', caller: 'none', method: 'POST', path: '/agent/v1/attest', limit: AGENT_SMALL_BODY_MAX_BYTES },
  { name: 'sync', caller: 'A', method: 'POST', path: '/agent/v1/sync', limit: AGENT_SMALL_BODY_MAX_BYTES },
  { name: 'x509-svids', caller: 'A', method: 'POST', path: '/agent/v1/x509-svids', limit: AGENT_API_LIMITS.MAX_BODY_BYTES },
  { name: 'jwt-svids', caller: 'A', method: 'POST', path: '/agent/v1/jwt-svids', limit: AGENT_API_LIMITS.MAX_BODY_BYTES },
  { name: 'agent federation bundles', caller: 'A', method: 'POST', path: '/agent/v1/federation/bundles', limit: MAX_BUNDLE_BYTES + 16 * 1024 },
  { name: 'entries create', caller: 'admin', method: 'POST', path: '/admin/v1/entries', limit: MAX_JSON_BODY_BYTES },
  { name: 'entries batch-create', caller: 'admin', method: 'POST', path: '/admin/v1/entries/batch-create', limit: ADMIN_BATCH_MAX_BODY_BYTES },
  { name: 'entries batch-update', caller: 'admin', method: 'POST', path: '/admin/v1/entries/batch-update', limit: ADMIN_BATCH_MAX_BODY_BYTES },
  { name: 'entries batch-delete', caller: 'admin', method: 'POST', path: '/admin/v1/entries/batch-delete', limit: ADMIN_BATCH_MAX_BODY_BYTES },
  { name: 'entry update', caller: 'admin', method: 'PUT', path: '/admin/v1/entries/no-such-entry', limit: MAX_JSON_BODY_BYTES },
  { name: 'join-tokens', caller: 'admin', method: 'POST', path: '/admin/v1/join-tokens', limit: MAX_JSON_BODY_BYTES },
  { name: 'mint x509', caller: 'admin', method: 'POST', path: '/admin/v1/x509-svids/mint', limit: MAX_JSON_BODY_BYTES },
  { name: 'mint jwt', caller: 'admin', method: 'POST', path: '/admin/v1/jwt-svids/mint', limit: MAX_JSON_BODY_BYTES },
  { name: 'federation create', caller: 'admin', method: 'POST', path: '/admin/v1/federation', limit: MAX_BUNDLE_BYTES + 64 * 1024 },
  { name: 'foreign bundle put', caller: 'admin', method: 'PUT', path: '/admin/v1/bundles/foreign.test', limit: MAX_BUNDLE_BYTES + 64 * 1024 },
  { name: 'wit-svids', caller: 'A', method: 'POST', path: '/agent/v1/wit-svids', limit: AGENT_API_LIMITS.MAX_BODY_BYTES },
  { name: 'token exchange', caller: 'none', method: 'POST', path: '/exchange/v1/token', limit: EXCHANGE_LIMITS.MAX_BODY_BYTES, oauthErrors: true },
];

/** The IDs a request to this endpoint may be signed for, whatever its body (admin mint: only the mint ID below). */
const MINT_ID = ID('/hostile/minted');
const allowedAt = (e: Endpoint) => () => (e.path.endsWith('/mint') ? [MINT_ID] : authorizedFor(e.caller));

const encoder = new TextEncoder();
const MALFORMED_JSON: [string, string | Uint8Array][] = [
  ['empty', ''],
  ['spaces', '   '],
  ['open brace', '{'],
  ['cut object', '{"a":'],
  ['cut array', '[1,2'],
  ['bare word', 'nul'],
  ['NaN', 'NaN'],
  ['trailing brace', '{"a":1}}'],
  ['two documents', '{}{}'],
  ['NUL byte', '{"a":"\u0000"}\u0000'],
  ['invalid UTF-8', new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])],
  ['BOM', '\ufeff{}'],
  ['huge exponent', '1e999999'],
  ['__proto__ pollution', '{"__proto__":{"admin":true},"constructor":{"prototype":{"admin":true}}}'],
  ['single quotes', "{'a':1}"],
];

describe('malformed JSON on every body endpoint', () => {
  const rows: Row[] = BODY_ENDPOINTS.flatMap((e) => MALFORMED_JSON.map(([label, body]): Row => ({ name: `${e.name} ${label}`, call: () => ({ ...e, body }), allowed: allowedAt(e) })));
  it.each(rows)('$name', runRow);
});

const CONTENT_TYPES: (string | null)[] = [null, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'application/json-patch+json', 'text/json', 'application/json, text/plain'];

describe('wrong content types on every body endpoint', () => {
  const rows: Row[] = BODY_ENDPOINTS.flatMap((e) => CONTENT_TYPES.map((ct): Row => ({ name: `${e.name} ${ct ?? 'no content-type'}`, call: () => ({ ...e, body: '{}', contentType: ct }), allowed: allowedAt(e), want: [400, 401, 403, 404, 415] })));
  it.each(rows)('$name', runRow);
});

describe('oversize bodies (content-length and chunked) on every body endpoint', () => {
  const rows: Row[] = BODY_ENDPOINTS.flatMap((e) =>
    [false, true].map((chunked): Row => ({
      name: `${e.name} ${chunked ? 'chunked' : 'content-length'} ${e.limit! + MiB} bytes`,
      call: () => ({ ...e, body: new Uint8Array(e.limit! + MiB).fill(0x20), chunked }),
      // agent routes refuse a missing proof before reading; the rest answer 413
      want: [413, 401],
    })),
  );
  it.each(rows)('$name', runRow);
});

const DEEP = 30_000;
const HUGE_JSON: [string, () => string][] = [
  ['deep arrays', () => '['.repeat(DEEP) + ']'.repeat(DEEP)],
  ['deep objects', () => '{"a":'.repeat(8000) + '1' + '}'.repeat(8000)],
  ['5000 keys', () => JSON.stringify(Object.fromEntries(Array.from({ length: 5000 }, (_, i) => [`k${i}`, i])))],
  ['60 KB string', () => JSON.stringify({ spiffeId: 'x'.repeat(60_000) })],
  ['20000-item array', () => JSON.stringify({ requests: Array(20_000).fill(0), entries: Array(20_000).fill(0), ids: Array(20_000).fill('x') })],
  ['huge numbers', () => '{"ttlSeconds":1e308,"x509SvidTtl":123456789012345678901234567890,"bundleSequence":-0}'],
];

describe('deep and huge JSON on every body endpoint', () => {
  const rows: Row[] = BODY_ENDPOINTS.flatMap((e) => HUGE_JSON.map(([label, body]): Row => ({ name: `${e.name} ${label}`, call: () => ({ ...e, body: body() }), allowed: allowedAt(e) })));
  it.each(rows)('$name', runRow);
});

// ---------------------------------------------------------------- wrong types in every field

const JUNK: unknown[] = [null, 0, -1, 1.5, 1e308, true, '', 'x', [], [1], {}, { $ne: null }, 'x'.repeat(5000)];
const PARKED_PARENT = ID('/spire/agent/parked'); // no agent: entries created by these cases authorize nobody

/** A valid body per endpoint and the field paths to spoil one at a time. */
const TYPED_BODIES: { endpoint: Endpoint; body: () => Record<string, unknown>; fields: string[] }[] = [
  { endpoint: BODY_ENDPOINTS[0]!, body: () => ({ attestationType: 'join_token', payload: { token: 'not-a-token' }, csr: goodCsr }), fields: ['attestationType', 'payload', 'payload.token', 'csr'] },
  { endpoint: BODY_ENDPOINTS[1]!, body: () => ({ revision: '', bundleSequence: 0 }), fields: ['revision', 'bundleSequence'] },
  { endpoint: BODY_ENDPOINTS[2]!, body: () => ({ requests: [{ entryId: entries.a1.id, csr: goodCsr }] }), fields: ['requests', 'requests.0', 'requests.0.entryId', 'requests.0.csr'] },
  { endpoint: BODY_ENDPOINTS[3]!, body: () => ({ requests: [{ entryId: entries.a1.id, audience: ['x'] }] }), fields: ['requests', 'requests.0', 'requests.0.entryId', 'requests.0.audience'] },
  { endpoint: BODY_ENDPOINTS[4]!, body: () => ({ trustDomain: 'foreign.test', error: 'x' }), fields: ['trustDomain', 'error', 'bundle'] },
  {
    endpoint: BODY_ENDPOINTS[5]!,
    body: () => ({ spiffeId: ID('/typed/x'), parentId: PARKED_PARENT, selectors: [{ type: 'unix', value: 'uid:1' }], x509SvidTtl: 0, jwtSvidTtl: 0, dnsNames: [], federatesWith: [], admin: false, downstream: false, hint: '', expiresAt: 0 }),
    fields: ['id', 'spiffeId', 'parentId', 'selectors', 'selectors.0', 'selectors.0.type', 'selectors.0.value', 'x509SvidTtl', 'jwtSvidTtl', 'dnsNames', 'federatesWith', 'admin', 'downstream', 'hint', 'expiresAt'],
  },
  { endpoint: BODY_ENDPOINTS[8]!, body: () => ({ ids: ['no-such-entry'] }), fields: ['ids', 'ids.0'] },
  { endpoint: BODY_ENDPOINTS[10]!, body: () => ({ ttlSeconds: 60 }), fields: ['ttlSeconds', 'spiffeId'] },
  { endpoint: BODY_ENDPOINTS[11]!, body: () => ({ spiffeId: MINT_ID, csr: goodCsr, ttlSeconds: 60, dnsNames: [] }), fields: ['spiffeId', 'csr', 'ttlSeconds', 'dnsNames'] },
  { endpoint: BODY_ENDPOINTS[12]!, body: () => ({ spiffeId: MINT_ID, audience: ['x'], ttlSeconds: 60 }), fields: ['spiffeId', 'audience', 'ttlSeconds'] },
  {
    endpoint: BODY_ENDPOINTS[13]!,
    body: () => ({ trustDomain: 'typed-fed.test', bundleEndpointUrl: 'https://127.0.0.1:9/bundle', bundleEndpointProfile: 'https_spiffe', endpointSpiffeId: 'spiffe://typed-fed.test/x', refreshAgentId: agents.A.agentId, trustDomainBundle: { keys: [] } }),
    fields: ['trustDomain', 'bundleEndpointUrl', 'bundleEndpointProfile', 'endpointSpiffeId', 'refreshAgentId', 'trustDomainBundle'],
  },
  { endpoint: BODY_ENDPOINTS[14]!, body: () => ({ bundle: { keys: [] } }), fields: ['bundle'] },
  { endpoint: BODY_ENDPOINTS[15]!, body: () => ({ requests: [{ entryId: entries.a1.id, publicKey: { ...witKey } }] }), fields: ['requests', 'requests.0', 'requests.0.entryId', 'requests.0.publicKey', 'requests.0.publicKey.alg', 'requests.0.publicKey.x'] },
];

function spoil(body: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const keys = path.split('.');
  let o: Record<string, unknown> = body;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[keys.at(-1)!] = value;
  return body;
}

describe('wrong types in every field', () => {
  const rows: Row[] = TYPED_BODIES.flatMap(({ endpoint, body, fields }) =>
    fields.flatMap((field) =>
      JUNK.map((value): Row => ({
        name: `${endpoint.name} ${field}=${JSON.stringify(value)?.slice(0, 24)}`,
        call: () => ({ ...endpoint, body: spoil(body(), field, value) }),
        allowed: allowedAt(endpoint),
      })),
    ),
  );
  it.each(rows)('$name', runRow);
});

// ---------------------------------------------------------------- bad SPIFFE IDs

const BAD_IDS: string[] = [
  ID('/../etc/passwd'),
  ID('/a/./b'),
  ID('/a/../b'),
  ID('/a%2Fb'),
  ID('/%2e%2e/x'),
  ID('/a%00b'),
  `spiffe://HOSTILE.test/x`,
  `SPIFFE://${TD}/x`,
  ID('//x'),
  ID('/x/'),
  ID('/'),
  `spiffe://${TD}`,
  ID(`/${'a'.repeat(2048)}`),
  ID(`/${'a/'.repeat(1024)}b`),
  'spiffe://other.test/x',
  `spiffe://user@${TD}/x`,
  `spiffe://${TD}:443/x`,
  ID('/x?q=1'),
  ID('/x#frag'),
  ID('/é'),
  ` ${ID('/x')}`,
  ID('/x\n'),
  'https://hostile.test/x',
  '',
];

describe('bad SPIFFE IDs wherever an ID is read', () => {
  const places: [string, (bad: string) => Call][] = [
    ['entry spiffeId', (bad) => ({ caller: 'admin', method: 'POST', path: '/admin/v1/entries', body: { spiffeId: bad, parentId: PARKED_PARENT, selectors: [{ type: 'unix', value: 'uid:1' }] } })],
    ['entry parentId', (bad) => ({ caller: 'admin', method: 'POST', path: '/admin/v1/entries', body: { spiffeId: ID('/bad-parent'), parentId: bad, selectors: [{ type: 'unix', value: 'uid:1' }] } })],
    ['join token spiffeId', (bad) => ({ caller: 'admin', method: 'POST', path: '/admin/v1/join-tokens', body: { spiffeId: bad } })],
    ['mint x509 spiffeId', (bad) => ({ caller: 'admin', method: 'POST', path: '/admin/v1/x509-svids/mint', body: { spiffeId: bad, csr: goodCsr } })],
    ['mint jwt spiffeId', (bad) => ({ caller: 'admin', method: 'POST', path: '/admin/v1/jwt-svids/mint', body: { spiffeId: bad, audience: ['x'] } })],
    ['entries filter', (bad) => ({ caller: 'admin', method: 'GET', path: `/admin/v1/entries?spiffeId=${encodeURIComponent(bad)}&parentId=${encodeURIComponent(bad)}` })],
    ['agent path', (bad) => ({ caller: 'admin', method: 'GET', path: `/admin/v1/agents/${encodeURIComponent(bad)}` })],
    ['agent ban path', (bad) => ({ caller: 'admin', method: 'POST', path: `/admin/v1/agents/${encodeURIComponent(bad)}/ban` })],
    ['federation refreshAgentId', (bad) => ({ caller: 'admin', method: 'POST', path: '/admin/v1/federation', body: { trustDomain: 'bad-id.test', bundleEndpointUrl: 'https://127.0.0.1:9/b', bundleEndpointProfile: 'https_spiffe', endpointSpiffeId: bad, refreshAgentId: bad, trustDomainBundle: { keys: [] } } })],
  ];
  // the IDs the parser must refuse: a 2xx on any of them is a finding; a filter may answer 200 (signs nothing), and the
  // trust domain ID is a valid parent (SPIRE's too)
  const rows: Row[] = places.flatMap(([place, call]) =>
    BAD_IDS.filter((bad) => bad !== '' || !place.includes('path')).map((bad): Row => ({ name: `${place} ${JSON.stringify(bad.slice(0, 40))}${bad.length > 40 ? `…(${bad.length})` : ''}`, call: () => call(bad), want: place.startsWith('entries filter') ? [200, 400] : place === 'entry parentId' && bad === `spiffe://${TD}` ? [201] : [400, 404] })),
  );
  it.each(rows)('$name', runRow);
});

// ---------------------------------------------------------------- CSR tricks

async function csrWith(opts: { kind?: KeyKind; extensions?: x509.Extension[]; signer?: CryptoKey } = {}): Promise<Uint8Array> {
  const kind = opts.kind ?? 'P-256';
  const keys = await generateAnyKeys(kind);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=trick',
    keys: { publicKey: keys.publicKey, privateKey: opts.signer ?? keys.privateKey } as never,
    signingAlgorithm: signingAlgorithmOf(kind),
    extensions: opts.extensions ?? [],
  });
  return new Uint8Array(csr.rawData);
}

async function rsaKeys(bits: number): Promise<KeyPair> {
  return (await crypto.subtle.generateKey({ name: 'RSASSA-PKCS1-v1_5', modulusLength: bits, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, true, ['sign', 'verify'])) as unknown as KeyPair;
}

const concat = (...parts: Uint8Array[]) => Uint8Array.from(parts.flatMap((p) => [...p]));

/** CSR tricks, base64 of the bytes sent; `ok` marks the control that must be signed. */
const CSR_TRICKS: { name: string; csr: () => Promise<string>; ok?: boolean }[] = [
  { name: 'valid control', ok: true, csr: async () => toBase64(await csrWith()) },
  { name: 'trailing 00 00 00', csr: async () => toBase64(concat(await csrWith(), new Uint8Array(3))) },
  { name: 'a second CSR appended', csr: async () => toBase64(concat(await csrWith(), await csrWith())) },
  { name: '2 KB junk appended', csr: async () => toBase64(concat(await csrWith(), crypto.getRandomValues(new Uint8Array(2048)))) },
  {
    name: 'wrong signature',
    csr: async () => {
      const der = await csrWith();
      der[der.length - 2] = der[der.length - 2]! ^ 0x55;
      return toBase64(der);
    },
  },
  { name: 'key differs from the signer', csr: async () => toBase64(await csrWith({ signer: (await generateKeys()).privateKey })) },
  {
    name: 'RSA-512',
    csr: async () => {
      const keys = await rsaKeys(512);
      return toBase64(new Uint8Array((await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=rsa512', keys, signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } })).rawData));
    },
  },
  { name: 'RSA-1024', csr: async () => toBase64(await csrWith({ kind: 'RSA-1024' })) },
  { name: 'Ed25519', csr: async () => toBase64(await csrWith({ kind: 'Ed25519' })) },
  { name: 'URI SAN for another ID', csr: async () => toBase64(await csrWith({ extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: entries.b1.spiffeId }])] })) },
  { name: 'CA:true requested', csr: async () => toBase64(await csrWith({ extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)] })) },
  { name: 'a certificate instead of a CSR', csr: async () => toBase64(agents.A.chain[0]!) },
  { name: 'not base64', csr: async () => '!!not base64!!' },
  { name: 'empty', csr: async () => '' },
  { name: 'random bytes', csr: async () => toBase64(crypto.getRandomValues(new Uint8Array(300))) },
  { name: 'PEM text', csr: async () => btoa(`-----BEGIN CERTIFICATE REQUEST-----\n${toBase64(await csrWith())}\n-----END CERTIFICATE REQUEST-----\n`) },
  { name: '9 KB', csr: async () => toBase64(concat(await csrWith(), new Uint8Array(9000))) },
];

describe('CSR tricks at every signing endpoint', () => {
  const tokens = new Map<string, string>();
  const rows: Row[] = CSR_TRICKS.flatMap((t): Row[] => [
    {
      name: `attest ${t.name}`,
      call: async () => {
        const { token } = await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', {});
        tokens.set(t.name, token);
        return { caller: 'none', method: 'POST', path: '/agent/v1/attest', body: { attestationType: 'join_token', payload: { token }, csr: await t.csr() } };
      },
      allowed: () => [ID(`/spire/agent/join_token/${tokens.get(t.name)}`)],
      want: t.ok ? [200] : [400],
    },
    { name: `x509-svids ${t.name}`, call: async () => ({ caller: 'A', method: 'POST', path: '/agent/v1/x509-svids', body: { requests: [{ entryId: entries.a1.id, csr: await t.csr() }] } }), allowed: () => [entries.a1.spiffeId], want: t.ok ? [200] : [400] },
    { name: `mint ${t.name}`, call: async () => ({ caller: 'admin', method: 'POST', path: '/admin/v1/x509-svids/mint', body: { spiffeId: MINT_ID, csr: await t.csr() } }), allowed: () => [MINT_ID], want: t.ok ? [200] : [400] },
  ]);
  // "URI SAN for another ID" and "CA:true requested" may be signed (the entry decides the SAN and the profile, as SPIRE):
  // then the certificate must name only the allowed ID and validate as a leaf X509-SVID (cA=false), which checkAnswer checks
  for (const r of rows) if (/URI SAN|CA:true/.test(r.name)) delete r.want;
  it.each(rows)('$name', runRow);
});

// ---------------------------------------------------------------- forged and replayed agent proofs

const b64url = (s: string) => toBase64Url(encoder.encode(s));

async function payloadFor(method: string, path: string, body: string, iat = Math.floor(Date.now() / 1000)) {
  const bdh = toBase64Url(new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(body))));
  return { htm: method, htu: path, bdh, iat, jti: toBase64Url(crypto.getRandomValues(new Uint8Array(16))) };
}

/** A proof signed with `sign` under `header` (jose), for algorithms and keys the agent would never use. */
async function forgedProof(header: Record<string, unknown>, key: CryptoKey | Uint8Array, method: string, path: string, body: string): Promise<string> {
  const jws = await new CompactSign(encoder.encode(JSON.stringify(await payloadFor(method, path, body)))).setProtectedHeader(header as never).sign(key);
  return `WispAgentProof ${jws}`;
}

const SYNC = { method: 'POST', path: '/agent/v1/sync', body: '{}' };
const SIGN = () => ({ method: 'POST', path: '/agent/v1/x509-svids', body: JSON.stringify({ requests: [{ entryId: entries.a1.id, csr: goodCsr }] }) });
const x5cOf = (chain: Uint8Array[]) => chain.map((d) => toBase64(d));

/** A forged Authorization header for the request `r` (every one must get 401, nothing signed). */
const FORGERIES: [string, (r: { method: string; path: string; body: string }) => Promise<string>][] = [
  ["another agent's key", (r) => agentProof({ ...agents.A, keys: agents.B.keys }, r.method, r.path, r.body)],
  ['expired (iat an hour ago)', (r) => agentProof(agents.A, r.method, r.path, r.body, { now: Date.now() / 1000 - 3600 })],
  ['from the future (iat in an hour)', (r) => agentProof(agents.A, r.method, r.path, r.body, { now: Date.now() / 1000 + 3600 })],
  ['for another path', (r) => agentProof(agents.A, r.method, '/agent/v1/bundle', r.body)],
  ['for another method', (r) => agentProof(agents.A, 'GET', r.path, r.body)],
  ['for another body', (r) => agentProof(agents.A, r.method, r.path, `${r.body} `)],
  ['alg none, empty signature', async (r) => `WispAgentProof ${b64url(JSON.stringify({ alg: 'none', typ: AGENT_PROOF_TYP, x5c: x5cOf(agents.A.chain) }))}.${b64url(JSON.stringify(await payloadFor(r.method, r.path, r.body)))}.`],
  ['alg none, junk signature', async (r) => `WispAgentProof ${b64url(JSON.stringify({ alg: 'none', typ: AGENT_PROOF_TYP, x5c: x5cOf(agents.A.chain) }))}.${b64url(JSON.stringify(await payloadFor(r.method, r.path, r.body)))}.AAAA`],
  ['HS256 keyed with the agent certificate', (r) => forgedProof({ alg: 'HS256', typ: AGENT_PROOF_TYP, x5c: x5cOf(agents.A.chain) }, agents.A.chain[0]!, r.method, r.path, r.body)],
  ['ES512 with a P-521 key', async (r) => {
    const keys = (await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-521' }, false, ['sign', 'verify'])) as unknown as KeyPair;
    return forgedProof({ alg: 'ES512', typ: AGENT_PROOF_TYP, x5c: x5cOf(agents.A.chain) }, keys.privateKey, r.method, r.path, r.body);
  }],
  ['ES384 header over a P-256 key', (r) => forgedProof({ alg: 'ES384', typ: AGENT_PROOF_TYP, x5c: x5cOf(agents.A.chain) }, agents.A.keys.privateKey, r.method, r.path, r.body).catch(() => 'WispAgentProof x.y.z')],
  ['wrong typ', (r) => forgedProof({ alg: 'ES256', typ: 'JWT', x5c: x5cOf(agents.A.chain) }, agents.A.keys.privateKey, r.method, r.path, r.body)],
  ['no x5c', (r) => forgedProof({ alg: 'ES256', typ: AGENT_PROOF_TYP }, agents.A.keys.privateKey, r.method, r.path, r.body)],
  ['x5c of junk', (r) => forgedProof({ alg: 'ES256', typ: AGENT_PROOF_TYP, x5c: ['AAAA', 'not base64!'] }, agents.A.keys.privateKey, r.method, r.path, r.body)],
  ['x5c chaining to a foreign CA (same agent ID)', async (r) => {
    const now = Math.floor(Date.now() / 1000);
    const foreign = await makeRootCa(TD, now, { name: 'Attacker CA' });
    const leaf = await makeSvid(foreign, agents.A.agentId, now);
    return agentProof({ agentId: agents.A.agentId, chain: [leaf.der, foreign.der], keys: leaf.keys }, r.method, r.path, r.body);
  }],
  ['x5c is a workload SVID, not an agent SVID', (r) => agentProof(workloadSvid, r.method, r.path, r.body)],
  ["agent A's leaf with a foreign intermediate appended", async (r) => {
    const foreign = await makeRootCa(TD, Math.floor(Date.now() / 1000));
    return agentProof({ ...agents.A, chain: [agents.A.chain[0]!, foreign.der] }, r.method, r.path, r.body);
  }],
  ['admin bearer token on the agent API', async () => `Bearer ${issuer.adminToken}`],
  ['scheme only', async () => 'WispAgentProof '],
  ['three dots', async () => 'WispAgentProof a.b.c'],
  ['20 KB proof', async () => `WispAgentProof ${'A'.repeat(20_000)}.${'A'.repeat(10)}.${'A'.repeat(10)}`],
];

describe('forged and replayed agent proofs', () => {
  const rows: Row[] = FORGERIES.flatMap(([label, forge]): Row[] =>
    [SYNC, SIGN].map((target): Row => ({
      name: `${label} on ${typeof target === 'function' ? 'x509-svids' : 'sync'}`,
      call: async () => {
        const r = typeof target === 'function' ? target() : target;
        return { caller: 'none', ...r, authorization: await forge(r) };
      },
      want: [401],
    })),
  );
  it.each(rows)('$name', runRow);

  it.each([SYNC, SIGN])('a replayed proof is refused the second time (%#)', async (target) => {
    const r = typeof target === 'function' ? target() : target;
    const authorization = await agentProof(agents.A, r.method, r.path, r.body);
    const call: Call = { caller: 'none', ...r, authorization };
    await checkAnswer({ name: 'first use', want: [200], allowed: () => authorizedFor('A') }, call, await send(call));
    const again = await Promise.all(Array.from({ length: 4 }, () => send(call)));
    for (const a of again) await checkAnswer({ name: 'replay', want: [401] }, call, a);
  });

  it('agent B asking for entries of agent A gets no identity', async () => {
    const rowsB: Row[] = [
      { name: 'B x509 for a1', call: () => ({ caller: 'B', method: 'POST', path: '/agent/v1/x509-svids', body: { requests: [{ entryId: entries.a1.id, csr: goodCsr }] } }), want: [403], allowed: () => authorizedFor('B') },
      { name: 'B x509 for b1 and a1', call: () => ({ caller: 'B', method: 'POST', path: '/agent/v1/x509-svids', body: { requests: [{ entryId: entries.b1.id, csr: goodCsr }, { entryId: entries.a1child.id, csr: goodCsr }] } }), want: [403], allowed: () => authorizedFor('B') },
      { name: 'B jwt for a1', call: () => ({ caller: 'B', method: 'POST', path: '/agent/v1/jwt-svids', body: { requests: [{ entryId: entries.a1.id, audience: ['x'] }] } }), want: [403], allowed: () => authorizedFor('B') },
      { name: 'A jwt for a1 and a1child (control)', call: () => ({ caller: 'A', method: 'POST', path: '/agent/v1/jwt-svids', body: { requests: [{ entryId: entries.a1.id, audience: ['x'] }, { entryId: entries.a1child.id, audience: ['y'] }] } }), want: [200], allowed: () => authorizedFor('A') },
      { name: 'B submits a bundle it does not refresh', call: () => ({ caller: 'B', method: 'POST', path: '/agent/v1/federation/bundles', body: { trustDomain: 'foreign.test', error: 'x' } }), want: [403] },
    ];
    for (const r of rowsB) await runRow(r);
  });
});

// ---------------------------------------------------------------- notification upgrades and WIT-SVIDs

const NOTIFY = { method: 'GET', path: '/agent/v1/notifications', body: '' };
const UPGRADE = { upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };

describe('the notification upgrade (GET /agent/v1/notifications)', () => {
  const rows: Row[] = [
    { name: 'no proof, no upgrade', call: () => ({ caller: 'none', method: NOTIFY.method, path: NOTIFY.path }), want: [401] },
    { name: 'no proof, an upgrade', call: () => ({ caller: 'none', method: NOTIFY.method, path: NOTIFY.path, headers: UPGRADE }), want: [401] },
    // every forged proof of the agent API, with the upgrade asked for: refused before any upgrade ("for another
    // method" signs GET, this route's own method: a valid proof, replaced by one for POST)
    ...FORGERIES.filter(([label]) => label !== 'for another method').map(([label, forge]): Row => ({ name: `${label}, an upgrade`, call: async () => ({ caller: 'none', method: NOTIFY.method, path: NOTIFY.path, headers: UPGRADE, authorization: await forge(NOTIFY) }), want: [401] })),
    { name: 'a proof for POST, an upgrade', call: async () => ({ caller: 'none', method: NOTIFY.method, path: NOTIFY.path, headers: UPGRADE, authorization: await agentProof(agents.A, 'POST', NOTIFY.path, '') }), want: [401] },
    { name: 'a valid proof, no Upgrade header', call: () => ({ caller: 'A', method: NOTIFY.method, path: NOTIFY.path }), want: [400] },
    { name: 'a valid proof, Upgrade: h2c', call: () => ({ caller: 'A', method: NOTIFY.method, path: NOTIFY.path, headers: { upgrade: 'h2c', connection: 'Upgrade' } }), want: [400] },
    { name: 'a valid proof over a body', call: () => ({ caller: 'A', method: NOTIFY.method, path: NOTIFY.path, headers: UPGRADE, body: '{}' }), want: [400, 401, 413] },
  ];
  it.each(rows)('$name', runRow);
});

describe('WIT-SVIDs (POST /agent/v1/wit-svids; garbage and oversize bodies are in the tables above)', () => {
  const WIT = '/agent/v1/wit-svids';
  const request = (entryId: string, publicKey: unknown = witKey) => ({ entryId, publicKey });
  const rows: Row[] = [
    { name: 'A for a1 and a1child (control)', call: () => ({ caller: 'A', method: 'POST', path: WIT, body: { requests: [request(entries.a1.id), request(entries.a1child.id)] } }), want: [200], allowed: () => authorizedFor('A') },
    { name: 'unsigned', call: () => ({ caller: 'none', method: 'POST', path: WIT, body: { requests: [request(entries.a1.id)] } }), want: [401] },
    { name: 'unsigned, garbage', call: () => ({ caller: 'none', method: 'POST', path: WIT, body: '{"requests":[' }), want: [401] },
    { name: 'B for a1', call: () => ({ caller: 'B', method: 'POST', path: WIT, body: { requests: [request(entries.a1.id)] } }), want: [403], allowed: () => authorizedFor('B') },
    { name: 'a private key as publicKey', call: () => ({ caller: 'A', method: 'POST', path: WIT, body: { requests: [request(entries.a1.id, { ...witKey, d: witKey.x })] } }), want: [400] },
    { name: 'one good key and one off the curve', call: () => ({ caller: 'A', method: 'POST', path: WIT, body: { requests: [request(entries.a1.id), request(entries.a1child.id, { ...witKey, y: witKey.x })] } }), want: [400] },
    { name: 'ES384 named over a P-256 key', call: () => ({ caller: 'A', method: 'POST', path: WIT, body: { requests: [request(entries.a1.id, { ...witKey, alg: 'ES384' })] } }), want: [400] },
    { name: 'a batch over MAX_BATCH_WITS', call: () => ({ caller: 'A', method: 'POST', path: WIT, body: { requests: Array.from({ length: AGENT_API_LIMITS.MAX_BATCH_WITS + 1 }, () => request(entries.a1.id)) } }), want: [400, 413] },
  ];
  it.each(rows)('$name', runRow);
});

// ---------------------------------------------------------------- token exchange (RFC 8693)

const EXCHANGE: Call = { caller: 'none', method: 'POST', path: '/exchange/v1/token', contentType: 'application/x-www-form-urlencoded', oauthErrors: true };
const RP = 'https://rp.hostile.test';
const nowSeconds = () => Math.floor(Date.now() / 1000);
/** a token TOKEN_EXCHANGE trusts, with claims the entry EXCHANGED_ID authorizes unless `claims` says otherwise */
const subjectToken = (claims: Record<string, unknown> = {}, aud = EXCHANGE_AUD) => oidc.token(aud, { repository: 'acme/app', ...claims });

/** A JWT-SVID exchange's form: `over` replaces fields (null drops one), `extra` appends (a field again). */
function exchangeForm(token: string, over: Record<string, string | null> = {}, extra: [string, string][] = []): string {
  const fields = Object.entries({ grant_type: TOKEN_EXCHANGE_GRANT, subject_token: token, subject_token_type: TOKEN_TYPE_JWT, audience: RP, ...over }).filter((f): f is [string, string] => f[1] !== null);
  return new URLSearchParams([...fields, ...extra]).toString();
}
/** `over` for an X509-SVID exchange of a fresh CSR (base64url DER) */
const x509Over = async (csr?: Uint8Array) => ({ audience: null, requested_token_type: TOKEN_TYPE_X509_SVID, csr: toBase64Url(csr ?? (await makeCsr()).der) });

const EXCHANGE_ROWS: [string, () => Promise<string>, number[]][] = [
  ['a JWT-SVID (control)', async () => exchangeForm(await subjectToken()), [200]],
  ['an X509-SVID for a CSR (control)', async () => exchangeForm(await subjectToken(), await x509Over()), [200]],
  ['no grant_type', async () => exchangeForm(await subjectToken(), { grant_type: null }), [400]],
  ['grant_type authorization_code', async () => exchangeForm(await subjectToken(), { grant_type: 'authorization_code' }), [400]],
  ['grant_type twice', async () => exchangeForm(await subjectToken(), {}, [['grant_type', TOKEN_EXCHANGE_GRANT]]), [400]],
  ['no subject_token', async () => exchangeForm('', { subject_token: null }), [400]],
  ['a 17 KB subject_token', async () => exchangeForm('a'.repeat(17 * 1024)), [400]],
  ['a subject_token that is no JWT', async () => exchangeForm('not.a.jwt'), [400]],
  ['subject_token_type access_token', async () => exchangeForm(await subjectToken(), { subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' }), [400]],
  ['an actor_token (delegation)', async () => exchangeForm(await subjectToken(), {}, [['actor_token', await subjectToken()]]), [400]],
  ['alg none with the trusted iss', async () => exchangeForm(`${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ iss: oidc.url, aud: EXCHANGE_AUD, sub: 'x', repository: 'acme/app', iat: nowSeconds(), exp: nowSeconds() + 300, jti: crypto.randomUUID() }))}.`), [400]],
  ['the trusted iss and kid, another key', async () => exchangeForm(await (await createTokenSigner(oidc.kid)).sign({ iss: oidc.url, aud: EXCHANGE_AUD, sub: 'x', repository: 'acme/app' })), [400]],
  ['an untrusted issuer', async () => exchangeForm(await (await createTokenSigner()).sign({ iss: 'https://evil.hostile.test', aud: EXCHANGE_AUD, sub: 'x', repository: 'acme/app' })), [400]],
  ['another audience', async () => exchangeForm(await subjectToken({}, 'https://other.hostile.test')), [400]],
  ['an expired token', async () => exchangeForm(await subjectToken({ iat: nowSeconds() - 7200, exp: nowSeconds() - 3600 })), [400]],
  ['a token older than maxTokenAgeSeconds', async () => exchangeForm(await subjectToken({ iat: nowSeconds() - 7200, exp: nowSeconds() + 300 })), [400]],
  ['a token no entry authorizes', async () => exchangeForm(await subjectToken({ repository: 'acme/other' })), [400]],
  ['a scope that is no SPIFFE ID', async () => exchangeForm(await subjectToken(), { scope: 'openid' }), [400]],
  ["a scope of agent B's entry", async () => exchangeForm(await subjectToken(), { scope: entries.b1.spiffeId }), [400]],
  ['no audience', async () => exchangeForm(await subjectToken(), { audience: null }), [400]],
  ['17 audiences', async () => exchangeForm(await subjectToken(), {}, Array.from({ length: 16 }, (_, i): [string, string] => ['audience', `${RP}/${i}`])), [400]],
  ['a 600-character audience', async () => exchangeForm(await subjectToken(), { audience: `${RP}/${'a'.repeat(600)}` }), [400]],
  ['an X509-SVID without csr', async () => exchangeForm(await subjectToken(), { ...(await x509Over()), csr: null }), [400]],
  ['a csr that is no base64url', async () => exchangeForm(await subjectToken(), { ...(await x509Over()), csr: '!!not base64!!' }), [400]],
  ['a csr of random bytes', async () => exchangeForm(await subjectToken(), await x509Over(crypto.getRandomValues(new Uint8Array(300)))), [400]],
  ['a csr with a broken signature', async () => {
    const der = (await makeCsr()).der;
    der[der.length - 2] = der[der.length - 2]! ^ 0x55;
    return exchangeForm(await subjectToken(), await x509Over(der));
  }, [400]],
  ['a csr and an audience', async () => exchangeForm(await subjectToken(), { ...(await x509Over()), audience: RP }), [400]],
];

describe('token exchange (POST /exchange/v1/token; content types, oversize and method confusion are in the tables above)', () => {
  const rows: Row[] = EXCHANGE_ROWS.map(([name, body, want]): Row => ({ name, call: async () => ({ ...EXCHANGE, body: await body() }), want, allowed: () => [EXCHANGED_ID] }));
  it.each(rows)('$name', runRow);

  it('a replayed subject token is refused the second time (replay: refuse)', async () => {
    const token = await subjectToken();
    await checkAnswer({ name: 'first use', want: [200], allowed: () => [EXCHANGED_ID] }, EXCHANGE, await send({ ...EXCHANGE, body: exchangeForm(token) }));
    await checkAnswer({ name: 'replay', want: [400] }, EXCHANGE, await send({ ...EXCHANGE, body: exchangeForm(token) }));
    await checkAnswer({ name: 'replay as an X509-SVID', want: [400] }, EXCHANGE, await send({ ...EXCHANGE, body: exchangeForm(token, await x509Over()) }));
  });
});

// ---------------------------------------------------------------- admin credentials

describe('unauthenticated and wrong-token admin calls', () => {
  const ADMIN_TARGETS: Call[] = [
    { caller: 'none', method: 'GET', path: '/admin/v1/entries' },
    { caller: 'none', method: 'POST', path: '/admin/v1/entries', body: { spiffeId: ID('/unauth'), parentId: PARKED_PARENT, selectors: [{ type: 'unix', value: 'uid:1' }] } },
    { caller: 'none', method: 'POST', path: '/admin/v1/join-tokens', body: {} },
    { caller: 'none', method: 'POST', path: '/admin/v1/x509-svids/mint', body: { spiffeId: MINT_ID, csr: '' } },
    { caller: 'none', method: 'POST', path: '/admin/v1/jwt-svids/mint', body: { spiffeId: MINT_ID, audience: ['x'] } },
    { caller: 'none', method: 'DELETE', path: '/admin/v1/agents/spiffe%3A%2F%2Fhostile.test%2Fspire%2Fagent%2Fx' },
  ];
  const CREDENTIALS: [string, () => string | undefined][] = [
    ['none', () => undefined],
    ['empty', () => ''],
    ['Bearer alone', () => 'Bearer'],
    ['wrong token', () => 'Bearer wrong-token'],
    ['token plus one char', () => `Bearer ${issuer.adminToken}x`],
    ['token prefix', () => `Bearer ${issuer.adminToken.slice(0, -1)}`],
    ['token twice', () => `Bearer ${issuer.adminToken} ${issuer.adminToken}`],
    ['Basic scheme', () => `Basic ${btoa(`admin:${issuer.adminToken}`)}`],
    ['Token scheme', () => `Token ${issuer.adminToken}`],
    ['a JWT-SVID of a non-admin ID', () => `Bearer ${nonAdminJwt}`],
    ['alg none JWT', () => `Bearer ${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: ID('/admin'), aud: ['wisp'], exp: 9999999999 }))}.`],
    ['a JWT-SVID with its signature cut', () => `Bearer ${nonAdminJwt.split('.').slice(0, 2).join('.')}.`],
    ['an agent proof', () => 'WispAgentProof a.b.c'],
    ['100 KB bearer', () => `Bearer ${'a'.repeat(100_000)}`],
  ];
  const rows: Row[] = ADMIN_TARGETS.flatMap((target) =>
    CREDENTIALS.map(([label, cred]): Row => ({
      name: `${target.method} ${target.path.slice(0, 40)} with ${label}`,
      call: () => {
        const value = cred();
        return value === undefined ? target : { ...target, authorization: value };
      },
      want: [401, 403, 431],
    })),
  );
  it.each(rows)('$name', runRow);
  it('the admin token in the query string is not a credential', () => runRow({ name: 'token in query', call: () => ({ caller: 'none', method: 'GET', path: `/admin/v1/entries?token=${issuer.adminToken}&access_token=${issuer.adminToken}` }), want: [401] }));
});

// ---------------------------------------------------------------- join tokens

describe('join-token reuse', () => {
  const attestCall = async (token: string): Promise<Call> => ({ caller: 'none', method: 'POST', path: '/agent/v1/attest', body: { attestationType: 'join_token', payload: { token }, csr: toBase64((await makeCsr()).der) } });
  const newToken = async (body: Record<string, unknown> = {}) => (await adminCall<{ token: string }>(issuer, 'POST', '/join-tokens', body)).token;

  it('a used token attests no second time', async () => {
    const token = await newToken();
    const allowed = () => [ID(`/spire/agent/join_token/${token}`)];
    await checkAnswer({ name: 'first use', want: [200], allowed }, { method: 'POST' }, await send(await attestCall(token)));
    for (let i = 0; i < 3; i++) await checkAnswer({ name: `reuse ${i}`, want: [400, 401, 403, 409], allowed: () => [] }, { method: 'POST' }, await send(await attestCall(token)));
  });

  it('one token used by 8 concurrent attestations attests once', async () => {
    const token = await newToken();
    const calls = await Promise.all(Array.from({ length: 8 }, () => attestCall(token)));
    const answers = await Promise.all(calls.map(send));
    let signed = 0;
    for (const a of answers) signed += (await checkAnswer({ name: 'concurrent reuse', allowed: () => [ID(`/spire/agent/join_token/${token}`)] }, { method: 'POST' }, a)).length;
    expect(answers.filter((a) => a.status === 200)).toHaveLength(1);
    expect(signed).toBe(1);
  });

  it('6 tokens preset to one agent ID, used at once, attest at most once', async () => {
    const preset = ID(`/spire/agent/hostile/${crypto.randomUUID()}`);
    const tokens = await Promise.all(Array.from({ length: 6 }, () => newToken({ spiffeId: preset })));
    const answers = await Promise.all((await Promise.all(tokens.map(attestCall))).map(send));
    let signed = 0;
    for (const a of answers) signed += (await checkAnswer({ name: 'preset concurrent', allowed: () => [preset] }, { method: 'POST' }, a)).length;
    expect(signed).toBeLessThanOrEqual(1);
  });
});

// ---------------------------------------------------------------- entry IDs, methods, headers

describe('entry IDs ".", "..", "%2e" and friends', () => {
  const DOT_IDS = ['.', '..', '%2e', '%2e%2e', '.%2e', '%2E%2E', '%2e%2E%2f', '..%2f..%2fjoin-tokens', '%00', '%252e%252e'];
  const rows: Row[] = DOT_IDS.flatMap((raw): Row[] => [
    { name: `create with id ${raw}`, call: () => ({ caller: 'admin', method: 'POST', path: '/admin/v1/entries', body: { id: decodeURIComponentSafe(raw), spiffeId: ID(`/dot/${crypto.randomUUID()}`), parentId: PARKED_PARENT, selectors: [{ type: 'unix', value: 'uid:1' }] } }), want: [400] },
    { name: `batch-create with id ${raw}`, call: () => ({ caller: 'admin', method: 'POST', path: '/admin/v1/entries/batch-create', body: { entries: [{ id: decodeURIComponentSafe(raw), spiffeId: ID(`/dot/${crypto.randomUUID()}`), parentId: PARKED_PARENT, selectors: [{ type: 'unix', value: 'uid:1' }] }] } }), want: [200] },
    { name: `GET /entries/${raw}`, call: () => ({ caller: 'admin', method: 'GET', path: `/admin/v1/entries/${raw}` }) },
    { name: `PUT /entries/${raw}`, call: () => ({ caller: 'admin', method: 'PUT', path: `/admin/v1/entries/${raw}`, body: { spiffeId: ID('/dot/put'), parentId: PARKED_PARENT, selectors: [{ type: 'unix', value: 'uid:1' }] } }) },
    { name: `DELETE /entries/${raw}`, call: () => ({ caller: 'admin', method: 'DELETE', path: `/admin/v1/entries/${raw}` }) },
  ]);
  it.each(rows)('$name', runRow);

  it('no entry with a dot ID exists afterwards', async () => {
    const { entries: all } = await adminCall<{ entries: { id: string }[] }>(issuer, 'GET', '/entries?pageSize=1000');
    expect(all.filter((e) => /^\.+$/.test(e.id))).toEqual([]);
  });
});

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

describe('method confusion', () => {
  const rows: Row[] = [
    ...GET_ENDPOINTS.flatMap((e) => ['HEAD', 'OPTIONS', 'PUT', 'DELETE', 'PATCH', 'POST'].map((method): Row => ({ name: `${method} ${e.path}`, call: () => ({ ...e, method, body: method === 'HEAD' || method === 'OPTIONS' ? undefined : '{}' }), allowed: () => authorizedFor(e.caller) }))),
    ...BODY_ENDPOINTS.flatMap((e) => ['GET', 'HEAD', 'DELETE', 'PATCH', e.method === 'POST' ? 'PUT' : 'POST'].map((method): Row => ({ name: `${method} ${e.path}`, call: () => ({ ...e, method }), allowed: allowedAt(e) }))),
  ];
  it.each(rows)('$name', runRow);
});

describe('huge headers', () => {
  const HEADERS: [string, () => Record<string, string>][] = [
    ['one 16 KB header', () => ({ 'x-junk': 'a'.repeat(16 * 1024) })],
    ['one 60 KB header', () => ({ 'x-junk': 'a'.repeat(60 * 1024) })],
    ['100 headers of 1 KB', () => Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-junk-${i}`, 'b'.repeat(1024)]))],
    ['a 16 KB content-type', () => ({ 'content-type': `application/json; ${'p=1; '.repeat(3000)}` })],
  ];
  const targets: Call[] = [
    { caller: 'none', method: 'GET', path: '/healthz' },
    { caller: 'admin', method: 'GET', path: '/admin/v1/entries' },
    { caller: 'A', method: 'POST', path: '/agent/v1/sync', body: '{}' },
  ];
  const rows: Row[] = targets.flatMap((t) => HEADERS.map(([label, headers]): Row => ({ name: `${t.method} ${t.path} ${label}`, call: () => ({ ...t, headers: headers() }) })));
  it.each(rows)('$name', runRow);
});

describe('the corpus as a whole', () => {
  it('signed something (the controls worked) and every answer was checked', () => {
    expect(ledger.signed).toBeGreaterThan(10);
    expect(ledger.answers).toBeGreaterThan(1000);
    console.log(`hostile corpus: ${ledger.answers} answers, ${ledger.signed} identities signed (all authorized), ${ledger.refusals429} 429s; statuses ${JSON.stringify(Object.fromEntries(ledger.statuses))}`);
  });
});
