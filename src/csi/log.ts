/**
 * wisp-csi-driver's logger: pino JSON lines on stderr, as the agent's (src/agent/log.ts). Requests are
 * logged by volume ID, target path and pod, never with their secrets or the volume context's service
 * account tokens.
 * @module
 */
import { pino, type Logger } from 'pino';
import type { CsiLogLevel } from './config.js';

export type { Logger };

export function createCsiLogger(level: CsiLogLevel, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino({ level, base: { svc: 'wisp-csi-driver' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
