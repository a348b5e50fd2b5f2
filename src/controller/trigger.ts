/**
 * The coalescing reconcile trigger: any number of `notify()` calls within `delayMs` become one run; a
 * notification during a run schedules exactly one more after it; runs never overlap; `periodMs` after the
 * last run another starts anyway (upstream's gcInterval: converge after changes made under the controller).
 * @module
 */

export interface Trigger {
  notify(): void;
  /** resolves after the run in progress, if any; no run starts afterwards */
  stop(): Promise<void>;
}

export function createTrigger(run: () => Promise<void>, delayMs: number, periodMs: number): Trigger {
  let timer: NodeJS.Timeout | undefined;
  let dueAt = Infinity;
  let running: Promise<void> | undefined;
  let pending = false;
  let stopped = false;

  const schedule = (ms: number) => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    dueAt = Date.now() + ms;
    timer = setTimeout(fire, ms);
  };
  function fire() {
    timer = undefined;
    dueAt = Infinity;
    running = run()
      .catch(() => undefined)
      .finally(() => {
        running = undefined;
        const again = pending;
        pending = false;
        schedule(again ? delayMs : periodMs);
      });
  }
  schedule(periodMs);
  return {
    notify() {
      if (stopped) return;
      if (running) pending = true;
      // an earlier run already due (a notification within delayMs) absorbs this one
      else if (dueAt > Date.now() + delayMs) schedule(delayMs);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
