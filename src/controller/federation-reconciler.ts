/**
 * ClusterFederatedTrustDomain → Wisp federation relationships. Wisp's relationships carry no owner field,
 * so ownership is recorded on the resource: when the controller first writes a resource's relationship it
 * adds the finalizer FEDERATION_FINALIZER and the annotation FEDERATION_TRUST_DOMAIN_ANNOTATION (the trust
 * domain written) in one metadata update, before the relationship is written. The controller then owns
 * exactly the relationships those annotations name: it keeps each one as its resource declares (the
 * bootstrap `trustDomainBundle` is sent only when creating), deletes it when its resource is deleted (then
 * drops the finalizer) or names another trust domain, and never touches any other relationship. Declaring a
 * trust domain that already has a hand-made relationship hands that relationship to the controller.
 * Upstream instead deletes every relationship no resource declares.
 * @module
 */
import type { Logger } from 'pino';
import type { FederationRelationship } from '../shared/federation/relationship.js';
import type { Registry } from './registry.js';
import { ofOurClass, preferenceOrder, type KubeResource, type ProblemSink, type ReconcileOptions } from './reconciler.js';
import { renderFederationRelationship, type FederationRelationshipInput } from './render.js';

export const FEDERATION_FINALIZER = 'wisp-controller-manager/federation-relationship';
export const FEDERATION_TRUST_DOMAIN_ANNOTATION = 'wisp-controller-manager/federation-trust-domain';

export interface MetadataWriter {
  /** replaces a ClusterFederatedTrustDomain's finalizers and annotations (with its resourceVersion: 409 when stale) */
  writeOwnership(resource: KubeResource, finalizers: string[], annotations: Record<string, string>): Promise<void>;
}

export interface FederationReconcileResult {
  written: string[];
  deleted: string[];
  failures: number;
}

function differs(have: FederationRelationship, want: FederationRelationshipInput): boolean {
  return have.bundleEndpointUrl !== want.bundleEndpointUrl || have.bundleEndpointProfile !== want.bundleEndpointProfile || (have.endpointSpiffeId ?? '') !== (want.endpointSpiffeId ?? '');
}

const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));
const isNotFound = (e: unknown) => (e as { code?: string }).code === 'ERR_FEDERATION_NOT_FOUND';

export async function reconcileFederation(
  resources: readonly KubeResource[],
  deps: { registry: Registry; metadata: MetadataWriter; isLeading: () => boolean; log: Logger; problems?: ProblemSink },
  o: Pick<ReconcileOptions, 'trustDomain' | 'className' | 'watchClassless'>,
): Promise<FederationReconcileResult> {
  const { registry, log } = deps;
  const result: FederationReconcileResult = { written: [], deleted: [], failures: 0 };
  const ours = resources.filter((r) => ofOurClass(o, r.spec)).sort(preferenceOrder);
  const annotated = (r: KubeResource) => (r.metadata.finalizers ?? []).includes(FEDERATION_FINALIZER) ? r.metadata.annotations?.[FEDERATION_TRUST_DOMAIN_ANNOTATION] : undefined;

  // what the live resources declare, the preferred resource per trust domain
  const declared = new Map<string, { input: FederationRelationshipInput; resource: KubeResource }>();
  for (const r of ours) {
    if (r.metadata.deletionTimestamp) continue;
    const rendered = renderFederationRelationship(r.spec, o);
    if (!rendered.ok) {
      log.error({ clusterFederatedTrustDomain: r.metadata.name, error: rendered.error.message }, 'invalid ClusterFederatedTrustDomain spec');
      deps.problems?.warn('ClusterFederatedTrustDomain', r, 'InvalidSpec', rendered.error.message);
      continue;
    }
    const td = rendered.value.trustDomain;
    if (declared.has(td)) log.warn({ clusterFederatedTrustDomain: r.metadata.name, trustDomain: td, winner: declared.get(td)!.resource.metadata.name }, 'trust domain declared by an older ClusterFederatedTrustDomain too; this one is ignored');
    else declared.set(td, { input: rendered.value, resource: r });
  }

  const current = new Map((await registry.listRelationships()).map((r) => [r.trustDomain as string, r]));
  const remove = async (td: string) => {
    if (declared.has(td)) return true;
    try {
      await registry.deleteRelationship(td);
      log.info({ trustDomain: td }, 'deleted federation relationship');
      result.deleted.push(td);
    } catch (e) {
      if (!isNotFound(e)) {
        result.failures++;
        log.error({ trustDomain: td, error: errorText(e) }, 'cannot delete federation relationship');
        return false;
      }
    }
    return true;
  };

  for (const r of ours) {
    if (!deps.isLeading()) return result;
    const owned = annotated(r);
    const want = r.metadata.deletionTimestamp ? undefined : [...declared.values()].find((d) => d.resource === r)?.input;
    const others = (r.metadata.finalizers ?? []).filter((f) => f !== FEDERATION_FINALIZER);
    const { [FEDERATION_TRUST_DOMAIN_ANNOTATION]: _owned, ...otherAnnotations } = r.metadata.annotations ?? {};
    try {
      if (want) {
        if (owned !== want.trustDomain) {
          // record ownership first: a crash after the write must not leave an unowned relationship
          await deps.metadata.writeOwnership(r, [...others, FEDERATION_FINALIZER], { ...otherAnnotations, [FEDERATION_TRUST_DOMAIN_ANNOTATION]: want.trustDomain });
          if (owned !== undefined && !(await remove(owned))) continue;
        }
        const have = current.get(want.trustDomain);
        if (!have || differs(have, want)) {
          const { trustDomainBundle, ...rest } = want;
          await registry.putRelationship(have ? rest : { ...rest, ...(trustDomainBundle === undefined ? {} : { trustDomainBundle }) }, have !== undefined);
          log.info({ trustDomain: want.trustDomain, by: r.metadata.name }, have ? 'updated federation relationship' : 'created federation relationship');
          result.written.push(want.trustDomain);
        }
      } else if (r.metadata.deletionTimestamp && others.length !== (r.metadata.finalizers ?? []).length) {
        // deleted: delete what it owned, then let the deletion finish (a spec that stops rendering keeps its relationship)
        if (owned !== undefined && !(await remove(owned))) continue;
        await deps.metadata.writeOwnership(r, others, otherAnnotations);
      }
    } catch (e) {
      result.failures++;
      log.error({ clusterFederatedTrustDomain: r.metadata.name, error: errorText(e) }, 'cannot reconcile federation relationship');
      deps.problems?.warn('ClusterFederatedTrustDomain', r, 'RelationshipWriteFailed', errorText(e));
    }
  }
  return result;
}
