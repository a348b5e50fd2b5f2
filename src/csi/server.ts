/**
 * The driver's two gRPC endpoints on grpc-js: the CSI socket (Identity and Node services, for the kubelet
 * and csi-sanity) and, optionally, the kubelet plugin-registration socket (what node-driver-registrar
 * would serve beside the driver). Messages come from the generated code (src/csi/gen); RPCs the driver does
 * not list answer UNIMPLEMENTED, as the CSI spec allows for a node-only plugin.
 * @module
 */
import { create, type DescService } from '@bufbuild/protobuf';
import { Server, ServerCredentials, type sendUnaryData, type ServerUnaryCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Logger } from 'pino';
import { grpcServiceDefinition } from '../node/workload-api/service.js';
import { asCsiError, failedPrecondition } from './errors.js';
import {
  GetPluginCapabilitiesResponseSchema,
  GetPluginInfoResponseSchema,
  Identity,
  Node,
  NodeGetCapabilitiesResponseSchema,
  NodeGetInfoResponseSchema,
  NodePublishVolumeResponseSchema,
  NodeUnpublishVolumeResponseSchema,
  ProbeResponseSchema,
  type NodePublishVolumeRequest,
  type NodeUnpublishVolumeRequest,
} from './gen/csi/v1/csi_pb.js';
import { PluginInfoSchema, Registration, RegistrationStatusResponseSchema, type RegistrationStatus } from './gen/pluginregistration/registration_pb.js';
import type { NodeService } from './node-service.js';

/** This package's version, GetPluginInfo's vendor_version. */
export const VENDOR_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The CSI versions named to the kubelet at registration (what node-driver-registrar announces). */
export const SUPPORTED_CSI_VERSIONS = ['1.0.0'];

type UnaryHandler = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;

/** A grpc-js unary handler around an async function; a thrown error becomes its CSI status. */
function unary<Req>(log: Logger, rpc: string, fn: (request: Req) => unknown): UnaryHandler {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request as Req))
      .then(
        (response) => callback(null, response),
        (err: unknown) => {
          const csi = asCsiError(err);
          log.warn({ rpc, grpc_code: csi.code, error: csi.details }, 'request refused');
          callback({ code: csi.code, details: csi.details, name: csi.name, message: csi.details });
        },
      );
  };
}

function implementation(service: DescService, handlers: Record<string, UnaryHandler>): UntypedServiceImplementation {
  for (const method of service.methods) if (!handlers[method.localName]) throw new Error(`no handler for ${service.typeName}.${method.name}`);
  return handlers as UntypedServiceImplementation;
}

export interface CsiServerDeps {
  pluginName: string;
  nodeId: string;
  socketDir: string;
  node: NodeService;
  log: Logger;
}

/** A grpc-js server with the CSI Identity and Node services. */
export function createCsiServer({ pluginName, nodeId, socketDir, node, log }: CsiServerDeps): Server {
  const server = new Server();
  server.addService(
    grpcServiceDefinition(Identity),
    implementation(Identity, {
      getPluginInfo: unary(log, 'GetPluginInfo', () => create(GetPluginInfoResponseSchema, { name: pluginName, vendorVersion: VENDOR_VERSION })),
      // Node service only: no CONTROLLER_SERVICE, no topology constraints
      getPluginCapabilities: unary(log, 'GetPluginCapabilities', () => create(GetPluginCapabilitiesResponseSchema)),
      probe: unary(log, 'Probe', async () => {
        const ready = await stat(socketDir).then((s) => s.isDirectory(), () => false);
        if (!ready) throw failedPrecondition(`the Workload API socket directory ${socketDir} is missing`);
        return create(ProbeResponseSchema, { ready: true });
      }),
    }),
  );
  server.addService(
    grpcServiceDefinition(Node),
    implementation(Node, {
      nodePublishVolume: unary(log, 'NodePublishVolume', async (req: NodePublishVolumeRequest) => {
        await node.publish(req);
        return create(NodePublishVolumeResponseSchema);
      }),
      nodeUnpublishVolume: unary(log, 'NodeUnpublishVolume', async (req: NodeUnpublishVolumeRequest) => {
        await node.unpublish(req);
        return create(NodeUnpublishVolumeResponseSchema);
      }),
      // no STAGE_UNSTAGE_VOLUME (nothing to stage), no GET_VOLUME_STATS
      nodeGetCapabilities: unary(log, 'NodeGetCapabilities', () => create(NodeGetCapabilitiesResponseSchema)),
      // max_volumes_per_node 0: no limit (every pod on the node may have the volume)
      nodeGetInfo: unary(log, 'NodeGetInfo', () => create(NodeGetInfoResponseSchema, { nodeId })),
    }),
  );
  return server;
}

export interface RegistrationServerDeps {
  pluginName: string;
  /** the CSI socket as the kubelet sees it */
  endpoint: string;
  log: Logger;
}

/** A grpc-js server with the kubelet's pluginregistration.Registration service. */
export function createRegistrationServer({ pluginName, endpoint, log }: RegistrationServerDeps): Server {
  const server = new Server();
  server.addService(
    grpcServiceDefinition(Registration),
    implementation(Registration, {
      getInfo: unary(log, 'GetInfo', () => create(PluginInfoSchema, { type: 'CSIPlugin', name: pluginName, endpoint, supportedVersions: SUPPORTED_CSI_VERSIONS })),
      notifyRegistrationStatus: unary(log, 'NotifyRegistrationStatus', (status: RegistrationStatus) => {
        if (status.pluginRegistered) log.info({ plugin: pluginName }, 'registered with the kubelet');
        else log.error({ plugin: pluginName, error: status.error }, 'the kubelet refused the registration');
        return create(RegistrationStatusResponseSchema);
      }),
    }),
  );
  return server;
}

/** Binds a server to a unix socket path. */
export function listenUnix(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.bindAsync(`unix://${path}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
}
