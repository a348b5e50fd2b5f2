/**
 * The baseline of the Workload API benchmarks: a bare @grpc/grpc-js server on a Unix socket with one
 * server-streaming echo RPC (the shape of FetchX509SVID) and one unary echo (the shape of FetchJWTSVID).
 * Run as its own process: `tsx bench/echo-server.ts <socket path>`; prints "ready" when listening.
 */
import { Server, ServerCredentials, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData } from '@grpc/grpc-js';
import { rawMethod } from './grpc-raw.js';

const socketPath = process.argv[2];
if (!socketPath) throw new Error('usage: echo-server.ts <socket path>');
const server = new Server();
server.addService(
  { stream: rawMethod('/bench.Echo/Stream', true), unary: rawMethod('/bench.Echo/Unary', false) },
  {
    stream: (call: ServerWritableStream<Buffer, Buffer>) => {
      call.write(call.request);
      call.on('cancelled', () => call.end());
    },
    unary: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, call.request),
  },
);
server.bindAsync(`unix://${socketPath}`, ServerCredentials.createInsecure(), (err) => {
  if (err) throw err;
  process.stdout.write('ready\n');
});
process.on('SIGTERM', () => server.forceShutdown());
