/**
 * The one loopback rule, and the URL rule built on it: "https, or http only on a loopback host" (issuer URL
 * of the agent and the CLI, JWT_ISSUER, cloud attestor key URLs, federation bundle endpoints).
 *
 * Loopback is the name `localhost` (any case), IPv4 127.0.0.0/8 in dotted decimal (RFC 1122 §3.2.1.3) and
 * IPv6 ::1 in any spelling, bracketed or not. Not loopback: `*.localhost` (RFC 6761 asks resolvers to answer
 * it with loopback, but Node's getaddrinfo does not promise it, so `foo.localhost` may reach a DNS server;
 * nothing in the repository uses such a name), a trailing dot (`localhost.` is resolved as an absolute DNS
 * name, not from /etc/hosts), IPv4-mapped IPv6 (::ffff:127.0.0.1), 0.0.0.0 and anything else.
 * @module
 */

/** the loopback name (also what gRPC clients send as `:authority` on a Unix socket) */
export const LOCALHOST = 'localhost';
/** the IPv4 loopback address (the agent's metrics and health listeners' default bind address; the k8s workload attestor's kubelet host when no node name is known, as SPIRE) */
export const LOOPBACK_IPV4 = '127.0.0.1';

const IPV4_LOOPBACK = /^127\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** IPv6 ::1 in any spelling (0:0:0:0:0:0:0:1, ::0001, ...): the URL parser writes every IPv6 address in one canonical form. */
function isIpv6Loopback(address: string): boolean {
  try {
    return new URL(`http://[${address}]/`).hostname === '[::1]';
  } catch {
    return false;
  }
}

/**
 * True for `localhost`, 127.0.0.0/8 and ::1 (see the module comment for what is not).
 * @example isLoopbackHost(new URL('http://127.0.0.2:8787').hostname) // true
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  if (host === LOCALHOST || IPV4_LOOPBACK.test(host)) return true;
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  return bare.includes(':') && isIpv6Loopback(bare);
}

/**
 * The URL rule: https anywhere, http only on a loopback host. Callers word their own error.
 * @example isHttpsOrLoopbackHttp(new URL('http://localhost:8787')) // true
 */
export function isHttpsOrLoopbackHttp(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}
