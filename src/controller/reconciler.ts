/**
 * Entry reconciliation, upstream spire-controller-manager's algorithm (pkg/spireentry) over Wisp's admin API:
 * desired = every selected pod's entry of every ClusterSPIFFEID of our class (non-fallback ones first; a
 * fallback one only for pods no other applied to) plus every ClusterStaticEntry; existing = the issuer's
 * entries whose ID starts with `entryIDPrefix` (the only ones the controller owns; nothing else is read
 * further, let alone written). Entries are matched by (SPIFFE ID, parent ID, selector set): several
 * resources declaring the same one give one entry, the oldest resource's (then the UID order), the others
 * count it as masked on their status; an existing entry with that key is updated in place when a field
 * differs; existing entries nobody declares are deleted. Writes go in admin API batches and only while
 * `isLeading()`; stats are written to a resource's status subresource only when they changed.
 * The rendering itself (templates, selectors, entry rules) is render.ts's.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Entry } from '../shared/registry/entry.js';
import type { ControllerConfig } from './config.js';
import type { KubeObjectMeta } from './kube.js';
import type { ItemStatus, Registry } from './registry.js';
import {
  compileClusterSpiffeId,
  entryKey,
  renderPodEntry,
  renderStaticEntry,
  sameEntry,
  selectsPod,
  specClassName,
  toEntryInput,
  type DesiredEntry,
  type KubeNamespace,
  type KubeNode,
  type KubePod,
} from './render.js';

/** A spire.spiffe.io resource as the API server returns it. */
export interface KubeResource {
  metadata: KubeObjectMeta & { creationTimestamp?: string | Date; deletionTimestamp?: string | Date; finalizers?: string[] };
  spec?: unknown;
  status?: Record<string, unknown>;
}

/** The parts of a discovery.k8s.io/v1 EndpointSlice autoPopulateDNSNames reads. */
export interface KubeEndpointSlice {
  metadata: KubeObjectMeta;
  endpoints?: { targetRef?: { kind?: string; uid?: string } }[];
}

export interface ClusterState {
  clusterSPIFFEIDs: readonly KubeResource[];
  clusterStaticEntries: readonly KubeResource[];
  pods: readonly KubePod[];
  nodes: readonly KubeNode[];
  namespaces: readonly KubeNamespace[];
  endpointSlices: readonly KubeEndpointSlice[];
}

/** ClusterSPIFFEID status.stats: the CRD's fields (it has no success count; the API server would prune one). */
export interface ClusterSpiffeIdStats {
  namespacesSelected: number;
  namespacesIgnored: number;
  podsSelected: number;
  podEntryRenderFailures: number;
  entriesToSet: number;
  entriesMasked: number;
  entryFailures: number;
}

/** ClusterStaticEntry status, upstream's fields. */
export interface ClusterStaticEntryStatus {
  rendered: boolean;
  masked: boolean;
  set: boolean;
}

/**
 * Where a resource's problems are shown to its author (a Warning Event on it: the CRDs' status schemas have
 * no field for a message, and the validating webhooks are not part of Wisp).
 */
export interface ProblemSink {
  warn(kind: 'ClusterSPIFFEID' | 'ClusterStaticEntry' | 'ClusterFederatedTrustDomain', resource: KubeResource, reason: string, message: string): void;
}

const noProblemSink: ProblemSink = { warn: () => undefined };

type Owner = { kind: 'ClusterSPIFFEID'; resource: KubeResource; stats: ClusterSpiffeIdStats } | { kind: 'ClusterStaticEntry'; resource: KubeResource; status: ClusterStaticEntryStatus };

export interface EntryPlan {
  create: { input: Record<string, unknown>; owner: Owner }[];
  update: { input: Record<string, unknown>; owner: Owner }[];
  /** declared entries already in place as declared */
  unchanged: Owner[];
  delete: Entry[];
  owners: Owner[];
}

export type ReconcileOptions = Pick<ControllerConfig, 'trustDomain' | 'clusterName' | 'clusterDomain' | 'parentIdTemplate' | 'ignoreNamespaces' | 'className' | 'watchClassless' | 'entryIDPrefix' | 'reconcile'>;

const zeroStats = (): ClusterSpiffeIdStats => ({ namespacesSelected: 0, namespacesIgnored: 0, podsSelected: 0, podEntryRenderFailures: 0, entriesToSet: 0, entriesMasked: 0, entryFailures: 0 });

/** Upstream's reconcileClass: our class, or classless ones when watching those. */
export function ofOurClass(o: Pick<ReconcileOptions, 'className' | 'watchClassless'>, spec: unknown): boolean {
  const name = specClassName(spec);
  return (name === '' && o.watchClassless) || name === (o.className ?? '');
}

const time = (t: string | Date | undefined) => (t === undefined ? 0 : new Date(t).getTime());

/** Upstream's preference: older first; not being deleted before being deleted (later deletion first); then UID. */
export function preferenceOrder(a: KubeResource, b: KubeResource): number {
  const created = time(a.metadata.creationTimestamp) - time(b.metadata.creationTimestamp);
  if (created !== 0) return created;
  const da = a.metadata.deletionTimestamp;
  const db = b.metadata.deletionTimestamp;
  if (da !== undefined && db === undefined) return 1;
  if (da === undefined && db !== undefined) return -1;
  if (da !== undefined && db !== undefined && time(da) !== time(db)) return time(db) - time(da);
  const ua = a.metadata.uid ?? '';
  const ub = b.metadata.uid ?? '';
  return ua < ub ? -1 : ua > ub ? 1 : 0;
}

function fromEntry(e: Entry): DesiredEntry {
  return { spiffeId: e.spiffeId, parentId: e.parentId, selectors: e.selectors, dnsNames: e.dnsNames, federatesWith: e.federatesWith, x509SvidTtl: e.x509SvidTtl, jwtSvidTtl: e.jwtSvidTtl, admin: e.admin, downstream: e.downstream, hint: e.hint };
}

/** The Services (by EndpointSlice, label kubernetes.io/service-name) whose endpoints target each pod UID. */
function servicesByPod(slices: readonly KubeEndpointSlice[]): Map<string, { name: string; namespace: string }[]> {
  const out = new Map<string, { name: string; namespace: string }[]>();
  for (const s of slices) {
    const name = s.metadata.labels?.['kubernetes.io/service-name'];
    const namespace = s.metadata.namespace;
    if (!name || !namespace) continue;
    for (const ep of s.endpoints ?? []) {
      const uid = ep.targetRef?.kind === 'Pod' ? ep.targetRef.uid : undefined;
      if (!uid) continue;
      const list = out.get(uid) ?? [];
      if (!list.some((x) => x.name === name && x.namespace === namespace)) list.push({ name, namespace });
      out.set(uid, list);
    }
  }
  return out;
}

/**
 * Works out the writes (pure but for the new entry IDs): what to create, update and delete, with each
 * resource's stats before the writes (entriesToSet, entriesMasked, selection counts, render failures).
 */
export function planEntries(state: ClusterState, current: readonly Entry[], o: ReconcileOptions, log: Logger, problems: ProblemSink = noProblemSink): EntryPlan {
  const declared = new Map<string, { entry: DesiredEntry; owner: Owner }[]>();
  const declare = (entry: DesiredEntry, owner: Owner) => {
    const key = entryKey(entry);
    declared.set(key, [...(declared.get(key) ?? []), { entry, owner }]);
  };
  const owners: Owner[] = [];
  const ctx = { trustDomain: o.trustDomain, clusterName: o.clusterName, clusterDomain: o.clusterDomain, ...(o.parentIdTemplate ? { parentIdTemplate: o.parentIdTemplate } : {}) };

  if (o.reconcile.clusterStaticEntries) {
    for (const r of state.clusterStaticEntries) {
      if (!ofOurClass(o, r.spec)) continue;
      const owner: Owner = { kind: 'ClusterStaticEntry', resource: r, status: { rendered: false, masked: false, set: false } };
      owners.push(owner);
      const rendered = renderStaticEntry(r.spec, ctx);
      if (!rendered.ok) {
        log.error({ clusterStaticEntry: r.metadata.name, error: rendered.error.message }, 'cannot render ClusterStaticEntry');
        problems.warn('ClusterStaticEntry', r, 'InvalidSpec', rendered.error.message);
        continue;
      }
      owner.status.rendered = true;
      declare(rendered.value, owner);
    }
  }

  if (o.reconcile.clusterSPIFFEIDs) {
    const nodes = new Map(state.nodes.map((n) => [n.metadata.name ?? '', n]));
    const services = servicesByPod(state.endpointSlices);
    const appliedNonFallback = new Set<string>();
    const ids = state.clusterSPIFFEIDs.filter((r) => ofOurClass(o, r.spec));
    const compiled = ids.map((r) => ({ r, c: compileClusterSpiffeId(r.spec) }));
    // non-fallback first, so a fallback one sees which pods already have an entry (a stable sort)
    const fallback = (x: (typeof compiled)[number]) => (x.c.ok && x.c.value.fallback ? 1 : 0);
    compiled.sort((a, b) => fallback(a) - fallback(b));
    for (const { r, c } of compiled) {
      const owner: Owner = { kind: 'ClusterSPIFFEID', resource: r, stats: zeroStats() };
      owners.push(owner);
      if (!c.ok) {
        log.error({ clusterSPIFFEID: r.metadata.name, error: c.error.message }, 'invalid ClusterSPIFFEID spec');
        problems.warn('ClusterSPIFFEID', r, 'InvalidSpec', c.error.message);
        continue;
      }
      const spec = c.value;
      for (const ns of state.namespaces) {
        if (!spec.namespaceSelector.matches(ns.metadata.labels)) continue;
        owner.stats.namespacesSelected++;
        const nsName = ns.metadata.name ?? '';
        if (o.ignoreNamespaces.some((re) => re.test(nsName))) {
          owner.stats.namespacesIgnored++;
          continue;
        }
        for (const pod of state.pods) {
          if (pod.metadata.namespace !== nsName || !selectsPod(spec, pod, ns)) continue;
          owner.stats.podsSelected++;
          const uid = pod.metadata.uid ?? '';
          if (spec.fallback && appliedNonFallback.has(uid)) continue;
          // not scheduled yet, or a node without its UID yet: no parent to render; a later event brings it
          const node = pod.spec?.nodeName ? nodes.get(pod.spec.nodeName) : undefined;
          if (!node?.metadata.uid) continue;
          const rendered = renderPodEntry(spec, { pod, node, namespace: ns, serviceNames: services.get(uid) ?? [] }, ctx);
          if (!rendered.ok) {
            owner.stats.podEntryRenderFailures++;
            log.error({ clusterSPIFFEID: r.metadata.name, pod: `${nsName}/${pod.metadata.name ?? ''}`, error: rendered.error.message }, 'cannot render the entry of a pod');
            problems.warn('ClusterSPIFFEID', r, 'EntryRenderFailed', rendered.error.message);
            continue;
          }
          declare(rendered.value, owner);
          if (!spec.fallback) appliedNonFallback.add(uid);
        }
      }
    }
  }

  const existing = new Map<string, Entry[]>();
  for (const e of current) {
    if (!e.id.startsWith(o.entryIDPrefix)) continue;
    const key = entryKey(fromEntry(e));
    existing.set(key, [...(existing.get(key) ?? []), e]);
  }

  const plan: EntryPlan = { create: [], update: [], unchanged: [], delete: [], owners };
  for (const [key, list] of declared) {
    list.sort((a, b) => preferenceOrder(a.owner.resource, b.owner.resource));
    const [preferred, ...masked] = list;
    if (preferred!.owner.kind === 'ClusterSPIFFEID') preferred!.owner.stats.entriesToSet++;
    for (const m of masked) {
      if (m.owner.kind === 'ClusterSPIFFEID') m.owner.stats.entriesMasked++;
      else m.owner.status.masked = true;
    }
    const [have, ...extra] = existing.get(key) ?? [];
    existing.delete(key);
    plan.delete.push(...extra);
    if (!have) plan.create.push({ input: toEntryInput(preferred!.entry, `${o.entryIDPrefix}${randomUUID()}`), owner: preferred!.owner });
    else if (!sameEntry(preferred!.entry, fromEntry(have))) plan.update.push({ input: toEntryInput(preferred!.entry, have.id), owner: preferred!.owner });
    else plan.unchanged.push(preferred!.owner);
  }
  for (const left of existing.values()) plan.delete.push(...left);
  return plan;
}

function succeeded(owner: Owner): void {
  if (owner.kind === 'ClusterStaticEntry') owner.status.set = true;
}

function failed(owner: Owner): void {
  if (owner.kind === 'ClusterSPIFFEID') owner.stats.entryFailures++;
}

export interface StatusWriter {
  /** replaces the status subresource of a cluster-scoped spire.spiffe.io resource */
  writeStatus(plural: 'clusterspiffeids' | 'clusterstaticentries', resource: KubeResource, status: Record<string, unknown>): Promise<void>;
}

export interface EntryReconcileResult {
  created: number;
  updated: number;
  deleted: number;
  failures: number;
  statusesWritten: number;
  /** false when leadership ended before every write was made */
  complete: boolean;
}

const statusText = (s: ItemStatus) => `${s.code}: ${s.message}`;

/**
 * One entry reconcile: list, plan, write (deletes, then creates, then updates, each in batches, each batch
 * only while leading), then the statuses that changed.
 */
export async function reconcileEntries(
  state: ClusterState,
  deps: { registry: Registry; statuses: StatusWriter; isLeading: () => boolean; log: Logger; problems?: ProblemSink },
  o: ReconcileOptions,
): Promise<EntryReconcileResult> {
  const { registry, log } = deps;
  const plan = planEntries(state, await registry.listEntries(), o, log, deps.problems);
  const result: EntryReconcileResult = { created: 0, updated: 0, deleted: 0, failures: 0, statusesWritten: 0, complete: false };
  const leading = () => {
    if (deps.isLeading()) return true;
    log.warn('not leading any more: stopped before writing');
    return false;
  };
  if (plan.delete.length > 0) {
    if (!leading()) return result;
    const statuses = await registry.deleteEntries(plan.delete.map((e) => e.id), leading);
    statuses.forEach((s, i) => {
      const e = plan.delete[i]!;
      if (s.code === 'OK' || s.code === 'ERR_ENTRY_NOT_FOUND') {
        result.deleted++;
        log.info({ entryId: e.id, spiffeId: e.spiffeId }, 'deleted entry');
      } else log.error({ entryId: e.id, error: statusText(s) }, 'cannot delete entry');
    });
    if (statuses.length < plan.delete.length) return result;
  }
  for (const [kind, items] of [['create', plan.create], ['update', plan.update]] as const) {
    if (items.length === 0) continue;
    if (!leading()) return result;
    const inputs = items.map((x) => x.input);
    const statuses = kind === 'create' ? await registry.createEntries(inputs, leading) : await registry.updateEntries(inputs, leading);
    statuses.forEach((s, i) => {
      const { input, owner } = items[i]!;
      if (s.code === 'OK') {
        succeeded(owner);
        if (kind === 'create') result.created++;
        else result.updated++;
        log.info({ entryId: input.id, spiffeId: input.spiffeId, by: owner.resource.metadata.name }, `${kind}d entry`);
      } else {
        failed(owner);
        result.failures++;
        log.error({ entryId: input.id, spiffeId: input.spiffeId, by: owner.resource.metadata.name, error: statusText(s) }, `cannot ${kind} entry`);
        deps.problems?.warn(owner.kind, owner.resource, 'EntryWriteFailed', `${input.spiffeId}: ${statusText(s)}`);
      }
    });
    if (statuses.length < items.length) return result;
  }
  for (const owner of plan.unchanged) succeeded(owner);
  result.complete = true;
  for (const owner of plan.owners) {
    const next: Record<string, unknown> = owner.kind === 'ClusterSPIFFEID' ? { ...owner.resource.status, stats: owner.stats } : { ...owner.resource.status, ...owner.status };
    if (JSON.stringify(canonical(next)) === JSON.stringify(canonical(owner.resource.status ?? {}))) continue;
    if (!deps.isLeading()) break;
    try {
      await deps.statuses.writeStatus(owner.kind === 'ClusterSPIFFEID' ? 'clusterspiffeids' : 'clusterstaticentries', owner.resource, next);
      result.statusesWritten++;
    } catch (err) {
      // a newer version of the resource (409): its own event brings another reconcile
      log.warn({ resource: owner.resource.metadata.name, error: err instanceof Error ? err.message : String(err) }, 'cannot update status');
    }
  }
  return result;
}

/** Keys sorted, so two equal statuses compare equal whatever order the API server wrote them in. */
function canonical(x: unknown): unknown {
  if (Array.isArray(x)) return x.map(canonical);
  if (typeof x !== 'object' || x === null) return x;
  return Object.fromEntries(Object.keys(x).sort().map((k) => [k, canonical((x as Record<string, unknown>)[k])]));
}
