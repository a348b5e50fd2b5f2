// deploy/kubernetes against the real testbed API server (../shared/k8s-testbed): kustomize renders every
// kustomization; `kubectl apply --dry-run=server` accepts every rendered object (our CRDs applied for real
// first, so the custom resources are checked against them; a namespace of the test's own); our CRDs'
// schemas equal spire-controller-manager's as data; the agent's ConfigMap goes through the agent's config
// loader and parser, the CSI driver's args through its flag parser, and what they yield agrees with the
// DaemonSet's mounts, ports, probes and the CSIDriver object. API server only: no node needed.
import 'reflect-metadata'; // @peculiar/x509, under the issuer's config parser
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../scripts/local-stack.js';
import { parseAgentConfig, readAgentConfigFile } from '../../src/agent/config.js';
import { readControllerConfig } from '../../src/controller/config.js';
import { parseCsiArgs } from '../../src/csi/config.js';
import { parseCloudAttestorsConfig } from '../../src/worker/attestation/cloud-config.js';
import { kubectl, testbed, type TestbedEnv } from '../helpers/node/k8s-testbed.js';

const tb = testbed();
const K8S = join(REPO_ROOT, 'deploy', 'kubernetes');
/** upstream's CRDs, read at test time from ../shared beside the checkout (reference, not part of the project) */
const UPSTREAM_CRDS = resolve(REPO_ROOT, '..', 'shared', 'kubernetes', 'spire-controller-manager', 'config', 'crd', 'bases');
const CRD_FILES = ['spire.spiffe.io_clusterspiffeids.yaml', 'spire.spiffe.io_clusterstaticentries.yaml', 'spire.spiffe.io_clusterfederatedtrustdomains.yaml'];
const NS = `wisp-manifests-${process.pid}`;

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface Container {
  name: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports?: { name: string; containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; mountPropagation?: string }[];
  securityContext?: { privileged?: boolean };
  livenessProbe?: { httpGet: { path: string; port: string } };
  readinessProbe?: { httpGet: { path: string; port: string } };
}
interface Volume {
  name: string;
  hostPath?: { path: string };
  emptyDir?: object;
  configMap?: { name: string };
  csi?: { driver: string; readOnly?: boolean };
  projected?: { sources: { serviceAccountToken?: { path: string; audience: string } }[] };
}
interface PodTemplate {
  metadata: { labels: Record<string, string> };
  spec: { hostPID?: boolean; serviceAccountName: string; containers: Container[]; volumes: Volume[] };
}

/** kustomize's output split into its documents (kustomize writes `---` between them and `kind:` at column 0) */
function documents(rendered: string): string[] {
  return rendered.split(/^---\n/m).filter((d) => d.trim() !== '');
}

function kindOf(doc: string): string {
  return /^kind: (\S+)$/m.exec(doc)?.[1] ?? '?';
}

describe.skipIf(!tb.ready)(`deploy/kubernetes on the testbed API server${tb.ready ? '' : ` (skipped: ${tb.skipReason})`}`, () => {
  const env = (tb.ready ? tb.env : undefined) as TestbedEnv;
  const k = (args: string[], input?: string) => kubectl(env, args, input);
  let tmp: string;
  /** the server's answers to the dry-run of deploy/kubernetes, examples/ and issuer/, by kind/name */
  const dryRun = new Map<string, Obj>();
  const dryRuns: { dir: string; kinds: string[]; answers: Obj[] }[] = [];
  const get = <T extends Obj>(kind: string, name: string): T => {
    const o = dryRun.get(`${kind}/${name}`);
    if (!o) throw new Error(`${kind}/${name} is not among the dry-run objects: ${[...dryRun.keys()].join(', ')}`);
    return o as T;
  };

  /** renders kustomization dirs of deploy/kubernetes with every namespaced object (and Namespace) moved to NS */
  function renderInTestNamespace(dirs: string[]): string {
    const dir = mkdtempSync(join(tmp, 'kz-'));
    const resources = dirs.map((d) => `  - ${relative(dir, join(K8S, d))}`).join('\n');
    writeFileSync(join(dir, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${NS}\nresources:\n${resources}\n`);
    return k(['kustomize', dir]);
  }

  function serverDryRun(yaml: string): Obj[] {
    const out = JSON.parse(k(['apply', '--dry-run=server', '-o', 'json', '-f', '-'], yaml)) as Obj & { items?: Obj[] };
    return out.kind === 'List' ? out.items! : [out];
  }

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'wisp-manifests-'));
    k(['create', 'namespace', NS]);
    // Our CRDs for real (never deleted: the testbed is shared, and they equal upstream's, which other tests apply)
    k(['apply', '-k', join(K8S, 'crds')]);
    k(['wait', '--for=condition=Established', '--timeout=60s', ...CRD_FILES.map((f) => `crd/${f.slice('spire.spiffe.io_'.length, -'.yaml'.length)}.spire.spiffe.io`)]);
    // The dry-run of everything, one rendering per kustomization: each has a Namespace object, which the
    // namespace of the test replaces. The tests below read the server's answers.
    for (const dir of ['.', 'examples', 'issuer']) {
      const rendered = renderInTestNamespace([dir]);
      const answers = serverDryRun(rendered);
      dryRuns.push({ dir, kinds: documents(rendered).map(kindOf), answers });
      for (const o of answers) dryRun.set(`${o.kind}/${o.metadata.name}`, o);
    }
  });

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    k(['delete', 'namespace', NS, '--wait=false', '--ignore-not-found']);
  });

  it('renders deploy/kubernetes with kustomize: the CRDs, the CSIDriver, the agent DaemonSet and the controller Deployment, images from the variables', () => {
    const docs = documents(k(['kustomize', K8S]));
    const kinds = docs.map(kindOf).sort();
    expect(kinds).toEqual(['ClusterRole', 'ClusterRole', 'ClusterRoleBinding', 'ClusterRoleBinding', 'ConfigMap', 'ConfigMap', 'CSIDriver', 'CustomResourceDefinition', 'CustomResourceDefinition', 'CustomResourceDefinition', 'DaemonSet', 'Deployment', 'Namespace', 'Role', 'Role', 'RoleBinding', 'RoleBinding', 'ServiceAccount', 'ServiceAccount'].sort());
    const images = docs.flatMap((d) => [...d.matchAll(/^\s+image: (\S+)$/gm)].map((m) => m[1])).sort();
    expect(images).toEqual(['registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.6.0', 'wisp-agent:0.1.0', 'wisp-controller-manager:0.1.0', 'wisp-csi-driver:0.1.0']);
  });

  it('passes `kubectl apply --dry-run=server` for every object of deploy/kubernetes, examples/ and issuer/', () => {
    for (const { dir, kinds, answers } of dryRuns) expect(answers.map((o) => o.kind), dir).toEqual(kinds);
    const answers = dryRuns.flatMap((r) => r.answers);
    expect(answers.filter((o) => o.kind === 'ClusterSPIFFEID').map((o) => o.metadata.name)).toEqual(['example-workload']);
  });

  it('renders the Prometheus Operator overlay; dry-runs it where the operator\'s CRDs exist, else everything except its monitors', () => {
    const docs = documents(renderInTestNamespace(['overlays/prometheus-operator']));
    const monitors = docs.filter((d) => /^apiVersion: monitoring\.coreos\.com\//m.test(d));
    expect(monitors.map(kindOf)).toEqual(['PodMonitor']);
    const hasOperator = k(['get', 'crd', '-o', 'name']).split('\n').includes('customresourcedefinition.apiextensions.k8s.io/podmonitors.monitoring.coreos.com');
    const checked = hasOperator ? docs : docs.filter((d) => !monitors.includes(d));
    // without the operator's CRDs only the PodMonitor is left out (its shape: test/e2e/prometheus.test.ts)
    expect(docs.length - checked.length).toBe(hasOperator ? 0 : 1);
    const answers = serverDryRun(checked.join('---\n'));
    expect(answers.map((o) => o.kind)).toEqual(checked.map(kindOf));
  });

  it('ships CRDs whose group, names, scope, versions, subresources, printer columns and schemas equal spire-controller-manager\'s', () => {
    const differences: string[] = [];
    for (const file of CRD_FILES) {
      const load = (path: string) => JSON.parse(k(['create', '--dry-run=client', '-o', 'json', '-f', path])) as { spec: Record<string, unknown> };
      const ours = load(join(K8S, 'crds', file));
      const upstream = load(join(UPSTREAM_CRDS, file));
      differences.push(...diff(structure(ours.spec), structure(upstream.spec), file));
    }
    expect(differences).toEqual([]);
    // and the comparison sees a difference when there is one
    expect(diff({ a: { type: 'string', enum: ['x'] } }, { a: { type: 'string', enum: ['y'] } }, 'self-check')).toEqual(['self-check.a.enum.0: "x" vs "y"']);
  });

  it('gives the agent a config its loader and parser accept, agreeing with the DaemonSet', () => {
    const ds = get<Obj & { spec: { template: PodTemplate } }>('DaemonSet', 'wisp-agent');
    const pod = ds.spec.template;
    const agent = pod.spec.containers.find((c) => c.name === 'wisp-agent')!;
    const volume = (name: string) => pod.spec.volumes.find((v) => v.name === name)!;
    const mountAt = (c: Container, path: string) => c.volumeMounts!.find((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));

    // the file the container's command names, from the ConfigMap mounted there
    const configFile = agent.command![agent.command!.indexOf('--config') + 1]!;
    const configMount = mountAt(agent, configFile)!;
    const configMap = get<Obj & { data: Record<string, string> }>('ConfigMap', volume(configMount.name).configMap!.name);
    const file = join(tmp, basename(configFile));
    writeFileSync(file, configMap.data[basename(configFile)]!);
    const nodeEnv = agent.env!.find((e) => e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName')!.name;
    const config = parseAgentConfig(readAgentConfigFile(file), { [nodeEnv]: 'node-a' }, {});

    // k8s_psat: the projected token of audience spire-server is where the attestor reads it
    expect(config.k8sPsat?.tokenPath).toBe('/var/run/secrets/tokens/spire-agent');
    const tokenMount = mountAt(agent, config.k8sPsat!.tokenPath)!;
    const token = volume(tokenMount.name).projected!.sources[0]!.serviceAccountToken!;
    expect([join(tokenMount.mountPath, token.path), token.audience]).toEqual([config.k8sPsat!.tokenPath, 'spire-server']);
    // the k8s workload attestor: the node name from the downward API, hostPID for /proc
    expect(config.workloadAttestors?.k8s?.nodeName).toBe('node-a');
    expect(pod.spec.hostPID).toBe(true);
    // the socket in the hostPath dir, the data dir an emptyDir, and no other hostPath in the agent's container
    const socketMount = mountAt(agent, config.socketPath)!;
    expect(volume(socketMount.name).hostPath?.path).toBe('/run/spire/agent-sockets');
    expect(volume(mountAt(agent, config.dataDir)!.name).emptyDir).toBeDefined();
    expect(agent.volumeMounts!.filter((m) => volume(m.name).hostPath).map((m) => m.name)).toEqual([socketMount.name]);
    // metrics and health on the container's named ports, the probes on the configured paths
    const port = (name: string) => agent.ports!.find((p) => p.name === name)!.containerPort;
    expect(config.telemetry?.prometheus).toEqual({ host: '0.0.0.0', port: port('metrics') });
    expect(config.healthChecks).toMatchObject({ listenerEnabled: true, bindAddress: '0.0.0.0', bindPort: port('health') });
    expect([agent.livenessProbe!.httpGet, agent.readinessProbe!.httpGet]).toEqual([
      { path: config.healthChecks!.livePath, port: 'health', scheme: 'HTTP' },
      { path: config.healthChecks!.readyPath, port: 'health', scheme: 'HTTP' },
    ]);

    // the example workload's socket: the CSI volume's mount + the agent's socket file name
    const example = get<Obj & { spec: { template: PodTemplate } }>('Deployment', 'example-workload').spec.template;
    const app = example.spec.containers[0]!;
    const endpoint = app.env!.find((e) => e.name === 'SPIFFE_ENDPOINT_SOCKET')!.value!;
    const appMount = mountAt(app, endpoint.replace('unix://', ''))!;
    expect(endpoint).toBe(`unix://${appMount.mountPath}/${basename(config.socketPath)}`);
    expect(appMount.readOnly).toBe(true);
    expect(example.spec.volumes.find((v) => v.name === appMount.name)!.csi).toEqual({ driver: get('CSIDriver', 'csi.spiffe.io').metadata.name, readOnly: true });
    const spiffeId = get<Obj & { spec: { podSelector: { matchLabels: Record<string, string> }; namespaceSelector: { matchLabels: Record<string, string> } } }>('ClusterSPIFFEID', 'example-workload');
    expect(example.metadata.labels).toMatchObject(spiffeId.spec.podSelector.matchLabels);
  });

  it('runs the CSI driver with upstream\'s flags, which its flag parser accepts, sharing the agent\'s socket dir and the registrar\'s socket', () => {
    const pod = get<Obj & { spec: { template: PodTemplate } }>('DaemonSet', 'wisp-agent').spec.template;
    const container = (name: string) => pod.spec.containers.find((c) => c.name === name)!;
    const volume = (name: string) => pod.spec.volumes.find((v) => v.name === name)!;
    const csi = container('wisp-csi-driver');
    const nodeEnv = csi.env!.find((e) => e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName')!.name;
    const parsed = parseCsiArgs(csi.args!, { [nodeEnv]: 'node-a' });
    expect(parsed).toMatchObject({ pluginName: get('CSIDriver', 'csi.spiffe.io').metadata.name, nodeId: 'node-a' });
    expect(get<Obj & { spec: Record<string, unknown> }>('CSIDriver', 'csi.spiffe.io').spec).toMatchObject({ attachRequired: false, podInfoOnMount: true, volumeLifecycleModes: ['Ephemeral'] });
    // the directory it binds into pods is the agent's socket dir (the same hostPath volume)
    const socketDirMount = csi.volumeMounts!.find((m) => m.mountPath === parsed.workloadApiSocketDir)!;
    const agentSocketMount = container('wisp-agent').volumeMounts!.find((m) => m.name === socketDirMount.name)!;
    const agentConfig = get<Obj & { data: Record<string, string> }>('ConfigMap', 'wisp-agent').data['agent.json']!;
    expect(dirname((JSON.parse(agentConfig) as { socketPath: string }).socketPath)).toBe(agentSocketMount.mountPath);
    // node-driver-registrar talks to the driver's socket and announces its host path
    const registrar = container('node-driver-registrar');
    const flag = (name: string) => registrar.args![registrar.args!.indexOf(name) + 1];
    const csiSocketMount = csi.volumeMounts!.find((m) => m.mountPath === dirname(parsed.csiSocketPath))!;
    expect(registrar.volumeMounts!.find((m) => m.name === csiSocketMount.name)!.mountPath).toBe(dirname(flag('-csi-address')!));
    expect(flag('-csi-address')).toBe(parsed.csiSocketPath);
    expect(flag('-kubelet-registration-path')).toBe(join(volume(csiSocketMount.name).hostPath!.path, basename(parsed.csiSocketPath)));
    expect(volume(registrar.volumeMounts!.find((m) => m.mountPath === '/registration')!.name).hostPath!.path).toBe('/var/lib/kubelet/plugins_registry');
    // mounts propagate back to the kubelet's pod dirs; mounting needs privilege
    const podsMount = csi.volumeMounts!.find((m) => m.mountPath === '/var/lib/kubelet/pods')!;
    expect([podsMount.mountPropagation, volume(podsMount.name).hostPath!.path, csi.securityContext?.privileged]).toEqual(['Bidirectional', '/var/lib/kubelet/pods', true]);
  });

  it('gives the issuer K8S_PSAT values (both modes) its parser accepts, for the cluster, trust domain and agent account of the manifests', () => {
    const toml = readFileSync(join(K8S, 'issuer', 'wrangler.cluster.toml'), 'utf8');
    const tomlVar = (name: string, commented = false) => new RegExp(`^${commented ? '# ' : ''}${name} = ['"](.*)['"]$`, 'm').exec(toml)?.[1];
    const agent = JSON.parse(get<Obj & { data: Record<string, string> }>('ConfigMap', 'wisp-agent').data['agent.json']!) as { serverUrl: string; trustDomain: string; k8sPsat: { cluster: string } };
    const file = join(tmp, 'controller-for-issuer.yaml');
    writeFileSync(file, get<Obj & { data: Record<string, string> }>('ConfigMap', 'wisp-controller-manager').data['controller-manager-config.yaml']!);
    const controller = readControllerConfig(file, NS).config;
    expect([tomlVar('TRUST_DOMAIN'), String(controller.trustDomain)]).toEqual([agent.trustDomain, agent.trustDomain]);
    expect(controller.clusterName).toBe(agent.k8sPsat.cluster);
    expect([tomlVar('JWT_ISSUER'), controller.serverUrl]).toEqual([agent.serverUrl, agent.serverUrl]);
    // the agent's service account as the manifests name it (deploy/kubernetes renders it in namespace wisp)
    const saDoc = documents(k(['kustomize', K8S])).find((d) => kindOf(d) === 'ServiceAccount' && /^ {2}name: wisp-agent$/m.test(d))!;
    const account = `${/^ {2}namespace: (\S+)$/m.exec(saDoc)![1]}:wisp-agent`;
    const modes = [tomlVar('K8S_PSAT'), tomlVar('K8S_PSAT', true)].map((value) => parseCloudAttestorsConfig({ K8S_PSAT: value }).k8sPsat!.clusters[agent.k8sPsat.cluster]!);
    expect(modes.map((c) => [c.validation.mode, c.serviceAccountAllowList, c.audience])).toEqual([
      ['keys', [account], ['spire-server']],
      ['tokenReview', [account], ['spire-server']],
    ]);
    // the reviewer account of mode 2 has SPIRE server's k8s_psat permissions and a token Secret
    expect(get<Obj & { rules: unknown[] }>('ClusterRole', 'wisp-issuer-psat').rules).toEqual([
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      { apiGroups: [''], resources: ['pods', 'nodes'], verbs: ['get'] },
    ]);
    expect(get<Obj & { type: string }>('Secret', 'wisp-issuer-psat').type).toBe('kubernetes.io/service-account-token');
  });

  it('gives the controller manager a ConfigMap its config loader accepts, agreeing with its Deployment (config path, token Secret, Lease namespace)', () => {
    type Container = { command: string[]; volumeMounts: { name: string; mountPath: string }[] };
    type Deployment = Obj & { spec: { template: { spec: { containers: Container[]; volumes: { name: string; configMap?: { name: string }; secret?: { secretName: string; items: { key: string; path: string }[] } }[] } } } };
    const deployment = get<Deployment>('Deployment', 'wisp-controller-manager');
    const pod = deployment.spec.template.spec;
    const container = pod.containers[0]!;
    const configPath = container.command[container.command.indexOf('--config') + 1]!;
    const mountOf = (volume: string) => container.volumeMounts.find((m) => m.name === volume)!.mountPath;
    const configVolume = pod.volumes.find((v) => v.configMap)!;
    expect([configVolume.configMap!.name, dirname(configPath)]).toEqual(['wisp-controller-manager', mountOf(configVolume.name)]);
    const text = get<Obj & { data: Record<string, string> }>('ConfigMap', 'wisp-controller-manager').data[basename(configPath)]!;
    const file = join(tmp, 'controller-manager-config.yaml');
    writeFileSync(file, text);
    // the Lease namespace is left to default to the pod's (the Deployment's), so an overlay's namespace moves it too
    const { config, warnings } = readControllerConfig(file, deployment.metadata.namespace);
    expect(warnings).toEqual([]);
    const secret = pod.volumes.find((v) => v.secret)!;
    expect(config.credential).toEqual({ kind: 'token-file', path: join(mountOf(secret.name), secret.secret!.items[0]!.path) });
    expect([secret.secret!.secretName, secret.secret!.items[0]!.key]).toEqual(['wisp-controller-manager-admin', 'admin-token']);
    expect([config.leaderElection.enabled, config.leaderElection.leaseNamespace]).toEqual([true, NS]);
    // the controller's own namespace as shipped is ignored (its pods get no entries from ClusterSPIFFEIDs)
    expect(config.ignoreNamespaces.some((re) => re.test('wisp'))).toBe(true);
  });

  it('gives the agent and the controller manager only the API permissions they use', () => {
    type Role = Obj & { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] };
    expect(get<Role>('ClusterRole', 'wisp-agent').rules).toEqual([{ apiGroups: [''], resources: ['nodes/proxy'], verbs: ['get'] }]);
    const controller = get<Role>('ClusterRole', 'wisp-controller-manager').rules;
    expect(controller.flatMap((r) => r.verbs.filter((v) => !['get', 'list', 'watch'].includes(v)).map((v) => `${v} ${r.resources.join(',')}`))).toEqual([
      'update clusterfederatedtrustdomains',
      'update clusterspiffeids/status,clusterstaticentries/status',
    ]);
    const lease = get<Role>('Role', 'wisp-controller-manager-leader-election');
    expect([lease.metadata.namespace, lease.rules]).toEqual([NS, [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create', 'update'] }]]);
    // Warning Events of cluster-scoped resources go to default, as client-go files them
    // (in the render as shipped: the test's own rendering moves every namespaced object into its namespace)
    const eventsDoc = documents(k(['kustomize', K8S])).find((d) => kindOf(d) === 'Role' && /^ {2}name: wisp-controller-manager-events$/m.test(d))!;
    expect(/^ {2}namespace: (\S+)$/m.exec(eventsDoc)?.[1]).toBe('default');
    expect(get<Role>('Role', 'wisp-controller-manager-events').rules).toEqual([{ apiGroups: [''], resources: ['events'], verbs: ['create'] }]);
  });
});

/** A CRD spec reduced to what makes it structurally the same: descriptions (prose) dropped. */
function structure(spec: Record<string, unknown>): unknown {
  const strip = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(strip);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([key, x]) => !(key === 'description' && typeof x === 'string')).map(([key, x]) => [key, strip(x)]));
    return v;
  };
  return strip(spec);
}

/** Every path where `a` and `b` differ (keys, types, values, array elements). */
function diff(a: unknown, b: unknown, path: string): string[] {
  if (Array.isArray(a) && Array.isArray(b)) {
    const out = a.length === b.length ? [] : [`${path}: ${a.length} items vs ${b.length}`];
    for (let i = 0; i < Math.min(a.length, b.length); i++) out.push(...diff(a[i], b[i], `${path}.${i}`));
    return out;
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ra = a as Record<string, unknown>;
    const rb = b as Record<string, unknown>;
    return [...new Set([...Object.keys(ra), ...Object.keys(rb)])].sort().flatMap((key) => {
      if (!(key in rb)) return [`${path}.${key}: only in ours`];
      if (!(key in ra)) return [`${path}.${key}: only upstream's`];
      return diff(ra[key], rb[key], `${path}.${key}`);
    });
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
}
