/**
 * The agent's logger: pino, JSON lines on stderr, fixed field names (STYLE G20) so logs can be queried
 * the same way everywhere. Never log keys, CSRs' private parts, SVID private keys or join tokens; log
 * `tokenHashPrefix(token)` instead.
 * @module
 */
import { createHash } from 'node:crypto';
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

/** Field names used in every structured log line. */
export const LOG_FIELDS = {
  SPIFFE_ID: 'spiffe_id',
  AGENT_ID: 'agent_id',
  ENTRY_ID: 'entry_id',
  ERROR_CODE: 'error_code',
  RETRY_IN_MS: 'retry_in_ms',
  EXPIRES_AT: 'expires_at',
  COUNT: 'count',
  REVISION: 'revision',
  BUNDLE_SEQUENCE: 'bundle_sequence',
  TOKEN_HASH: 'token_hash',
} as const;

export function createLogger(level: LogLevel, destination: NodeJS.WritableStream = process.stderr): Logger {
  return pino({ level, base: { svc: 'wisp-agent' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/** A logger that drops everything (tests, CLI commands that must not log). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** First 12 hex chars of SHA-256: identifies a token in logs without revealing it. */
export function tokenHashPrefix(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}
