// Test trust material for cloud node attestation, runtime-agnostic (WebCrypto, @peculiar/x509, asn1-cms,
// jose): an "AWS region" CA that signs instance identity documents as PKCS#7 SignedData the way AWS's
// rsa2048 signatures are built, and JWT issuers standing in for Google and Microsoft with their JWK Sets.
import 'reflect-metadata';
import {
  Attribute,
  ContentInfo,
  DigestAlgorithmIdentifier,
  DigestAlgorithmIdentifiers,
  EncapsulatedContent,
  EncapsulatedContentInfo,
  id_data,
  id_signedData,
  IssuerAndSerialNumber,
  SignatureAlgorithmIdentifier,
  SignedData,
  SignerIdentifier,
  SignerInfo,
  SignerInfos,
} from '@peculiar/asn1-cms';
import { AsnArray, AsnConvert, AsnType, AsnTypeTypes, OctetString } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { exportJWK, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

const RSA = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) } as const;
const SHA256 = '2.16.840.1.101.3.4.2.1';
const SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const ID_DATA_DER = new Uint8Array([0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01]);

function b64(bytes: ArrayBuffer | Uint8Array): string {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s);
}

class AttributeSet extends AsnArray<Attribute> {
  constructor(items?: Attribute[]) {
    super(items);
    Object.setPrototypeOf(this, AttributeSet.prototype);
  }
}
AsnType({ type: AsnTypeTypes.Set, itemType: Attribute })(AttributeSet);

export interface RegionSigner {
  region: string;
  /** the region's "published" certificate, PEM */
  certPem: string;
  /** base64 PKCS#7 (no PEM armour), as `instance-identity/rsa2048` serves it */
  sign(document: string): Promise<string>;
}

/** A self-signed RSA-2048 certificate standing in for AWS's certificate of `region`. */
export async function createRegionSigner(region: string): Promise<RegionSigner> {
  const keys = (await crypto.subtle.generateKey(RSA, true, ['sign', 'verify'])) as { privateKey: CryptoKey; publicKey: CryptoKey };
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '0a1b2c3d',
    name: `C=US, O=Test AWS ${region}`,
    notBefore: new Date(Date.now() - 86400_000),
    notAfter: new Date(Date.now() + 3650 * 86400_000),
    keys,
    signingAlgorithm: RSA,
  });
  const parsed = AsnConvert.parse(cert.rawData, Certificate);
  return {
    region,
    certPem: cert.toString('pem'),
    async sign(document) {
      const content = new TextEncoder().encode(document);
      const digest = await crypto.subtle.digest('SHA-256', content);
      const attrs = [
        new Attribute({ attrType: '1.2.840.113549.1.9.3', attrValues: [ID_DATA_DER.slice().buffer] }),
        new Attribute({ attrType: '1.2.840.113549.1.9.4', attrValues: [AsnConvert.serialize(new OctetString(digest))] }),
      ];
      const signature = await crypto.subtle.sign('RSASSA-PKCS1-v1_5', keys.privateKey, AsnConvert.serialize(new AttributeSet(attrs)));
      const signer = new SignerInfo({
        version: 1,
        sid: new SignerIdentifier({ issuerAndSerialNumber: new IssuerAndSerialNumber({ issuer: parsed.tbsCertificate.issuer, serialNumber: parsed.tbsCertificate.serialNumber }) }),
        digestAlgorithm: new DigestAlgorithmIdentifier({ algorithm: SHA256 }),
        signedAttrs: attrs,
        signatureAlgorithm: new SignatureAlgorithmIdentifier({ algorithm: SHA256_WITH_RSA, parameters: null }),
        signature: new OctetString(signature),
      });
      const signed = new SignedData({
        version: 1,
        digestAlgorithms: new DigestAlgorithmIdentifiers([new DigestAlgorithmIdentifier({ algorithm: SHA256 })]),
        encapContentInfo: new EncapsulatedContentInfo({ eContentType: id_data, eContent: new EncapsulatedContent({ single: new OctetString(content) }) }),
        signerInfos: new SignerInfos([signer]),
      });
      return b64(AsnConvert.serialize(new ContentInfo({ contentType: id_signedData, content: AsnConvert.serialize(signed) })));
    },
  };
}

export interface InstanceIdentityFields {
  accountId: string;
  region: string;
  instanceId: string;
  availabilityZone?: string;
  imageId?: string;
}

/** An instance identity document in AWS's own layout. */
export function instanceIdentityDocument(f: InstanceIdentityFields): string {
  const doc = {
    accountId: f.accountId,
    architecture: 'x86_64',
    availabilityZone: f.availabilityZone ?? `${f.region}a`,
    billingProducts: null,
    devpayProductCodes: null,
    marketplaceProductCodes: null,
    imageId: f.imageId ?? 'ami-0123456789abcdef0',
    instanceId: f.instanceId,
    instanceType: 't3.micro',
    kernelId: null,
    pendingTime: '2026-01-01T00:00:00Z',
    privateIp: '10.0.0.10',
    ramdiskId: null,
    region: f.region,
    version: '2017-09-30',
  };
  return `{\n${Object.entries(doc).map(([k, v]) => `  "${k}" : ${JSON.stringify(v)}`).join(',\n')}\n}`;
}

export interface JwtSigner {
  kid: string;
  /** the public JWK Set to publish */
  jwks: { keys: JWK[] };
  sign(claims: JWTPayload, opts?: { expiresInSeconds?: number; issuedAt?: number; kid?: string }): Promise<string>;
}

/** An RS256 signer standing in for Google's or Microsoft's token service. */
export async function createJwtSigner(kid: string = crypto.randomUUID()): Promise<JwtSigner> {
  const keys = (await crypto.subtle.generateKey(RSA, true, ['sign', 'verify'])) as { privateKey: CryptoKey; publicKey: CryptoKey };
  const jwk = { ...(await exportJWK(keys.publicKey)), kid, alg: 'RS256', use: 'sig' };
  return {
    kid,
    jwks: { keys: [jwk] },
    async sign(claims, opts = {}) {
      const iat = opts.issuedAt ?? Math.floor(Date.now() / 1000);
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: opts.kid ?? kid, typ: 'JWT' })
        .setIssuedAt(iat)
        .setExpirationTime(iat + (opts.expiresInSeconds ?? 3600))
        .sign(keys.privateKey);
    },
  };
}

/** Claims of a full-format GCP instance identity token. */
export function gcpIdentityClaims(f: { projectId: string; instanceId: string; zone?: string; instanceName?: string; audience?: string }): JWTPayload {
  return {
    iss: 'https://accounts.google.com',
    aud: f.audience ?? 'spire-gcp-node-attestor',
    sub: '104810211234567890123',
    azp: '104810211234567890123',
    google: {
      compute_engine: {
        project_id: f.projectId,
        project_number: 123456789012,
        zone: f.zone ?? 'us-central1-a',
        instance_id: f.instanceId,
        instance_name: f.instanceName ?? `vm-${f.instanceId}`,
        instance_creation_timestamp: 1767225600,
      },
    },
  };
}

/** Claims of an Azure managed identity access token (system-assigned identity of a VM). */
export function azureMsiClaims(f: { tenantId: string; principalId: string; resource?: string; subscriptionId?: string; resourceGroup?: string; vmName?: string }): JWTPayload {
  const sub = f.subscriptionId ?? '11111111-2222-3333-4444-555555555555';
  return {
    aud: f.resource ?? 'https://management.azure.com/',
    iss: `https://sts.windows.net/${f.tenantId}/`,
    tid: f.tenantId,
    sub: f.principalId,
    oid: f.principalId,
    xms_mirid: `/subscriptions/${sub}/resourcegroups/${f.resourceGroup ?? 'rg-test'}/providers/Microsoft.Compute/virtualMachines/${f.vmName ?? 'vm-test'}`,
  };
}
