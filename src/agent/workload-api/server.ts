/**
 * The SPIFFE Workload Endpoint: gRPC over a Unix socket (Workload Endpoint §3), with each caller's kernel
 * credentials attached to its connection. This is the only module that knows gRPC on the server side
 * (STYLE G16); the methods themselves live in handler.ts.
 *
 * Our own `net.Server` accepts connections, reads SO_PEERCRED once per connection (plus the process start
 * time, against pid reuse), and hands the socket, named by a private key, to a grpc-js Server through
 * `createConnectionInjector` once authority.ts has read the client's first header block (grpc-java's
 * `:authority`: such a connection stays behind a rewriting shim; every other goes to nghttp2 natively).
 * A call finds its caller again through `connectionKeyOf(call)`.
 *
 * Every Workload API call must carry the metadata `workload.spiffe.io: true` (Workload Endpoint §3, §6:
 * InvalidArgument otherwise); this is checked in one place, before any handler runs, as SPIRE's middleware
 * does. Envoy's SDS (src/agent/sds/handler.ts), served on the same socket unless disabled, is exempt: Envoy does not
 * send the header, and SPIRE does not ask it of SDS callers.
 * @module
 */
import { create, fromBinary, toBinary, type DescMessage, type Message, type MessageInitShape } from '@bufbuild/protobuf';
import {
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type Metadata,
  type ServerDuplexStream,
  type ServerErrorResponse,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedServiceImplementation,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { lstatSync, mkdirSync, chmodSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../log.js';
import { grpcCodeOf, type GrpcCodeName } from '../../shared/error-status.js';
import { WispError, isWispError } from '../../shared/errors.js';
import { SpiffeWorkloadAPI } from '../../node/workload-api/gen/workload_pb.js';
import type { CallContext, WorkloadApiImpl } from './handler.js';
import { peerCredentials } from './peer.js';
import { SECURITY_HEADER, SECURITY_HEADER_VALUE, workloadApiServiceDefinition } from '../../node/workload-api/service.js';
import type { SdsImpl } from '../sds/handler.js';
import type { DiscoveryRequest } from '../sds/gen/envoy/service/discovery/v3/discovery_pb.js';
import { processStartTime, type PeerInfo } from './unix-attestor.js';
import { acceptConnection, connectionKeyOf } from './authority.js';
import type { CountedRpc, RpcTelemetry } from '../telemetry/metrics.js';
import type { GrpcStatusName } from '../../shared/telemetry/names.js';

/** Any local user may connect; the caller's identity comes from the kernel, not from file permissions. */
export const SOCKET_MODE = 0o777;
/** The socket's directory, when the agent creates it. */
export const SOCKET_DIR_MODE = 0o755;
/** How long close() lets calls finish before cutting connections. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 2_000;

const GRPC_CODES: Record<GrpcCodeName, GrpcStatus> = {
  InvalidArgument: GrpcStatus.INVALID_ARGUMENT,
  PermissionDenied: GrpcStatus.PERMISSION_DENIED,
  NotFound: GrpcStatus.NOT_FOUND,
  AlreadyExists: GrpcStatus.ALREADY_EXISTS,
  Unavailable: GrpcStatus.UNAVAILABLE,
  Unauthenticated: GrpcStatus.UNAUTHENTICATED,
  ResourceExhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  Unimplemented: GrpcStatus.UNIMPLEMENTED,
  Internal: GrpcStatus.INTERNAL,
};

type AnyLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

/** A WispError → a gRPC status error; anything else is Internal with a fixed message (never echo it). */
export function toGrpcError(err: unknown): Partial<ServerErrorResponse> {
  if (isWispError(err)) return { code: GRPC_CODES[grpcCodeOf(err.code)], details: err.message };
  return { code: GrpcStatus.INTERNAL, details: 'internal error' };
}

function checkSecurityHeader(metadata: Metadata): void {
  const values = metadata.get(SECURITY_HEADER);
  if (values.length !== 1 || values[0] !== SECURITY_HEADER_VALUE) {
    throw new WispError('ERR_BAD_REQUEST', `security header "${SECURITY_HEADER}: ${SECURITY_HEADER_VALUE}" is missing`);
  }
}

export interface WorkloadApiServerOptions {
  /** absolute path of the Unix socket */
  socketPath: string;
  /** `createWorkloadApi(deps)` */
  impl: WorkloadApiImpl;
  /** `createSds(deps)`: Envoy SDS v3 on the same socket; omitted when `disableSdsApi` */
  sds?: SdsImpl;
  log?: AnyLog;
  /** `/proc`, for tests */
  procRoot?: string;
  /** counts calls (status, latency), streams and connections; absent: metrics off (one branch per call) */
  telemetry?: RpcTelemetry;
}

/**
 * The reason of a call the client cancelled: one object, because `abort()` without a reason builds a
 * DOMException with its stack for every call (4.5% of the agent's CPU at 32 concurrent FetchX509SVID callers).
 */
const CANCELLED = Object.freeze({ name: 'AbortError', message: 'the client cancelled the call' });

/**
 * The service with each response encoded once per message object: handler.ts hands every caller of one entry
 * set the same X509SVIDResponse until the cache changes, and every caller of one cached JWT-SVID the same
 * JWTSVIDResponse (grpc-js copies the bytes into its own frame, so sharing them is safe). Messages are never
 * modified after they are built.
 */
function withSharedEncodings(definition: ServiceDefinition): ServiceDefinition {
  const encoded = new WeakMap<object, Buffer>();
  for (const method of Object.values(definition)) {
    if (method.requestStream) continue;
    const serialize = method.responseSerialize;
    method.responseSerialize = (message: object) => {
      let bytes = encoded.get(message);
      if (!bytes) encoded.set(message, (bytes = serialize(message)));
      return bytes;
    };
  }
  return definition;
}

/** The status a call ended with, as its metric's `status` label. */
function statusName(err: unknown): GrpcStatusName {
  return isWispError(err) ? grpcCodeOf(err.code) : 'Internal';
}

/** Envoy SDS's method paths (envoy/service/secret/v3/sds.proto; test/agent/sds.test.ts checks them against the descriptor) */
export const SDS_METHOD_PATHS = {
  fetchSecrets: '/envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets',
  streamSecrets: '/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets',
} as const;

type SdsWire = typeof import('../sds/wire.js');
let sdsWire: SdsWire | undefined;
let sdsWireLoading: Promise<SdsWire> | undefined;
/** Envoy's descriptors, loaded by the first SDS call rather than at start (docs/performance.md, start-up). */
function loadSdsWire(): Promise<SdsWire> {
  return (sdsWireLoading ??= import('../sds/wire.js').then((w) => (sdsWire = w)));
}

function decodeDiscoveryRequest(wire: SdsWire, bytes: Buffer): DiscoveryRequest {
  try {
    return fromBinary(wire.DiscoveryRequestSchema, bytes);
  } catch {
    throw new WispError('ERR_BAD_REQUEST', 'malformed DiscoveryRequest');
  }
}

/**
 * SDS registered by path with requests left as bytes: grpc-js decodes a request before the handler runs, and
 * the decoder is synchronous, so the handlers decode once the wire is loaded. A response is only written after
 * that, so it is encoded with the loaded schema.
 */
function sdsServiceDefinition(): ServiceDefinition {
  const raw = (bytes: Buffer) => bytes;
  const encode = (message: Message) => Buffer.from(toBinary(sdsWire!.DiscoveryResponseSchema as DescMessage, message));
  const method = (originalName: keyof typeof SDS_METHOD_PATHS, stream: boolean) => ({
    path: SDS_METHOD_PATHS[originalName],
    originalName,
    requestStream: stream,
    responseStream: stream,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: encode,
    responseDeserialize: raw,
  });
  return { fetchSecrets: method('fetchSecrets', false), streamSecrets: method('streamSecrets', true) };
}

export interface WorkloadApiServer {
  readonly socketPath: string;
  /** open Unix connections (for diagnostics and tests) */
  connectionCount(): number;
  /** calls and connections accepted so far: a count that moves while workloads are calling (memory.ts waits for it to rest) */
  activity(): number;
  /** stops accepting, ends open calls (streams are cancelled), closes connections, removes the socket */
  close(graceMs?: number): Promise<void>;
}

/** Prepares the socket path: the directory (created 0755 if missing) and no stale socket. */
function prepareSocketPath(socketPath: string): void {
  const dir = dirname(socketPath);
  // every folder made on the way, not only the last, must let other users through (mkdir's mode is filtered
  // by the umask, so a umask of 077 would otherwise close the path to every uid but the agent's)
  const created = mkdirSync(dir, { recursive: true, mode: SOCKET_DIR_MODE });
  if (created !== undefined) {
    for (let d = dir; d.length >= created.length; d = dirname(d)) chmodSync(d, SOCKET_DIR_MODE);
  }
  let st;
  try {
    st = lstatSync(socketPath);
  } catch {
    return;
  }
  if (!st.isSocket()) throw new WispError('ERR_CONFIG_INVALID', `${socketPath} exists and is not a socket; refusing to remove it`);
  unlinkSync(socketPath); // stale socket from an earlier run
}

/**
 * Starts the Workload Endpoint on a Unix socket.
 * @example
 * const impl = createWorkloadApi({ attest: createUnixAttestor(), source: cache, log });
 * const server = await startWorkloadApiServer({ socketPath: '/run/wisp/agent.sock', impl, log });
 * signal.addEventListener('abort', () => void server.close());
 */
export async function startWorkloadApiServer(options: WorkloadApiServerOptions): Promise<WorkloadApiServer> {
  const { socketPath, impl, sds, log, procRoot, telemetry } = options;
  // channelz off: nothing reads it, and its per-call bookkeeping was 3.5% of the agent's CPU at 32 callers
  const grpcServer = new Server({ 'grpc.max_receive_message_length': 64 * 1024, 'grpc.enable_channelz': 0 });
  const peers = new Map<string, PeerInfo>();
  const sockets = new Set<net.Socket>();
  const calls = new Set<AbortController>();
  let nextConnection = 0;
  let activity = 0;
  let shuttingDown = false;

  /** What runCall needs of a unary, server-streaming or bidi call. */
  type AnyCall = { metadata: Metadata; getPeer(): string; on(event: 'cancelled', listener: () => void): unknown };

  /** One call: the security header (Workload API only), the caller's credentials, cancellation; tracked so close() can end it. */
  function runCall<T>(call: AnyCall, body: (ctx: CallContext) => Promise<T>, securityHeader = true): Promise<T> {
    activity++;
    const controller = new AbortController();
    calls.add(controller);
    call.on('cancelled', () => controller.abort(CANCELLED));
    return (async () => {
      if (securityHeader) checkSecurityHeader(call.metadata);
      const key = connectionKeyOf(call);
      const peer = key === undefined ? undefined : peers.get(key);
      if (!peer) throw new WispError('ERR_UNAVAILABLE', 'caller credentials are unavailable');
      return body({ peer, signal: controller.signal });
    })().finally(() => calls.delete(controller));
  }

  function statusOf(err: unknown, method: string): Partial<ServerErrorResponse> {
    if (!isWispError(err)) log?.error({ err, method }, 'Workload API call failed');
    return toGrpcError(err);
  }

  /** Writes each response, waiting for the client to drain when its buffer is full. */
  async function writeAll(call: ServerWritableStream<Message, Message> | ServerDuplexStream<Message, Message>, output: DescMessage, responses: AsyncIterable<MessageInitShape<DescMessage>>, signal: AbortSignal) {
    for await (const init of responses) {
      if (signal.aborted) break;
      if (!call.write(create(output, init))) {
        await new Promise<void>((resolve) => {
          const done = () => {
            call.off('drain', done);
            signal.removeEventListener('abort', done);
            resolve();
          };
          call.on('drain', done);
          signal.addEventListener('abort', done);
        });
      }
    }
  }

  /** Ends a stream: OK, Unavailable when the server stops (the client should come back), or the error. */
  function endStream(call: ServerWritableStream<Message, Message> | ServerDuplexStream<Message, Message>, done: Promise<void>, method: CountedRpc) {
    // a stream counts once, when it ends, with its lifetime as latency (SPIRE's call counter does the same);
    // a stream the client cancels ends OK, as SPIRE's handlers return nil on a done context
    const t0 = telemetry ? telemetry.now() : 0;
    telemetry?.streamOpened(method);
    done.then(
      () => {
        telemetry?.streamClosed(method);
        telemetry?.rpcDone(method, !call.cancelled && shuttingDown ? 'Unavailable' : 'OK', t0);
        if (call.cancelled) return;
        if (shuttingDown) call.emit('error', toGrpcError(new WispError('ERR_UNAVAILABLE', 'agent is shutting down')));
        else call.end();
      },
      (err: unknown) => {
        telemetry?.streamClosed(method);
        telemetry?.rpcDone(method, statusName(err), t0);
        const status = statusOf(err, method);
        if (!call.cancelled) call.emit('error', status);
      },
    );
  }

  const implementation: UntypedServiceImplementation = {};
  for (const method of SpiffeWorkloadAPI.methods) {
    const name = method.localName as keyof WorkloadApiImpl;
    const output: DescMessage = method.output;
    if (method.methodKind === 'unary') {
      const fn = impl[name] as (req: Message, ctx: CallContext) => Promise<MessageInitShape<DescMessage>>;
      const counted = method.name as CountedRpc;
      implementation[name] = (call: ServerUnaryCall<Message, Message>, callback: sendUnaryData<Message>) => {
        const t0 = telemetry ? telemetry.now() : 0;
        runCall(call, async (ctx) => create(output, await fn(call.request, ctx))).then(
          (response) => {
            telemetry?.rpcDone(counted, 'OK', t0);
            callback(null, response);
          },
          (err: unknown) => {
            telemetry?.rpcDone(counted, statusName(err), t0);
            callback(statusOf(err, method.name));
          },
        );
      };
    } else if (method.methodKind === 'server_streaming') {
      const fn = impl[name] as (req: Message, ctx: CallContext) => AsyncIterable<MessageInitShape<DescMessage>>;
      implementation[name] = (call: ServerWritableStream<Message, Message>) => {
        endStream(call, runCall(call, (ctx) => writeAll(call, output, fn(call.request, ctx), ctx.signal)), method.name as CountedRpc);
      };
    }
  }
  grpcServer.addService(withSharedEncodings(workloadApiServiceDefinition()), implementation);
  if (sds) {
    const sdsImplementation: UntypedServiceImplementation = {
      fetchSecrets: (call: ServerUnaryCall<Buffer, Message>, callback: sendUnaryData<Message>) => {
        const t0 = telemetry ? telemetry.now() : 0;
        runCall(call, async (ctx) => {
          const wire = await loadSdsWire();
          return create(wire.DiscoveryResponseSchema, await sds.fetchSecrets(decodeDiscoveryRequest(wire, call.request), ctx));
        }, false).then(
          (response) => {
            telemetry?.rpcDone('FetchSecrets', 'OK', t0);
            callback(null, response);
          },
          (err: unknown) => {
            telemetry?.rpcDone('FetchSecrets', statusName(err), t0);
            callback(statusOf(err, 'FetchSecrets'));
          },
        );
      },
      streamSecrets: (call: ServerDuplexStream<Buffer, Message>) => {
        endStream(call, runCall(call, async (ctx) => {
          const wire = await loadSdsWire();
          async function* requests(): AsyncIterable<DiscoveryRequest> {
            for await (const bytes of call as AsyncIterable<Buffer>) yield decodeDiscoveryRequest(wire, bytes);
          }
          await writeAll(call, wire.DiscoveryResponseSchema, sds.streamSecrets(requests(), ctx), ctx.signal);
        }, false), 'StreamSecrets');
      },
    };
    grpcServer.addService(sdsServiceDefinition(), sdsImplementation);
  }
  const injector = grpcServer.createConnectionInjector(ServerCredentials.createInsecure());

  const netServer = net.createServer((socket) => {
    let peer: PeerInfo;
    try {
      const creds = peerCredentials(socket);
      peer = { ...creds, startTime: processStartTime(creds.pid, procRoot) };
    } catch (err) {
      log?.warn({ err }, 'cannot read peer credentials; closing connection');
      socket.destroy();
      return;
    }
    const key = `wisp-uds-${++nextConnection}`;
    activity++;
    peers.set(key, peer);
    sockets.add(socket);
    telemetry?.connectionOpened();
    socket.once('close', () => {
      peers.delete(key);
      sockets.delete(socket);
      telemetry?.connectionClosed();
    });
    log?.debug({ pid: peer.pid, uid: peer.uid, gid: peer.gid }, 'Workload API connection');
    // read up to the first header block, so a path as `:authority` (grpc-java) passes, then to nghttp2 (authority.ts)
    acceptConnection(socket, key, (connection) => injector.injectConnection(connection));
  });

  prepareSocketPath(socketPath);
  await new Promise<void>((resolve, reject) => {
    netServer.once('error', reject);
    netServer.listen(socketPath, () => {
      netServer.off('error', reject);
      resolve();
    });
  });
  chmodSync(socketPath, SOCKET_MODE);
  netServer.on('error', (err) => log?.error({ err }, 'Workload API listener error'));
  log?.info({ socket_path: socketPath }, 'Workload API listening');

  let closing: Promise<void> | undefined;
  return {
    socketPath,
    connectionCount: () => sockets.size,
    activity: () => activity,
    close(graceMs = DEFAULT_SHUTDOWN_GRACE_MS) {
      closing ??= (async () => {
        shuttingDown = true;
        const listenerClosed = new Promise<void>((resolve) => netServer.close(() => resolve()));
        for (const controller of calls) controller.abort();
        injector.drain(graceMs);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            grpcServer.forceShutdown();
            resolve();
          }, graceMs);
          timer.unref();
          grpcServer.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        injector.destroy();
        for (const socket of sockets) socket.destroy();
        await listenerClosed;
        try {
          unlinkSync(socketPath);
        } catch {
          // already gone (net.Server.close removes it on most platforms)
        }
        log?.info({ socket_path: socketPath }, 'Workload API stopped');
      })();
      return closing;
    },
  };
}
