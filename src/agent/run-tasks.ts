/**
 * Runs long-lived tasks under one AbortController: the first task to fail (or to end early) aborts the
 * others, and its error is what the caller sees (SPIRE util.RunTasks; STYLE G16).
 * @module
 */

export type Task = (signal: AbortSignal) => Promise<void>;

/** Resolves when every task has stopped; rejects with the first failure. Aborting `parent` stops all. */
export async function runTasks(tasks: Record<string, Task>, parent?: AbortSignal): Promise<void> {
  const controller = new AbortController();
  const onParentAbort = () => controller.abort(parent?.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  let first: { error: unknown } | undefined;
  try {
    await Promise.all(
      Object.entries(tasks).map(async ([name, task]) => {
        try {
          await task(controller.signal);
          if (!controller.signal.aborted) first ??= { error: new Error(`task ${name} stopped unexpectedly`) };
        } catch (e) {
          if (!controller.signal.aborted) first ??= { error: e };
        } finally {
          controller.abort();
        }
      }),
    );
  } finally {
    parent?.removeEventListener('abort', onParentAbort);
  }
  if (first) throw first.error;
}

/** Waits `ms` or until `signal` aborts (then resolves early, without throwing). */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
