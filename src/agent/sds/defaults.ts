/**
 * The `sds` config block and SPIRE's defaults, apart from the resources so that reading the config does not load
 * Envoy's protobuf descriptors (they load with the first SDS call, docs/performance.md, start-up).
 * @module
 */
/** The agent's `sds` config block (docs/agent-config.md). */
export interface SdsConfig {
  defaultSvidName: string;
  defaultBundleName: string;
  defaultAllBundlesName: string;
  disableSpiffeCertValidation: boolean;
}

/** SPIRE's defaults. */
export const SDS_DEFAULTS: SdsConfig = {
  defaultSvidName: 'default',
  defaultBundleName: 'ROOTCA',
  defaultAllBundlesName: 'ALL',
  disableSpiffeCertValidation: false,
};
