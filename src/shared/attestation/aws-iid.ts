/**
 * aws_iid node attestation, runtime-agnostic part (SPIRE's awsiid without the EC2 API): the agent sends
 * the EC2 instance identity document and its PKCS#7 RSA-2048 signature; the issuer verifies the signature
 * with AWS's published certificate for the document's own region, so a document of one region signed for
 * another does not verify. Agent ID and selectors follow SPIRE.
 * @module
 */
import { X509Certificate } from '@peculiar/x509';
import { derFromPemOrBase64 } from '../encoding/pem.js';
import { WispError } from '../errors.js';
import type { Selector } from '../registry/selectors.js';
import { AWS_IID_RSA2048_CERTIFICATES } from './aws-iid-certificates.js';
import { verifyPkcs7Signature } from './pkcs7.js';

export const AWS_IID_TYPE = 'aws_iid';
/** SPIRE's default: `spiffe://<td>/spire/agent/aws_iid/<account>/<region>/<instance>`. */
export const AWS_IID_DEFAULT_PATH_TEMPLATE = '{{ .PluginName }}/{{ .AccountID }}/{{ .Region }}/{{ .InstanceID }}';
/** Fields an aws_iid agent path template may use (SPIRE's names; Tags needs the EC2 API: not supported). */
export const AWS_IID_TEMPLATE_FIELDS = ['PluginName', 'AccountID', 'Region', 'InstanceID', 'AvailabilityZone', 'ImageID', 'InstanceType'] as const;
/** Largest document accepted, bytes (real ones are ~500). */
export const AWS_IID_DOCUMENT_MAX_BYTES = 4096;

/** The fields of the instance identity document that Wisp uses. */
export interface InstanceIdentityDocument {
  accountId: string;
  region: string;
  availabilityZone: string;
  imageId: string;
  instanceId: string;
  instanceType: string;
}

function refused(message: string): WispError {
  return new WispError('ERR_ATTESTATION_FAILED', `aws_iid: ${message}`);
}

const FIELD_CHARS = /^[A-Za-z0-9._-]{1,128}$/;

/** Parses the document JSON; fields used in IDs and selectors must be plain identifiers. */
export function parseInstanceIdentityDocument(document: string): InstanceIdentityDocument {
  let raw: unknown;
  try {
    raw = JSON.parse(document);
  } catch {
    throw refused('instance identity document is not JSON');
  }
  if (typeof raw !== 'object' || raw === null) throw refused('instance identity document is not a JSON object');
  const r = raw as Record<string, unknown>;
  const field = (name: keyof InstanceIdentityDocument, pattern = FIELD_CHARS): string => {
    const v = r[name];
    if (typeof v !== 'string' || !pattern.test(v)) throw refused(`instance identity document has no valid ${name}`);
    return v;
  };
  return {
    accountId: field('accountId', /^\d{12}$/),
    region: field('region', /^[a-z0-9-]{1,64}$/),
    availabilityZone: field('availabilityZone'),
    imageId: field('imageId'),
    instanceId: field('instanceId'),
    instanceType: field('instanceType'),
  };
}

/** Region → SPKI of its certificate: the shipped table plus `extra` (PEM or base64 DER; extra wins). */
export function buildAwsRegionKeys(extra: Readonly<Record<string, string>> = {}): Map<string, Uint8Array> {
  const keys = new Map<string, Uint8Array>();
  for (const [region, cert] of Object.entries({ ...AWS_IID_RSA2048_CERTIFICATES, ...extra })) {
    const der = derFromPemOrBase64(cert, 'CERTIFICATE');
    if (!der) throw new WispError('ERR_CONFIG_INVALID', `certificate of ${region} is not base64`);
    keys.set(region, new Uint8Array(new X509Certificate(der).publicKey.rawData));
  }
  return keys;
}

/**
 * Verifies document + signature and returns the parsed document, or throws ERR_ATTESTATION_FAILED with
 * the reason (unknown region, bad signature, signature of another region or of a changed document).
 */
export async function verifyInstanceIdentity(document: string, signatureBase64: string, regionKeys: ReadonlyMap<string, Uint8Array>): Promise<InstanceIdentityDocument> {
  const bytes = new TextEncoder().encode(document);
  if (bytes.length > AWS_IID_DOCUMENT_MAX_BYTES) throw refused(`instance identity document is larger than ${AWS_IID_DOCUMENT_MAX_BYTES} bytes`);
  const doc = parseInstanceIdentityDocument(document);
  const key = regionKeys.get(doc.region);
  if (!key) throw refused(`no AWS certificate for region ${doc.region} (add it with AWS_IID certificates)`);
  const der = derFromPemOrBase64(signatureBase64, 'PKCS7');
  if (!der) throw refused('signature is not base64');
  const checked = await verifyPkcs7Signature(der, bytes, key);
  if (!checked.ok) throw refused(`instance identity signature is invalid for region ${doc.region}: ${checked.error}`);
  return doc;
}

/** SPIRE's aws_iid selectors from the document, plus `account` (issue 6: node aliases per account). */
export function awsIidSelectors(doc: InstanceIdentityDocument): Selector[] {
  return [
    `account:${doc.accountId}`,
    `az:${doc.availabilityZone}`,
    `image:id:${doc.imageId}`,
    `instance:id:${doc.instanceId}`,
    `region:${doc.region}`,
  ].map((value) => ({ type: AWS_IID_TYPE, value }));
}

/** Template values for the agent path. */
export function awsIidTemplateValues(doc: InstanceIdentityDocument): Record<string, string> {
  return {
    PluginName: AWS_IID_TYPE,
    AccountID: doc.accountId,
    Region: doc.region,
    InstanceID: doc.instanceId,
    AvailabilityZone: doc.availabilityZone,
    ImageID: doc.imageId,
    InstanceType: doc.instanceType,
  };
}
