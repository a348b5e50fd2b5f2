/**
 * What makes a JWK private: the members only a private or secret key has. A bundle, a Workload API answer or a
 * JWT-SVID authority must never carry them (bundle.ts refuses them, the agent strips them, jwt-svid.ts and
 * wit-svid.ts refuse them as key material).
 * @module
 */

/** JWK members only a private or secret key has (RFC 7518 §6.2.2, §6.3.2, §6.4). */
export const PRIVATE_JWK_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** Whether `jwk` has any member of a private or secret key. */
export function hasPrivateJwkMembers(jwk: object): boolean {
  return PRIVATE_JWK_MEMBERS.some((m) => m in jwk);
}

/** `jwk`'s members without those of a private or secret key. */
export function publicJwkMembers(jwk: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(jwk).filter(([name]) => !PRIVATE_JWK_MEMBERS.includes(name)));
}
