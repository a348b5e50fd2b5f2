/**
 * Agent request proofs: how a wisp-agent authenticates each agent-API call with its X509-SVID when the edge
 * terminates TLS (no client certificates reach the Worker). The idea is DPoP's (RFC 9449): every request
 * carries a fresh JWS, signed by the agent SVID's key, that binds the method, the path and query, a hash
 * of the exact body bytes, the time and a single-use `jti`; the SVID chain travels in `x5c`.
 *
 *   Authorization: WispAgentProof <compact JWS>
 *   header  {alg: ES256|ES384, typ: "wisp-agent-proof+jwt", x5c: [leaf, ...intermediates] (base64 DER)}
 *   payload {htm, htu, bdh, iat, jti}
 *
 * Runtime-agnostic (jose, WebCrypto, @peculiar/x509); callers import 'reflect-metadata' once. Replay
 * protection (jti seen before) and the agent's registration state are the caller's job (the Worker's
 * agent-auth middleware). Documented in docs/agent-api.md.
 * @module
 */
import * as x509 from '@peculiar/x509';
import { CompactSign, compactVerify, decodeProtectedHeader, type CryptoKey } from 'jose';
import { decodeBase64, toBase64, toBase64Url } from './encoding/base64.js';
import type { WispErrorData } from './errors.js';
import { err, ok, type Result } from './result.js';
import { isAgentId, parseSpiffeId, trustDomainOf, type SpiffeId, type TrustDomain } from './spiffe/id.js';
import { validateX509Path } from './spiffe/x509-path.js';

/** The Authorization scheme of agent proofs. */
export const AGENT_PROOF_SCHEME = 'WispAgentProof';
/** JWS `typ` of an agent proof (explicit typing, RFC 8725 §3.11). */
export const AGENT_PROOF_TYP = 'wisp-agent-proof+jwt';
/** Signature algorithms accepted, with the curve each requires. */
export const AGENT_PROOF_ALGORITHMS = { ES256: 'P-256', ES384: 'P-384' } as const;
export type AgentProofAlgorithm = keyof typeof AGENT_PROOF_ALGORITHMS;
/** Largest Authorization header accepted, bytes (compare jose/oauth-provider's 16 KiB JWT cap). */
export const AGENT_PROOF_MAX_BYTES = 16 * 1024;
/** Most certificates accepted in `x5c` (leaf plus intermediates). */
export const AGENT_PROOF_MAX_CHAIN_LENGTH = 4;
/** Fewest random bytes in a `jti` (base64url length ≥ 22). */
export const AGENT_PROOF_MIN_JTI_BYTES = 16;
/** Longest `jti` accepted, characters. */
export const AGENT_PROOF_MAX_JTI_CHARS = 128;

export interface CreateAgentProofOptions {
  /** HTTP method, e.g. `POST` (upper-cased here) */
  method: string;
  /** request path and query as sent, e.g. `/agent/v1/sync` (no scheme or host) */
  pathAndQuery: string;
  /** the exact body bytes sent (a string is UTF-8 encoded); omit or empty for no body */
  body?: Uint8Array | string;
  /** the agent's X509-SVID chain, leaf first, DER */
  certChainDer: readonly Uint8Array[];
  /** the private key of the leaf (ECDSA P-256 or P-384); may be non-extractable */
  privateKey: CryptoKey;
  /** seconds since the epoch */
  now: number;
  /** ≥ 16 random bytes, base64url; see `randomJti()` */
  jti: string;
}

export interface VerifyAgentProofOptions {
  /** the Authorization header value, as received */
  authorization: string | null | undefined;
  method: string;
  /** path and query the server received, e.g. `url.pathname + url.search` */
  pathAndQuery: string;
  /** the exact body bytes received */
  body: Uint8Array;
  /** the trust domain's X.509 authorities (roots), DER */
  x509Authorities: readonly Uint8Array[];
  trustDomain: TrustDomain;
  /** seconds since the epoch */
  now: number;
  /** accepted |now − iat|, seconds */
  maxSkewSeconds: number;
  /**
   * verified chains, reused while every certificate of the chain (and its authority) is valid; the cache
   * belongs to this exact `x509Authorities` set: make a new one when the set changes (`createAgentChainCache`)
   */
  chainCache?: AgentChainCache;
}

/** What a verified agent chain yields, kept so that the next proof with the same x5c skips X.509 parsing. */
interface VerifiedChain {
  agentId: SpiffeId;
  serialNumber: string;
  /** seconds: the chain (and its authority) is valid from … to */
  validFrom: number;
  validTo: number;
  svidExpiresAt: number;
  svidNotBefore: number;
  curve: string;
  key: CryptoKey;
}

/** A bounded map of verified agent chains (by their x5c), for one set of X.509 authorities. */
export interface AgentChainCache {
  get(x5c: string): VerifiedChain | undefined;
  set(x5c: string, chain: VerifiedChain): void;
}

/** Agents renew every half SVID lifetime, so one entry per agent (plus its previous SVID) is enough. */
export const AGENT_CHAIN_CACHE_MAX_ENTRIES = 4096;

/**
 * A chain cache for one set of authorities (oldest entry evicted first).
 * @example const chainCache = createAgentChainCache(); await verifyAgentProof({ ...options, chainCache });
 */
export function createAgentChainCache(maxEntries = AGENT_CHAIN_CACHE_MAX_ENTRIES): AgentChainCache {
  const map = new Map<string, VerifiedChain>();
  return {
    get: (x5c) => map.get(x5c),
    set(x5c, chain) {
      if (map.size >= maxEntries) map.delete(map.keys().next().value!);
      map.set(x5c, chain);
    },
  };
}

export interface VerifiedAgentProof {
  agentId: SpiffeId;
  /** serial of the leaf SVID: lowercase hex without leading zeros (`normalizeSerialNumber`) */
  serialNumber: string;
  jti: string;
  /** seconds: the proof is never acceptable after this (iat + skew); keep the jti until then */
  expiresAt: number;
  /** seconds: notAfter of the agent's SVID */
  svidExpiresAt: number;
  /** ms: notBefore of the agent's SVID (revocation cutoffs, shared/registry/revocation.ts) */
  svidNotBefore: number;
}

/**
 * Signs a request. Returns the whole Authorization header value.
 * @example
 * const authorization = await createAgentProof({ method: 'POST', pathAndQuery: '/agent/v1/sync', body,
 *   certChainDer: svid.chain, privateKey: svid.key, now: Date.now() / 1000, jti: randomJti() });
 */
export async function createAgentProof(options: CreateAgentProofOptions): Promise<string> {
  const { certChainDer, privateKey } = options;
  if (certChainDer.length === 0 || certChainDer.length > AGENT_PROOF_MAX_CHAIN_LENGTH) {
    throw new TypeError(`certChainDer must hold 1..${AGENT_PROOF_MAX_CHAIN_LENGTH} certificates`);
  }
  const alg = algorithmOfKey(privateKey);
  if (!alg) throw new TypeError('privateKey must be an ECDSA P-256 or P-384 key');
  if (!isWellFormedJti(options.jti)) throw new TypeError(`jti must be base64url of at least ${AGENT_PROOF_MIN_JTI_BYTES} bytes`);
  const payload = {
    htm: options.method.toUpperCase(),
    htu: options.pathAndQuery,
    bdh: await bodyHash(toBytes(options.body)),
    iat: Math.floor(options.now),
    jti: options.jti,
  };
  const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg, typ: AGENT_PROOF_TYP, x5c: certChainDer.map((der) => toBase64(der)) })
    .sign(privateKey);
  return `${AGENT_PROOF_SCHEME} ${jws}`;
}

/** A fresh `jti`: 16 random bytes, base64url. */
export function randomJti(): string {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(AGENT_PROOF_MIN_JTI_BYTES)));
}

/** Canonical serial number form: lowercase hex, no leading zeros (`0` for zero). */
export function normalizeSerialNumber(hex: string): string {
  const stripped = hex.toLowerCase().replace(/^0+/, '');
  return stripped === '' ? '0' : stripped;
}

/**
 * Verifies a request's agent proof: the chain to one of `x509Authorities` (every signature, every
 * validity period at `now`), the leaf as an agent X509-SVID of `trustDomain`, the JWS signature by the leaf
 * key, and the binding to this method, path, body and time. It does not check replay or registration.
 * Failures are ERR_AGENT_AUTH_FAILED with a detailed message meant for the log, not the wire.
 */
export async function verifyAgentProof(options: VerifyAgentProofOptions): Promise<Result<VerifiedAgentProof>> {
  try {
    return await verify(options);
  } catch (e) {
    return fail(`proof could not be processed (${e instanceof Error ? e.name : 'error'})`);
  }
}

async function verify(o: VerifyAgentProofOptions): Promise<Result<VerifiedAgentProof>> {
  const { authorization } = o;
  if (!authorization) return fail('no Authorization header');
  if (authorization.length > AGENT_PROOF_MAX_BYTES) return fail('Authorization header too large');
  const space = authorization.indexOf(' ');
  if (space <= 0 || authorization.slice(0, space).toLowerCase() !== AGENT_PROOF_SCHEME.toLowerCase()) {
    return fail(`Authorization scheme is not ${AGENT_PROOF_SCHEME}`);
  }
  const jws = authorization.slice(space + 1).trim();
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(jws)) return fail('not a compact JWS');

  const header = decodeProtectedHeader(jws);
  const alg = header.alg;
  if (typeof alg !== 'string' || !Object.hasOwn(AGENT_PROOF_ALGORITHMS, alg)) return fail(`alg ${String(alg)} not allowed`);
  if (header.typ !== AGENT_PROOF_TYP) return fail('wrong typ');
  const x5c = header.x5c;
  if (!Array.isArray(x5c) || x5c.length === 0 || x5c.length > AGENT_PROOF_MAX_CHAIN_LENGTH) return fail('x5c missing or too long');

  if (x5c.some((entry) => typeof entry !== 'string')) return fail('x5c entry is not a string');
  const x5cKey = (x5c as string[]).join('.');
  let verified = o.chainCache?.get(x5cKey);
  if (verified && !(verified.validFrom <= o.now && o.now <= verified.validTo)) verified = undefined;
  if (!verified) {
    const checked = await verifyAgentChain(x5c as string[], o);
    if (typeof checked === 'string') return fail(checked);
    verified = checked;
    o.chainCache?.set(x5cKey, verified);
  }
  if (verified.curve !== AGENT_PROOF_ALGORITHMS[alg as AgentProofAlgorithm]) return fail(`leaf key does not fit alg ${alg}`);
  const { agentId, key } = verified;
  let payloadBytes: Uint8Array;
  try {
    ({ payload: payloadBytes } = await compactVerify(jws, key, { algorithms: [alg] }));
  } catch {
    return fail('JWS signature does not verify with the leaf key');
  }

  const payload: unknown = JSON.parse(new TextDecoder().decode(payloadBytes));
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return fail('payload is not an object');
  const { htm, htu, bdh, iat, jti } = payload as Record<string, unknown>;
  if (htm !== o.method.toUpperCase()) return fail('htm does not match the request method');
  if (htu !== o.pathAndQuery) return fail('htu does not match the request path');
  if (bdh !== (await bodyHash(o.body))) return fail('bdh does not match the request body');
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return fail('iat missing');
  if (Math.abs(o.now - iat) > o.maxSkewSeconds) return fail('iat outside the accepted skew (stale or future proof)');
  if (typeof jti !== 'string' || !isWellFormedJti(jti)) return fail('jti missing or too short');

  return ok({
    agentId,
    serialNumber: verified.serialNumber,
    jti,
    expiresAt: Math.ceil(iat + o.maxSkewSeconds),
    svidExpiresAt: verified.svidExpiresAt,
    svidNotBefore: verified.svidNotBefore,
  });
}

/** Parses and verifies an x5c chain up to an authority; returns what proofs need, or a problem description. */
async function verifyAgentChain(x5c: readonly string[], o: VerifyAgentProofOptions): Promise<VerifiedChain | string> {
  const chain: x509.X509Certificate[] = [];
  for (const entry of x5c) {
    const der = entry === '' ? undefined : decodeBase64(entry);
    if (!der) return 'x5c entry is not base64';
    chain.push(new x509.X509Certificate(der));
  }
  const authorities = o.x509Authorities.map((der) => new x509.X509Certificate(der));
  // the one path validator (spiffe/x509-path.ts), as X509-SVID validation uses it
  const path = await validateX509Path(chain, { now: o.now * 1000, roots: authorities });
  if (!path.ok) return path.error;
  const anchor = path.value!;
  const leaf = chain[0]!;
  const leafId = agentIdOf(leaf, o.trustDomain);
  if (typeof leafId !== 'string' || !leafId.startsWith('spiffe://')) return leafId;
  const leafAlg = leaf.publicKey.algorithm as EcAlgorithmView;
  if (leafAlg.name !== 'ECDSA' || !leafAlg.namedCurve || !Object.values(AGENT_PROOF_ALGORITHMS).includes(leafAlg.namedCurve as never)) {
    return 'leaf key is not an ECDSA P-256 or P-384 key';
  }
  const key = await crypto.subtle.importKey('spki', leaf.publicKey.rawData, { name: 'ECDSA', namedCurve: leafAlg.namedCurve }, false, ['verify']);
  // the chain stays verified while each of its certificates, and the authority it leads to, are valid
  const span = [...chain, anchor];
  return {
    agentId: leafId as SpiffeId,
    serialNumber: normalizeSerialNumber(leaf.serialNumber),
    validFrom: Math.max(...span.map((c) => Math.ceil(c.notBefore.getTime() / 1000))),
    validTo: Math.min(...span.map((c) => Math.floor(c.notAfter.getTime() / 1000))),
    svidExpiresAt: Math.floor(leaf.notAfter.getTime() / 1000),
    svidNotBefore: leaf.notBefore.getTime(),
    curve: leafAlg.namedCurve,
    key,
  };
}

/**
 * X509-SVID §2, §4.1, §4.3 for the leaf, plus the agent-ID rule: exactly one URI SAN, an agent ID
 * (`/spire/agent/...`) in the trust domain, not a CA, digitalSignature and no keyCertSign.
 * Returns the agent ID, or a problem description.
 */
function agentIdOf(leaf: x509.X509Certificate, td: TrustDomain): string {
  if (leaf.getExtension(x509.BasicConstraintsExtension)?.ca) return 'leaf is a CA certificate';
  const ku = leaf.getExtension(x509.KeyUsagesExtension);
  if (!ku || (ku.usages & x509.KeyUsageFlags.digitalSignature) === 0) return 'leaf lacks digitalSignature key usage';
  if ((ku.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0) return 'leaf has CA key usages';
  const san = leaf.getExtension(x509.SubjectAlternativeNameExtension);
  const uris = san?.names.items.filter((n) => n.type === 'url') ?? [];
  if (uris.length !== 1) return 'leaf must have exactly one URI SAN';
  let id: SpiffeId;
  try {
    id = parseSpiffeId(uris[0]!.value);
  } catch {
    return 'leaf URI SAN is not a SPIFFE ID';
  }
  if (trustDomainOf(id) !== td) return 'leaf SPIFFE ID is outside the trust domain';
  if (!isAgentId(id)) return 'leaf SPIFFE ID is not an agent ID';
  return id;
}

function algorithmOfKey(key: CryptoKey): AgentProofAlgorithm | undefined {
  const alg = key.algorithm as EcAlgorithmView;
  if (alg.name !== 'ECDSA') return undefined;
  return (Object.keys(AGENT_PROOF_ALGORITHMS) as AgentProofAlgorithm[]).find((a) => AGENT_PROOF_ALGORITHMS[a] === alg.namedCurve);
}

function isWellFormedJti(jti: string): boolean {
  const minChars = Math.ceil((AGENT_PROOF_MIN_JTI_BYTES * 4) / 3);
  return jti.length >= minChars && jti.length <= AGENT_PROOF_MAX_JTI_CHARS && /^[A-Za-z0-9_-]+$/.test(jti);
}

async function bodyHash(body: Uint8Array): Promise<string> {
  return toBase64Url(new Uint8Array(await crypto.subtle.digest('SHA-256', body)));
}

function toBytes(body: Uint8Array | string | undefined): Uint8Array {
  if (body === undefined) return new Uint8Array();
  return typeof body === 'string' ? new TextEncoder().encode(body) : body;
}

/** The part of a WebCrypto key algorithm read here (typed locally: src/shared compiles without DOM lib). */
interface EcAlgorithmView {
  name: string;
  namedCurve?: string;
}

function fail(message: string): Result<never, WispErrorData> {
  return err({ code: 'ERR_AGENT_AUTH_FAILED', message });
}
