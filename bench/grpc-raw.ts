/**
 * Load generation for the Workload API benchmarks with @grpc/grpc-js and raw bytes (no protobuf decoding on
 * the client side, so the client costs the same for the agent and for the echo baseline).
 */
import { Metadata, makeGenericClientConstructor, credentials, type Client, type MethodDefinition } from '@grpc/grpc-js';

const identity = (b: Buffer): Buffer => b;

export function rawMethod(path: string, responseStream: boolean): MethodDefinition<Buffer, Buffer> {
  return { path, requestStream: false, responseStream, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity };
}

const SERVICE = {
  stream: rawMethod('/SpiffeWorkloadAPI/FetchX509SVID', true),
  unary: rawMethod('/SpiffeWorkloadAPI/FetchJWTSVID', false),
  echoStream: rawMethod('/bench.Echo/Stream', true),
  echoUnary: rawMethod('/bench.Echo/Unary', false),
};
const RawClient = makeGenericClientConstructor(SERVICE, 'Raw');

/** The full gRPC method name a target calls, e.g. /SpiffeWorkloadAPI/FetchX509SVID. */
export function methodPath(t: RawTarget): string {
  return SERVICE[t.method].path;
}

type StreamFn = (req: Buffer, md: Metadata) => NodeJS.EventEmitter & { cancel(): void };
type UnaryFn = (req: Buffer, md: Metadata, cb: (err: Error | null, res?: Buffer) => void) => unknown;

export interface RawTarget {
  socketPath: string;
  /** 'stream' → first message of a server stream; 'unary' → the response */
  kind: 'stream' | 'unary';
  /** method key in SERVICE */
  method: keyof typeof SERVICE;
  request: Buffer;
}

export function newClient(socketPath: string): Client {
  // no connection reuse across clients: each new client opens its own connection
  return new RawClient(`unix://${socketPath}`, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
}

function metadata(): Metadata {
  const md = new Metadata();
  md.set('workload.spiffe.io', 'true');
  return md;
}

/** One call on `client`; resolves with the first message's size. */
export function callOnce(client: Client, t: RawTarget): Promise<number> {
  return new Promise((resolve, reject) => {
    if (t.kind === 'unary') {
      (client as unknown as Record<string, UnaryFn>)[t.method]!.call(client, t.request, metadata(), (err, res) => (err ? reject(err) : resolve(res?.length ?? 0)));
      return;
    }
    const call = (client as unknown as Record<string, StreamFn>)[t.method]!.call(client, t.request, metadata());
    call.once('data', (msg: Buffer) => {
      call.cancel();
      resolve(msg.length);
    });
    call.once('error', (e: Error & { code?: number }) => {
      if (e.code !== 1) reject(e); // CANCELLED after cancel()
    });
  });
}

/** A call on a new connection: connect, call, close. */
export async function callOnNewConnection(t: RawTarget): Promise<number> {
  const client = newClient(t.socketPath);
  try {
    return await callOnce(client, t);
  } finally {
    client.close();
  }
}

/** Closed loop: `total` calls by `concurrency` clients; returns calls/s. */
export async function maxRate(t: RawTarget, total: number, concurrency: number): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        await callOnNewConnection(t);
      }
    }),
  );
  return total / ((performance.now() - t0) / 1000);
}

/**
 * Open loop at `ratePerSecond` for `durationMs`: calls start on schedule whether or not earlier ones ended,
 * and latency is counted from the scheduled start (no coordinated omission). With `connected`, calls go
 * round-robin over those clients' open connections; without, each call opens its own. Returns latencies in ms.
 */
export async function latenciesAtRate(t: RawTarget, ratePerSecond: number, durationMs: number, connected?: readonly Client[]): Promise<number[]> {
  const total = Math.max(1, Math.floor((ratePerSecond * durationMs) / 1000));
  const interval = 1000 / ratePerSecond;
  // preallocated, and no per-call promise kept: the client's own garbage collections are counted as latency
  const latencies = new Float64Array(total);
  let pending = total;
  let failure: unknown;
  let allDone!: () => void;
  const done = new Promise<void>((r) => (allDone = r));
  const settle = () => --pending === 0 && allDone();
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const call = connected ? callOnce(connected[i % connected.length]!, t) : callOnNewConnection(t);
    call.then(
      () => {
        latencies[i] = performance.now() - due;
        settle();
      },
      (e: unknown) => {
        failure ??= e;
        settle();
      },
    );
  }
  await done;
  if (failure) throw failure;
  return Array.from(latencies);
}

/** Encodes a JWTSVIDRequest { audience: [aud], spiffe_id: '' } (field 1, repeated string). */
export function jwtSvidRequest(audience: string): Buffer {
  const aud = Buffer.from(audience);
  if (aud.length > 127) throw new Error('audience too long for this encoder');
  return Buffer.concat([Buffer.from([0x0a, aud.length]), aud]);
}
