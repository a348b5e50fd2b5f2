/**
 * An entry's extra JWT-SVID claims (`jwtSvidClaims`, spiffe/spire#1848, #4388): a JSON object merged into
 * every JWT-SVID minted for the entry. The claims the SVID's meaning rests on can never be set here, so a
 * relying party that checks `sub`, `aud`, `exp` and `iss` (JWT-SVID.md §3) sees what the CA decided.
 *
 * Bounds (documented in docs/cli.md):
 * - reserved names refused: `sub`, `aud`, `exp`, `iat`, `iss`, `nbf`, `jti` (RFC 7519 §4.1) and `cnf`
 *   (RFC 7800, key binding: WIT-SVIDs use it);
 * - ≤ 32 claims, names 1..64 bytes UTF-8;
 * - values any JSON (no undefined, functions or non-finite numbers), nested ≤ 8 levels;
 * - the object's JSON ≤ 4096 bytes UTF-8.
 * @module
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JwtSvidExtraClaims = { [name: string]: JsonValue };

/** Claim names the CA sets (or a JWT-SVID must not carry from an entry); refused in `jwtSvidClaims`. */
export const JWT_SVID_RESERVED_CLAIMS: ReadonlySet<string> = new Set(['sub', 'aud', 'exp', 'iat', 'iss', 'nbf', 'jti', 'cnf']);
export const JWT_SVID_CLAIMS_MAX = 32;
export const JWT_SVID_CLAIM_NAME_MAX_BYTES = 64;
/** Nesting of objects and arrays inside one claim value (a scalar is depth 0). */
export const JWT_SVID_CLAIM_DEPTH_MAX = 8;
export const JWT_SVID_CLAIMS_MAX_BYTES = 4096;

const encoder = new TextEncoder();

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return false;
  const proto = Object.getPrototypeOf(x) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Why `value` is not a JSON value nested at most `depth` more levels, or undefined. */
function jsonValueProblem(value: unknown, depth: number, at: string): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${at} must be a finite number`;
  const isArray = Array.isArray(value);
  if (!isArray && !isPlainObject(value)) return `${at} must be a JSON value`;
  if (depth === 0) return `${at} is nested more than ${JWT_SVID_CLAIM_DEPTH_MAX} levels deep`;
  const children: Array<[string, unknown]> = isArray ? value.map((v, i) => [`[${i}]`, v]) : Object.entries(value).map(([k, v]) => [`.${k}`, v]);
  for (const [key, child] of children) {
    const problem = jsonValueProblem(child, depth - 1, `${at}${key}`);
    if (problem) return problem;
  }
  return undefined;
}

/**
 * Why `input` may not be an entry's `jwtSvidClaims`, or undefined when it may. The CA asks again of what it
 * is given to sign (sign-requests.ts).
 * @example jwtSvidClaimsProblem({ sub: 'x' }) // 'jwtSvidClaims must not set the reserved claim "sub"'
 */
export function jwtSvidClaimsProblem(input: unknown): string | undefined {
  if (!isPlainObject(input)) return 'jwtSvidClaims must be a JSON object';
  const names = Object.keys(input);
  if (names.length > JWT_SVID_CLAIMS_MAX) return `jwtSvidClaims has more than ${JWT_SVID_CLAIMS_MAX} claims`;
  for (const name of names) {
    if (name === '') return 'jwtSvidClaims: a claim name must not be empty';
    if (encoder.encode(name).length > JWT_SVID_CLAIM_NAME_MAX_BYTES) return `jwtSvidClaims: claim name "${name.slice(0, JWT_SVID_CLAIM_NAME_MAX_BYTES)}…" is longer than ${JWT_SVID_CLAIM_NAME_MAX_BYTES} bytes`;
    if (JWT_SVID_RESERVED_CLAIMS.has(name)) return `jwtSvidClaims must not set the reserved claim "${name}"`;
    const problem = jsonValueProblem(input[name], JWT_SVID_CLAIM_DEPTH_MAX, `jwtSvidClaims.${name}`);
    if (problem) return problem;
  }
  if (encoder.encode(JSON.stringify(input)).length > JWT_SVID_CLAIMS_MAX_BYTES) return `jwtSvidClaims is longer than ${JWT_SVID_CLAIMS_MAX_BYTES} bytes as JSON`;
  return undefined;
}
