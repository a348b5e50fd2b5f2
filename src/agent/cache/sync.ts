/**
 * One sync round: `/sync` with the last revision and bundle sequence (the issuer answers with only the
 * revision when nothing changed), then a fresh key and CSR for every entry that needs an X509-SVID, signed
 * in batches through `/x509-svids`. Subscribers are notified once per round if anything changed.
 * @module
 */
import { AGENT_API_LIMITS } from '../../shared/agent-api.js';
import type { Clock } from '../../shared/clock.js';
import { decodeBase64, toBase64 } from '../../shared/encoding/base64.js';
import type { Entry } from '../../shared/registry/entry.js';
import type { IssuerClient } from '../issuer-client.js';
import { newKeyAndCsr, svidInfoForSpki } from '../keys.js';
import { LOG_FIELDS, type Logger } from '../log.js';
import type { IssuedSvid, SvidCache } from './svid-cache.js';
import { countedCall } from '../telemetry/calls.js';
import type { WorkTelemetry } from '../telemetry/metrics.js';

export interface SyncDeps {
  client: Pick<IssuerClient, 'sync' | 'signX509Svids'>;
  cache: SvidCache;
  clock: Clock;
  log: Logger;
  /** called with the new bundle JSON when it changed (persist it) */
  onBundleChanged?: (bundle: NonNullable<ReturnType<SvidCache['bundleJson']>>) => Promise<void>;
  /** counts the sync's two halves and bundle updates; absent: metrics off */
  telemetry?: Pick<WorkTelemetry, 'now' | 'callDone' | 'bundleUpdated'>;
}

export interface SyncOutcome {
  entriesChanged: boolean;
  bundleChanged: boolean;
  issued: number;
}

export async function syncOnce(deps: SyncDeps): Promise<SyncOutcome> {
  const { client, cache, clock, log } = deps;
  const res = await countedCall(deps.telemetry, 'fetchEntries', () => client.sync(cache.syncState()));
  const changed = await cache.applySync(res);
  if (changed.bundle) deps.telemetry?.bundleUpdated();
  if (changed.entries) log.info({ [LOG_FIELDS.REVISION]: res.revision, [LOG_FIELDS.COUNT]: res.entries?.length ?? 0 }, 'authorized entries updated');
  const bundle = cache.bundleJson();
  if (changed.bundle && bundle && deps.onBundleChanged) await deps.onBundleChanged(bundle);

  let issued = 0;
  let failure: unknown;
  const due = cache.entriesToSign(clock());
  for (let i = 0; i < due.length; i += AGENT_API_LIMITS.MAX_BATCH_CSRS) {
    try {
      const batch = due.slice(i, i + AGENT_API_LIMITS.MAX_BATCH_CSRS);
      issued += await countedCall(deps.telemetry, 'fetchSvids', () => signBatch(deps, batch));
    } catch (e) {
      failure = e;
      break;
    }
  }
  const expired = cache.dropExpired(clock());
  cache.markReady();
  if (changed.entries || changed.bundle || changed.revocations || issued > 0 || expired) cache.notify();
  if (failure) throw failure;
  return { entriesChanged: changed.entries, bundleChanged: changed.bundle, issued };
}

async function signBatch(deps: SyncDeps, entries: Entry[]): Promise<number> {
  // the keys wait for their certificates as bytes, not as KeyObjects (keys.ts svidInfoForSpki)
  const keys = new Map<string, { pkcs8: Uint8Array; spki: Uint8Array }>();
  const requests: Array<{ entryId: string; csr: string }> = [];
  for (const entry of entries) {
    const { pkcs8, spki, csr } = newKeyAndCsr(entry.spiffeId);
    requests.push({ entryId: entry.id, csr: toBase64(csr) });
    keys.set(entry.id, { pkcs8, spki });
  }
  const res = await deps.client.signX509Svids({ requests });
  const issued: IssuedSvid[] = [];
  for (const { entryId, svid } of res.svids ?? []) {
    const key = keys.get(entryId);
    const decoded = (svid?.certChain ?? []).map((b) => decodeBase64(b));
    // a certificate that is not base64 makes the whole chain unusable (logged below like a mismatch)
    const certChain = decoded.every((d) => d !== undefined) ? (decoded as Uint8Array[]) : [];
    const leaf = certChain[0];
    const info = key && leaf ? svidInfoForSpki(leaf, key.spki) : undefined;
    if (!key || !info) {
      deps.log.error({ [LOG_FIELDS.ENTRY_ID]: entryId }, 'issuer returned an X509-SVID that does not match the request; ignored');
      continue;
    }
    issued.push({ entryId, wire: svid, serialNumber: info.serialNumber, certChain, privateKey: key.pkcs8, notBefore: info.notBefore, notAfter: info.notAfter });
    deps.log.info({ [LOG_FIELDS.ENTRY_ID]: entryId, [LOG_FIELDS.SPIFFE_ID]: svid.spiffeId, [LOG_FIELDS.EXPIRES_AT]: new Date(info.notAfter).toISOString() }, 'X509-SVID issued');
  }
  const missing = entries.length - issued.length;
  if (missing > 0) deps.log.warn({ [LOG_FIELDS.COUNT]: missing }, 'issuer did not sign every requested X509-SVID (entries removed meanwhile?)');
  return deps.cache.putSvids(issued);
}
