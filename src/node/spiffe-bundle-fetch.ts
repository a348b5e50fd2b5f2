/**
 * The `https_spiffe` bundle endpoint client (SPIFFE_Federation.md §5.2.2), for Node: TLS whose server
 * certificate must chain to the foreign trust domain's stored bundle (its X.509 authorities are the only
 * roots) and carry exactly the configured endpoint SPIFFE ID as its URI SAN; no web PKI, no hostname check.
 * Redirects are followed (at most a few) under the same rules. A Worker's fetch cannot do this, which is why
 * the agent (for relationships assigned to it) and `wisp federation refresh` (which loads this module lazily)
 * do it and submit the result to the issuer.
 * @module
 */
import { request } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { toPem } from '../shared/encoding/pem.js';
import { WispError } from '../shared/errors.js';
import { parseBundleEndpointUrl } from '../shared/federation/relationship.js';
import { MAX_BUNDLE_BYTES, parseBundleJson, type SpiffeBundleJson } from '../shared/spiffe/bundle.js';
import { certificateKey } from './certificate-key.js';

export interface SpiffeTlsFetchOptions {
  url: string;
  /** the SPIFFE ID the endpoint must present */
  endpointSpiffeId: string;
  /** the stored bundle of the endpoint's trust domain: its X.509 authorities are the trusted roots */
  trustBundle: SpiffeBundleJson;
  trustDomain: string;
  timeoutMs: number;
}

const MAX_REDIRECTS = 3;

/** The URI SANs of a certificate as Node reports them (`URI:spiffe://…, DNS:…`). */
function uriSans(cert: PeerCertificate): string[] {
  const alt = cert.subjectaltname ?? '';
  return alt
    .split(/,\s*/)
    .filter((s) => s.startsWith('URI:'))
    .map((s) => s.slice(4));
}

/** X509-SVID §2/§3: exactly one URI SAN, equal to the configured endpoint SPIFFE ID. */
export function checkEndpointSpiffeId(cert: PeerCertificate, expected: string): Error | undefined {
  const uris = uriSans(cert);
  if (uris.length !== 1) return new Error(`the endpoint certificate has ${uris.length} URI SANs; an X509-SVID has exactly one`);
  if (uris[0] !== expected) return new Error(`the endpoint presented ${uris[0]}, not ${expected}`);
  return undefined;
}

async function rootsOf(bundle: SpiffeBundleJson, trustDomain: string): Promise<string[]> {
  const parsed = await parseBundleJson(bundle, trustDomain, certificateKey);
  if (parsed.x509Authorities.length === 0) throw new WispError('ERR_BAD_REQUEST', `the stored bundle of "${trustDomain}" has no X.509 authority to authenticate its endpoint`);
  return parsed.x509Authorities.map((der) => toPem('CERTIFICATE', der));
}

function getOnce(url: string, ca: string[], expectedId: string, signal: AbortSignal): Promise<{ status: number; location?: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'GET',
        headers: { accept: 'application/json' },
        ca,
        rejectUnauthorized: true,
        // the SPIFFE ID replaces the hostname check; chain verification against `ca` still applies
        checkServerIdentity: (_host, cert) => checkEndpointSpiffeId(cert, expectedId),
        signal,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let total = 0;
        res.on('data', (d: Buffer) => {
          total += d.length;
          if (total > MAX_BUNDLE_BYTES) {
            req.destroy(new WispError('ERR_REQUEST_TOO_LARGE', `bundle is larger than ${MAX_BUNDLE_BYTES} bytes`));
            return;
          }
          chunks.push(d);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, location: res.headers.location, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/**
 * Fetches a bundle from an https_spiffe endpoint; returns the body text (parse it with parseForeignBundle).
 * Throws WispError ERR_UNAVAILABLE for network, TLS and HTTP failures.
 * @example const text = await fetchBundleOverSpiffeTls({ url, endpointSpiffeId, trustBundle, trustDomain, timeoutMs: 10_000 });
 */
export async function fetchBundleOverSpiffeTls(o: SpiffeTlsFetchOptions): Promise<string> {
  if (!new URL(o.url).protocol.startsWith('https')) throw new WispError('ERR_BAD_REQUEST', 'an https_spiffe bundle endpoint URL must be https');
  const ca = await rootsOf(o.trustBundle, o.trustDomain);
  const signal = AbortSignal.timeout(o.timeoutMs);
  let target = o.url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    let res: Awaited<ReturnType<typeof getOnce>>;
    try {
      res = await getOnce(target, ca, o.endpointSpiffeId, signal);
    } catch (e) {
      if (e instanceof WispError) throw e;
      const reason = signal.aborted ? `no answer within ${o.timeoutMs / 1000}s` : ((e as NodeJS.ErrnoException).code ?? (e as Error).message);
      throw new WispError('ERR_UNAVAILABLE', `cannot fetch ${target} (${reason}: ${(e as Error).message})`);
    }
    if (res.status >= 300 && res.status < 400 && res.location) {
      target = parseBundleEndpointUrl(new URL(res.location, target).toString());
      if (!target.startsWith('https:')) throw new WispError('ERR_BAD_REQUEST', `redirect to a non-https URL: ${target}`);
      continue;
    }
    if (res.status !== 200) throw new WispError('ERR_UNAVAILABLE', `${target} answered HTTP ${res.status}`);
    return res.body;
  }
  throw new WispError('ERR_UNAVAILABLE', `more than ${MAX_REDIRECTS} redirects from ${o.url}`);
}
