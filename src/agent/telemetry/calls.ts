/**
 * The one wrapper that turns a piece of agent work (attestation, rotation, a sync half) into one call of a
 * SPIRE call counter, without prom-client: the caller passes its telemetry, or undefined when metrics are off.
 * @module
 */
import { grpcCodeOf } from '../../shared/error-status.js';
import { WispError } from '../../shared/errors.js';
import type { AgentCallKey } from '../../shared/telemetry/names.js';
import type { WorkTelemetry } from './metrics.js';

/** Runs `work` as one call of SPIRE's call counter `key`: counted with its status (a WispError's gRPC code). */
export async function countedCall<T>(telemetry: Pick<WorkTelemetry, 'now' | 'callDone'> | undefined, key: AgentCallKey, work: () => Promise<T>): Promise<T> {
  if (!telemetry) return work();
  const t0 = telemetry.now();
  try {
    const out = await work();
    telemetry.callDone(key, 'OK', t0);
    return out;
  } catch (e) {
    telemetry.callDone(key, e instanceof WispError ? grpcCodeOf(e.code) : 'Unknown', t0);
    throw e;
  }
}
