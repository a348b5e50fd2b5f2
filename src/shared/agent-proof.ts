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
 * This module is the format and the signing side (runtime-agnostic: jose, WebCrypto), free of @peculiar/x509
 * so that the agent, which only signs, never loads it (docs/performance.md, start-up); the issuer verifies
 * with agent-proof-verify.ts. Documented in docs/agent-api.md.
 * @module
 */
import { CompactSign, type CryptoKey } from 'jose';
import { toBase64, toBase64Url } from './encoding/base64.js';

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

function algorithmOfKey(key: CryptoKey): AgentProofAlgorithm | undefined {
  const alg = key.algorithm as EcAlgorithmView;
  if (alg.name !== 'ECDSA') return undefined;
  return (Object.keys(AGENT_PROOF_ALGORITHMS) as AgentProofAlgorithm[]).find((a) => AGENT_PROOF_ALGORITHMS[a] === alg.namedCurve);
}

/** A `jti` of at least AGENT_PROOF_MIN_JTI_BYTES random bytes, base64url, of at most AGENT_PROOF_MAX_JTI_CHARS. */
export function isWellFormedJti(jti: string): boolean {
  const minChars = Math.ceil((AGENT_PROOF_MIN_JTI_BYTES * 4) / 3);
  return jti.length >= minChars && jti.length <= AGENT_PROOF_MAX_JTI_CHARS && /^[A-Za-z0-9_-]+$/.test(jti);
}

/** `bdh`: SHA-256 of the exact body bytes, base64url. */
export async function bodyHash(body: Uint8Array): Promise<string> {
  return toBase64Url(new Uint8Array(await crypto.subtle.digest('SHA-256', body)));
}

function toBytes(body: Uint8Array | string | undefined): Uint8Array {
  if (body === undefined) return new Uint8Array();
  return typeof body === 'string' ? new TextEncoder().encode(body) : body;
}

/** The part of a WebCrypto key algorithm read here (typed locally: src/shared compiles without DOM lib). */
export interface EcAlgorithmView {
  name: string;
  namedCurve?: string;
}
