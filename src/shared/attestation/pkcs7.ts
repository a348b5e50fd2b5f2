/**
 * Verifies a CMS / PKCS#7 SignedData signature (RFC 5652 §5) over content the caller already holds, with
 * a public key the caller trusts: the shape of AWS's `instance-identity/rsa2048` signature (BER, SHA-256,
 * signed attributes, the document also embedded). Parsing is @peculiar/asn1-cms; the signature check is
 * WebCrypto RSASSA-PKCS1-v1_5. Certificates carried inside the message are ignored: the caller picks the
 * key (for AWS, the region's published certificate), as SPIRE's awsiid does.
 *
 * The content is bound through the signed `messageDigest` attribute (RFC 5652 §5.4), compared with the
 * digest of the content the caller will use; an embedded copy of the content is never trusted instead.
 * @module
 */
import { Attribute, ContentInfo, id_data, id_signedData, SignedData, type SignerInfo } from '@peculiar/asn1-cms';
import type { CryptoKey } from 'jose';
import { AsnArray, AsnConvert, AsnType, AsnTypeTypes, OctetString } from '@peculiar/asn1-schema';
import { bytesEqual } from '../encoding/bytes.js';
import { err, ok, type Result } from '../result.js';

/** RFC 5652 §11.1 content-type and §11.2 message-digest attribute OIDs. */
const ID_CONTENT_TYPE = '1.2.840.113549.1.9.3';
const ID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const RSA_ENCRYPTION = '1.2.840.113549.1.1.1';
/** DER of the OBJECT IDENTIFIER id-data (1.2.840.113549.1.7.1), the only content type accepted. */
const ID_DATA_DER = new Uint8Array([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]);

/** Digest algorithms accepted (SHA-1 and MD5 are not). */
const DIGESTS: Record<string, 'SHA-256' | 'SHA-384' | 'SHA-512'> = {
  '2.16.840.1.101.3.4.2.1': 'SHA-256',
  '2.16.840.1.101.3.4.2.2': 'SHA-384',
  '2.16.840.1.101.3.4.2.3': 'SHA-512',
};
/** RSA signature algorithms with a hash: the hash must equal the digest algorithm. */
const RSA_WITH_HASH: Record<string, string> = {
  '1.2.840.113549.1.1.11': 'SHA-256',
  '1.2.840.113549.1.1.12': 'SHA-384',
  '1.2.840.113549.1.1.13': 'SHA-512',
};

/** Largest PKCS#7 message accepted, bytes (AWS's are ~1.5 KB). */
export const PKCS7_MAX_BYTES = 16 * 1024;

function attributeValue(attrs: Attribute[], oid: string): ArrayBuffer | undefined {
  const found = attrs.filter((a) => a.attrType === oid);
  if (found.length !== 1 || found[0]!.attrValues.length !== 1) return undefined;
  return found[0]!.attrValues[0];
}

/** SET OF Attribute: the explicit encoding of the signed attributes that the signature covers. */
class SignedAttributesSet extends AsnArray<Attribute> {
  constructor(items?: Attribute[]) {
    super(items);
    Object.setPrototypeOf(this, SignedAttributesSet.prototype);
  }
}
AsnType({ type: AsnTypeTypes.Set, itemType: Attribute })(SignedAttributesSet);

/** The bytes the signer signed: the DER of the signed attributes as a SET (RFC 5652 §5.4), or the content. */
function signedBytes(signer: SignerInfo, content: Uint8Array, digest: Uint8Array): Result<Uint8Array, string> {
  const attrs = signer.signedAttrs;
  if (!attrs || attrs.length === 0) return ok(content);
  const messageDigest = attributeValue(attrs, ID_MESSAGE_DIGEST);
  const contentType = attributeValue(attrs, ID_CONTENT_TYPE);
  if (!messageDigest || !contentType) return err('signed attributes lack exactly one content-type and one message-digest');
  let signedDigest: Uint8Array;
  try {
    signedDigest = new Uint8Array(AsnConvert.parse(messageDigest, OctetString).buffer);
  } catch {
    return err('signed attributes are malformed');
  }
  if (!bytesEqual(new Uint8Array(contentType), ID_DATA_DER)) return err('signed content type is not data');
  if (!bytesEqual(signedDigest, digest)) return err('message digest does not match the document');
  // Attribute values are kept as their received bytes, so re-encoding the SET reproduces the DER that
  // was signed (RFC 5652 §5.4: the signature covers the DER of SET OF Attribute, not the [0] tag).
  return ok(new Uint8Array(AsnConvert.serialize(new SignedAttributesSet(attrs))));
}

/**
 * Checks that `pkcs7Der` is a SignedData whose single signer signed `content` with the RSA key `signerSpki`.
 * Returns the reason on failure (safe to show: it names no secret).
 * @example
 * const r = await verifyPkcs7Signature(fromBase64(sig), new TextEncoder().encode(doc), regionSpki);
 * if (!r.ok) throw new WispError('ERR_ATTESTATION_FAILED', `signature: ${r.error}`);
 */
export async function verifyPkcs7Signature(pkcs7Der: Uint8Array, content: Uint8Array, signerSpki: Uint8Array): Promise<Result<void, string>> {
  if (pkcs7Der.length === 0 || pkcs7Der.length > PKCS7_MAX_BYTES) return err(`signature must be 1..${PKCS7_MAX_BYTES} bytes`);
  let signed: SignedData;
  try {
    const info = AsnConvert.parse(pkcs7Der, ContentInfo);
    if (info.contentType !== id_signedData) return err('not a PKCS#7 SignedData message');
    signed = AsnConvert.parse(info.content, SignedData);
  } catch {
    return err('signature is not a valid PKCS#7 message');
  }
  if (signed.encapContentInfo.eContentType !== id_data) return err('signed content is not of type data');
  if (signed.signerInfos.length !== 1) return err(`expected one signer, found ${signed.signerInfos.length}`);
  const signer = signed.signerInfos[0]!;
  const hash = DIGESTS[signer.digestAlgorithm.algorithm];
  if (!hash) return err(`unsupported digest algorithm ${signer.digestAlgorithm.algorithm}`);
  const sigAlg = signer.signatureAlgorithm.algorithm;
  if (sigAlg !== RSA_ENCRYPTION && RSA_WITH_HASH[sigAlg] !== hash) return err(`unsupported signature algorithm ${sigAlg}`);

  const digest = new Uint8Array(await crypto.subtle.digest(hash, content));
  const toVerify = signedBytes(signer, content, digest);
  if (!toVerify.ok) return toVerify;
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey('spki', signerSpki, { name: 'RSASSA-PKCS1-v1_5', hash }, false, ['verify']);
  } catch {
    return err('trusted key is not an RSA public key');
  }
  const valid = await crypto.subtle.verify('RSASSA-PKCS1-v1_5', key, new Uint8Array(signer.signature.buffer), toVerify.value);
  return valid ? ok(undefined) : err('signature does not verify with the trusted key');
}
