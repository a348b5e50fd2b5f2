import { describe, expect, it } from 'vitest';
import { parseGoDurationSeconds } from '../../../src/controller/go-duration.js';
import {
  compileClusterSpiffeId,
  compileParentIdTemplate,
  entryKey,
  renderFederationRelationship,
  renderPodEntry,
  renderStaticEntry,
  sameEntry,
  selectsPod,
  specClassName,
  toEntryInput,
  type CompiledClusterSpiffeId,
  type DesiredEntry,
  type KubeNamespace,
  type KubeNode,
  type KubePod,
  type RenderContext,
} from '../../../src/controller/render.js';
import { parseEntryInput } from '../../../src/shared/registry/entry-validation.js';
import { parseTrustDomain } from '../../../src/shared/spiffe/id.js';

// Specs below are the values of spire-controller-manager's documentation and demo (docs/clusterspiffeid-crd.md,
// docs/clusterfederatedtrustdomain-crd.md, demo/config/*.yaml), written out as the JSON the API server returns.

const ctx: RenderContext = { trustDomain: 'domain.test', clusterName: 'demo-cluster', clusterDomain: 'cluster.local' };
const node: KubeNode = { metadata: { name: 'node-a', uid: '5c2c7d1e-node-a' }, spec: { providerID: 'fake://node-a' } };
const agentOfNodeA = 'spiffe://domain.test/spire/agent/k8s_psat/demo-cluster/5c2c7d1e-node-a';

function ns(name: string, labels?: Record<string, string>): KubeNamespace {
  return { metadata: { name, uid: `ns-${name}`, ...(labels ? { labels } : {}) } };
}

function pod(name: string, namespace: string, opts: { labels?: Record<string, string>; sa?: string; nodeName?: string } = {}): KubePod {
  return {
    metadata: { name, namespace, uid: `uid-${name}`, ...(opts.labels ? { labels: opts.labels } : {}) },
    spec: { nodeName: opts.nodeName ?? 'node-a', serviceAccountName: opts.sa ?? 'default', containers: [{ name: 'app', image: 'app:1' }] },
  };
}

function compiled(spec: unknown): CompiledClusterSpiffeId {
  const r = compileClusterSpiffeId(spec);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

function entry(c: CompiledClusterSpiffeId, p: KubePod, namespace: KubeNamespace, extra: { serviceNames?: { name: string; namespace: string }[]; ctx?: RenderContext } = {}): DesiredEntry {
  const r = renderPodEntry(c, { pod: p, node, namespace, ...(extra.serviceNames ? { serviceNames: extra.serviceNames } : {}) }, extra.ctx ?? ctx);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

function renderFailure(c: CompiledClusterSpiffeId, p: KubePod, namespace: KubeNamespace, context = ctx) {
  const r = renderPodEntry(c, { pod: p, node, namespace }, context);
  if (r.ok) throw new Error(`rendered ${JSON.stringify(r.value)}`);
  return r.error;
}

const podEntry = (over: Partial<DesiredEntry>): DesiredEntry => ({
  spiffeId: '',
  parentId: agentOfNodeA,
  selectors: [],
  dnsNames: [],
  federatesWith: [],
  x509SvidTtl: 0,
  jwtSvidTtl: 0,
  admin: false,
  downstream: false,
  hint: '',
  ...over,
});

describe('the upstream ClusterSPIFFEID examples (docs/clusterspiffeid-crd.md)', () => {
  const istioStyle = 'spiffe://domain.test/ns/{{ .PodMeta.Namespace }}/sa/{{ .PodSpec.ServiceAccountName }}';

  it('1. an Istio-style ID for pods in namespaces labelled backend=true', () => {
    const c = compiled({ spiffeIDTemplate: istioStyle, namespaceSelector: { matchLabels: { backend: 'true' } } });
    const backend = ns('payments', { backend: 'true' });
    const api = pod('api-7d9f', 'payments', { sa: 'payments-api' });
    expect(selectsPod(c, api, backend)).toBe(true);
    expect(selectsPod(c, pod('web', 'frontend'), ns('frontend'))).toBe(false);
    expect(selectsPod(c, pod('web', 'frontend'), ns('frontend', { backend: 'false' }))).toBe(false);
    expect(entry(c, api, backend)).toEqual(
      podEntry({ spiffeId: 'spiffe://domain.test/ns/payments/sa/payments-api', selectors: [{ type: 'k8s', value: 'pod-uid:uid-api-7d9f' }] }),
    );
  });

  it('2. pods labelled banking=true federate with the "auditing" trust domain', () => {
    const c = compiled({ spiffeIDTemplate: istioStyle, podSelector: { matchLabels: { banking: 'true' } }, federatesWith: ['auditing'] });
    const bank = pod('ledger-0', 'bank', { labels: { banking: 'true' }, sa: 'ledger' });
    expect(selectsPod(c, bank, ns('bank'))).toBe(true);
    expect(selectsPod(c, pod('other', 'bank', { labels: { banking: 'no' } }), ns('bank'))).toBe(false);
    expect(entry(c, bank, ns('bank'))).toEqual(
      podEntry({ spiffeId: 'spiffe://domain.test/ns/bank/sa/ledger', selectors: [{ type: 'k8s', value: 'pod-uid:uid-ledger-0' }], federatesWith: ['auditing'] }),
    );
  });

  it('3. a DNS name from the pod name, namespace and cluster domain', () => {
    const c = compiled({ spiffeIDTemplate: istioStyle, dnsNameTemplates: ['{{ .PodMeta.Name }}.{{ .PodMeta.Namespace }}.{{ .ClusterDomain }}'] });
    const web = pod('web-1', 'shop', { sa: 'web' });
    expect(entry(c, web, ns('shop'))).toEqual(
      podEntry({ spiffeId: 'spiffe://domain.test/ns/shop/sa/web', selectors: [{ type: 'k8s', value: 'pod-uid:uid-web-1' }], dnsNames: ['web-1.shop.cluster.local'] }),
    );
    // with no cluster domain configured the name ends in "." and is refused, not issued
    expect(renderFailure(c, web, ns('shop'), { ...ctx, clusterDomain: '' })).toEqual({
      code: 'ERR_ENTRY_INVALID',
      message: 'pod "shop/web-1": dnsNameTemplates[0] rendered an invalid DNS name: DNS name "web-1.shop.": label "" is not a valid RFC 1123 label',
    });
  });

  it("the demo's greeter IDs (demo/config/greeter-*-id.yaml), each in its own cluster's trust domain", () => {
    const server = compiled({ spiffeIDTemplate: 'spiffe://cluster1.demo/greeter-server', podSelector: { matchLabels: { 'spire.spiffe.io/spiffeid': 'greeter-server' } }, federatesWith: ['cluster2.demo'] });
    const client = compiled({ spiffeIDTemplate: 'spiffe://cluster2.demo/greeter-client', podSelector: { matchLabels: { 'spire.spiffe.io/spiffeid': 'greeter-client' } }, federatesWith: ['cluster1.demo'] });
    const serverPod = pod('greeter-server-5b8f', 'default', { labels: { 'spire.spiffe.io/spiffeid': 'greeter-server' } });
    const clientPod = pod('greeter-client-6c9d', 'default', { labels: { 'spire.spiffe.io/spiffeid': 'greeter-client' } });
    const cluster1 = { trustDomain: 'cluster1.demo', clusterName: 'cluster1', clusterDomain: '' };
    const cluster2 = { trustDomain: 'cluster2.demo', clusterName: 'cluster2', clusterDomain: '' };
    expect(selectsPod(server, serverPod, ns('default'))).toBe(true);
    expect(selectsPod(server, clientPod, ns('default'))).toBe(false);
    expect(entry(server, serverPod, ns('default'), { ctx: cluster1 })).toEqual(
      podEntry({
        spiffeId: 'spiffe://cluster1.demo/greeter-server',
        parentId: 'spiffe://cluster1.demo/spire/agent/k8s_psat/cluster1/5c2c7d1e-node-a',
        selectors: [{ type: 'k8s', value: 'pod-uid:uid-greeter-server-5b8f' }],
        federatesWith: ['cluster2.demo'],
      }),
    );
    expect(entry(client, clientPod, ns('default'), { ctx: cluster2 }).parentId).toBe('spiffe://cluster2.demo/spire/agent/k8s_psat/cluster2/5c2c7d1e-node-a');
    // upstream refuses an ID outside the controller's trust domain; so do we
    expect(renderFailure(server, serverPod, ns('default'), cluster2)).toEqual({
      code: 'ERR_TRUST_DOMAIN_MISMATCH',
      message: 'pod "default/greeter-server-5b8f": the rendered entry (spiffeID "spiffe://cluster1.demo/greeter-server"): spiffeId "spiffe://cluster1.demo/greeter-server" is not a member of trust domain "cluster2.demo"',
    });
  });
});

describe('renderPodEntry', () => {
  it('workloadSelectorTemplates add to k8s:pod-uid (sorted); ttl, jwtTtl, admin, downstream and hint carry over', () => {
    const c = compiled({
      spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/{{ .ClusterName }}/{{ index .PodMeta.Labels "app" }}',
      workloadSelectorTemplates: ['k8s:sa:{{ .PodSpec.ServiceAccountName }}', 'k8s:ns:{{ .PodMeta.Namespace }}', 'k8s:node-name:{{ .NodeMeta.Name }}'],
      ttl: '1h30m',
      jwtTtl: '5m',
      admin: true,
      downstream: true,
      hint: 'internal',
    });
    expect(entry(c, pod('web-1', 'prod', { labels: { app: 'web' }, sa: 'web-sa' }), ns('prod'))).toEqual(
      podEntry({
        spiffeId: 'spiffe://domain.test/demo-cluster/web',
        selectors: [
          { type: 'k8s', value: 'node-name:node-a' },
          { type: 'k8s', value: 'ns:prod' },
          { type: 'k8s', value: 'pod-uid:uid-web-1' },
          { type: 'k8s', value: 'sa:web-sa' },
        ],
        x509SvidTtl: 5400,
        jwtSvidTtl: 300,
        admin: true,
        downstream: true,
        hint: 'internal',
      }),
    );
  });

  it('autoPopulateDNSNames: template names first, then the sorted Service names upstream derives, no duplicates', () => {
    const spec = { spiffeIDTemplate: 'spiffe://domain.test/web', dnsNameTemplates: ['web.prod.svc', 'web-1.example.com'] };
    const services = [
      { name: 'web', namespace: 'prod' },
      { name: 'api', namespace: 'prod' },
    ];
    const on = compiled({ ...spec, autoPopulateDNSNames: true });
    expect(entry(on, pod('web-1', 'prod'), ns('prod'), { serviceNames: services }).dnsNames).toEqual([
      'web.prod.svc',
      'web-1.example.com',
      'api',
      'api.prod',
      'api.prod.svc',
      'api.prod.svc.cluster.local',
      'web',
      'web.prod',
      'web.prod.svc.cluster.local',
    ]);
    expect(entry(on, pod('web-1', 'prod'), ns('prod'), { serviceNames: services.slice(0, 1), ctx: { ...ctx, clusterDomain: '' } }).dnsNames).toEqual([
      'web.prod.svc',
      'web-1.example.com',
      'web',
      'web.prod',
    ]);
    // without the flag the Services are not used
    expect(entry(compiled(spec), pod('web-1', 'prod'), ns('prod'), { serviceNames: services }).dnsNames).toEqual(['web.prod.svc', 'web-1.example.com']);
  });

  it('a missing label renders <no value> (by field) or "" (by index), and the entry is refused', () => {
    const byField = compiled({ spiffeIDTemplate: 'spiffe://domain.test/app/{{ .PodMeta.Labels.app }}' });
    expect(renderFailure(byField, pod('nolabel', 'prod'), ns('prod'))).toEqual({
      code: 'ERR_SPIFFE_ID_INVALID',
      message: 'pod "prod/nolabel": the rendered entry (spiffeID "spiffe://domain.test/app/<no value>"): path segment characters are limited to letters, numbers, dots, dashes, and underscores',
    });
    const byIndex = compiled({ spiffeIDTemplate: 'spiffe://domain.test/app/{{ index .PodMeta.Labels "app" }}' });
    expect(renderFailure(byIndex, pod('nolabel', 'prod'), ns('prod'))).toEqual({
      code: 'ERR_SPIFFE_ID_INVALID',
      message: 'pod "prod/nolabel": the rendered entry (spiffeID "spiffe://domain.test/app/"): path must not have a trailing slash',
    });
    const selector = compiled({ spiffeIDTemplate: 'spiffe://domain.test/x', workloadSelectorTemplates: ['{{ .PodMeta.Labels.sel }}'] });
    expect(renderFailure(selector, pod('nolabel', 'prod'), ns('prod'))).toEqual({
      code: 'ERR_SELECTOR_INVALID',
      message: 'pod "prod/nolabel": workloadSelectorTemplates[0] rendered an invalid selector "<no value>": selector "<no value>" must have the form type:value',
    });
  });

  it('refuses what Wisp refuses for any entry', () => {
    const reserved = compiled({ spiffeIDTemplate: 'spiffe://{{ .TrustDomain }}/spire/agent/x' });
    expect(renderFailure(reserved, pod('p', 'prod'), ns('prod')).message).toBe(
      'pod "prod/p": the rendered entry (spiffeID "spiffe://domain.test/spire/agent/x"): spiffeId must not be in the reserved /spire/ namespace',
    );
    const dup = compiled({ spiffeIDTemplate: 'spiffe://domain.test/x', workloadSelectorTemplates: ['k8s:pod-uid:{{ .PodMeta.UID }}'] });
    expect(renderFailure(dup, pod('p', 'prod'), ns('prod'))).toEqual({
      code: 'ERR_SELECTOR_INVALID',
      message: 'pod "prod/p": the rendered entry (spiffeID "spiffe://domain.test/x"): duplicate selector "k8s:pod-uid:uid-p"',
    });
    const c = compiled({ spiffeIDTemplate: 'spiffe://domain.test/x' });
    expect(renderFailure(c, { ...pod('p', 'prod'), metadata: { name: 'p', namespace: 'prod' } }, ns('prod')).message).toBe('pod "prod/p" has no uid');
    expect(renderFailure(c, pod('p', 'prod', { nodeName: 'node-b' }), ns('prod')).message).toBe('pod "prod/p" is not scheduled on node "node-a"');
    const r = renderPodEntry(c, { pod: pod('p', 'prod'), node: { metadata: { name: 'node-a' } }, namespace: ns('prod') }, ctx);
    expect(r).toEqual({ ok: false, error: { code: 'ERR_BAD_REQUEST', message: 'node "node-a" has no uid' } });
    const badCtx = renderPodEntry(c, { pod: pod('p', 'prod'), node, namespace: ns('prod') }, { ...ctx, trustDomain: 'Bad TD' });
    expect(badCtx.ok ? '' : badCtx.error.code).toBe('ERR_CONFIG_INVALID');
  });

  it('an execution error of a template is the entry error', () => {
    const c = compiled({ spiffeIDTemplate: 'spiffe://domain.test/{{ .PodSpec.NoSuchField }}' });
    expect(renderFailure(c, pod('p', 'prod'), ns('prod'))).toEqual({
      code: 'ERR_BAD_REQUEST',
      message: `template: spiffeIDTemplate:1:25: executing "spiffeIDTemplate" at <.PodSpec.NoSuchField>: can't evaluate field NoSuchField in type v1.PodSpec`,
    });
  });

  it("parentIDTemplate (upstream config): its default gives our parent; a custom one is used; it cannot read the pod", () => {
    const c = compiled({ spiffeIDTemplate: 'spiffe://domain.test/x' });
    const template = (source: string) => {
      const t = compileParentIdTemplate(source);
      if (!t.ok) throw new Error(t.error.message);
      return t.value;
    };
    const upstreamDefault = template('spiffe://{{ .TrustDomain }}/spire/agent/k8s_psat/{{ .ClusterName }}/{{ .NodeMeta.UID }}');
    expect(entry(c, pod('p', 'prod'), ns('prod'), { ctx: { ...ctx, parentIdTemplate: upstreamDefault } }).parentId).toBe(agentOfNodeA);
    expect(entry(c, pod('p', 'prod'), ns('prod')).parentId).toBe(agentOfNodeA);
    const byName = template('spiffe://{{ .TrustDomain }}/spire/agent/by-name/{{ .NodeMeta.Name }}');
    expect(entry(c, pod('p', 'prod'), ns('prod'), { ctx: { ...ctx, parentIdTemplate: byName } }).parentId).toBe('spiffe://domain.test/spire/agent/by-name/node-a');
    const readsPod = template('spiffe://{{ .TrustDomain }}/spire/agent/{{ .PodMeta.Name }}');
    expect(renderFailure(c, pod('p', 'prod'), ns('prod'), { ...ctx, parentIdTemplate: readsPod }).message).toBe(
      `template: parentIDTemplate:1:44: executing "parentIDTemplate" at <.PodMeta.Name>: can't evaluate field Name in type nil *v1.ObjectMeta`,
    );
    const foreign = template('spiffe://elsewhere.test/spire/agent/{{ .NodeMeta.Name }}');
    expect(renderFailure(c, pod('p', 'prod'), ns('prod'), { ...ctx, parentIdTemplate: foreign }).code).toBe('ERR_TRUST_DOMAIN_MISMATCH');
    expect(compileParentIdTemplate('{{ .A } }}')).toEqual({ ok: false, error: { code: 'ERR_BAD_REQUEST', message: 'template: parentIDTemplate:1:7: unexpected "}" in operand' } });
  });

  it('selectsPod: a pod of another namespace is never selected by that namespace', () => {
    const c = compiled({ spiffeIDTemplate: 'spiffe://domain.test/x' });
    expect(selectsPod(c, pod('p', 'prod'), ns('prod'))).toBe(true);
    expect(selectsPod(c, pod('p', 'dev'), ns('prod'))).toBe(false);
  });
});

describe('compileClusterSpiffeId refuses invalid specs with one clear line', () => {
  it.each([
    [{}, 'spiffeIDTemplate is required'],
    [{ spiffeIDTemplate: '' }, 'spiffeIDTemplate is required'],
    [{ spiffeIDTemplate: 7 }, 'spiffeIDTemplate must be a string'],
    [{ spiffeIDTemplate: 'spiffe://x/{{ .PodMeta.Name' }, 'template: spiffeIDTemplate:1:12: unclosed action'],
    [{ spiffeIDTemplate: 'spiffe://x/y', dnsNameTemplates: ['ok', '{{ .A } }}'] }, 'template: dnsNameTemplates[1]:1:7: unexpected "}" in operand'],
    [{ spiffeIDTemplate: 'spiffe://x/y', workloadSelectorTemplates: ['{{ if .A }}k8s:x{{ end }}'] }, `template: workloadSelectorTemplates[0]:1:4: "if" is not supported (no control structures or nil in Wisp's templates)`],
    [{ spiffeIDTemplate: 'spiffe://x/y', podSelector: { matchExpressions: [{ key: 'a', operator: 'Like' }] } }, 'podSelector.matchExpressions[0]: "Like" is not a valid label selector operator (In, NotIn, Exists, DoesNotExist)'],
    [{ spiffeIDTemplate: 'spiffe://x/y', namespaceSelector: 'prod' }, 'namespaceSelector must be an object'],
    [{ spiffeIDTemplate: 'spiffe://x/y', ttl: '1 hour' }, 'ttl: "1 hour" is not a Go duration (e.g. "1h", "90m", "3600s")'],
    [{ spiffeIDTemplate: 'spiffe://x/y', ttl: '1d' }, 'ttl: "1d" is not a Go duration (e.g. "1h", "90m", "3600s")'],
    [{ spiffeIDTemplate: 'spiffe://x/y', ttl: '721h' }, "ttl: 721h is longer than Wisp's limit of 2592000 seconds"],
    [{ spiffeIDTemplate: 'spiffe://x/y', jwtTtl: '25h' }, "jwtTtl: 25h is longer than Wisp's limit of 86400 seconds"],
    [{ spiffeIDTemplate: 'spiffe://x/y', federatesWith: ['Not A TD'] }, 'invalid federatesWith value "Not A TD": trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores'],
    [{ spiffeIDTemplate: 'spiffe://x/y', admin: 'yes' }, 'admin must be a boolean'],
    [{ spiffeIDTemplate: 'spiffe://x/y', dnsNameTemplates: 'a' }, 'dnsNameTemplates must be a list of strings'],
    [{ spiffeIDTemplate: 'spiffe://x/y', spiffeIdTemplate: 'x' }, 'ClusterSPIFFEID spec has an unknown field "spiffeIdTemplate"'],
    ['spiffe://x/y', 'ClusterSPIFFEID spec must be an object'],
  ])('%j', (spec, message) => {
    expect(compileClusterSpiffeId(spec)).toEqual({ ok: false, error: { code: 'ERR_BAD_REQUEST', message } });
  });

  it('keeps className and fallback for the runtime', () => {
    const c = compiled({ spiffeIDTemplate: 'spiffe://x/y', className: 'wisp', fallback: true });
    expect([c.className, c.fallback]).toEqual(['wisp', true]);
    expect(specClassName({ className: 'wisp' })).toBe('wisp');
    expect(specClassName({})).toBe('');
  });
});

describe('renderStaticEntry (the demo ClusterStaticEntry, demo/config/static-entry.yaml)', () => {
  const demo = {
    spiffeID: 'spiffe://cluster1.demo/static-spiffe-id',
    parentID: 'spiffe://cluster1.demo/static-parent-id',
    selectors: ['static:one', 'static:two'],
    federatesWith: ['cluster1.demo'],
    x509SVIDTTL: '2h',
    jwtSVIDTTL: '6m',
    dnsNames: ['static-dns'],
    hint: 'static-hint-2',
    admin: true,
    downstream: true,
    storeSVID: true,
  };
  const cluster1 = { trustDomain: 'cluster1.demo', clusterName: 'cluster1', clusterDomain: '' };

  it('renders the entry; storeSVID and federating with our own trust domain are refused as Wisp refuses them', () => {
    expect(renderStaticEntry(demo, cluster1)).toEqual({ ok: false, error: { code: 'ERR_BAD_REQUEST', message: 'storeSVID is not supported: Wisp has no SVIDStore plugins' } });
    const { storeSVID: _s, ...noStore } = demo;
    expect(renderStaticEntry(noStore, cluster1)).toEqual({
      ok: false,
      error: { code: 'ERR_ENTRY_INVALID', message: 'ClusterStaticEntry: federatesWith must not name the local trust domain' },
    });
    expect(renderStaticEntry({ ...noStore, federatesWith: ['cluster2.demo'], selectors: ['static:two', 'static:one'] }, cluster1)).toEqual({
      ok: true,
      value: {
        spiffeId: 'spiffe://cluster1.demo/static-spiffe-id',
        parentId: 'spiffe://cluster1.demo/static-parent-id',
        selectors: [
          { type: 'static', value: 'one' },
          { type: 'static', value: 'two' },
        ],
        dnsNames: ['static-dns'],
        federatesWith: ['cluster2.demo'],
        x509SvidTtl: 7200,
        jwtSvidTtl: 360,
        admin: true,
        downstream: true,
        hint: 'static-hint-2',
      },
    });
  });

  it.each([
    [{ parentID: 'spiffe://cluster1.demo/p', selectors: ['a:b'] }, 'ERR_SPIFFE_ID_INVALID', 'ClusterStaticEntry: SPIFFE ID is empty'],
    [{ spiffeID: 'spiffe://cluster1.demo/x', parentID: 'spiffe://other.demo/p', selectors: ['a:b'] }, 'ERR_TRUST_DOMAIN_MISMATCH', 'ClusterStaticEntry: parentId "spiffe://other.demo/p" is not a member of trust domain "cluster1.demo"'],
    [{ spiffeID: 'spiffe://cluster1.demo/x', parentID: 'spiffe://cluster1.demo/p', selectors: ['nocolon'] }, 'ERR_SELECTOR_INVALID', 'selectors: selector "nocolon" must have the form type:value'],
    [{ spiffeID: 'spiffe://cluster1.demo/x', parentID: 'spiffe://cluster1.demo/p', selectors: [] }, 'ERR_SELECTOR_INVALID', 'ClusterStaticEntry: at least one selector is required'],
    [{ spiffeID: 'spiffe://cluster1.demo/x', parentID: 'spiffe://cluster1.demo/p', selectors: ['a:b'], dnsNames: ['bad name'] }, 'ERR_ENTRY_INVALID', 'ClusterStaticEntry: DNS name "bad name": label "bad name" is not a valid RFC 1123 label'],
    [{ spiffeID: 'spiffe://cluster1.demo/x', parentID: 'spiffe://cluster1.demo/p', selectors: ['a:b'], x509SVIDTTL: '1y' }, 'ERR_BAD_REQUEST', 'x509SVIDTTL: "1y" is not a Go duration (e.g. "1h", "90m", "3600s")'],
    [{ spiffeID: 'spiffe://cluster1.demo/x', parentID: 'spiffe://cluster1.demo/p', selectors: ['a:b'], ttl: '1h' }, 'ERR_BAD_REQUEST', 'ClusterStaticEntry spec has an unknown field "ttl"'],
  ])('%j → %s', (spec, code, message) => {
    expect(renderStaticEntry(spec, cluster1)).toEqual({ ok: false, error: { code, message } });
  });
});

describe('renderFederationRelationship (docs/clusterfederatedtrustdomain-crd.md and the demo script)', () => {
  // the bundle of the upstream example, shortened: the admin API parses it when the relationship is written
  const bundle = '{\n    "keys": [\n        {\n            "use": "jwt-svid",\n            "kty": "EC",\n            "kid": "BSZV4bb6MLNky0Xhk402GChJVBvSYzZq",\n            "crv": "P-256",\n            "x": "yQ0A7fv5hevYrI82tLp6j7GM5llU2-okfUWHUenrFI8",\n            "y": "76LcJhFJn6ACO8mNE42fuGuYd-WmujVM93AhoJf16ME"\n        }\n    ]\n}';

  it('1. https_web', () => {
    expect(renderFederationRelationship({ trustDomain: 'backend', bundleEndpointURL: 'https://backend.test/bundle', bundleEndpointProfile: { type: 'https_web' } }, ctx)).toEqual({
      ok: true,
      value: { trustDomain: 'backend', bundleEndpointUrl: 'https://backend.test/bundle', bundleEndpointProfile: 'https_web' },
    });
  });

  it('2. https_spiffe with the endpoint SPIFFE ID and a bootstrap bundle', () => {
    const spec = {
      trustDomain: 'backend',
      bundleEndpointURL: 'https://backend.teste/bundle',
      bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: 'spiffe://backend/bundle-endpoint-server' },
      trustDomainBundle: bundle,
    };
    expect(renderFederationRelationship(spec, ctx)).toEqual({
      ok: true,
      value: { trustDomain: 'backend', bundleEndpointUrl: 'https://backend.teste/bundle', bundleEndpointProfile: 'https_spiffe', endpointSpiffeId: 'spiffe://backend/bundle-endpoint-server', trustDomainBundle: bundle },
    });
  });

  it("the demo's cluster1 ↔ cluster2 relationship (scripts/make-cluster-federated-trust-domain.sh)", () => {
    const spec = { trustDomain: 'cluster1.demo', bundleEndpointURL: 'https://172.18.0.2:8443', bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: 'spiffe://cluster1.demo/spire/server' }, trustDomainBundle: bundle };
    const r = renderFederationRelationship(spec, { trustDomain: 'cluster2.demo' });
    expect(r.ok && r.value).toMatchObject({ trustDomain: 'cluster1.demo', bundleEndpointUrl: 'https://172.18.0.2:8443/', endpointSpiffeId: 'spiffe://cluster1.demo/spire/server' });
    // the same resource applied in cluster1 itself names our own trust domain
    expect(renderFederationRelationship(spec, { trustDomain: 'cluster1.demo' })).toEqual({ ok: false, error: { code: 'ERR_BAD_REQUEST', message: 'a trust domain cannot federate with itself' } });
  });

  it.each([
    [{ trustDomain: 'backend', bundleEndpointURL: 'https://b.test/bundle' }, 'ERR_BAD_REQUEST', 'bundleEndpointProfile is required: {type: https_web | https_spiffe, endpointSPIFFEID}'],
    [{ trustDomain: 'backend', bundleEndpointURL: 'https://b.test/bundle', bundleEndpointProfile: { type: 'https' } }, 'ERR_BAD_REQUEST', 'bundleEndpointProfile.type must be https_web or https_spiffe'],
    [{ trustDomain: 'backend', bundleEndpointURL: 'https://b.test/bundle', bundleEndpointProfile: { type: 'https_spiffe' } }, 'ERR_BAD_REQUEST', 'endpointSpiffeId is required for the https_spiffe profile'],
    [{ trustDomain: 'backend', bundleEndpointURL: 'https://b.test/bundle', bundleEndpointProfile: { type: 'https_web', endpointSPIFFEID: 'spiffe://backend/x' } }, 'ERR_BAD_REQUEST', 'endpointSPIFFEID is only for the https_spiffe profile'],
    [{ trustDomain: 'backend', bundleEndpointURL: 'https://b.test/bundle', bundleEndpointProfile: { type: 'https_spiffe', endpointSPIFFEID: 'spiffe://other/x' } }, 'ERR_BAD_REQUEST', 'endpointSpiffeId must belong to the federated trust domain'],
    [{ trustDomain: 'backend', bundleEndpointURL: 'http://b.test/bundle', bundleEndpointProfile: { type: 'https_web' } }, 'ERR_BAD_REQUEST', 'bundleEndpointUrl must be https (http only for a loopback host)'],
    [{ trustDomain: 'Backend', bundleEndpointURL: 'https://b.test/bundle', bundleEndpointProfile: { type: 'https_web' } }, 'ERR_BAD_REQUEST', 'trustDomain: trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores'],
    [{ trustDomain: 'backend', bundleEndpointURL: 'https://b.test/bundle', bundleEndpointProfile: { type: 'https_web' }, refresh: '5m' }, 'ERR_BAD_REQUEST', 'ClusterFederatedTrustDomain spec has an unknown field "refresh"'],
  ])('%j', (spec, code, message) => {
    expect(renderFederationRelationship(spec, ctx)).toEqual({ ok: false, error: { code, message } });
  });
});

describe('entryKey, sameEntry, toEntryInput', () => {
  const a = podEntry({ spiffeId: 'spiffe://domain.test/x', selectors: [{ type: 'k8s', value: 'pod-uid:1' }, { type: 'k8s', value: 'sa:web' }], dnsNames: ['a', 'b'], federatesWith: ['t1', 't2'] });

  it('the key is spiffeId + parentId + the selector set, whatever its order', () => {
    const reordered = { ...a, selectors: [...a.selectors].reverse() };
    expect(entryKey(reordered)).toBe(entryKey(a));
    expect(entryKey({ ...a, parentId: 'spiffe://domain.test/spire/agent/k8s_psat/demo-cluster/other' })).not.toBe(entryKey(a));
    expect(entryKey({ ...a, spiffeId: 'spiffe://domain.test/y' })).not.toBe(entryKey(a));
    expect(entryKey({ ...a, selectors: a.selectors.slice(0, 1) })).not.toBe(entryKey(a));
    // no separator trick makes two different entries collide
    expect(entryKey({ spiffeId: 'a","b', parentId: 'c', selectors: [] })).not.toBe(entryKey({ spiffeId: 'a', parentId: 'b","c', selectors: [] }));
  });

  it('sameEntry compares the mutable fields; federatesWith as a set, DNS names in order', () => {
    expect(sameEntry(a, { ...a, selectors: [...a.selectors].reverse(), federatesWith: ['t2', 't1'] })).toBe(true);
    for (const change of [{ hint: 'h' }, { admin: true }, { downstream: true }, { x509SvidTtl: 60 }, { jwtSvidTtl: 60 }, { dnsNames: ['b', 'a'] }, { federatesWith: ['t1'] }]) {
      expect(sameEntry(a, { ...a, ...change }), JSON.stringify(change)).toBe(false);
    }
  });

  it('toEntryInput is the admin API body: parseEntryInput (the route rule) takes it unchanged, with a chosen id', () => {
    const c = compiled({ spiffeIDTemplate: 'spiffe://domain.test/ns/{{ .PodMeta.Namespace }}', dnsNameTemplates: ['web.prod.svc'], federatesWith: ['auditing'], ttl: '1h', hint: 'h' });
    const e = entry(c, pod('web-1', 'prod'), ns('prod'));
    const body = toEntryInput(e, 'wisp-ctrl.abc123');
    expect(parseEntryInput(JSON.parse(JSON.stringify(body)), parseTrustDomain('domain.test'))).toEqual({ ...e, id: 'wisp-ctrl.abc123', expiresAt: 0 });
    expect(toEntryInput(e)).not.toHaveProperty('id');
  });
});

describe('parseGoDurationSeconds (metav1.Duration, truncated to seconds as upstream)', () => {
  it.each([
    ['1h', 3600],
    ['1h30m', 5400],
    ['1.5h', 5400],
    ['90s', 90],
    ['2h45m30s', 9930],
    ['1500ms', 1],
    ['300ms', 0],
    ['0', 0],
    ['0s', 0],
    ['+5m', 300],
    ['1us', 0],
  ])('%s → %i', (input, seconds) => {
    expect(parseGoDurationSeconds(input)).toBe(seconds);
  });

  it.each(['', '1', 'h', '1d', '-1h', '1 h', '1h ', '.h', 'abc'])('%j is not one', (input) => {
    expect(parseGoDurationSeconds(input)).toBeUndefined();
  });
});
