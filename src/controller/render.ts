/**
 * The controller manager's pure core: spire-controller-manager's resources (ClusterSPIFFEID,
 * ClusterStaticEntry, ClusterFederatedTrustDomain, group spire.spiffe.io/v1alpha1) → the entries and
 * federation relationships Wisp's admin API takes. No I/O: the runtime passes plain JSON objects.
 *
 * As upstream (pkg/spireentry): a pod's entry has the parent `spiffe://<td>/spire/agent/k8s_psat/<cluster>/<node
 * UID>`, the selector `k8s:pod-uid:<uid>` plus the rendered workloadSelectorTemplates, DNS names from
 * dnsNameTemplates then (autoPopulateDNSNames) the sorted names of the Services targeting the pod. Every
 * rendered value passes Wisp's entry rules (`validateEntryInput`), so a template that renders `<no value>`
 * or a foreign trust domain fails with a clear error and produces no entry.
 * @module
 */
import { psatAgentId } from '../shared/attestation/k8s-psat.js';
import { WispError, type WispErrorData } from '../shared/errors.js';
import { parseRelationshipInput, type RelationshipInput } from '../shared/federation/relationship.js';
import { ENTRY_JWT_SVID_TTL_MAX_SECONDS, ENTRY_X509_SVID_TTL_MAX_SECONDS, validateEntryInput } from '../shared/registry/entry-validation.js';
import { parseSelectorString, selectorSetKey, type Selector } from '../shared/registry/selectors.js';
import { err, ok, type Result } from '../shared/result.js';
import { dnsNameProblem } from '../shared/spiffe/dns-name.js';
import { parseTrustDomain, type TrustDomain } from '../shared/spiffe/id.js';
import { parseGoDurationSeconds } from './go-duration.js';
import { PARENT_TEMPLATE_DATA_TYPE, TEMPLATE_DATA_TYPE, templateData, type KubeNamespace, type KubeNode, type KubePod } from './kube.js';
import { compileLabelSelector, type CompiledLabelSelector } from './label-selector.js';
import { parseTemplate, type Template } from './template.js';

export type { KubeNamespace, KubeNode, KubePod } from './kube.js';
export type { Template } from './template.js';

export interface RenderContext {
  trustDomain: string;
  clusterName: string;
  clusterDomain: string;
  /** upstream's `parentIDTemplate` (compileParentIdTemplate); absent: the node's k8s_psat agent ID */
  parentIdTemplate?: Template;
}

export interface DesiredEntry {
  spiffeId: string;
  parentId: string;
  selectors: { type: string; value: string }[];
  dnsNames: string[];
  federatesWith: string[];
  x509SvidTtl: number;
  jwtSvidTtl: number;
  admin: boolean;
  downstream: boolean;
  hint: string;
}

/** A validated ClusterSPIFFEID spec with its templates parsed and selectors compiled. */
export interface CompiledClusterSpiffeId {
  spiffeIdTemplate: Template;
  podSelector: CompiledLabelSelector;
  namespaceSelector: CompiledLabelSelector;
  workloadSelectorTemplates: Template[];
  dnsNameTemplates: Template[];
  autoPopulateDnsNames: boolean;
  x509SvidTtl: number;
  jwtSvidTtl: number;
  federatesWith: string[];
  admin: boolean;
  downstream: boolean;
  hint: string;
  /** '' = classless */
  className: string;
  /** applies only to pods no non-fallback ClusterSPIFFEID applied to (the runtime orders them) */
  fallback: boolean;
}

/** Wisp's federation relationship input: the JSON body of POST /admin/v1/federation. */
export type FederationRelationshipInput = RelationshipInput;

/** A failure to render, thrown inside this module and returned as a Result (ERR_BAD_REQUEST unless given). */
class RenderError extends Error {
  constructor(
    message: string,
    readonly code: WispErrorData['code'] = 'ERR_BAD_REQUEST',
  ) {
    super(message);
  }
}

function attempt<T>(f: () => T): Result<T> {
  try {
    return ok(f());
  } catch (e) {
    if (e instanceof RenderError) return err({ code: e.code, message: e.message });
    if (e instanceof WispError) return err(e.toData());
    throw e;
  }
}

function value<T>(r: Result<T>, prefix = ''): T {
  if (!r.ok) throw new RenderError(prefix + r.error.message, r.error.code);
  return r.value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function specObject(spec: unknown, kind: string, fields: readonly string[]): Record<string, unknown> {
  if (!isObject(spec)) throw new RenderError(`${kind} spec must be an object`);
  for (const key of Object.keys(spec)) if (!fields.includes(key)) throw new RenderError(`${kind} spec has an unknown field "${key}"`);
  return spec;
}

function str(o: Record<string, unknown>, field: string): string {
  const v = o[field] ?? '';
  if (typeof v !== 'string') throw new RenderError(`${field} must be a string`);
  return v;
}

function bool(o: Record<string, unknown>, field: string): boolean {
  const v = o[field] ?? false;
  if (typeof v !== 'boolean') throw new RenderError(`${field} must be a boolean`);
  return v;
}

function strings(o: Record<string, unknown>, field: string): string[] {
  const v = o[field] ?? [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new RenderError(`${field} must be a list of strings`);
  return v as string[];
}

function ttl(o: Record<string, unknown>, field: string, max: number): number {
  const v = o[field];
  if (v === undefined || v === null || v === '') return 0;
  const seconds = typeof v === 'string' ? parseGoDurationSeconds(v) : undefined;
  if (seconds === undefined) throw new RenderError(`${field}: "${String(v)}" is not a Go duration (e.g. "1h", "90m", "3600s")`);
  if (seconds > max) throw new RenderError(`${field}: ${v} is longer than Wisp's limit of ${max} seconds`);
  return seconds;
}

function federatesWith(o: Record<string, unknown>): string[] {
  return strings(o, 'federatesWith').map((name) => {
    try {
      return parseTrustDomain(name);
    } catch (e) {
      throw new RenderError(`invalid federatesWith value "${name}": ${(e as Error).message}`);
    }
  });
}

const CLUSTER_SPIFFE_ID_FIELDS = ['spiffeIDTemplate', 'podSelector', 'namespaceSelector', 'workloadSelectorTemplates', 'dnsNameTemplates', 'autoPopulateDNSNames', 'ttl', 'jwtTtl', 'federatesWith', 'admin', 'downstream', 'hint', 'className', 'fallback'] as const;

/**
 * Validates a ClusterSPIFFEID's spec; the error is one line for the resource's status.
 * @example compileClusterSpiffeId({ spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}' })
 */
export function compileClusterSpiffeId(spec: unknown): Result<CompiledClusterSpiffeId> {
  return attempt(() => {
    const o = specObject(spec, 'ClusterSPIFFEID', CLUSTER_SPIFFE_ID_FIELDS);
    const source = str(o, 'spiffeIDTemplate');
    if (source === '') throw new RenderError('spiffeIDTemplate is required');
    const templates = (field: string) => strings(o, field).map((t, i) => value(parseTemplate(`${field}[${i}]`, t)));
    return {
      spiffeIdTemplate: value(parseTemplate('spiffeIDTemplate', source)),
      podSelector: value(compileLabelSelector(o.podSelector, 'podSelector')),
      namespaceSelector: value(compileLabelSelector(o.namespaceSelector, 'namespaceSelector')),
      workloadSelectorTemplates: templates('workloadSelectorTemplates'),
      dnsNameTemplates: templates('dnsNameTemplates'),
      autoPopulateDnsNames: bool(o, 'autoPopulateDNSNames'),
      x509SvidTtl: ttl(o, 'ttl', ENTRY_X509_SVID_TTL_MAX_SECONDS),
      jwtSvidTtl: ttl(o, 'jwtTtl', ENTRY_JWT_SVID_TTL_MAX_SECONDS),
      federatesWith: federatesWith(o),
      admin: bool(o, 'admin'),
      downstream: bool(o, 'downstream'),
      hint: str(o, 'hint'),
      className: str(o, 'className'),
      fallback: bool(o, 'fallback'),
    };
  });
}

/** Whether the pod (in that namespace) is selected: namespaceSelector on the namespace's labels, podSelector on the pod's. */
export function selectsPod(c: CompiledClusterSpiffeId, pod: KubePod, namespace: KubeNamespace): boolean {
  if (pod.metadata.namespace !== undefined && pod.metadata.namespace !== namespace.metadata.name) return false;
  return c.namespaceSelector.matches(namespace.metadata.labels) && c.podSelector.matches(pod.metadata.labels);
}

/** Upstream's names for the Services (Endpoints) that target a pod: <svc>, <svc>.<ns>, <svc>.<ns>.svc[, .<clusterDomain>], sorted. */
export function serviceDnsNames(services: readonly { name: string; namespace: string }[], clusterDomain: string): string[] {
  return services
    .flatMap(({ name, namespace }) => {
      const names = [name, `${name}.${namespace}`, `${name}.${namespace}.svc`];
      return clusterDomain === '' ? names : [...names, `${name}.${namespace}.svc.${clusterDomain}`];
    })
    .sort();
}

function trustDomainOfContext(ctx: Pick<RenderContext, 'trustDomain'>): TrustDomain {
  try {
    return parseTrustDomain(ctx.trustDomain);
  } catch (e) {
    throw new RenderError(`the controller's trustDomain: ${(e as Error).message}`, 'ERR_CONFIG_INVALID');
  }
}

/** The node's k8s_psat agent ID, the parent of its pods' entries (the one rule in shared/attestation/k8s-psat.ts). */
function nodeAgentId(td: TrustDomain, cluster: string, node: KubeNode): string {
  const nodeUid = node.metadata.uid;
  if (!nodeUid) throw new RenderError(`node "${node.metadata.name ?? ''}" has no uid`);
  const identity = { namespace: '', serviceAccount: '', podName: '', podUid: '', nodeName: node.metadata.name ?? '', nodeUid };
  try {
    return psatAgentId(td, cluster, identity, { serviceAccountAllowList: [], allowedNodeLabelKeys: [], allowedPodLabelKeys: [], usePodUidForAgentId: false });
  } catch (e) {
    throw new RenderError(`parent ID for node "${node.metadata.name ?? ''}" (cluster "${cluster}"): ${(e as Error).message}`);
  }
}

/** Checks the assembled entry with Wisp's entry rules, the same the admin API applies. */
function checked(entry: DesiredEntry, td: TrustDomain, what: string): DesiredEntry {
  const r = validateEntryInput(toEntryInput(entry), td);
  if (!r.ok) throw new RenderError(`${what}: ${r.error.message}`, r.error.code);
  return { ...entry, selectors: r.value.selectors };
}

function render(t: Template, data: unknown): string {
  return value(t.execute(TEMPLATE_DATA_TYPE, data));
}

/** The entry for one selected pod on its node (see the module comment for what upstream puts in it). */
export function renderPodEntry(
  c: CompiledClusterSpiffeId,
  input: { pod: KubePod; node: KubeNode; namespace: KubeNamespace; serviceNames?: { name: string; namespace: string }[] },
  ctx: RenderContext,
): Result<DesiredEntry> {
  return attempt(() => {
    const { pod, node } = input;
    const what = `pod "${pod.metadata.namespace ?? ''}/${pod.metadata.name ?? ''}"`;
    const td = trustDomainOfContext(ctx);
    if (!pod.metadata.uid) throw new RenderError(`${what} has no uid`);
    if (pod.spec?.nodeName !== node.metadata.name) throw new RenderError(`${what} is not scheduled on node "${node.metadata.name ?? ''}"`);
    const parentId = ctx.parentIdTemplate ? value(ctx.parentIdTemplate.execute(PARENT_TEMPLATE_DATA_TYPE, templateData(ctx, undefined, node))) : nodeAgentId(td, ctx.clusterName, node);
    const data = templateData(ctx, pod, node);
    const spiffeId = render(c.spiffeIdTemplate, data);
    const selectors: Selector[] = [{ type: 'k8s', value: `pod-uid:${pod.metadata.uid}` }];
    for (const t of c.workloadSelectorTemplates) {
      const rendered = render(t, data);
      try {
        selectors.push(parseSelectorString(rendered));
      } catch (e) {
        throw new RenderError(`${what}: ${t.name} rendered an invalid selector "${rendered}": ${(e as Error).message}`, 'ERR_SELECTOR_INVALID');
      }
    }
    const dnsNames = new Set<string>();
    for (const t of c.dnsNameTemplates) {
      const rendered = render(t, data);
      const problem = dnsNameProblem(rendered);
      if (problem) throw new RenderError(`${what}: ${t.name} rendered an invalid DNS name: ${problem}`, 'ERR_ENTRY_INVALID');
      dnsNames.add(rendered);
    }
    if (c.autoPopulateDnsNames) for (const name of serviceDnsNames(input.serviceNames ?? [], ctx.clusterDomain)) dnsNames.add(name);
    const entry: DesiredEntry = {
      spiffeId,
      parentId,
      selectors,
      dnsNames: [...dnsNames],
      federatesWith: [...c.federatesWith],
      x509SvidTtl: c.x509SvidTtl,
      jwtSvidTtl: c.jwtSvidTtl,
      admin: c.admin,
      downstream: c.downstream,
      hint: c.hint,
    };
    return checked(entry, td, `${what}: the rendered entry (spiffeID "${spiffeId}")`);
  });
}

const STATIC_ENTRY_FIELDS = ['spiffeID', 'parentID', 'selectors', 'federatesWith', 'x509SVIDTTL', 'jwtSVIDTTL', 'dnsNames', 'hint', 'admin', 'downstream', 'storeSVID', 'className'] as const;

/** ClusterStaticEntry spec → entry (spiffeID, parentID, "type:value" selectors, Go-duration TTLs, ...). */
export function renderStaticEntry(spec: unknown, ctx: RenderContext): Result<DesiredEntry> {
  return attempt(() => {
    const o = specObject(spec, 'ClusterStaticEntry', STATIC_ENTRY_FIELDS);
    const td = trustDomainOfContext(ctx);
    if (bool(o, 'storeSVID')) throw new RenderError('storeSVID is not supported: Wisp has no SVIDStore plugins');
    const selectors = strings(o, 'selectors').map((s) => {
      try {
        return parseSelectorString(s);
      } catch (e) {
        throw new RenderError(`selectors: ${(e as Error).message}`, 'ERR_SELECTOR_INVALID');
      }
    });
    const entry: DesiredEntry = {
      spiffeId: str(o, 'spiffeID'),
      parentId: str(o, 'parentID'),
      selectors,
      dnsNames: strings(o, 'dnsNames'),
      federatesWith: federatesWith(o),
      x509SvidTtl: ttl(o, 'x509SVIDTTL', ENTRY_X509_SVID_TTL_MAX_SECONDS),
      jwtSvidTtl: ttl(o, 'jwtSVIDTTL', ENTRY_JWT_SVID_TTL_MAX_SECONDS),
      admin: bool(o, 'admin'),
      downstream: bool(o, 'downstream'),
      hint: str(o, 'hint'),
    };
    return checked(entry, td, 'ClusterStaticEntry');
  });
}

const FEDERATED_TRUST_DOMAIN_FIELDS = ['trustDomain', 'bundleEndpointURL', 'bundleEndpointProfile', 'trustDomainBundle', 'className'] as const;

/**
 * ClusterFederatedTrustDomain spec → the admin API's relationship body, checked by the admin API's own rule
 * (`parseRelationshipInput`; `ctx.trustDomain` is ours, a relationship with it is refused).
 */
export function renderFederationRelationship(spec: unknown, ctx: Pick<RenderContext, 'trustDomain'>): Result<FederationRelationshipInput> {
  return attempt(() => {
    const o = specObject(spec, 'ClusterFederatedTrustDomain', FEDERATED_TRUST_DOMAIN_FIELDS);
    const td = trustDomainOfContext(ctx);
    const profile = o.bundleEndpointProfile;
    if (!isObject(profile)) throw new RenderError('bundleEndpointProfile is required: {type: https_web | https_spiffe, endpointSPIFFEID}');
    for (const key of Object.keys(profile)) {
      if (key !== 'type' && key !== 'endpointSPIFFEID') throw new RenderError(`bundleEndpointProfile has an unknown field "${key}"`);
    }
    if (profile.type !== 'https_web' && profile.type !== 'https_spiffe') throw new RenderError('bundleEndpointProfile.type must be https_web or https_spiffe');
    const body: Record<string, unknown> = { trustDomain: o.trustDomain, bundleEndpointUrl: o.bundleEndpointURL, bundleEndpointProfile: profile.type };
    if (profile.type === 'https_spiffe') body.endpointSpiffeId = profile.endpointSPIFFEID;
    else if (profile.endpointSPIFFEID !== undefined && profile.endpointSPIFFEID !== '') throw new RenderError('endpointSPIFFEID is only for the https_spiffe profile');
    const bundle = str(o, 'trustDomainBundle');
    if (bundle !== '') body.trustDomainBundle = bundle;
    return parseRelationshipInput(body, td);
  });
}

/** Parses upstream's `parentIDTemplate` config value (the same template language; it sees no pod). */
export function compileParentIdTemplate(source: string): Result<Template> {
  return parseTemplate('parentIDTemplate', source);
}

/** The class a resource's spec names ('' = classless), for the runtime's className / watchClassless filter. */
export function specClassName(spec: unknown): string {
  return isObject(spec) && typeof spec.className === 'string' ? spec.className : '';
}

/** The admin API's create/update body for an entry (POST /admin/v1/entries); `id` optional, caller-chosen. */
export function toEntryInput(e: DesiredEntry, id?: string): Record<string, unknown> {
  return {
    ...(id === undefined ? {} : { id }),
    spiffeId: e.spiffeId,
    parentId: e.parentId,
    selectors: e.selectors.map(({ type, value }) => ({ type, value })),
    x509SvidTtl: e.x509SvidTtl,
    jwtSvidTtl: e.jwtSvidTtl,
    dnsNames: [...e.dnsNames],
    federatesWith: [...e.federatesWith],
    admin: e.admin,
    downstream: e.downstream,
    hint: e.hint,
  };
}

/** Stable key for diffing desired and existing entries: SPIFFE ID, parent ID and the sorted selector set. */
export function entryKey(e: Pick<DesiredEntry, 'spiffeId' | 'parentId' | 'selectors'>): string {
  return JSON.stringify([e.spiffeId, e.parentId, selectorSetKey(e.selectors)]);
}

const sameList = (a: readonly string[], b: readonly string[]) => JSON.stringify(a) === JSON.stringify(b);

/** Same key and same mutable fields (DNS names in order, as an SVID lists them; federatesWith as a set). */
export function sameEntry(a: DesiredEntry, b: DesiredEntry): boolean {
  return (
    entryKey(a) === entryKey(b) &&
    sameList(a.dnsNames, b.dnsNames) &&
    sameList([...a.federatesWith].sort(), [...b.federatesWith].sort()) &&
    a.x509SvidTtl === b.x509SvidTtl &&
    a.jwtSvidTtl === b.jwtSvidTtl &&
    a.admin === b.admin &&
    a.downstream === b.downstream &&
    a.hint === b.hint
  );
}
