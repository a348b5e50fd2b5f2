/**
 * Envoy SDS secrets from what one workload may see, named as SPIRE's agent names them
 * (SPIRE: pkg/agent/endpoints/sdsv3/handler.go; docs: "Envoy SDS Support" in SPIRE's agent guide):
 * - a SPIFFE ID → that X509-SVID as a `TlsCertificate` (chain + PKCS#8 key, PEM)
 * - `defaultSvidName` ("default") → the workload's first X509-SVID, under that name
 * - a trust domain ID (`spiffe://other.org`) → that bundle as a `CertificateValidationContext`
 * - `defaultBundleName` ("ROOTCA") → the agent's own trust domain's bundle
 * - `defaultAllBundlesName` ("ALL") → own + federated bundles in one SPIFFE validator config
 * - no names at all → every SVID and bundle under its own ID (SPIRE's "return all")
 * Validation contexts carry Envoy's SPIFFE certificate validator (`envoy.tls.cert_validator.spiffe`, trust
 * domain → bundle) unless it is disabled (config, or `disable_spiffe_cert_validation` in Envoy's node
 * metadata, or an Envoy older than 1.18); then plain `trusted_ca` PEM, and `ALL` cannot be served.
 * The own trust domain's CRLs (docs/revocation.md) go into a plain `trusted_ca` context as `crl`, leaf only.
 * The SPIFFE validator ignores `crl`; CRLs put in its trust bundle would turn on OpenSSL's CRL check of
 * every certificate of the chain, which fails every chain whose CA certificates have no CRL (an upstream
 * authority's intermediates) and every chain once a CRL is past nextUpdate: so none is given to it.
 * A name the workload may not have is InvalidArgument, naming every such name, as SPIRE answers.
 * Unlike SPIRE's switch, each name is served independently (SPIRE drops `default` when the first SVID's own
 * ID is asked in the same request, and `ROOTCA`/`ALL` when the trust domain ID is).
 * @module
 */
import { create, type JsonValue, type MessageInitShape } from '@bufbuild/protobuf';
import { anyPack, type Any } from '@bufbuild/protobuf/wkt';
import type { TrustDomainBundle, WorkloadX509Svid } from '../cache/identity-source.js';
import { WispError } from '../../shared/errors.js';
import { toPem } from '../../shared/encoding/pem.js';
import { parseTrustDomain, trustDomainId } from '../../shared/spiffe/id.js';
import type { Node } from './gen/envoy/config/core/v3/base_pb.js';
import { SecretSchema, type Secret } from './gen/envoy/extensions/transport_sockets/tls/v3/secret_pb.js';
import type { CertificateValidationContextSchema } from './gen/envoy/extensions/transport_sockets/tls/v3/common_pb.js';
import { SPIFFECertValidatorConfigSchema } from './gen/envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config_pb.js';
import type { SdsConfig } from './defaults.js';

export { SDS_DEFAULTS, type SdsConfig } from './defaults.js';

export const SPIFFE_VALIDATOR_NAME = 'envoy.tls.cert_validator.spiffe';
/** Envoy node metadata key that overrides `disableSpiffeCertValidation` for one Envoy (SPIRE's). */
export const DISABLE_VALIDATION_METADATA_KEY = 'disable_spiffe_cert_validation';

/** What one caller may see: its X509-SVIDs (the first is its default), the own bundle, the federated bundles its entries name. */
export interface WorkloadSnapshot {
  svids: WorkloadX509Svid[];
  own: TrustDomainBundle;
  /** sorted by trust domain name */
  federated: TrustDomainBundle[];
  /** the own trust domain's CRLs, DER (IdentitySource.crls(): the same array until they change) */
  ownCrls?: readonly Uint8Array[];
}

const pemCertificates = (ders: readonly Uint8Array[]): Uint8Array => new TextEncoder().encode(ders.map((d) => toPem('CERTIFICATE', d)).join(''));
/** PEM of each CRL array, made once per array (the cache replaces the array when the CRLs change) */
const crlPem = new WeakMap<readonly Uint8Array[], Uint8Array>();
function pemCrls(ders: readonly Uint8Array[]): Uint8Array {
  let pem = crlPem.get(ders);
  if (!pem) crlPem.set(ders, (pem = new TextEncoder().encode(ders.map((d) => toPem('X509 CRL', d)).join(''))));
  return pem;
}
type ValidationInit = MessageInitShape<typeof CertificateValidationContextSchema>;
const inline = (value: Uint8Array) => ({ specifier: { case: 'inlineBytes' as const, value } });
const idOf = (b: TrustDomainBundle): string => trustDomainId(parseTrustDomain(b.trustDomain));

function truthy(value: JsonValue | undefined): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (typeof value !== 'string') return undefined;
  // Go's strconv.ParseBool, as SPIRE reads the value; anything else leaves the config's choice
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false;
  return undefined;
}

/** Whether validation contexts use the SPIFFE validator for this Envoy. */
export function useSpiffeValidator(node: Node | undefined, config: Pick<SdsConfig, 'disableSpiffeCertValidation'>): boolean {
  const disabled = truthy(node?.metadata?.[DISABLE_VALIDATION_METADATA_KEY]) ?? config.disableSpiffeCertValidation;
  if (disabled) return false;
  const version = node?.userAgentVersionType.case === 'userAgentBuildVersion' ? node.userAgentVersionType.value.version : undefined;
  // the SPIFFE validator exists from Envoy 1.18; an Envoy that says nothing is taken to have it (SPIRE)
  return version === undefined || version.majorNumber > 1 || (version.majorNumber === 1 && version.minorNumber > 17);
}

function spiffeContext(bundles: readonly TrustDomainBundle[]): ValidationInit {
  const config = create(SPIFFECertValidatorConfigSchema, {
    trustDomains: [...bundles]
      .sort((a, b) => (a.trustDomain < b.trustDomain ? -1 : a.trustDomain > b.trustDomain ? 1 : 0))
      .map((b) => ({ name: b.trustDomain, trustBundle: inline(pemCertificates(b.x509Authorities)) })),
  });
  return { customValidatorConfig: { name: SPIFFE_VALIDATOR_NAME, typedConfig: anyPack(SPIFFECertValidatorConfigSchema, config) } };
}

function validationSecret(name: string, bundles: readonly TrustDomainBundle[], spiffe: boolean, several = false, crls: readonly Uint8Array[] = []): Secret {
  let context: ValidationInit;
  if (spiffe) context = spiffeContext(bundles);
  else if (!several) {
    context = { trustedCa: inline(pemCertificates(bundles[0]!.x509Authorities)), ...(crls.length > 0 ? { crl: inline(pemCrls(crls)), onlyVerifyLeafCertCrl: true } : {}) };
  }
  // one trusted_ca for several trust domains would let any of their CAs vouch for any SPIFFE ID (SPIRE refuses too)
  else throw new WispError('ERR_INTERNAL', `"${name}" needs the SPIFFE certificate validator (Envoy 1.18+, not disabled)`);
  return create(SecretSchema, { name, type: { case: 'validationContext', value: context } });
}

function tlsSecret(name: string, svid: WorkloadX509Svid): Secret {
  return create(SecretSchema, {
    name,
    type: {
      case: 'tlsCertificate',
      value: {
        certificateChain: inline(pemCertificates(svid.certChain)),
        privateKey: inline(new TextEncoder().encode(toPem('PRIVATE KEY', svid.privateKey))),
      },
    },
  });
}

/**
 * The secrets for `names` (empty: all), in SPIRE's order: bundles (own, then federated), then SVIDs.
 * @throws WispError ERR_BAD_REQUEST (InvalidArgument) naming the names this workload may not have
 */
export function buildSecrets(snapshot: WorkloadSnapshot, resourceNames: readonly string[], config: SdsConfig, spiffe: boolean): Any[] {
  const wanted = new Set(resourceNames.filter((n) => n !== ''));
  const all = wanted.size === 0;
  const secrets: Secret[] = [];
  const take = (name: string): boolean => all || wanted.delete(name);

  const ownId = idOf(snapshot.own);
  const ownCrls = snapshot.ownCrls ?? [];
  if (take(ownId)) secrets.push(validationSecret(ownId, [snapshot.own], spiffe, false, ownCrls));
  if (!all && wanted.delete(config.defaultBundleName)) secrets.push(validationSecret(config.defaultBundleName, [snapshot.own], spiffe, false, ownCrls));
  if (!all && wanted.delete(config.defaultAllBundlesName)) {
    secrets.push(validationSecret(config.defaultAllBundlesName, [snapshot.own, ...snapshot.federated], spiffe, true));
  }
  for (const bundle of snapshot.federated) {
    const id = idOf(bundle);
    if (take(id)) secrets.push(validationSecret(id, [bundle], spiffe));
  }
  snapshot.svids.forEach((svid, i) => {
    if (take(svid.spiffeId)) secrets.push(tlsSecret(svid.spiffeId, svid));
    if (!all && i === 0 && wanted.delete(config.defaultSvidName)) secrets.push(tlsSecret(config.defaultSvidName, svid));
  });

  if (wanted.size > 0) {
    const names = [...wanted].sort().map((n) => JSON.stringify(n));
    throw new WispError('ERR_BAD_REQUEST', `workload is not authorized for the requested identities [${names.join(' ')}]`);
  }
  return secrets.map((s) => anyPack(SecretSchema, s));
}
