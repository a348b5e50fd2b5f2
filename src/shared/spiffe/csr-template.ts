/**
 * The agent's CSR, one fixed shape (what @peculiar/x509's Pkcs10CertificateRequestGenerator made for it):
 * PKCS#10 v1, empty subject, a P-256 key, ecdsa-with-SHA256, and either no attributes or one
 * extensionRequest holding a single non-critical subjectAltName with the SPIFFE ID as its URI. Encoding that
 * with @peculiar/x509 (generate, serialize, parse back, SAN extension objects) took ~1.1 ms of the ~1.8 ms of
 * agent CPU per new SVID; these few lines of DER take microseconds. The caller signs the request info with
 * WebCrypto or node:crypto (no crypto here).
 *
 * Byte for byte the generator's output: test/shared/csr-template.test.ts compares both for the same key and
 * signature, and checks the result with `openssl req -verify` and the issuer's `parseCsr` (csr.ts).
 * @module
 */
import { bytesEqual, concatBytes } from '../encoding/bytes.js';
import { ascii, contentsOf, derTlv, readChildren, readWhole } from './der.js';
import { parseSpiffeId } from './id.js';

const hex = (s: string) => Uint8Array.from(s.match(/../g)!, (b) => parseInt(b, 16));

/** AlgorithmIdentifier { id-ecPublicKey, prime256v1 } (RFC 5480 §2.1.1) */
const P256_ALGORITHM = hex('301306072a8648ce3d020106082a8648ce3d030107');
/** SubjectPublicKeyInfo up to the uncompressed point: SEQUENCE, the algorithm, BIT STRING of 66 octets, 0 unused bits */
const P256_SPKI_PREFIX = concatBytes([hex('3059'), P256_ALGORITHM, hex('034200')]);
/** 0x04 ‖ x ‖ y */
const P256_POINT_BYTES = 65;
/** version v1 (0), then the empty subject Name */
const VERSION_AND_EMPTY_SUBJECT = hex('0201003000');
/** ecdsa-with-SHA256 (RFC 5758 §3.2), no parameters */
const ECDSA_SHA256 = hex('300a06082a8648ce3d040302');
/** pkcs-9 extensionRequest (RFC 2985 §5.4.2) */
const OID_EXTENSION_REQUEST = derTlv(0x06, hex('2a864886f70d01090e'));
const OID_SUBJECT_ALT_NAME = derTlv(0x06, hex('551d11'));

/**
 * The SubjectPublicKeyInfo of the P-256 key in a PKCS#8 private key (RFC 5958; the public point from the
 * ECPrivateKey's `publicKey` field, RFC 5915 §3, which OpenSSL always writes). Saves a second key export
 * (node:crypto's KeyObject.export costs ~50 µs per call on OpenSSL 3). Throws RangeError on anything else.
 */
export function p256SpkiFromPkcs8(pkcs8: Uint8Array): Uint8Array {
  const outer = readWhole(pkcs8, 0x30);
  const [version, algorithm, privateKey] = readChildren(pkcs8, outer);
  if (!version || !algorithm || !privateKey || version.tag !== 0x02 || privateKey.tag !== 0x04) throw new RangeError('not a PKCS#8 private key');
  if (!bytesEqual(pkcs8.subarray(algorithm.start, algorithm.end), P256_ALGORITHM)) throw new RangeError('not a P-256 PKCS#8 key');
  const ec = contentsOf(pkcs8, privateKey);
  const fields = readChildren(ec, readWhole(ec, 0x30));
  const tagged = fields.find((f) => f.tag === 0xa1);
  if (!tagged) throw new RangeError('PKCS#8 key without its public key');
  const publicKey = contentsOf(ec, tagged);
  const bits = contentsOf(publicKey, readWhole(publicKey, 0x03));
  if (bits.length !== 1 + P256_POINT_BYTES || bits[0] !== 0 || bits[1] !== 0x04) throw new RangeError('PKCS#8 public key is not an uncompressed P-256 point');
  return concatBytes([P256_SPKI_PREFIX, bits.subarray(1)]);
}

/**
 * The CertificationRequestInfo (RFC 2986 §4.1) for the P-256 key `spki`, with `spiffeId` (checked by
 * parseSpiffeId) in a URI SAN when given: the bytes the caller signs with ECDSA P-256 / SHA-256.
 */
export function p256CsrInfo(spki: Uint8Array, spiffeId?: string): Uint8Array {
  if (spki.length !== P256_SPKI_PREFIX.length + P256_POINT_BYTES || !bytesEqual(spki.subarray(0, P256_SPKI_PREFIX.length), P256_SPKI_PREFIX)) {
    throw new RangeError('not a P-256 SubjectPublicKeyInfo');
  }
  const attributes =
    spiffeId === undefined
      ? derTlv(0xa0)
      : derTlv(
          0xa0,
          derTlv(0x30, OID_EXTENSION_REQUEST, derTlv(0x31, derTlv(0x30, derTlv(0x30, OID_SUBJECT_ALT_NAME, derTlv(0x04, derTlv(0x30, derTlv(0x86, ascii(parseSpiffeId(spiffeId))))))))),
        );
  return derTlv(0x30, VERSION_AND_EMPTY_SUBJECT, spki, attributes);
}

/** The CertificationRequest: `info` (from p256CsrInfo), ecdsa-with-SHA256 and `signature`, a DER ECDSA-Sig-Value over `info`. */
export function p256Csr(info: Uint8Array, signature: Uint8Array): Uint8Array {
  readWhole(signature, 0x30);
  return derTlv(0x30, info, ECDSA_SHA256, derTlv(0x03, Uint8Array.of(0), signature));
}
