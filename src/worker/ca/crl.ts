/**
 * The trust domain's X.509 CRLs (RFC 5280 §5): one per X.509 CA key that may have signed unexpired SVIDs
 * (the active key and the old ones still published), each listing every revoked serial the issuer knows
 * (shared/registry/revocation.ts; serials are random, so a serial another CA issued names nothing here).
 * Signed with @peculiar/x509's X509CrlGenerator; the CRL number and authority key identifier come from
 * @peculiar/asn1-x509 and @peculiar/x509. A CRL is re-signed when its revoked set or its key changes, or
 * once half its lifetime has passed; until then the signed bytes are reused.
 * @module
 */
import 'reflect-metadata';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CRLNumber, id_ce_cRLNumber } from '@peculiar/asn1-x509';
import { AuthorityKeyIdentifierExtension, Extension, SubjectKeyIdentifierExtension, X509CrlGenerator, type X509Certificate } from '@peculiar/x509';
import type { CryptoKey } from 'jose';
import { signingParams } from '../../shared/spiffe/x509.js';
import type { RevokedSerial, SignedCrl } from './ca-api.js';

/** How long a CRL is valid (nextUpdate − thisUpdate), seconds. */
export const CRL_LIFETIME_SECONDS = 24 * 3600;
/** A CRL is re-signed once it is this old, seconds; agents pick the new one up within a sync (see routes/agent.ts). */
export const CRL_RESIGN_AFTER_SECONDS = CRL_LIFETIME_SECONDS / 2;

export interface CrlSigningKey {
  kid: string;
  cert: X509Certificate;
  privateKey: CryptoKey;
}

interface Cached {
  key: string;
  crl: SignedCrl;
}

/** The CRLs of one CA (one per CA key), cached across calls. */
export interface CrlSigner {
  sign(keys: CrlSigningKey[], revoked: RevokedSerial[], nowMs: number): Promise<SignedCrl[]>;
}

export function createCrlSigner(): CrlSigner {
  const cache = new Map<string, Cached>();
  /** monotonic per CA instance, as RFC 5280 §5.2.3 asks; seconds keep it increasing across restarts */
  let lastNumber = 0;
  return {
    async sign(keys, revoked, nowMs) {
      const sorted = [...revoked].sort((a, b) => (a.serialNumber < b.serialNumber ? -1 : a.serialNumber > b.serialNumber ? 1 : 0));
      const setKey = JSON.stringify(sorted.map((r) => [r.serialNumber, r.revokedAt]));
      const now = Math.floor(nowMs / 1000);
      const out: SignedCrl[] = [];
      for (const k of keys) {
        const hit = cache.get(k.kid);
        if (hit && hit.key === setKey && now >= hit.crl.thisUpdate && now - hit.crl.thisUpdate < CRL_RESIGN_AFTER_SECONDS) {
          out.push(hit.crl);
          continue;
        }
        lastNumber = Math.max(lastNumber + 1, now);
        const crl = await signCrl(k, sorted, now, lastNumber);
        cache.set(k.kid, { key: setKey, crl });
        out.push(crl);
      }
      for (const kid of cache.keys()) if (!keys.some((k) => k.kid === kid)) cache.delete(kid);
      return out;
    },
  };
}

async function signCrl(key: CrlSigningKey, revoked: RevokedSerial[], now: number, number: number): Promise<SignedCrl> {
  const ski = key.cert.getExtension(SubjectKeyIdentifierExtension);
  const extensions: Extension[] = [new Extension(id_ce_cRLNumber, false, AsnConvert.serialize(new CRLNumber(number)))];
  if (ski) extensions.push(new AuthorityKeyIdentifierExtension(ski.keyId));
  const nextUpdate = now + CRL_LIFETIME_SECONDS;
  const crl = await X509CrlGenerator.create({
    issuer: key.cert.subjectName,
    thisUpdate: new Date(now * 1000),
    nextUpdate: new Date(nextUpdate * 1000),
    signingAlgorithm: signingParams('EC P-256').signAlg,
    signingKey: key.privateKey,
    extensions,
    entries: revoked.map((r) => ({ serialNumber: derIntegerHex(r.serialNumber), revocationDate: new Date(r.revokedAt * 1000) })),
  });
  return { kid: key.kid, der: new Uint8Array(crl.rawData), thisUpdate: now, nextUpdate };
}

/** A normalized serial as the hex of a positive DER INTEGER (whole octets; a leading 00 when the top bit is set). */
function derIntegerHex(serial: string): string {
  const even = serial.length % 2 === 0 ? serial : `0${serial}`;
  return parseInt(even[0]!, 16) >= 8 ? `00${even}` : even;
}
