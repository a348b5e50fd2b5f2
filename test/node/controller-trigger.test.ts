import { afterEach, describe, expect, it } from 'vitest';
import { createTrigger, type Trigger } from '../../src/controller/trigger.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let trigger: Trigger | undefined;
afterEach(async () => {
  await trigger?.stop();
  trigger = undefined;
});

describe('reconcile trigger', () => {
  it('coalesces a burst of changes into one run, shortly after', async () => {
    const runs: number[] = [];
    const start = Date.now();
    trigger = createTrigger(async () => void runs.push(Date.now() - start), 50, 60_000);
    for (let i = 0; i < 20; i++) trigger.notify();
    await sleep(200);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toBeGreaterThanOrEqual(45);
  });

  it('never overlaps runs: a change during a run brings exactly one more after it', async () => {
    let active = 0;
    let maxActive = 0;
    let runs = 0;
    trigger = createTrigger(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs++;
      await sleep(100);
      active--;
    }, 10, 60_000);
    trigger.notify();
    await sleep(40); // the first run is in progress
    trigger.notify();
    trigger.notify();
    await sleep(400);
    expect(runs).toBe(2);
    expect(maxActive).toBe(1);
  });

  it('runs every period without changes, and keeps going after a failed run', async () => {
    let runs = 0;
    trigger = createTrigger(async () => {
      runs++;
      throw new Error('issuer unreachable');
    }, 10, 60);
    await sleep(330);
    // about 5 (330 ms / (60 ms + the run)); a loaded machine fires timers late, never early
    expect(runs).toBeGreaterThanOrEqual(3);
    expect(runs).toBeLessThanOrEqual(6);
  });

  it('starts nothing after stop, and stop waits for the run in progress', async () => {
    let finished = false;
    let runs = 0;
    trigger = createTrigger(async () => {
      runs++;
      await sleep(80);
      finished = true;
    }, 5, 60_000);
    trigger.notify();
    await sleep(20);
    await trigger.stop();
    expect(finished).toBe(true);
    trigger.notify();
    await sleep(50);
    expect(runs).toBe(1);
  });
});
