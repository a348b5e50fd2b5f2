/**
 * Structured logs for the Worker: one JSON object per line: `level`, `msg`, then snake_case fields.
 * Never pass secrets, tokens or keys here.
 * @module
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export function logEvent(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
}
