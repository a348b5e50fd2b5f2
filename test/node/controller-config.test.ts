import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseControllerConfig, readControllerConfig } from '../../src/controller/config.js';

const dir = mkdtempSync(join(tmpdir(), 'wisp-cm-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = { clusterName: 'prod', trustDomain: 'example.org', serverURL: 'https://wisp.example.workers.dev/', adminTokenFile: '/etc/wisp/admin-token' };
const parse = (doc: Record<string, unknown>, ns: string | undefined = 'spire-system') => parseControllerConfig(doc, ns, 'file /c.yaml');
const problem = (doc: Record<string, unknown>, ns?: string) => {
  try {
    parse(doc, ns);
  } catch (e) {
    return (e as Error).message;
  }
  return 'accepted';
};

describe('controller manager config', () => {
  it('takes upstream\'s defaults and derives the owned entry ID prefix from the cluster (and class) name', () => {
    const { config, warnings } = parse(base);
    expect(warnings).toEqual([]);
    expect(config).toMatchObject({
      clusterName: 'prod',
      trustDomain: 'example.org',
      clusterDomain: 'cluster.local',
      watchClassless: true,
      entryIDPrefix: 'prod.',
      gcIntervalSeconds: 10,
      reconcile: { clusterSPIFFEIDs: true, clusterFederatedTrustDomains: true, clusterStaticEntries: true },
      leaderElection: { enabled: true, leaseNamespace: 'spire-system', leaseName: 'wisp-controller-manager-leader-election', leaseDurationSeconds: 15, renewDeadlineSeconds: 10, retryPeriodSeconds: 2 },
      serverUrl: 'https://wisp.example.workers.dev',
      credential: { kind: 'token-file', path: '/etc/wisp/admin-token' },
    });
    expect(config.ignoreNamespaces.map((r) => r.source)).toEqual(['kube-system', 'kube-public', 'spire-system']);
    expect(parse({ ...base, className: 'blue' }).config).toMatchObject({ className: 'blue', watchClassless: false, entryIDPrefix: 'prod.blue.' });
    expect(parse({ ...base, entryIDPrefix: 'mine' }).config.entryIDPrefix).toBe('mine.');
    expect(parse(base).config.parentIdTemplate).toBeUndefined();
    expect(parse({ ...base, parentIDTemplate: 'spiffe://{{ .TrustDomain }}/node/{{ .NodeMeta.Name }}' }).config.parentIdTemplate?.name).toBe('parentIDTemplate');
  });

  it('reads an upstream ControllerManagerConfig file, warning once per upstream key it ignores', () => {
    const path = join(dir, 'upstream.yaml');
    writeFileSync(path, [
      'apiVersion: spire.spiffe.io/v1alpha1',
      'kind: ControllerManagerConfig',
      'metrics:',
      '  bindAddress: 127.0.0.1:8082',
      'health:',
      '  healthProbeBindAddress: 127.0.0.1:8083',
      'leaderElection:',
      '  leaderElect: true',
      '  resourceName: 98c9c988.spiffe.io',
      '  resourceNamespace: spire-server',
      'clusterName: demo-cluster',
      'trustDomain: example.org',
      'ignoreNamespaces:',
      '  - kube-system',
      '  - ^local-path-storage$',
      'spireServerSocketPath: /run/spire/server-sockets/api.sock',
      'validatingWebhookConfigurationName: spire-controller-manager-webhook',
      'serverURL: https://wisp.example',
      'workloadAPISocket: /run/spire/agent-sockets/api.sock',
      'gcInterval: 1m30s',
    ].join('\n'));
    const { config, warnings } = readControllerConfig(path, undefined);
    expect(warnings).toEqual([
      'validatingWebhookConfigurationName: an upstream spire-controller-manager setting Wisp does not use; ignored',
      'spireServerSocketPath: an upstream spire-controller-manager setting Wisp does not use; ignored',
      'metrics: an upstream spire-controller-manager setting Wisp does not use; ignored',
      'health: an upstream spire-controller-manager setting Wisp does not use; ignored',
    ]);
    expect(config.leaderElection).toMatchObject({ leaseName: '98c9c988.spiffe.io', leaseNamespace: 'spire-server' });
    expect(config.credential).toEqual({ kind: 'workload-api', socket: '/run/spire/agent-sockets/api.sock', audience: 'https://wisp.example' });
    expect(config.gcIntervalSeconds).toBe(90);
    // unanchored regular expressions, as upstream matches them
    expect(config.ignoreNamespaces.some((r) => r.test('my-kube-system-copy'))).toBe(true);
    expect(config.ignoreNamespaces.some((r) => r.test('local-path-storage-2'))).toBe(false);
  });

  it('refuses what cannot work, with one-line errors naming the key and the file', () => {
    expect(problem({ ...base, clusterName: undefined })).toBe('clusterName (from file /c.yaml): is required');
    expect(problem({ ...base, trustDomain: 'Example.org' })).toMatch(/^trustDomain \(from file \/c\.yaml\): /);
    expect(problem({ ...base, kind: 'Config' })).toBe('kind (from file /c.yaml): must be ControllerManagerConfig');
    expect(problem({ ...base, fooBar: 1 })).toMatch(/^fooBar \(from file \/c\.yaml\): unknown key; known keys: apiVersion, kind, clusterName/);
    expect(problem({ ...base, adminTokenFile: undefined })).toMatch(/^adminTokenFile \(from file \/c\.yaml\): an admin credential is required/);
    expect(problem({ ...base, workloadAPISocket: '/run/api.sock' })).toBe('adminTokenFile (from file /c.yaml): give adminTokenFile or workloadAPISocket, not both');
    expect(problem({ ...base, adminTokenFile: 'token' })).toBe('adminTokenFile (from file /c.yaml): must be an absolute path');
    expect(problem({ ...base, serverURL: 'http://wisp.example' })).toMatch(/^serverURL \(from file \/c\.yaml\): http is allowed only for loopback hosts/);
    expect(problem({ ...base, ignoreNamespaces: ['(unclosed'] })).toMatch(/^ignoreNamespaces\[0\] \(from file \/c\.yaml\): not a regular expression/);
    expect(problem({ ...base, entryIDPrefix: 'a/b' })).toBe('entryIDPrefix (from file /c.yaml): must be letters, digits, ".", "_" or "-"');
    expect(problem({ ...base, leaderElection: { leaseDuration: '5s', renewDeadline: '10s' } })).toBe('leaderElection (from file /c.yaml): needs leaseDuration > renewDeadline > retryPeriod');
    expect(problem({ ...base, gcInterval: '10' })).toBe('gcInterval (from file /c.yaml): "10" is not a Go duration (e.g. "10s", "1m30s")');
    expect(problem({ ...base, gcInterval: '500ms' })).toBe('gcInterval (from file /c.yaml): must be at least 1s');
    expect(problem({ ...base, leaderElection: { resourceLock: 'configmaps' } })).toBe('leaderElection.resourceLock (from file /c.yaml): only "leases" is supported');
    expect(problem(base, '')).toBe('leaderElection.resourceNamespace (from file /c.yaml): is required outside a pod (no service account namespace to default to)');
    expect(problem({ ...base, leaderElection: { leaderElect: false } }, '')).toBe('accepted');
    expect(problem({ ...base, parentIDTemplate: 'spiffe://{{ .TrustDomain }}/node/{{ .NodeMeta.Name' })).toMatch(/^parentIDTemplate \(from file \/c\.yaml\): /);
    expect(problem({ ...base, clusterName: 'has space' })).toMatch(/^entryIDPrefix .*set entryIDPrefix$/);
  });

  it('says where a file cannot be read or is not YAML', () => {
    expect(() => readControllerConfig(join(dir, 'missing.yaml'), 'ns')).toThrow(`config file ${join(dir, 'missing.yaml')}: cannot read (ENOENT)`);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'clusterName: [unclosed');
    expect(() => readControllerConfig(bad, 'ns')).toThrow(/^config file .*bad\.yaml: not valid YAML/);
  });
});
