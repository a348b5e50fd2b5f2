/**
 * The SpiffeWorkloadAPI service as grpc-js sees it, built from the generated descriptor (no hand-written
 * protobuf): method paths `/SpiffeWorkloadAPI/<Method>` (the standard's proto has no package), streaming
 * flags from the method kinds, (de)serialization with @bufbuild/protobuf. Shared by server.ts and client.ts.
 * @module
 */
import { fromBinary, toBinary, type DescMessage, type DescMethod, type DescService, type Message } from '@bufbuild/protobuf';
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { SpiffeWorkloadAPI } from './gen/workload_pb.js';

/** Workload Endpoint §3: the static security header every request must carry. */
export const SECURITY_HEADER = 'workload.spiffe.io';
export const SECURITY_HEADER_VALUE = 'true';

/** The gRPC path of a method: `/SpiffeWorkloadAPI/FetchX509SVID` (no proto package), `/envoy.service.secret.v3.SecretDiscoveryService/StreamSecrets`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** A grpc-js ServiceDefinition for SpiffeWorkloadAPI, keyed by the methods' local names (`fetchX509SVID`, …). */
export function workloadApiServiceDefinition(): ServiceDefinition {
  return grpcServiceDefinition(SpiffeWorkloadAPI);
}

/** A grpc-js ServiceDefinition for any generated service (the agent's Envoy SDS uses it too). */
export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<Message, Message>> = {};
  for (const method of service.methods) {
    const input: DescMessage = method.input;
    const output: DescMessage = method.output;
    definition[method.localName] = {
      path: methodPath(method),
      originalName: method.localName,
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: (message: Message) => Buffer.from(toBinary(input, message)),
      requestDeserialize: (bytes: Buffer) => fromBinary(input, bytes),
      responseSerialize: (message: Message) => Buffer.from(toBinary(output, message)),
      responseDeserialize: (bytes: Buffer) => fromBinary(output, bytes),
    };
  }
  return definition;
}
