/**
 * Verifying agent request proofs (the format: agent-proof.ts): the x5c chain up to the trust domain's
 * authorities, the leaf as an agent X509-SVID, the JWS signature, and the binding to the request. The issuer's
 * side (the Worker's agent-auth middleware); it parses X.509 with @peculiar/x509, which the agent, signing
 * only, never loads. Callers import 'reflect-metadata' once.
 * @module
 */
import * as x509 from '@peculiar/x509';
import { compactVerify, decodeProtectedHeader, type CryptoKey } from 'jose';
import {
  AGENT_PROOF_ALGORITHMS,
  AGENT_PROOF_MAX_BYTES,
  AGENT_PROOF_MAX_CHAIN_LENGTH,
  AGENT_PROOF_SCHEME,
  AGENT_PROOF_TYP,
  bodyHash,
  isWellFormedJti,
  normalizeSerialNumber,
  type AgentProofAlgorithm,
  type EcAlgorithmView,
} from './agent-proof.js';
import { decodeBase64 } from './encoding/base64.js';
import type { WispErrorData } from './errors.js';
import { err, ok, type Result } from './result.js';
import { isAgentId, parseSpiffeId, trustDomainOf, type SpiffeId, type TrustDomain } from './spiffe/id.js';
import { validateX509Path } from './spiffe/x509-path.js';

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

function fail(message: string): Result<never, WispErrorData> {
  return err({ code: 'ERR_AGENT_AUTH_FAILED', message });
}
