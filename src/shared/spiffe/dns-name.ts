/**
 * The one DNS-name rule for SANs, used by entry validation, the admin mint route and the CA (X509-SVID.md
 * §2 allows DNS SANs): RFC 1123 hostnames of at most 253 characters, labels of 1 to 63 letters, digits and
 * inner hyphens, a wildcard only as the whole leftmost label of a name with more labels.
 * @module
 */

/** Longest DNS name in a SAN (RFC 1035 §2.3.4, without the trailing dot). */
export const DNS_NAME_MAX_LENGTH = 253;

const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Why `name` is not a valid DNS SAN, or undefined. ASCII only, so characters and bytes count the same. */
export function dnsNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return 'DNS name must be a string';
  if (name.length === 0) return 'DNS name is empty';
  if (name.length > DNS_NAME_MAX_LENGTH) return `DNS name is longer than ${DNS_NAME_MAX_LENGTH} bytes`;
  const labels = name.split('.');
  for (const [i, label] of labels.entries()) {
    if (label === '*' && i === 0 && labels.length > 1) continue;
    if (label.includes('*')) return `DNS name "${name}": a wildcard is only allowed as the whole leftmost label`;
    if (!DNS_LABEL.test(label)) return `DNS name "${name}": label "${label}" is not a valid RFC 1123 label`;
  }
  return undefined;
}
