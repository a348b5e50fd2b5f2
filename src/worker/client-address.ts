/**
 * The caller's address as Cloudflare's edge reports it (`CF-Connecting-IP`; at the edge a client cannot set
 * it). One rule for everything that keys or records by source: the attestation rate limit and the audit log.
 * @module
 */

/** An IPv4 or IPv6 address in textual form (characters and length only: it is a key, never dialled). */
const ADDRESS = /^[0-9a-f.:]{2,45}$/;

/** The normalised (trimmed, lower-case) client address, or undefined when absent or not an address. */
export function clientAddress(headers: Headers): string | undefined {
  const ip = headers.get('cf-connecting-ip')?.trim().toLowerCase();
  return ip !== undefined && ADDRESS.test(ip) ? ip : undefined;
}
