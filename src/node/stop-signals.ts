/**
 * The stop of a long-running command (CSI driver, controller manager): an AbortSignal aborted by the first
 * SIGTERM or SIGINT, logged once; `dispose` removes the handlers when the command has returned.
 * @module
 */
export interface StopSignals {
  signal: AbortSignal;
  dispose(): void;
}

export function stopOnSignals(log: { info(obj: object, msg: string): void }): StopSignals {
  const stop = new AbortController();
  const handlers = (['SIGTERM', 'SIGINT'] as const).map((name) => {
    const handler = () => {
      log.info({ signal: name }, 'stopping');
      stop.abort();
    };
    process.once(name, handler);
    return [name, handler] as const;
  });
  return { signal: stop.signal, dispose: () => handlers.forEach(([name, handler]) => process.off(name, handler)) };
}
