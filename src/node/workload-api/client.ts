/**
 * A small Workload API client on grpc-js and the generated code, for `wisp-agent api fetch …` and tests.
 * It always sends the `workload.spiffe.io: true` header (Workload Endpoint §3) and accepts the endpoint
 * address forms of Workload Endpoint §4 (`unix:///path`, `unix:/path`, `tcp://ip:port`).
 * @module
 */
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { Metadata, credentials, makeGenericClientConstructor, status as GrpcStatus, type Client, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import { WispError } from '../../shared/errors.js';
import {
  JWTBundlesRequestSchema,
  JWTSVIDRequestSchema,
  ValidateJWTSVIDRequestSchema,
  WITBundlesRequestSchema,
  WITSVIDRequestSchema,
  X509BundlesRequestSchema,
  X509SVIDRequestSchema,
  type JWTBundlesResponse,
  type JWTSVIDResponse,
  type ValidateJWTSVIDResponse,
  type WITBundlesResponse,
  type WITSVIDResponse,
  type X509BundlesResponse,
  type X509SVIDResponse,
} from './gen/workload_pb.js';
import { SECURITY_HEADER, SECURITY_HEADER_VALUE, workloadApiServiceDefinition } from './service.js';

/** The environment variable a client falls back to (Workload Endpoint §4). */
export const ENDPOINT_SOCKET_ENV = 'SPIFFE_ENDPOINT_SOCKET';

function badAddress(address: string, why: string): WispError {
  return new WispError('ERR_CONFIG_INVALID', `Workload API address "${address}" is invalid: ${why}`);
}

/**
 * Turns a Workload Endpoint address into a grpc-js target. `unix:///p` and `unix:/p` → `unix:///p`;
 * `tcp://1.2.3.4:8000` → `1.2.3.4:8000` (ip only, no path). A bare absolute path is accepted as a socket.
 * @example parseEndpointAddress('unix:///run/wisp/agent.sock') // 'unix:///run/wisp/agent.sock'
 */
export function parseEndpointAddress(address: string): string {
  if (isAbsolute(address)) return `unix://${address}`;
  let url: URL;
  try {
    url = new URL(address);
  } catch {
    throw badAddress(address, 'not a URI');
  }
  if (url.protocol === 'unix:') {
    if (url.host !== '') throw badAddress(address, 'a unix address must not have an authority');
    if (!url.pathname.startsWith('/') || url.pathname === '/') throw badAddress(address, 'the socket path must be absolute');
    if (url.search || url.hash || url.username || url.password) throw badAddress(address, 'only a path is allowed');
    return `unix://${decodeURIComponent(url.pathname)}`;
  }
  if (url.protocol === 'tcp:') {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (!isIP(host)) throw badAddress(address, 'a tcp address must name an IP address');
    if (!url.port) throw badAddress(address, 'a tcp address needs a port');
    if ((url.pathname && url.pathname !== '/') || url.search || url.hash || url.username) throw badAddress(address, 'only host and port are allowed');
    return isIP(host) === 6 ? `ipv6:[${host}]:${url.port}` : `${host}:${url.port}`;
  }
  throw badAddress(address, 'scheme must be unix or tcp');
}

/**
 * The address to use: the explicit one, else the environment's (pass `process.env`; library code does
 * not read it itself).
 */
export function resolveEndpointAddress(explicit: string | undefined, env: Record<string, string | undefined>): string {
  const address = explicit ?? env[ENDPOINT_SOCKET_ENV];
  if (!address) throw new WispError('ERR_CONFIG_INVALID', `no Workload API address: pass one or set ${ENDPOINT_SOCKET_ENV}`);
  return address;
}

export interface CallOptions {
  /** cancels the call (a stream then just ends) */
  signal?: AbortSignal;
  /** unary calls: deadline in ms */
  timeoutMs?: number;
}

export interface WorkloadApiClientOptions {
  /** send the security header (default true; tests turn it off to check the server rejects that) */
  securityHeader?: boolean;
}

export interface WorkloadApiClient {
  fetchX509SVID(options?: CallOptions): AsyncIterable<X509SVIDResponse>;
  fetchX509Bundles(options?: CallOptions): AsyncIterable<X509BundlesResponse>;
  fetchJWTSVID(request: MessageInitShape<typeof JWTSVIDRequestSchema>, options?: CallOptions): Promise<JWTSVIDResponse>;
  fetchJWTBundles(options?: CallOptions): AsyncIterable<JWTBundlesResponse>;
  fetchWITSVID(request?: MessageInitShape<typeof WITSVIDRequestSchema>, options?: CallOptions): AsyncIterable<WITSVIDResponse>;
  fetchWITBundles(options?: CallOptions): AsyncIterable<WITBundlesResponse>;
  validateJWTSVID(request: MessageInitShape<typeof ValidateJWTSVIDRequestSchema>, options?: CallOptions): Promise<ValidateJWTSVIDResponse>;
  /** the underlying grpc-js client (methods keyed fetchX509SVID, …) */
  readonly grpc: Client;
  close(): void;
}

type UnaryFn = (req: unknown, md: Metadata, opts: { deadline?: Date }, cb: (err: ServiceError | null, res: unknown) => void) => unknown;
type StreamFn = (req: unknown, md: Metadata) => ClientReadableStream<unknown>;

/** grpc-js errors carry `code` (a gRPC status) and `details`. */
export function isGrpcError(err: unknown, code?: GrpcStatus): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && (code === undefined || (err as ServiceError).code === code);
}

/**
 * Connects to a Workload Endpoint.
 * @example
 * const client = createWorkloadApiClient(resolveEndpointAddress(flags.socket, process.env));
 * for await (const res of client.fetchX509SVID({ signal })) console.log(res.svids[0]?.spiffeId);
 */
export function createWorkloadApiClient(address: string, options: WorkloadApiClientOptions = {}): WorkloadApiClient {
  const Ctor = makeGenericClientConstructor(workloadApiServiceDefinition(), 'SpiffeWorkloadAPI');
  const client = new Ctor(parseEndpointAddress(address), credentials.createInsecure());
  const unaryFns = client as unknown as Record<string, UnaryFn>;
  const streamFns = client as unknown as Record<string, StreamFn>;
  const metadata = () => {
    const md = new Metadata();
    if (options.securityHeader !== false) md.set(SECURITY_HEADER, SECURITY_HEADER_VALUE);
    return md;
  };

  function unary<T>(name: string, request: unknown, opts: CallOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const deadline = opts.timeoutMs === undefined ? {} : { deadline: new Date(Date.now() + opts.timeoutMs) };
      const call = unaryFns[name]!.call(client, request, metadata(), deadline, (err, res) => (err ? reject(err) : resolve(res as T))) as { cancel(): void };
      opts.signal?.addEventListener('abort', () => call.cancel(), { once: true });
    });
  }

  async function* stream<T>(name: string, request: unknown, opts: CallOptions = {}): AsyncGenerator<T> {
    const call = streamFns[name]!.call(client, request, metadata());
    const cancel = () => call.cancel();
    opts.signal?.addEventListener('abort', cancel, { once: true });
    try {
      for await (const message of call) yield message as T;
    } catch (err) {
      if (isGrpcError(err, GrpcStatus.CANCELLED) && (opts.signal?.aborted ?? false)) return;
      throw err;
    } finally {
      opts.signal?.removeEventListener('abort', cancel);
      call.cancel(); // a consumer that stops iterating ends the call; no-op once the stream has ended
    }
  }

  return {
    fetchX509SVID: (opts) => stream('fetchX509SVID', create(X509SVIDRequestSchema), opts),
    fetchX509Bundles: (opts) => stream('fetchX509Bundles', create(X509BundlesRequestSchema), opts),
    fetchJWTSVID: (request, opts) => unary('fetchJWTSVID', create(JWTSVIDRequestSchema, request), opts),
    fetchJWTBundles: (opts) => stream('fetchJWTBundles', create(JWTBundlesRequestSchema), opts),
    fetchWITSVID: (request, opts) => stream('fetchWITSVID', create(WITSVIDRequestSchema, request ?? {}), opts),
    fetchWITBundles: (opts) => stream('fetchWITBundles', create(WITBundlesRequestSchema), opts),
    validateJWTSVID: (request, opts) => unary('validateJWTSVID', create(ValidateJWTSVIDRequestSchema, request), opts),
    grpc: client,
    close: () => client.close(),
  };
}
