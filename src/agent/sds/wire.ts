/**
 * Envoy SDS's messages, loaded by the Workload API server with the first SDS call: evaluating Envoy's protobuf
 * descriptors costs ~14 ms that an agent's restart to its first SVID need not pay (docs/performance.md, start-up).
 * @module
 */
export { DiscoveryRequestSchema, DiscoveryResponseSchema } from './gen/envoy/service/discovery/v3/discovery_pb.js';
export { SecretDiscoveryService } from './gen/envoy/service/secret/v3/sds_pb.js';
