// The controller's reconcile diff against the real issuer in process (admin API, D1): what is created,
// updated in place, deleted and left alone, the masking of duplicates, the stats, and that nothing is
// written while not leading. Kubernetes is plain objects here (the testbed test covers the API server).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseControllerConfig, type ControllerConfig } from '../../src/controller/config.js';
import { FEDERATION_FINALIZER, FEDERATION_TRUST_DOMAIN_ANNOTATION, reconcileFederation, type MetadataWriter } from '../../src/controller/federation-reconciler.js';
import { reconcileEntries, type ClusterState, type KubeResource, type StatusWriter } from '../../src/controller/reconciler.js';
import { createControllerAdminClient, createRegistry, type Registry } from '../../src/controller/registry.js';
import type { Entry } from '../../src/shared/registry/entry.js';
import { startInProcessIssuer, type InProcessIssuer } from '../helpers/node/in-process-issuer.js';

const TD = 'example.org';
const log = pino({ level: 'silent' });
let issuer: InProcessIssuer;
let dir: string;
let registry: Registry;
let config: ControllerConfig;

const NODE = { metadata: { name: 'node-1', uid: 'node-uid-1' } };
const agentOf = (uid: string) => `spiffe://${TD}/spire/agent/k8s_psat/prod/${uid}`;
const ns = (name: string, labels: Record<string, string> = {}) => ({ metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } });
const pod = (name: string, namespace: string, labels: Record<string, string>, nodeName: string | null = 'node-1') => ({
  metadata: { name, namespace, uid: `uid-${name}`, labels },
  spec: { ...(nodeName ? { nodeName } : {}), serviceAccountName: 'sa-1', containers: [{ name: 'c', image: 'img' }] },
});
let uidSeq = 0;
const resource = (name: string, spec: Record<string, unknown>, createdSeconds: number): KubeResource => ({
  metadata: { name, uid: `r-${++uidSeq}`, creationTimestamp: new Date(createdSeconds * 1000).toISOString() },
  spec,
});
const clusterSpiffeId = (name: string, spec: Record<string, unknown>, created = 1000) =>
  resource(name, { spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}', ...spec }, created);

function statusRecorder(): StatusWriter & { writes: { name: string; status: Record<string, unknown> }[] } {
  const writes: { name: string; status: Record<string, unknown> }[] = [];
  return {
    writes,
    async writeStatus(_plural, r, status) {
      writes.push({ name: r.metadata.name ?? '', status });
      r.status = structuredClone(status); // what the API server now holds
    },
  };
}

function state(over: Partial<ClusterState>): ClusterState {
  return { clusterSPIFFEIDs: [], clusterStaticEntries: [], pods: [], nodes: [NODE], namespaces: [], endpointSlices: [], ...over };
}

const ownEntries = async () => (await registry.listEntries()).filter((e) => e.id.startsWith(config.entryIDPrefix));
const byPod = (entries: Entry[], podName: string) => entries.find((e) => e.selectors.some((s) => s.value === `pod-uid:uid-${podName}`));
const writesSeen = () => issuer.transport.calls.filter((c) => c.method !== 'GET').length;

beforeAll(async () => {
  issuer = await startInProcessIssuer({ trustDomain: TD });
  dir = mkdtempSync(join(tmpdir(), 'wisp-cm-rec-'));
  writeFileSync(join(dir, 'token'), issuer.adminToken);
  config = parseControllerConfig({ clusterName: 'prod', trustDomain: TD, serverURL: issuer.url, adminTokenFile: join(dir, 'token') }, 'spire').config;
  registry = createRegistry(createControllerAdminClient(config.serverUrl, config.credential, 10));
});
afterAll(async () => {
  await issuer?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  const all = await registry.listEntries();
  if (all.length > 0) await registry.deleteEntries(all.map((e) => e.id));
  issuer.transport.calls.length = 0;
});

describe('entry reconcile', () => {
  it('creates the selected pods\' entries under the node\'s agent, skips unscheduled pods, nodes without a UID and ignored namespaces, and keeps still', async () => {
    const web = clusterSpiffeId('web', { podSelector: { matchLabels: { app: 'web' } }, workloadSelectorTemplates: ['k8s:ns:{{ .PodMeta.Namespace }}'] });
    const s = state({
      clusterSPIFFEIDs: [web],
      namespaces: [ns('shop'), ns('kube-system')],
      nodes: [NODE, { metadata: { name: 'node-2' } }],
      pods: [pod('a', 'shop', { app: 'web' }), pod('b', 'shop', { app: 'web' }), pod('pending', 'shop', { app: 'web' }, null), pod('new-node', 'shop', { app: 'web' }, 'node-2'), pod('other', 'shop', { app: 'db' }), pod('sys', 'kube-system', { app: 'web' })],
    });
    const statuses = statusRecorder();
    const r = await reconcileEntries(s, { registry, statuses, isLeading: () => true, log }, config);
    expect(r).toMatchObject({ created: 2, updated: 0, deleted: 0, failures: 0, complete: true });
    const entries = await ownEntries();
    expect(entries).toHaveLength(2);
    const a = byPod(entries, 'a')!;
    expect(a).toMatchObject({ spiffeId: `spiffe://${TD}/ns/shop/sa/sa-1`, parentId: agentOf('node-uid-1') });
    expect(a.selectors.map((x) => `${x.type}:${x.value}`).sort()).toEqual(['k8s:ns:shop', 'k8s:pod-uid:uid-a']);
    expect(a.id).toMatch(/^prod\.[0-9a-f-]{36}$/);
    expect(statuses.writes).toEqual([{ name: 'web', status: { stats: { namespacesSelected: 2, namespacesIgnored: 1, podsSelected: 4, podEntryRenderFailures: 0, entriesToSet: 2, entriesMasked: 0, entryFailures: 0 } } }]);

    // nothing changed: no write to the issuer, no status write
    issuer.transport.calls.length = 0;
    const again = await reconcileEntries(s, { registry, statuses, isLeading: () => true, log }, config);
    expect(again).toMatchObject({ created: 0, updated: 0, deleted: 0, statusesWritten: 0 });
    expect(writesSeen()).toBe(0);
  });

  it('updates an entry in place when a field changes, deletes the entries nobody declares, and never touches entries it does not own', async () => {
    const handMade = (await issuer.admin<{ entry: Entry }>('POST', '/entries', { spiffeId: `spiffe://${TD}/by-hand`, parentId: agentOf('node-uid-1'), selectors: [{ type: 'k8s', value: 'pod-uid:uid-a' }] })).entry;
    const otherPrefix = (await issuer.admin<{ entry: Entry }>('POST', '/entries', { id: 'other-cluster.1', spiffeId: `spiffe://${TD}/ns/shop/sa/sa-1`, parentId: agentOf('node-uid-9'), selectors: [{ type: 'k8s', value: 'pod-uid:uid-z' }] })).entry;
    const web = clusterSpiffeId('web', { podSelector: { matchLabels: { app: 'web' } } });
    const pods = [pod('a', 'shop', { app: 'web' }), pod('b', 'shop', { app: 'web' })];
    const deps = { registry, statuses: statusRecorder(), isLeading: () => true, log };
    await reconcileEntries(state({ clusterSPIFFEIDs: [web], namespaces: [ns('shop')], pods }), deps, config);
    const before = byPod(await ownEntries(), 'a')!;

    const changed = clusterSpiffeId('web', { podSelector: { matchLabels: { app: 'web' } }, dnsNameTemplates: ['{{ .PodMeta.Name }}.shop.svc'], ttl: '1h' });
    const r = await reconcileEntries(state({ clusterSPIFFEIDs: [changed], namespaces: [ns('shop')], pods: [pods[0]!] }), deps, config);
    expect(r).toMatchObject({ created: 0, updated: 1, deleted: 1 });
    const after = await ownEntries();
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ id: before.id, dnsNames: ['a.shop.svc'], x509SvidTtl: 3600 });
    expect(after[0]!.revisionNumber).toBeGreaterThan(before.revisionNumber);

    // every resource gone: our entries go, the others stay exactly as they were
    await reconcileEntries(state({}), deps, config);
    const left = await registry.listEntries();
    expect(left.sort((x, y) => x.id.localeCompare(y.id))).toEqual([handMade, otherPrefix].sort((x, y) => x.id.localeCompare(y.id)));
  });

  it('gives two ClusterSPIFFEIDs declaring the same entry one entry: the older one sets it, the newer counts it masked', async () => {
    const spec = { podSelector: { matchLabels: { app: 'web' } } };
    const older = clusterSpiffeId('older', spec, 1000);
    const newer = clusterSpiffeId('newer', { ...spec, hint: 'newer' }, 2000);
    const statuses = statusRecorder();
    await reconcileEntries(state({ clusterSPIFFEIDs: [newer, older], namespaces: [ns('shop')], pods: [pod('a', 'shop', { app: 'web' })] }), { registry, statuses, isLeading: () => true, log }, config);
    const entries = await ownEntries();
    expect(entries).toHaveLength(1);
    expect(entries[0]!.hint).toBe('');
    const stats = Object.fromEntries(statuses.writes.map((w) => [w.name, w.status.stats]));
    expect(stats.older).toMatchObject({ entriesToSet: 1, entriesMasked: 0 });
    expect(stats.newer).toMatchObject({ entriesToSet: 0, entriesMasked: 1 });
  });

  it('applies a fallback ClusterSPIFFEID only to pods no other one applied to', async () => {
    const main = clusterSpiffeId('main', { podSelector: { matchLabels: { app: 'web' } } });
    const fallback = clusterSpiffeId('fallback', { fallback: true, spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/fallback/{{ .PodMeta.Name }}' });
    await reconcileEntries(state({ clusterSPIFFEIDs: [fallback, main], namespaces: [ns('shop')], pods: [pod('a', 'shop', { app: 'web' }), pod('b', 'shop', { app: 'db' })] }), { registry, statuses: statusRecorder(), isLeading: () => true, log }, config);
    const ids = (await ownEntries()).map((e) => e.spiffeId).sort();
    expect(ids).toEqual([`spiffe://${TD}/fallback/b`, `spiffe://${TD}/ns/shop/sa/sa-1`]);
  });

  it('counts render failures and refused writes on the status, and reports ClusterStaticEntry rendered / set / masked', async () => {
    // the issuer refuses an entry identical to a hand-made one (ERR_ENTRY_EXISTS): an entry failure
    await issuer.admin('POST', '/entries', { spiffeId: `spiffe://${TD}/ns/shop/sa/sa-1`, parentId: agentOf('node-uid-1'), selectors: [{ type: 'k8s', value: 'pod-uid:uid-a' }] });
    const web = clusterSpiffeId('web', { podSelector: { matchLabels: { app: 'web' } }, dnsNameTemplates: ['{{ index .PodMeta.Labels "host" }}'] });
    const staticOk = resource('static', { spiffeID: `spiffe://${TD}/static`, parentID: `spiffe://${TD}/spire/server`, selectors: ['k8s_psat:cluster:prod'] }, 1000);
    const staticDup = resource('static-dup', { spiffeID: `spiffe://${TD}/static`, parentID: `spiffe://${TD}/spire/server`, selectors: ['k8s_psat:cluster:prod'] }, 2000);
    const staticBad = resource('static-bad', { spiffeID: 'spiffe://elsewhere.org/x', parentID: `spiffe://${TD}/spire/server`, selectors: ['k8s_psat:cluster:prod'] }, 1000);
    const statuses = statusRecorder();
    const problems: string[] = [];
    const r = await reconcileEntries(
      state({ clusterSPIFFEIDs: [web], clusterStaticEntries: [staticOk, staticDup, staticBad], namespaces: [ns('shop')], pods: [pod('a', 'shop', { app: 'web', host: 'a.example' }), pod('b', 'shop', { app: 'web', host: 'not a name' })] }),
      { registry, statuses, isLeading: () => true, log, problems: { warn: (kind, res, reason, message) => problems.push(`${kind} ${res.metadata.name} ${reason}: ${message}`) } },
      config,
    );
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['ClusterSPIFFEID web EntryRenderFailed', 'ClusterSPIFFEID web EntryWriteFailed', 'ClusterStaticEntry static-bad InvalidSpec']);
    expect(problems.find((p) => p.includes('EntryWriteFailed'))).toMatch(/ERR_ENTRY_EXISTS/);
    expect(r).toMatchObject({ created: 1, failures: 1 });
    const status = Object.fromEntries(statuses.writes.map((w) => [w.name, w.status]));
    expect(status.web).toEqual({ stats: { namespacesSelected: 1, namespacesIgnored: 0, podsSelected: 2, podEntryRenderFailures: 1, entriesToSet: 1, entriesMasked: 0, entryFailures: 1 } });
    expect(status.static).toEqual({ rendered: true, masked: false, set: true });
    expect(status['static-dup']).toEqual({ rendered: true, masked: true, set: false });
    expect(status['static-bad']).toEqual({ rendered: false, masked: false, set: false });
  });

  it('takes the parent ID from upstream\'s parentIDTemplate when the config has one', async () => {
    const withTemplate = parseControllerConfig({ clusterName: 'prod', trustDomain: TD, serverURL: issuer.url, adminTokenFile: join(dir, 'token'), parentIDTemplate: 'spiffe://{{ .TrustDomain }}/k8s-node/{{ .NodeMeta.Name }}' }, 'spire').config;
    await reconcileEntries(state({ clusterSPIFFEIDs: [clusterSpiffeId('web', {})], namespaces: [ns('shop')], pods: [pod('a', 'shop', {})] }), { registry, statuses: statusRecorder(), isLeading: () => true, log }, withTemplate);
    expect((await ownEntries()).map((e) => e.parentId)).toEqual([`spiffe://${TD}/k8s-node/node-1`]);
  });

  it('autoPopulateDNSNames: the Services whose EndpointSlices target the pod', async () => {
    const slice = (service: string, namespace: string, uids: string[]) => ({ metadata: { name: `${service}-x1`, namespace, labels: { 'kubernetes.io/service-name': service } }, endpoints: uids.map((uid) => ({ targetRef: { kind: 'Pod', uid } })) });
    const web = clusterSpiffeId('web', { autoPopulateDNSNames: true, dnsNameTemplates: ['{{ .PodMeta.Name }}.example'] });
    await reconcileEntries(
      state({ clusterSPIFFEIDs: [web], namespaces: [ns('shop')], pods: [pod('a', 'shop', {}), pod('b', 'shop', {})], endpointSlices: [slice('api', 'shop', ['uid-a']), slice('api', 'shop', ['uid-a']), slice('other', 'shop', ['uid-b'])] }),
      { registry, statuses: statusRecorder(), isLeading: () => true, log },
      config,
    );
    const entries = await ownEntries();
    expect(byPod(entries, 'a')!.dnsNames).toEqual(['a.example', 'api', 'api.shop', 'api.shop.svc', 'api.shop.svc.cluster.local']);
    expect(byPod(entries, 'b')!.dnsNames).toEqual(['b.example', 'other', 'other.shop', 'other.shop.svc', 'other.shop.svc.cluster.local']);
  });

  it('stops between batches the moment leadership ends', async () => {
    const pods = Array.from({ length: 600 }, (_, i) => pod(`p${i}`, 'shop', {}));
    let checks = 0;
    const statuses = statusRecorder();
    // leading for the check before the creates and the first batch's; lost before the second batch
    const r = await reconcileEntries(state({ clusterSPIFFEIDs: [clusterSpiffeId('web', {})], namespaces: [ns('shop')], pods }), { registry, statuses, isLeading: () => ++checks <= 2, log }, config);
    expect(r).toMatchObject({ created: 500, complete: false, statusesWritten: 0 });
    expect((await ownEntries()).length).toBe(500);
    expect(issuer.transport.calls.filter((c) => c.path.endsWith('/batch-create'))).toHaveLength(1);
  });

  it('writes nothing while not leading', async () => {
    const web = clusterSpiffeId('web', { podSelector: {} });
    const statuses = statusRecorder();
    const r = await reconcileEntries(state({ clusterSPIFFEIDs: [web], namespaces: [ns('shop')], pods: [pod('a', 'shop', {})] }), { registry, statuses, isLeading: () => false, log }, config);
    expect(r.complete).toBe(false);
    expect(writesSeen()).toBe(0);
    expect(statuses.writes).toEqual([]);
  });
});

describe('federation reconcile', () => {
  function metadataRecorder(): MetadataWriter & { writes: string[] } {
    const writes: string[] = [];
    return {
      writes,
      async writeOwnership(r, finalizers, annotations) {
        writes.push(`${r.metadata.name}:${finalizers.join(',')}:${annotations[FEDERATION_TRUST_DOMAIN_ANNOTATION] ?? ''}`);
        r.metadata = { ...r.metadata, finalizers, annotations };
      },
    };
  }
  const cftd = (name: string, trustDomain: string, url = 'https://partner.example/bundle') =>
    resource(name, { trustDomain, bundleEndpointURL: url, bundleEndpointProfile: { type: 'https_web' } }, 1000);
  const relationships = async () => (await registry.listRelationships()).map((r) => `${r.trustDomain} ${r.bundleEndpointUrl}`).sort();

  it('records ownership before writing, follows changes, deletes only what it owns, then lets the deletion finish', async () => {
    await issuer.admin('POST', '/federation', { trustDomain: 'by-hand.test', bundleEndpointUrl: 'https://by-hand.example/bundle' });
    const metadata = metadataRecorder();
    const deps = { registry, metadata, isLeading: () => true, log };
    const partner = cftd('partner', 'partner.test');
    await reconcileFederation([partner], deps, config);
    expect(metadata.writes).toEqual([`partner:${FEDERATION_FINALIZER}:partner.test`]);
    expect(await relationships()).toEqual(['by-hand.test https://by-hand.example/bundle', 'partner.test https://partner.example/bundle']);

    // unchanged: no write
    issuer.transport.calls.length = 0;
    await reconcileFederation([partner], deps, config);
    expect(writesSeen()).toBe(0);

    // a new URL updates; a new trust domain moves the relationship
    partner.spec = { ...(partner.spec as object), bundleEndpointURL: 'https://partner.example/v2' };
    await reconcileFederation([partner], deps, config);
    expect(await relationships()).toContain('partner.test https://partner.example/v2');
    partner.spec = { ...(partner.spec as object), trustDomain: 'partner2.test' };
    await reconcileFederation([partner], deps, config);
    expect(await relationships()).toEqual(['by-hand.test https://by-hand.example/bundle', 'partner2.test https://partner.example/v2']);

    // deleted (the finalizer holds it): the relationship goes, then the finalizer
    partner.metadata.deletionTimestamp = new Date().toISOString();
    await reconcileFederation([partner], deps, config);
    expect(await relationships()).toEqual(['by-hand.test https://by-hand.example/bundle']);
    expect(partner.metadata.finalizers).toEqual([]);
    expect(partner.metadata.annotations?.[FEDERATION_TRUST_DOMAIN_ANNOTATION]).toBeUndefined();
  });
});
